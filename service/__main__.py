"""``python -m service`` (``make serve``): uvicorn with ``[serve]`` host, port and workers."""
from __future__ import annotations

import os
import tempfile

import uvicorn


def main() -> None:
    from tasks import config

    cfg = config.serve()
    if cfg.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # every worker writes its counters here; /metrics adds them up (service.metrics)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="forecast-service-metrics-")
    uvicorn.run("service.app:create_app", factory=True, host=cfg.host, port=cfg.port, workers=cfg.workers,
                log_level="info")


if __name__ == "__main__":
    main()
