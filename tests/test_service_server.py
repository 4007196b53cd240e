"""`python -m service` (what `make serve` starts) as a real server: uvicorn with two workers, summed metrics,
and the status page in headless Chromium."""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipeline.data.series_history import create_indexes
from tests import browser
from tests.conftest import RUN_DATE, free_port, stop

pytestmark = [pytest.mark.prebuilt_chain, pytest.mark.slow]


@pytest.fixture(scope="module")
def chromium() -> str:
    return browser.require_chromium()


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextlib.contextmanager
def running_service(env, monkeypatch, token: str | None = None):
    """`python -m service` on a free port with two workers, on the chain's copy; yields its base URL."""
    port = free_port()
    cfg = Path(env.data.parent / "test-luigi.cfg")
    cfg.write_text(cfg.read_text() + f"[serve]\nport = {port}\nworkers = 2\n")
    if token:
        monkeypatch.setenv("PIPELINE_SERVE_TOKEN", token)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    log = env.data.parent / "service.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "service"], stdout=sink, stderr=subprocess.STDOUT,
                                env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(base + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the service did not start: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, log
    finally:
        stop(proc)


def test_the_service_runs_with_two_workers_and_its_status_page_renders_in_a_browser(chain_env, monkeypatch,
                                                                                    chromium, tmp_path):
    create_indexes(chain_env.engine)
    with running_service(chain_env, monkeypatch, token="page-token") as (base, log):
        status, body = get(base + "/health")
        assert status == 200 and json.loads(body)["model_date"] == RUN_DATE.isoformat()
        assert get(base + "/version")[0] == 401
        for _ in range(6):  # spread over both workers
            assert get(base + "/forecasts/CA_1/FOODS_1_001", "page-token")[0] == 200
        metrics = get(base + "/metrics", "page-token")[1]
        # the page sums every worker's counters (prometheus multiprocess mode)
        line = next(ln for ln in metrics.splitlines() if ln.startswith(
            'forecast_service_requests_total{endpoint="/forecasts/{store_id}/{item_id}",method="GET",status="200"}'))
        assert float(line.split()[-1]) == 6.0
        # Chromium cannot send a header: the page is fetched with the token and opened from a file
        status, page = get(base + "/", "page-token")
        assert status == 200
        saved = tmp_path / "status.html"
        saved.write_text(page)
        dom, png = browser.browse(chromium, saved.as_uri(), tmp_path / "browser")
        attrs = dict(re.findall(r'(data-[a-z]+)="([^"]*)"', dom.split("<body", 1)[1].split(">", 1)[0]))
        assert attrs.get("data-ok") == "true", attrs
        assert int(attrs["data-plots"]) >= 1
        width, height, rows = browser.png_rows(png)
        assert len(rows) > 100, "the screenshot looks blank"
        assert "page-token" not in log.read_text()
