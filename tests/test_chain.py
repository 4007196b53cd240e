"""The chain end to end on the tiny world: outputs, idempotency, time travel, backfill, errors."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys

import luigi
import pandas as pd
import pytest
import sqlalchemy as sa

import pipeline  # noqa: F401  (registers the tasks and the range tools)
from pipeline.data import db
from pipeline.data import storage
from tasks import DailyForecast, ExtractSnapshot, PromoteModel, ScoreForecast, config
from tests.outputs import out
from tests.conftest import RUN_DATE, sales_frame

N_SERIES = 140


def folders(env, date):
    d = date.isoformat()
    return {"snapshot": env.data / "snapshots" / d, "features": env.data / "features" / d,
            "forecast": env.data / "forecasts" / d}


def forecast_of(env, date) -> pd.DataFrame:
    return pd.read_parquet(out(env.data, "forecasts", date.isoformat()) / "forecast.parquet")


@pytest.mark.prebuilt_chain
def test_daily_forecast_end_to_end(chain_env):
    result = chain_env.build([DailyForecast(date=RUN_DATE)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    f = forecast_of(chain_env, RUN_DATE)
    assert list(f.columns) == ["as_of", "item_id", "store_id", "date", "horizon", "units"]
    assert len(f) == N_SERIES * 28 and f.groupby(["item_id", "store_id"]).ngroups == N_SERIES
    assert (f["as_of"] == pd.Timestamp(RUN_DATE)).all()
    assert sorted(f["horizon"].unique()) == list(range(1, 29))
    assert (f["date"] - f["as_of"]).dt.days.equals(f["horizon"].astype("int64"))
    assert (f["units"] >= 0).all() and f["units"].notna().all() and f["units"].sum() > 0
    sub = pd.read_csv(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "submission.csv")
    assert list(sub.columns) == ["id"] + [f"F{h}" for h in range(1, 29)] and len(sub) == N_SERIES
    assert sub["id"].str.endswith("_evaluation").all()
    with chain_env.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(db.forecasts)
                         .where(db.forecasts.c.as_of == RUN_DATE)).scalar()
    assert n == N_SERIES * 28
    meta = storage.read_json(out(chain_env.data, "models", RUN_DATE.isoformat()) / "metadata.json")
    for key in ("training_window", "features", "params", "metrics", "versions", "snapshot_hash", "code_commit"):
        assert key in meta
    snap = storage.read_json(out(chain_env.data, "snapshots", RUN_DATE.isoformat()) / "manifest.json")
    assert meta["snapshot_hash"] == snap["content_hash"]["all"]
    check = storage.read_json(out(chain_env.data, "compiled", RUN_DATE.isoformat()) / "check.json")
    assert check["rows_outside_tolerance"] == 0 and check["rows"] > 1000
    compiled = storage.read_json(out(chain_env.data, "compiled", RUN_DATE.isoformat()) / "compiled.json")
    assert sum(b["trees"] for b in compiled["blocks"]) == compiled["trees"] == meta["metrics"]["best_iteration"]

    # running again does nothing
    mtime = (out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet").stat().st_mtime_ns
    again = chain_env.build([DailyForecast(date=RUN_DATE)])
    assert again.status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    assert "1 complete ones were encountered" in again.summary_text and "ran successfully" not in again.summary_text
    assert (out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet").stat().st_mtime_ns == mtime

    # deleting the day's outputs (model included) and running again gives the same bytes
    first_hash = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")["content_hash"]
    first_bytes = storage.file_hash(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet")
    for stage in ("snapshots", "features", "models", "compiled", "forecasts"):
        shutil.rmtree(chain_env.data / stage / RUN_DATE.isoformat())
    rerun = chain_env.build([DailyForecast(date=RUN_DATE)])
    assert rerun.status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    manifest = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    assert manifest["content_hash"] == first_hash
    assert storage.file_hash(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet") == first_bytes
    with chain_env.engine.connect() as conn:  # the rerun replaced its rows, it did not add to them
        n = conn.execute(sa.select(sa.func.count()).select_from(db.forecasts)).scalar()
    assert n == N_SERIES * 28


def test_a_correction_recorded_later_changes_later_runs_only(chain_env):
    day1, day2 = RUN_DATE - dt.timedelta(days=1), RUN_DATE
    assert chain_env.build([DailyForecast(date=day1)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    before = forecast_of(chain_env, day1)
    snap_before = storage.read_json(out(chain_env.data, "snapshots", day1.isoformat()) / "manifest.json")
    # a big correction of a day inside the lag windows, recorded after day1 was run (on day2)
    target = dt.date(2016, 4, 25)
    with chain_env.engine.connect() as conn:
        store, item = conn.execute(sa.select(db.sales.c.store_id, db.sales.c.item_id).limit(1)).one()
    db.bulk_insert(chain_env.engine, db.sales, sales_frame([(store, item, target, 500, "2016-05-22 10:00:00")]))

    for stage in ("snapshots", "features", "forecasts"):
        shutil.rmtree(chain_env.data / stage / day1.isoformat())
    assert chain_env.build([DailyForecast(date=day1)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    pd.testing.assert_frame_equal(forecast_of(chain_env, day1), before)
    assert storage.read_json(out(chain_env.data, "snapshots", day1.isoformat()) / "manifest.json")["content_hash"] \
        == snap_before["content_hash"]

    # 500 units for a series that sells 0-2 a day is flagged as a late correction far outside its range;
    # the operator who knows it is right accepts it for that run date
    assert chain_env.build([DailyForecast(date=day2)]).status == luigi.execution_summary.LuigiStatusCode.FAILED
    [failed] = (chain_env.data / "quality" / day2.isoformat()).glob("*/failed/quality.md")
    assert "history_change" in failed.read_text()
    cfg = luigi.configuration.get_config()
    cfg.set("quality", "accept", f"history_change:{day2}")
    try:
        assert chain_env.build([DailyForecast(date=day2)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    finally:
        cfg.set("quality", "accept", "")
    snap2 = pd.read_parquet(out(chain_env.data, "snapshots", day2.isoformat()) / "sales.parquet")
    row = snap2[(snap2.store_id == store) & (snap2.item_id == item) & (snap2.date == pd.Timestamp(target))]
    assert row["units"].tolist() == [500]
    after = forecast_of(chain_env, day2)
    series = after[(after.store_id == store) & (after.item_id == item)]
    # 2016-04-25 is lag 28 of the first horizon of day2: the correction must move that series' forecast
    features = pd.read_parquet(out(chain_env.data, "features", day2.isoformat(), "score") / f"part-{store}.parquet")
    assert features[(features.item_id == item) & (features.date == pd.Timestamp(target) + pd.Timedelta(days=28))]["lag_28"].tolist() == [500]
    assert series["units"].iloc[0] > 0


def test_model_is_chosen_by_a_rule_of_the_run_date(chain_env):
    assert config.training().schedule().training_date(RUN_DATE - dt.timedelta(days=3)) == RUN_DATE - dt.timedelta(days=7)
    task = ScoreForecast(date=RUN_DATE - dt.timedelta(days=3))
    assert task.requires()["promotion"] == PromoteModel(RUN_DATE - dt.timedelta(days=7))
    assert ScoreForecast(date=RUN_DATE).requires()["promotion"] == PromoteModel(RUN_DATE)


def test_backfill_with_luigis_range_tool(chain_env, tmp_path):
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline", "RangeDailyBase", "--of", "DailyForecast",
           "--start", "2016-05-20", "--stop", "2016-05-23", "--local-scheduler", "--log-level", "WARNING"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for d in ("2016-05-20", "2016-05-21", "2016-05-22"):
        assert (out(chain_env.data, "forecasts", d) / "forecast.parquet").exists()
        assert (out(chain_env.data, "snapshots", d) / "manifest.json").exists()
    assert not (chain_env.data / "forecasts" / "2016-05-23").exists()  # stop is exclusive
    # 2016-05-20 and -21 use the model of 2016-05-15, 2016-05-22 its own
    assert sorted(p.name for p in (chain_env.data / "models").iterdir()) == ["2016-05-15", "2016-05-22"]


def test_a_date_after_the_last_recorded_day_fails_clearly_and_writes_nothing(chain_env):
    late = dt.date(2016, 7, 1)
    result = chain_env.build([DailyForecast(date=late)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.FAILED
    assert not (chain_env.data / "snapshots" / late.isoformat()).exists()
    assert not (chain_env.data / "forecasts").exists()
    # the message a user sees on the command line
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline", "ExtractSnapshot", "--date", late.isoformat(),
           "--local-scheduler"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "last recorded day" in done.stdout + done.stderr and "2016-06-19" in done.stdout + done.stderr
    assert not list(chain_env.data.glob("snapshots/.*"))  # no temporary folder left behind


def test_an_unreachable_database_fails_the_snapshot_and_writes_nothing(chain_env, monkeypatch):
    monkeypatch.setenv("PIPELINE_DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    result = chain_env.build([ExtractSnapshot(date=RUN_DATE)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.FAILED
    assert not (chain_env.data / "snapshots" / RUN_DATE.isoformat()).exists()


def test_luigi_command_works_from_any_directory(chain_env, tmp_path):
    done = subprocess.run([str(__import__("pathlib").Path(sys.executable).parent / "luigi"), "--module", "pipeline",
                           "ExtractSnapshot", "--date", RUN_DATE.isoformat(), "--local-scheduler"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out(chain_env.data, "snapshots", RUN_DATE.isoformat()) / "manifest.json").exists()


@pytest.mark.prebuilt_chain
@pytest.mark.parametrize("missing", ["forecast.parquet", "manifest.json"])
def test_a_task_with_a_missing_output_file_is_not_complete(chain_env, missing):
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    folder = out(chain_env.data, "forecasts", RUN_DATE.isoformat())
    (folder / missing).unlink()
    assert not ScoreForecast(date=RUN_DATE).complete()
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    assert (folder / missing).exists()


@pytest.mark.prebuilt_chain
def test_a_compiled_model_missing_a_block_is_not_complete_and_is_rebuilt(chain_env):
    from tasks import CompileModel

    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    folder = out(chain_env.data, "compiled", RUN_DATE.isoformat())
    blocks = storage.read_json(folder / "compiled.json")["blocks"]
    assert len(blocks) >= 2  # the chain's small model in blocks of 8 trees (conftest): the summed path serves
    (folder / blocks[-1]["library"]).unlink()
    assert not CompileModel(date=RUN_DATE).complete()
    before = forecast_of(chain_env, RUN_DATE)
    shutil.rmtree(chain_env.data / "forecasts" / RUN_DATE.isoformat())
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    assert (folder / blocks[-1]["library"]).exists()
    pd.testing.assert_frame_equal(forecast_of(chain_env, RUN_DATE), before)


@pytest.mark.prebuilt_chain
def test_dask_local_cluster_gives_the_same_forecast_as_in_process(chain_env, monkeypatch):
    from pipeline.stages import parallel
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    in_process = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    for stage in ("features", "forecasts"):
        shutil.rmtree(chain_env.data / stage / RUN_DATE.isoformat())
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")  # the default: a LocalCluster of 2 worker processes
    try:
        assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
        client = parallel.get_client("", 2, 1)
        assert len(client.scheduler_info()["workers"]) == 2
    finally:
        parallel.close_clients()
    on_cluster = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    assert on_cluster["content_hash"] == in_process["content_hash"]


def test_bad_data_stops_the_chain_and_an_override_accepts_it(chain_env):
    with chain_env.engine.begin() as conn:  # store TX_2 sent nothing for the run date
        conn.execute(sa.delete(db.sales).where((db.sales.c.store_id == "TX_2") & (db.sales.c.date == RUN_DATE)))
    result = chain_env.build([DailyForecast(date=RUN_DATE)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.FAILED
    [failed_report] = (chain_env.data / "quality" / RUN_DATE.isoformat()).glob("*/failed/quality.json")
    report = storage.read_json(failed_report)
    failed = [c for c in report["checks"] if not c["passed"]]
    assert "vanished_series" in [c["name"] for c in failed]
    assert any("TX_2" in c["message"] for c in failed)
    assert not (chain_env.data / "features" / RUN_DATE.isoformat()).exists()
    assert not (chain_env.data / "forecasts").exists()
    with chain_env.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.forecasts)).scalar() == 0

    cfg = luigi.configuration.get_config()
    cfg.set("quality", "accept", ", ".join(f"{c['name']}:{RUN_DATE}" for c in failed))
    try:
        assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    finally:
        cfg.set("quality", "accept", "")
    accepted = storage.read_json(out(chain_env.data, "quality", RUN_DATE.isoformat()) / "quality.json")
    assert [c["name"] for c in accepted["checks"] if c["accepted"]] == [c["name"] for c in failed]
    assert not (out(chain_env.data, "quality", RUN_DATE.isoformat()) / "failed").exists()


def test_the_readme_cron_line_catches_up_missed_days(chain_env):
    """The README's crontab command, with "now" pinned to 2016-05-23 02:30 UTC: the last 3 days are filled."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = next(l for l in readme.splitlines() if l.startswith("30 2 * * *"))
    args = re.search(r"\.venv/bin/luigi (.*?) >>", line).group(1).split()
    args[args.index("--days-back") + 1] = "4"  # the README's window is 7 days; 3 keep the test short
    now = int(dt.datetime(2016, 5, 23, 2, 30, tzinfo=dt.timezone.utc).timestamp())
    done = subprocess.run([sys.executable, "-m", "luigi", *args, "--now", str(now), "--local-scheduler"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    made = sorted(p.name for p in (chain_env.data / "forecasts").iterdir())
    assert made == ["2016-05-20", "2016-05-21", "2016-05-22"]


def test_backfill_command_shows_progress(chain_env):
    done = subprocess.run([sys.executable, "-m", "tasks.backfill", "--start", "2016-05-21", "--stop", "2016-05-23",
                           "--local-scheduler"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "backfill 2016-05-21..2016-05-23 [" in done.stderr and "100.0%" in done.stderr
    assert sorted(p.name for p in (chain_env.data / "forecasts").iterdir()) == ["2016-05-21", "2016-05-22"]
