"""The mlforecast reference's side of one case and origin (bench/peers/mlforecast_reference.py), kept between runs.

The reference does not depend on the pipeline's configuration, only on what it reads and on
its own code: its forecast is kept under ``<case>/mlforecast/<origin>/`` with ``key.json``,
the snapshot's content hash and a hash of the script and its environment's pins. A run with
the same key reuses it; any difference makes it again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.accuracy.pipeline_run import QUIET_THREADS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "peers" / "mlforecast_reference.py"
PINS = ROOT / "bench" / "requirements-mlforecast.txt"
MLF_PY = ROOT / "bench" / ".venv-mlforecast" / "bin" / "python"


def available() -> str | None:
    """None when the reference can run here, else why not."""
    if not MLF_PY.exists():
        return (f"no mlforecast environment at {MLF_PY.parent.parent} (`make bench/.venv-mlforecast/.installed` "
                "makes it): the mlforecast reference is left out")
    return None


def _key(snapshot: Path) -> dict:
    manifest = json.loads((snapshot / "manifest.json").read_text())
    code = hashlib.sha256(SCRIPT.read_bytes() + b"\0" + PINS.read_bytes()).hexdigest()
    return {"snapshot": manifest["content_hash"]["all"], "code": code}


def run_origin(snapshot: Path, origin, out: Path, what: str) -> dict:
    """The reference's forecast of ``origin`` from ``snapshot`` into ``out``; returns its timings (and ``kept``)."""
    key = _key(snapshot)
    stamp = out / "key.json"
    if stamp.exists() and json.loads(stamp.read_text()) == key and (out / "forecast.parquet").exists():
        return {**json.loads((out / "timings.json").read_text()), "kept": True}
    shutil.rmtree(out, ignore_errors=True)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run([str(MLF_PY), str(SCRIPT), str(snapshot), origin.isoformat(), str(partial)],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, **QUIET_THREADS})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{what}: the mlforecast reference failed (exit {done.returncode}): "
                           f"{done.stderr.strip().splitlines()[-1:] or done.stdout[-300:]}")
    timings = json.loads((partial / "timings.json").read_text())
    timings["process_s"] = round(wall, 1)
    (partial / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    (partial / "key.json").write_text(json.dumps(key, indent=2) + "\n")
    partial.rename(out)  # a forecast folder is whole or absent
    return {**timings, "kept": False}
