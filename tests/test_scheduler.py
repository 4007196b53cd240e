"""The central scheduler: task history on the project's database, the visualiser's graph and /history pages.

The ``luigid`` fixture (tests/conftest.py) keeps the scheduler's state and logs under the test's tmp folder.
"""
from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest
import sqlalchemy as sa

from tests.browser import browse, png_rows, require_chromium
from tests.conftest import RUN_DATE


@pytest.mark.browser  # after the run, its pages in Chromium
def test_a_run_through_the_scheduler_is_recorded_and_shown(chain_env, luigid, tmp_path):
    port = luigid
    done = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline", "DailyForecast", "--date",
                           RUN_DATE.isoformat(), "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with chain_env.engine.connect() as conn:  # task history went to the project's database, through SQLAlchemy
        names = {r[0] for r in conn.execute(sa.text("SELECT name FROM tasks"))}
        events = conn.execute(sa.text("SELECT count(*) FROM task_events WHERE event_name = 'DONE'")).scalar()
    assert {"DailyForecast", "ScoreForecast", "ExtractSnapshot"} <= names and events >= 8

    binary = require_chromium()
    history, history_png = browse(binary, f"http://127.0.0.1:{port}/history", tmp_path / "history", size="1280,900")
    assert "ScoreForecast" in history and "DailyForecast" in history
    task_id = next(k for k in __import__("json").loads(urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/task_list?data=%7B%22status%22%3A%22DONE%22%7D").read())["response"]
        if k.startswith("DailyForecast"))
    graph_url = f"http://127.0.0.1:{port}/static/visualiser/index.html#tab=graph&taskId={task_id}"
    graph, graph_png = browse(binary, graph_url, tmp_path / "graph", size="1280,900", budget_ms=8000)
    # the dependency graph is drawn by the page's scripts: every task of the chain is a node
    for task in ("DailyForecast", "ScoreForecast", "BuildFeatures", "TrainModel", "CompileModel", "ExtractSnapshot"):
        assert task in graph, f"{task} missing from the rendered graph"
    for png in (history_png, graph_png):
        width, height, rows = png_rows(png)
        assert (width, height) == (1280, 900) and len(rows) > 50, f"{png} looks blank"
