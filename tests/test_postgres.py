"""The same pipeline against a real PostgreSQL server (skipped with a message when none is reachable)."""
from __future__ import annotations

import datetime as dt

import luigi
import pytest
import sqlalchemy as sa

from pipeline.data.snapshot import SNAPSHOT_FILES, read_snapshot
from pipeline.data import db
from pipeline.data import storage
from pipeline.tools import world
from tasks import DailyForecast, ExtractSnapshot
from tests.outputs import out
from tests.conftest import RUN_DATE, fresh_postgres

SECRET = "n0t-in-any-log"


@pytest.fixture(scope="module")
def pg_world():
    """A fresh PostgreSQL database holding the tiny world (seed 7, as the SQLite one); dropped afterwards."""
    # a password the server ignores (trust auth) but that must never appear in logs or outputs
    with fresh_postgres("pipeline_test", password=SECRET) as url:
        try:
            world.generate_world(url, scale="tiny", seed=7)
            yield url
        finally:
            sa.create_engine(url).dispose()


def test_snapshots_from_sqlite_and_postgres_are_identical(pg_world, tiny_world_file, tmp_path):
    from pipeline.stages import extract
    manifests = {}
    for name, url in (("sqlite", f"sqlite:///{tiny_world_file}"), ("postgres", pg_world)):
        with storage.atomic_dir(tmp_path / name) as tmp:
            manifests[name] = extract.extract_snapshot(db.engine_for(url), RUN_DATE, tmp)
    assert manifests["sqlite"]["content_hash"] == manifests["postgres"]["content_hash"]
    for table in SNAPSHOT_FILES:
        assert storage.file_hash(tmp_path / "sqlite" / f"{table}.parquet") == \
            storage.file_hash(tmp_path / "postgres" / f"{table}.parquet")


@pytest.mark.prebuilt_chain
def test_chain_on_postgres_gives_the_sqlite_forecast(pg_world, chain_env, monkeypatch):
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    on_sqlite = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    import shutil

    shutil.rmtree(chain_env.data)
    monkeypatch.setenv("PIPELINE_DATABASE_URL", pg_world)
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    on_postgres = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    assert on_postgres["content_hash"] == on_sqlite["content_hash"]
    with sa.create_engine(pg_world).connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(db.forecasts).where(db.forecasts.c.as_of == RUN_DATE)).scalar()
    assert n == on_postgres["rows"]
    # the credentials appear nowhere the pipeline writes
    for path in chain_env.data.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".log", ".csv", ".md", ".txt"):
            assert SECRET not in path.read_text(errors="ignore"), path


def test_unreachable_postgres_message_hides_the_password(chain_env, monkeypatch):
    monkeypatch.setenv("PIPELINE_DATABASE_URL", f"postgresql+psycopg2://someone:{SECRET}@127.0.0.1:1/nothing")
    result = chain_env.build([ExtractSnapshot(date=RUN_DATE)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.FAILED
    log = (chain_env.data / "logs" / "pipeline.log").read_text()
    assert "cannot connect to source database" in log and SECRET not in log


def test_one_series_reads_the_same_from_postgresql_as_from_sqlite(pg_world, tiny_world_file):
    import sqlalchemy as sa

    from pipeline.data.series_history import create_indexes, missing_indexes, read_calendar, read_series

    pg = sa.create_engine(pg_world)
    lite = sa.create_engine(f"sqlite:///{tiny_world_file}")
    try:
        assert create_indexes(pg) == ["ix_sales_series", "ix_sell_prices_item"] and missing_indexes(pg) == []
        date = dt.date(2016, 3, 27)  # a run date with corrections recorded after it
        with pg.connect() as a, lite.connect() as b:
            assert read_calendar(a) == read_calendar(b)
            for item, store in (("FOODS_3_002", "CA_3"), ("HOBBIES_1_001", "TX_3"), ("HOUSEHOLD_2_002", "WI_1")):
                assert read_series(a, item, store, date) == read_series(b, item, store, date)
    finally:
        pg.dispose()
        lite.dispose()
