"""Bounded, fail-fast work: a date without data ends at once with one message; bad data is not retried."""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import RUN_DATE

README = Path(__file__).resolve().parents[1] / "README.md"


def _with_slow_retries():
    """The chain's test configuration with the production retry policy: a retry would show in the time."""
    cfg = Path(os.environ["LUIGI_CONFIG_PATH"])
    cfg.write_text(cfg.read_text().replace("attempts = 1", "attempts = 3\ndelay_seconds = 20"))


def _luigi(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline", *args, "--local-scheduler"],
                          capture_output=True, text=True, timeout=timeout)


def test_a_date_far_after_the_data_fails_at_once_with_one_message(chain_env):
    _with_slow_retries()
    done = _luigi("DailyForecast", "--date", "2030-01-01")
    out = done.stdout + done.stderr
    assert done.returncode == 30, out[-3000:]  # [retcode] task_failed
    assert "no sales are recorded for the run date 2030-01-01" in out, out[-3000:]
    assert "Scheduled 2 tasks" in out, out[-3000:]  # DailyForecast and the one failing stand-in: no chain
    assert "Traceback" not in out and "retry:" not in out, out[-3000:]
    assert not (chain_env.data / "snapshots").exists()


def test_a_data_error_is_not_retried(chain_env):
    """The run date's snapshot holds bad data: its check fails once, not three times 20 s apart."""
    import sqlalchemy as sa

    from pipeline.data import db
    _with_slow_retries()
    with chain_env.engine.begin() as conn:
        conn.execute(sa.insert(db.sales).values(store_id="CA_1", item_id="NOT_AN_ITEM", date=RUN_DATE, units=1,
                                                recorded_at=dt.datetime.combine(RUN_DATE, dt.time(23, 30))))
    done = _luigi("CheckSnapshot", "--date", RUN_DATE.isoformat())
    out = done.stdout + done.stderr
    assert done.returncode == 30, out[-3000:]
    assert "NOT_AN_ITEM" in out and "retry:" not in out and "Traceback" not in out, out[-3000:]
    log = (chain_env.data / "logs" / "pipeline.log").read_text()
    assert log.count("outcome CheckSnapshot(date=2016-05-22): FAILED") == 1, log


def test_the_readme_cron_line_on_a_clock_far_ahead_of_the_data_ends_promptly(chain_env):
    """The crontab command with "now" pinned to years after the data's last day."""
    line = next(l for l in README.read_text().splitlines() if l.startswith("30 2 * * *"))
    args = re.search(r"\.venv/bin/luigi (.*?) >>", line).group(1).split()
    assert args[:2] == ["--module", "pipeline"]
    _with_slow_retries()
    now = int(dt.datetime(2026, 12, 4, 2, 30, tzinfo=dt.timezone.utc).timestamp())
    done = subprocess.run([sys.executable, "-m", "luigi", *args[2:], "--module", "pipeline", "--now", str(now),
                           "--local-scheduler"], capture_output=True, text=True, timeout=180)
    out = done.stdout + done.stderr
    assert done.returncode == 30, out[-3000:]
    # the 7 days of the window, each refused at once by its stand-in; no snapshot, training or retry
    failures = re.findall(r"no sales are recorded for the run date (\d{4}-\d\d-\d\d)", out)
    assert sorted(set(failures)) == [f"2026-11-{d}" for d in range(27, 31)] + [f"2026-12-0{d}" for d in range(1, 4)]
    assert "Traceback" not in out and "retry:" not in out and "TrainModel" not in out, out[-3000:]
    assert len(out.splitlines()) < 200


def test_a_setting_out_of_range_fails_at_once_saying_which(chain_env):
    cfg = Path(os.environ["LUIGI_CONFIG_PATH"])
    cfg.write_text(cfg.read_text() + "[pipeline]\nhorizon = 40\n")
    done = _luigi("DailyForecast", "--date", RUN_DATE.isoformat())
    out = done.stdout + done.stderr
    assert done.returncode == 30, out[-3000:]
    assert "configuration: [pipeline] horizon must be between 1 and 28" in out, out[-3000:]
    assert "Scheduled 2 tasks" in out and "Traceback" not in out, out[-3000:]
    assert not (chain_env.data / "snapshots").exists()
