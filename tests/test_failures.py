"""Failures survived, nothing lost: SIGKILL in every task, concurrent runs, a database that blinks."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import luigi
import pytest

from pipeline.data import storage
from tasks import (BuildFeatures, BuildTrainingFeatures, CompileModel, DailyForecast, ExtractSnapshot, ScoreForecast,
                   TrainModel)
from tests.outputs import out
from tests.conftest import RUN_DATE

# the home of each task's outputs (one folder per configuration inside)
STAGES = [f"snapshots/{RUN_DATE}", f"features/{RUN_DATE}/train", f"models/{RUN_DATE}", f"compiled/{RUN_DATE}",
          f"features/{RUN_DATE}/score", f"forecasts/{RUN_DATE}"]


def luigi_cmd(*extra):
    # --no-lock: Luigi's own guard refuses a second identical command line on one machine; these tests
    # need the runs to really overlap, as two machines or two different entry points would
    return [sys.executable, "-m", "luigi", "--module", "pipeline", "DailyForecast", "--date", RUN_DATE.isoformat(),
            "--local-scheduler", "--no-lock", *extra]


def temp_folder(data: Path, stage: str) -> Path | None:
    """The hidden temporary folder a task of ``stage`` is writing, if any."""
    found = list((data / stage).glob(".*.tmp-*")) if (data / stage).exists() else []
    return found[0] if found else None


def reference_hash(chain_env) -> str:
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    digest = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")["content_hash"]
    file_digest = storage.file_hash(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet")
    shutil.rmtree(chain_env.data)
    return digest, file_digest


@pytest.mark.prebuilt_chain
def test_sigkill_in_the_middle_of_each_task_leaves_nothing_half_written(chain_env):
    expected, _ = reference_hash(chain_env)
    killed = []
    for stage in STAGES:
        # a stage that an earlier run already completed is removed, so that this run must write it again
        final = chain_env.data / stage
        shutil.rmtree(final, ignore_errors=True)
        proc = subprocess.Popen(luigi_cmd(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if temp_folder(chain_env.data, stage) is not None:
                os.killpg(proc.pid, signal.SIGKILL)  # the worker and any children, mid-write
                killed.append(stage)
                break
            time.sleep(0.002)
        proc.wait()
        # every folder under a final name is complete: a kill never leaves half an output there
        for task in (ExtractSnapshot(date=RUN_DATE), BuildTrainingFeatures(date=RUN_DATE), TrainModel(date=RUN_DATE),
                     CompileModel(date=RUN_DATE), BuildFeatures(date=RUN_DATE), ScoreForecast(date=RUN_DATE)):
            target = task.output()
            assert not target.path.exists() or target.exists(), f"{target.path} is incomplete after a kill"
    assert killed == STAGES, f"caught only {killed} mid-write"
    done = subprocess.run(luigi_cmd(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"rc={done.returncode}: " + done.stdout[-1500:] + done.stderr[-1500:]
    after = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")["content_hash"]
    assert after == expected
    assert not list(chain_env.data.rglob(".*.tmp-*"))  # the killed runs' temporaries were cleaned up


@pytest.mark.prebuilt_chain
def test_two_runs_started_at_once_give_one_correct_result(chain_env):
    expected, expected_file = reference_hash(chain_env)
    procs = [subprocess.Popen(luigi_cmd(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs[0][-2000:] + outputs[1][-2000:]
    manifest = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    assert manifest["content_hash"] == expected
    import pandas as pd
    import sqlalchemy as sa

    from pipeline.data import db
    with chain_env.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(db.forecasts)).scalar()
    assert n == manifest["rows"]
    assert storage.file_hash(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet") == expected_file
    assert len(pd.read_parquet(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet")) == n


def test_a_database_that_blinks_fails_cleanly_and_succeeds_on_retry(chain_env, tmp_path):
    db_file = Path(chain_env.url.removeprefix("sqlite:///"))
    hidden = db_file.with_suffix(".away")
    db_file.rename(hidden)  # the database is unreachable when the run starts...

    log = chain_env.data / "logs" / "pipeline.log"

    def come_back():  # ...and back once the first attempt has failed
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if log.exists() and "retry:" in log.read_text():
                break
            time.sleep(0.05)
        hidden.rename(db_file)

    cfg = Path(os.environ["LUIGI_CONFIG_PATH"])
    cfg.write_text(cfg.read_text().replace("attempts = 1", "attempts = 3\ndelay_seconds = 2"))
    back = threading.Thread(target=come_back)
    back.start()
    done = subprocess.run(luigi_cmd(), capture_output=True, text=True, timeout=600)
    back.join()
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-3000:]
    text = log.read_text()
    assert "does not exist" in text and "attempt 2 of 3" in text and "succeeded in a retry" in text, text[-3000:]
    assert "FAILED" not in text
    assert (out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet").exists()


@pytest.mark.parametrize("blocker", ["file"])
def test_unwritable_data_folder_fails_with_a_clear_error(chain_env, monkeypatch, tmp_path, blocker):
    bad = tmp_path / "not-a-folder"
    bad.write_text("x")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(bad / "data"))
    done = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline", "ExtractSnapshot", "--date",
                           RUN_DATE.isoformat(), "--local-scheduler"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "cannot write the output folder" in done.stdout + done.stderr
