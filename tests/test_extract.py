"""As-of semantics of the snapshot, and bad input stopped with a clear error and no output."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import luigi
import pytest
import sqlalchemy as sa

from pipeline.data.snapshot import SNAPSHOT_FILES
from pipeline.data import db
from pipeline.stages import extract, quality
from pipeline.data import storage
from pipeline.core.errors import DatabaseError, DataError
from tasks import CheckSnapshot
from tests.conftest import RUN_DATE, sales_frame


def snapshot(engine, date, tmp_path):
    out = tmp_path / f"snap-{date}"
    with storage.atomic_dir(out) as tmp:
        manifest = extract.extract_snapshot(engine, date, tmp)
    return manifest, pd.read_parquet(out / "sales.parquet"), out


def units_on(sales, store, item, date):
    row = sales[(sales.store_id == store) & (sales.item_id == item) & (sales.date == pd.Timestamp(date))]
    assert len(row) == 1
    return int(row["units"].iloc[0])


def test_snapshot_keeps_the_latest_row_recorded_by_the_end_of_the_day(small_db, tmp_path):
    url, engine = small_db
    d = dt.date(2016, 5, 10)
    original = 10 % 5  # see small_db: units = (day index + k) % 5
    db.bulk_insert(engine, db.sales, sales_frame([
        # corrected twice: on the same day after the original, and again two days later
        ("CA_1", "FOODS_1_001", d, 40, "2016-05-10 23:30:00"),
        ("CA_1", "FOODS_1_001", d, 41, "2016-05-12 09:00:00"),
        # recorded at the very last instant of 2016-05-11
        ("TX_1", "FOODS_1_001", d, 7, "2016-05-11 23:59:59.999999"),
    ]))
    _, s10, _ = snapshot(engine, d, tmp_path)
    _, s11, _ = snapshot(engine, d + dt.timedelta(days=1), tmp_path)
    _, s12, _ = snapshot(engine, d + dt.timedelta(days=2), tmp_path)
    assert units_on(s10, "CA_1", "FOODS_1_001", d) == 40
    assert units_on(s12, "CA_1", "FOODS_1_001", d) == 41
    assert units_on(s10, "TX_1", "FOODS_1_001", d) != 7 and units_on(s11, "TX_1", "FOODS_1_001", d) == 7
    # nothing dated after the run date, and every day up to it
    assert s10["date"].max() == pd.Timestamp(d) and s10["date"].min() == pd.Timestamp("2016-01-01")
    assert len(s10) == 4 * ((d - dt.date(2016, 1, 1)).days + 1)
    assert original != 40


def test_snapshot_is_deterministic_and_its_hash_tracks_content(small_db, tmp_path):
    _, engine = small_db
    m1, _, out1 = snapshot(engine, RUN_DATE, tmp_path / "a")
    m2, _, out2 = snapshot(engine, RUN_DATE, tmp_path / "b")
    assert m1["content_hash"] == m2["content_hash"]
    for name in SNAPSHOT_FILES:
        assert storage.file_hash(out1 / f"{name}.parquet") == storage.file_hash(out2 / f"{name}.parquet")
    db.bulk_insert(engine, db.sales, sales_frame([("CA_1", "FOODS_1_001", RUN_DATE, 99, "2016-05-22 23:50:00")]))
    m3, _, _ = snapshot(engine, RUN_DATE, tmp_path / "c")
    assert m3["content_hash"]["sales"] != m1["content_hash"]["sales"]
    assert m3["content_hash"]["calendar"] == m1["content_hash"]["calendar"]


def test_prices_are_as_of_the_run_date(small_db, tmp_path):
    _, engine = small_db
    _, _, out = snapshot(engine, dt.date(2016, 3, 1), tmp_path)
    prices = pd.read_parquet(out / "prices.parquet")
    cal = pd.read_parquet(out / "calendar.parquet")
    week = cal.loc[cal["date"] == pd.Timestamp("2016-03-01"), "wm_yr_wk"].iloc[0]
    assert prices["wm_yr_wk"].max() == week  # later weeks are recorded at their own start


def expect_error(engine, date, tmp_path, error, *phrases):
    out = tmp_path / "snap"
    with pytest.raises(error) as info:
        with storage.atomic_dir(out) as tmp:
            extract.extract_snapshot(engine, date, tmp)
    message = str(info.value)
    for phrase in phrases:
        assert phrase in message, message
    assert not out.exists() and not list(tmp_path.glob(".snap.tmp-*"))  # nothing half-written is left
    return message


def stopped_at_check_snapshot(out, date, check: str, *phrases) -> str:
    """The snapshot in ``out`` fails ``check`` of CheckSnapshot, whose error names the rows by ``phrases``; the
    documented override applies: a hard stop cannot be accepted, any other check can be for ``date``."""
    report = quality.run_checks(out, date)
    assert check in [c.name for c in report.failed], report.to_markdown()
    with pytest.raises(DataError) as info:
        report.raise_if_failed()
    message = str(info.value)
    for phrase in (check, *phrases):
        assert phrase in report.check(check).message and phrase in message, message
    if check in quality.HARD_STOPS:
        with pytest.raises(ValueError, match="hard stop"):
            quality.parse_accepted(f"{check}:{date}")
    else:
        accepted = quality.run_checks(out, date, accepted=[f"{check}:{date}"])
        assert accepted.check(check).accepted and check not in [c.name for c in accepted.failed]
    return message


def test_negative_units_arrive_exactly_and_are_stopped_by_check_snapshot(small_db, tmp_path):
    """Extraction takes what a snapshot can hold; whether a count may be negative is CheckSnapshot's call."""
    _, engine = small_db
    db.bulk_insert(engine, db.sales, sales_frame([("TX_1", "HOBBIES_1_001", "2016-05-20", -3, "2016-05-21 08:00:00")]))
    _, sales, out = snapshot(engine, RUN_DATE, tmp_path)
    assert units_on(sales, "TX_1", "HOBBIES_1_001", "2016-05-20") == -3
    stopped_at_check_snapshot(out, RUN_DATE, "negative_units", "HOBBIES_1_001", "TX_1", "2016-05-20", "-3")


def test_sales_dated_after_the_run_date_arrive_and_are_stopped_by_check_snapshot(small_db, tmp_path):
    _, engine = small_db
    db.bulk_insert(engine, db.sales, sales_frame([("CA_1", "FOODS_1_001", "2016-05-25", 4, "2016-05-22 08:00:00")]))
    _, sales, out = snapshot(engine, RUN_DATE, tmp_path)
    assert units_on(sales, "CA_1", "FOODS_1_001", "2016-05-25") == 4
    stopped_at_check_snapshot(out, RUN_DATE, "future_dates", "FOODS_1_001", "CA_1", "2016-05-25")


def test_the_chain_stops_at_check_snapshot_naming_the_row(chain_env):
    day = RUN_DATE - dt.timedelta(days=2)
    with chain_env.engine.connect() as conn:
        store, item = conn.execute(sa.select(db.sales.c.store_id, db.sales.c.item_id)
                                   .where(db.sales.c.date == day).limit(1)).one()
    db.bulk_insert(chain_env.engine, db.sales, sales_frame([(store, item, day, -3, f"{RUN_DATE} 08:00:00")]))
    assert chain_env.build([CheckSnapshot(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.FAILED
    [snap] = [p.parent for p in (chain_env.data / "snapshots").rglob("manifest.json") if RUN_DATE.isoformat() in str(p)]
    sales = pd.read_parquet(snap / "sales.parquet")
    assert units_on(sales, store, item, day) == -3  # extraction took it as it is
    [report] = (chain_env.data / "quality").rglob("failed/quality.json")
    failed = {c["name"]: c["message"] for c in storage.read_json(report)["checks"] if not c["passed"]}
    assert list(failed) == ["negative_units"], failed
    for phrase in (store, item, str(day), "-3"):
        assert phrase in failed["negative_units"], failed
    assert not (chain_env.data / "features").exists()


def add_prices(engine, rows):
    db.bulk_insert(engine, db.sell_prices, pd.DataFrame(
        rows, columns=["store_id", "item_id", "wm_yr_wk", "sell_price", "recorded_at"]).assign(
        recorded_at=lambda f: pd.to_datetime(f["recorded_at"])))


def test_a_negative_row_corrected_before_the_run_date_is_fine(small_db, tmp_path):
    _, engine = small_db
    db.bulk_insert(engine, db.sales, sales_frame([("TX_1", "HOBBIES_1_001", "2016-05-20", -3, "2016-05-21 08:00:00"),
                                                  ("TX_1", "HOBBIES_1_001", "2016-05-20", 3, "2016-05-21 09:00:00")]))
    _, sales, _ = snapshot(engine, RUN_DATE, tmp_path)
    assert units_on(sales, "TX_1", "HOBBIES_1_001", "2016-05-20") == 3


def test_duplicate_rows_are_refused_with_the_key(small_db, tmp_path):
    _, engine = small_db
    db.bulk_insert(engine, db.sales, sales_frame([("CA_1", "HOBBIES_1_001", "2016-04-02", 1, "2016-04-02 23:00:00")]))
    expect_error(engine, RUN_DATE, tmp_path, DataError, "duplicate", "HOBBIES_1_001", "CA_1", "2016-04-02")


def test_empty_sales_table(small_db, tmp_path):
    _, engine = small_db
    with engine.begin() as conn:
        conn.execute(sa.delete(db.sales))
    expect_error(engine, RUN_DATE, tmp_path, DataError, "sales table holds no rows")


def test_run_date_before_any_history(small_db, tmp_path):
    _, engine = small_db
    expect_error(engine, dt.date(2015, 6, 1), tmp_path, DataError, "before any history", "2016-01-01")


def test_run_date_after_the_last_recorded_day(small_db, tmp_path):
    _, engine = small_db
    expect_error(engine, dt.date(2016, 6, 1), tmp_path, DataError, "last recorded day", "2016-05-22", "2016-06-01")


def test_ids_missing_from_the_master_tables_arrive_and_are_stopped_by_check_snapshot(small_db, tmp_path):
    _, engine = small_db
    db.bulk_insert(engine, db.sales, sales_frame([("CA_1", "NOPE_1_001", "2016-05-20", 1, "2016-05-20 23:00:00"),
                                                  ("XX_9", "FOODS_1_001", "2016-05-21", 2, "2016-05-21 23:00:00")]))
    add_prices(engine, [("CA_1", "ZZZ_1_001", 11616, 1.5, "2016-05-21 09:00:00")])
    _, sales, out = snapshot(engine, RUN_DATE, tmp_path)
    assert units_on(sales, "CA_1", "NOPE_1_001", "2016-05-20") == 1 and units_on(sales, "XX_9", "FOODS_1_001",
                                                                                  "2016-05-21") == 2
    # appended after the master tables' ids, so the known ids keep their codes
    assert list(sales["item_id"].cat.categories) == ["FOODS_1_001", "HOBBIES_1_001", "NOPE_1_001", "ZZZ_1_001"]
    assert list(sales["store_id"].cat.categories) == ["CA_1", "TX_1", "XX_9"]
    prices = pd.read_parquet(out / "prices.parquet")
    assert prices.loc[prices["item_id"] == "ZZZ_1_001", "sell_price"].tolist() == [1.5]
    assert pd.read_parquet(out / "items.parquet")["item_id"].tolist() == ["FOODS_1_001", "HOBBIES_1_001"]
    stopped_at_check_snapshot(out, RUN_DATE, "unknown_ids", "NOPE_1_001", "XX_9", "ZZZ_1_001")


def test_a_null_id_stops_the_snapshot_naming_the_row(small_db, tmp_path):
    _, engine = small_db
    with engine.begin() as conn:  # a source made elsewhere, without the pipeline's NOT NULL
        conn.exec_driver_sql("CREATE TABLE sales_loose AS SELECT * FROM sales")
        conn.exec_driver_sql("DROP TABLE sales")
        conn.exec_driver_sql("ALTER TABLE sales_loose RENAME TO sales")
        conn.exec_driver_sql("INSERT INTO sales VALUES (NULL, 'FOODS_1_001', '2016-05-20', 1, "
                             "'2016-05-20 23:30:00.000000')")
    expect_error(engine, RUN_DATE, tmp_path, DataError, "NULL store_id", "FOODS_1_001", "2016-05-20")


def test_unreachable_database_names_the_url_without_password():
    with pytest.raises(DatabaseError) as info:
        db.engine_for("postgresql+psycopg2://someone:s3cret@127.0.0.1:1/nowhere")
    assert "cannot connect" in str(info.value) and "127.0.0.1:1/nowhere" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_missing_sqlite_file_is_not_created(tmp_path):
    path = tmp_path / "absent.sqlite"
    with pytest.raises(DatabaseError, match="does not exist"):
        db.engine_for(f"sqlite:///{path}")
    assert not path.exists()


def test_missing_tables_are_named(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE calendar (x int)"))
    with pytest.raises(DatabaseError, match="items, stores, sell_prices, sales"):
        db.check_schema(engine)


def test_reading_one_store_gives_the_rows_of_a_filtered_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.data.snapshot import read_snapshot, read_snapshot_store

    stores = np.repeat(["CA_1", "CA_2", "TX_1"], [5000, 3, 4000])
    frame = pd.DataFrame({"item_id": pd.Categorical(np.resize(["A", "B", "C"], len(stores))),
                          "store_id": pd.Categorical(stores), "units": np.arange(len(stores), dtype=np.int16)})
    # small row groups: one store spans several, and a group holds two stores
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "sales.parquet", row_group_size=1000)
    for store in ("CA_1", "CA_2", "TX_1", "WI_9"):
        got = read_snapshot_store(tmp_path, "sales", store)
        want = read_snapshot(tmp_path, "sales", filters=[("store_id", "==", store)]).reset_index(drop=True)
        assert got["units"].tolist() == want["units"].tolist() == frame.loc[frame.store_id == store, "units"].tolist()
        assert got["item_id"].astype(str).tolist() == want["item_id"].astype(str).tolist()
