"""The snapshot of D built from the snapshot of D-1 plus the rows recorded on D is the fresh snapshot of D,
byte for byte; and the fast fresh read gives what the former pandas/SQLAlchemy reader gave."""
from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.data.snapshot import SNAPSHOT_FILES
from pipeline.core.latest import cutoff
from pipeline.data import db
from pipeline.data import source, source_state
from pipeline.stages import extract, quality
from pipeline.data import storage
from pipeline.core.errors import DataError
from tests.conftest import RUN_DATE, sales_frame

ONE_DAY = dt.timedelta(days=1)


# ----------------------------------------------------------------------------------------------
# The former implementation (pd.read_sql in chunks, pandas sort_values), kept as the reference
# ----------------------------------------------------------------------------------------------


def _ref_codes(values, vocab, table, column, chunk):
    codes = vocab.get_indexer(values)
    if (codes < 0).any():
        bad = chunk[codes < 0].iloc[0]
        raise DataError(
            f"{table} row refers to {column}={bad[column]!r}, which is not in the "
            f"{'items' if column == 'item_id' else 'stores'} table (row: {bad.to_dict()})"
        )
    return codes


def _ref_read_versioned(engine, table, key, value, until, items, stores):
    cols = [table.c[c] for c in (*key, value, "recorded_at")]
    query = sa.select(*cols).where(table.c.recorded_at < until)
    parts = []
    with engine.connect().execution_options(stream_results=True) as conn:
        for chunk in pd.read_sql(query, conn, chunksize=source.CHUNK_ROWS):
            part = pd.DataFrame({
                "item": _ref_codes(chunk["item_id"], items, table.name, "item_id", chunk).astype(np.int16),
                "store": _ref_codes(chunk["store_id"], stores, table.name, "store_id", chunk).astype(np.int8),
            })
            for col in key:
                if col in ("item_id", "store_id"):
                    continue
                part[col] = pd.to_datetime(chunk[col]) if col == "date" else chunk[col].astype(np.int32)
            part[value] = chunk[value].to_numpy()
            part["recorded_at"] = pd.to_datetime(chunk["recorded_at"])
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["item", "store", *[k for k in key if k not in ("item_id", "store_id")], value,
                                     "recorded_at"])
    return pd.concat(parts, ignore_index=True)


def _ref_latest_per_key(rows, key, table, describe):
    rows = rows.sort_values([*key, "recorded_at"], kind="stable", ignore_index=True)
    same_key = (rows[key].shift() == rows[key]).all(axis=1)
    tie = same_key & (rows["recorded_at"].shift() == rows["recorded_at"])
    if tie.any():
        first = rows[tie].iloc[0]
        raise DataError(
            f"{table}: {int(tie.sum())} duplicate row(s): two rows for the same key recorded at the same "
            f"instant, so neither is the correction of the other; first: {describe(first)}"
        )
    last = ~(rows[key].shift(-1) == rows[key]).all(axis=1)
    return rows[last].reset_index(drop=True)


def _ref_check_sales(sales, date, describe):
    run_day = pd.Timestamp(date)
    last = sales["date"].max()
    if last < run_day:
        raise DataError(f"no sales are recorded for the run date {date}: the last recorded day as of then is "
                        f"{last.date()}; a run date after the last recorded day cannot be forecast from")


def _reference_snapshot(engine, date, out_dir):
    db.check_schema(engine)
    calendar, items, stores = source.read_master(engine)
    if items.empty or stores.empty:
        raise DataError(f"the items table holds {len(items)} rows and stores {len(stores)}: nothing to forecast")
    item_ix, store_ix = pd.Index(items["item_id"]), pd.Index(stores["store_id"])
    until = cutoff(date)

    def describe(row):
        return (f"item_id={item_ix[row['item']]} store_id={store_ix[row['store']]} "
                + " ".join(f"{k}={row[k]}" for k in row.index if k not in ("item", "store")))

    sales = _ref_read_versioned(engine, db.sales, ["item_id", "store_id", "date"], "units", until, item_ix, store_ix)
    if sales.empty:
        with engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(db.sales.c.recorded_at))).scalar()
        if first is None:
            raise DataError("the sales table holds no rows: there is no history to forecast from")
        raise DataError(f"run date {date} is before any history: the first sales row was recorded at {first}")
    source_rows = {"sales": len(sales)}
    sales = _ref_latest_per_key(sales, ["store", "item", "date"], "sales", describe)
    _ref_check_sales(sales, date, describe)
    prices = _ref_read_versioned(engine, db.sell_prices, ["item_id", "store_id", "wm_yr_wk"], "sell_price", until,
                                 item_ix, store_ix)
    source_rows["sell_prices"] = len(prices)
    prices = _ref_latest_per_key(prices, ["store", "item", "wm_yr_wk"], "sell_prices", describe)
    frames = {
        "calendar": calendar, "items": items, "stores": stores,
        "sales": pd.DataFrame({
            "item_id": pd.Categorical.from_codes(sales["item"], categories=item_ix),
            "store_id": pd.Categorical.from_codes(sales["store"], categories=store_ix),
            "date": sales["date"].astype("datetime64[ns]"),
            "units": sales["units"].astype(np.int32),
        }),
        "prices": pd.DataFrame({
            "item_id": pd.Categorical.from_codes(prices["item"], categories=item_ix),
            "store_id": pd.Categorical.from_codes(prices["store"], categories=store_ix),
            "wm_yr_wk": prices["wm_yr_wk"].astype(np.int32),
            "sell_price": prices["sell_price"].astype(np.float64),
        }),
    }
    manifest = {
        "date": date.isoformat(),
        "recorded_before": until.isoformat(),
        "rows": {name: len(frame) for name, frame in frames.items()},
        "max_recorded_at": {
            "sales": sales["recorded_at"].max().isoformat(),
            "sell_prices": prices["recorded_at"].max().isoformat() if len(prices) else None,
        },
        "source_rows": source_rows,
        "source_max_rowid": {t.name: source_state.max_rowid(engine, t) for t in (db.sales, db.sell_prices)},
        "series": int(sales.groupby(["store", "item"]).ngroups),
        "first_sales_date": sales["date"].min().date().isoformat(),
        "content_hash": {name: storage.frame_hash(frame) for name, frame in frames.items()},
    }
    manifest["content_hash"]["all"] = storage.hashlib.sha256(
        "".join(manifest["content_hash"][n] for n in SNAPSHOT_FILES).encode()).hexdigest()
    for name, frame in frames.items():
        storage.write_parquet(frame, out_dir / f"{name}.parquet")
    storage.write_json(out_dir / "manifest.json", manifest)
    return manifest


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def build(engine, date, folder, previous=None, how=None):
    """The snapshot of ``date`` in ``folder`` (written atomically) by ``how`` or by extract_snapshot."""
    with storage.atomic_dir(folder) as tmp:
        if how is not None:
            return how(engine, date, tmp)
        return extract.extract_snapshot(engine, date, tmp, previous_dir=previous)


def file_hashes(folder):
    return {name: storage.file_hash(folder / f"{name}.parquet") for name in SNAPSHOT_FILES}


def assert_same_snapshot(a, b, provenance=("built_from",)):
    """Two snapshot folders hold the same bytes and their manifests agree on everything but how they were built."""
    assert file_hashes(a) == file_hashes(b)
    ma, mb = storage.read_json(a / "manifest.json"), storage.read_json(b / "manifest.json")
    for key in provenance:
        ma.pop(key, None), mb.pop(key, None)
    assert ma == mb


@pytest.fixture
def tiny_db(tmp_path, tiny_world_file):
    path = tmp_path / "tiny.sqlite"
    shutil.copy(tiny_world_file, path)
    engine = sa.create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def chain(engine, dates, root):
    """Snapshots of consecutive ``dates``: the first fresh, each next from the one before; and each fresh too."""
    previous = None
    for date in dates:
        inc = root / "inc" / date.isoformat()
        m_inc = build(engine, date, inc, previous=previous)
        assert m_inc["built_from"] == ("fresh" if previous is None else "previous")
        fresh = root / "fresh" / date.isoformat()
        m_fresh = build(engine, date, fresh)
        assert m_fresh["built_from"] == "fresh"
        assert m_inc["content_hash"] == m_fresh["content_hash"]
        assert_same_snapshot(inc, fresh)
        previous = inc
    return previous


def add_prices(engine, rows):
    db.bulk_insert(engine, db.sell_prices, pd.DataFrame(
        rows, columns=["store_id", "item_id", "wm_yr_wk", "sell_price", "recorded_at"]).assign(
        recorded_at=lambda f: pd.to_datetime(f["recorded_at"])))


# ----------------------------------------------------------------------------------------------
# The fast fresh read = the former reader
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("date", [dt.date(2014, 6, 1), dt.date(2015, 2, 28), RUN_DATE, dt.date(2016, 6, 19)])
def test_fresh_snapshot_equals_the_former_implementation_on_the_tiny_world(tiny_db, tmp_path, date):
    m_new = build(tiny_db, date, tmp_path / "new")
    m_old = build(tiny_db, date, tmp_path / "old", how=_reference_snapshot)
    assert m_new.pop("built_from") == "fresh"
    assert m_new == m_old
    assert_same_snapshot(tmp_path / "new", tmp_path / "old")


def test_the_sqlalchemy_reader_gives_the_adbc_result(tiny_db, tmp_path, monkeypatch, caplog):
    with caplog.at_level("DEBUG", logger="pipeline"):
        build(tiny_db, RUN_DATE, tmp_path / "adbc")
    fallback = [r.getMessage() for r in caplog.records if "SQLAlchemy" in r.getMessage()]
    try:
        import adbc_driver_sqlite  # noqa: F401
    except ImportError:
        assert fallback  # without the driver, the portable reader
    else:
        assert not fallback, fallback

    def no_adbc(engine):
        raise source.NoAdbc("disabled by the test")

    monkeypatch.setattr(source, "adbc_connect", no_adbc)
    build(tiny_db, RUN_DATE, tmp_path / "sqlalchemy")
    assert_same_snapshot(tmp_path / "adbc", tmp_path / "sqlalchemy")


def test_fresh_with_corrections_and_boundaries_equals_the_former_implementation(small_db, tmp_path):
    _, engine = small_db
    d = dt.date(2016, 5, 10)
    db.bulk_insert(engine, db.sales, sales_frame([
        ("CA_1", "FOODS_1_001", d, 40, "2016-05-10 23:30:00"),
        ("CA_1", "FOODS_1_001", d, 41, "2016-05-12 09:00:00"),
        ("TX_1", "FOODS_1_001", d, 7, "2016-05-11 23:59:59.999999"),
        ("TX_1", "HOBBIES_1_001", d, 8, "2016-05-11 00:00:00"),
    ]))
    for k, date in enumerate([d, d + ONE_DAY, d + 2 * ONE_DAY]):
        m_new = build(engine, date, tmp_path / f"new{k}")
        m_old = build(engine, date, tmp_path / f"old{k}", how=_reference_snapshot)
        m_new.pop("built_from")
        assert m_new == m_old
        assert_same_snapshot(tmp_path / f"new{k}", tmp_path / f"old{k}")


# ----------------------------------------------------------------------------------------------
# Incremental = fresh
# ----------------------------------------------------------------------------------------------


def test_incremental_equals_fresh_over_consecutive_days_of_the_tiny_world(tiny_db, tmp_path):
    # the tiny world's own late corrections (recorded 1-5 days after their day) are among these days' rows
    with tiny_db.connect() as conn:
        late = conn.execute(sa.text(
            "SELECT count(*) FROM sales WHERE recorded_at >= '2016-05-15' AND recorded_at < '2016-05-24' "
            "AND substr(recorded_at, 1, 10) > date")).scalar()
    assert late > 0
    chain(tiny_db, [RUN_DATE - 7 * ONE_DAY + k * ONE_DAY for k in range(9)], tmp_path)


def test_incremental_applies_corrections_of_older_days_new_keys_and_prices(tiny_db, tmp_path):
    d0 = RUN_DATE - 3 * ONE_DAY
    db.bulk_insert(tiny_db, db.sales, sales_frame([
        # corrections recorded on d0+1 of days well inside the previous snapshot, one corrected twice that day
        ("CA_1", "FOODS_1_001", "2015-01-10", 17, f"{d0 + ONE_DAY} 00:00:00"),  # the first instant of the day
        ("CA_1", "FOODS_1_001", "2015-01-10", 18, f"{d0 + ONE_DAY} 10:00:00"),
        ("WI_3", "HOUSEHOLD_2_002", "2014-06-01", 3, f"{d0 + ONE_DAY} 23:59:59.999999"),  # the last instant
        ("TX_2", "HOBBIES_1_001", str(d0 - 30 * ONE_DAY), 0, f"{d0 + ONE_DAY} 12:00:00"),
        # a day before the world's first day: a new key, inserted before the series' first row
        ("CA_2", "FOODS_2_001", "2014-05-20", 2, f"{d0 + ONE_DAY} 12:00:00"),
        # recorded on d0+2: a correction of a correction recorded the day before
        ("CA_1", "FOODS_1_001", "2015-01-10", 19, f"{d0 + 2 * ONE_DAY} 08:00:00"),
        # recorded at the first instant after d0+2: not in its snapshot, in the next
        ("TX_1", "FOODS_3_002", str(d0), 9, f"{d0 + 3 * ONE_DAY} 00:00:00"),
    ]))
    add_prices(tiny_db, [
        ("CA_1", "FOODS_1_001", 11501, 9.99, f"{d0 + ONE_DAY} 09:00:00"),  # a price correction
        ("WI_1", "HOBBIES_2_001", 11101, 1.25, f"{d0 + 2 * ONE_DAY} 09:00:00"),  # a week before any price: new key
    ])
    last = chain(tiny_db, [d0 + k * ONE_DAY for k in range(5)], tmp_path)
    sales = pd.read_parquet(tmp_path / "inc" / (d0 + 2 * ONE_DAY).isoformat() / "sales.parquet")
    row = sales[(sales.store_id == "CA_1") & (sales.item_id == "FOODS_1_001") & (sales.date == "2015-01-10")]
    assert row["units"].tolist() == [19]
    assert storage.read_json(last / "manifest.json")["built_from"] == "previous"


def test_incremental_equals_fresh_on_the_small_database(small_db, tmp_path):
    _, engine = small_db
    d = dt.date(2016, 5, 10)
    db.bulk_insert(engine, db.sales, sales_frame([
        ("CA_1", "FOODS_1_001", d, 40, "2016-05-10 23:30:00"),
        ("CA_1", "FOODS_1_001", d, 41, "2016-05-12 09:00:00"),
        ("TX_1", "FOODS_1_001", d, 7, "2016-05-11 23:59:59.999999"),
        ("TX_1", "HOBBIES_1_001", "2016-01-01", 4, "2016-05-12 00:00:00"),
        ("CA_1", "HOBBIES_1_001", "2015-12-31", 1, "2016-05-11 06:00:00"),  # before the first day: a new key
    ]))
    chain(engine, [d - ONE_DAY + k * ONE_DAY for k in range(5)], tmp_path)


def test_a_previous_folder_of_another_date_or_database_is_ignored(small_db, tmp_path):
    _, engine = small_db
    d = dt.date(2016, 5, 10)
    build(engine, d - 2 * ONE_DAY, tmp_path / "two-days-before")
    m = build(engine, d, tmp_path / "a", previous=tmp_path / "two-days-before")
    assert m["built_from"] == "fresh"
    m = build(engine, d, tmp_path / "b", previous=tmp_path / "absent")
    assert m["built_from"] == "fresh"
    assert_same_snapshot(tmp_path / "a", tmp_path / "b")
    # the snapshot of d-1, but the database has since got a row recorded before its cutoff: not its base
    build(engine, d - ONE_DAY, tmp_path / "prev")
    db.bulk_insert(engine, db.sales, sales_frame([("TX_1", "FOODS_1_001", "2016-05-02", 3, "2016-05-09 23:30:00")]))
    m = build(engine, d, tmp_path / "c", previous=tmp_path / "prev")
    assert m["built_from"] == "fresh"
    build(engine, d - ONE_DAY, tmp_path / "prev2")
    m = build(engine, d, tmp_path / "d", previous=tmp_path / "prev2")
    assert m["built_from"] == "previous"
    assert_same_snapshot(tmp_path / "c", tmp_path / "d")


def test_a_new_item_in_the_master_table_keeps_incremental_equal_to_fresh(small_db, tmp_path):
    _, engine = small_db
    d = dt.date(2016, 5, 10)
    build(engine, d - ONE_DAY, tmp_path / "prev")
    # an item sorting between the existing ones appears, with its first sales on d: every code after it shifts
    db.bulk_insert(engine, db.items, pd.DataFrame({"item_id": ["FOODS_2_001"], "dept_id": ["FOODS_2"],
                                                   "cat_id": ["FOODS"]}))
    db.bulk_insert(engine, db.sales, sales_frame([("TX_1", "FOODS_2_001", d, 5, f"{d} 23:00:00")]))
    m = build(engine, d, tmp_path / "inc", previous=tmp_path / "prev")
    assert m["built_from"] == "previous"
    build(engine, d, tmp_path / "fresh")
    assert_same_snapshot(tmp_path / "inc", tmp_path / "fresh")


def test_the_first_prices_arriving_on_a_day_are_applied_to_a_snapshot_without_prices(small_db, tmp_path):
    _, engine = small_db
    d = dt.date(2016, 5, 10)
    with engine.begin() as conn:
        conn.execute(sa.delete(db.sell_prices))
    add_prices(engine, [("TX_1", "HOBBIES_1_001", 11615, 3.5, f"{d} 10:00:00"),
                        ("CA_1", "FOODS_1_001", 11615, 1.5, f"{d} 11:00:00"),
                        ("CA_1", "FOODS_1_001", 11614, 1.25, f"{d + ONE_DAY} 11:00:00")])
    previous = chain(engine, [d - ONE_DAY, d, d + ONE_DAY], tmp_path)
    assert storage.read_json(previous / "manifest.json")["rows"]["prices"] == 3
    assert storage.read_json(tmp_path / "inc" / (d - ONE_DAY).isoformat() / "manifest.json")["rows"]["prices"] == 0


# ----------------------------------------------------------------------------------------------
# Errors in the rows recorded on D: the fresh messages, nothing written
# ----------------------------------------------------------------------------------------------


def error_of(engine, date, folder, previous=None, how=extract.extract_snapshot):
    with pytest.raises(DataError) as info:
        build(engine, date, folder, previous=previous, how=how)
    assert not folder.exists() and not list(folder.parent.glob(f".{folder.name}.tmp-*"))
    return str(info.value)


def add_rows_of_the_day(engine, d, case):
    rec = f"{d} 08:00:00"
    sales = {
        "negative": [("TX_1", "HOBBIES_1_001", "2016-05-20", -3, rec), ("CA_1", "FOODS_1_001", "2016-05-02", -1, rec)],
        "duplicate": [("CA_1", "HOBBIES_1_001", "2016-04-02", 1, rec), ("CA_1", "HOBBIES_1_001", "2016-04-02", 2, rec)],
        "unknown item": [("CA_1", "NOPE_1_001", "2016-05-20", 1, rec)],
        "unknown store": [("XX_9", "FOODS_1_001", "2016-05-20", 1, rec)],
        "future": [("CA_1", "FOODS_1_001", str(d + 3 * ONE_DAY), 1, rec)],
    }.get(case)
    if sales:
        db.bulk_insert(engine, db.sales, sales_frame(sales))
    prices = {
        "price": [("TX_1", "FOODS_1_001", 11616, 0.0, rec), ("CA_1", "FOODS_1_001", 11617, -1.5, rec)],
        "duplicate price": [("TX_1", "FOODS_1_001", 11616, 2.0, rec), ("TX_1", "FOODS_1_001", 11616, 2.5, rec)],
        "price above the bound": [("TX_1", "FOODS_1_001", 11616, 2e6, rec)],
        "unknown ids in prices": [("ZZ_9", "NOPE_1_001", 11616, 2.0, rec), ("CA_1", "AAA_1_001", 11616, 2.0, rec)],
    }.get(case)
    if prices:
        add_prices(engine, prices)


@pytest.mark.parametrize("case", ["duplicate", "duplicate price", "after the last day"])
def test_errors_in_the_rows_of_the_day_are_the_fresh_errors(small_db, tmp_path, case):
    _, engine = small_db
    d = RUN_DATE if case != "after the last day" else RUN_DATE + ONE_DAY
    build(engine, d - ONE_DAY, tmp_path / "prev")
    add_rows_of_the_day(engine, d, case)
    incremental = error_of(engine, d, tmp_path / "inc", previous=tmp_path / "prev")
    fresh = error_of(engine, d, tmp_path / "fresh")
    assert incremental == fresh
    if case in ("duplicate", "duplicate price"):  # the former implementation had no bound, nor a message of its own
        assert fresh == error_of(engine, d, tmp_path / "former", how=_reference_snapshot)
    expected = {"duplicate": "duplicate row(s)", "duplicate price": "sell_prices: 1 duplicate",
                "after the last day": "last recorded day"}[case]
    assert expected in incremental, incremental


@pytest.mark.parametrize("case, check", [
    ("negative", "negative_units"), ("future", "future_dates"), ("price", "price_not_positive"),
    ("unknown item", "unknown_ids"), ("unknown store", "unknown_ids"), ("unknown ids in prices", "unknown_ids"),
    ("price above the bound", "price_above_max"),
])
def test_implausible_rows_of_the_day_arrive_as_in_the_fresh_snapshot_and_stop_at_check_snapshot(
        small_db, tmp_path, case, check):
    """Extraction takes what a snapshot can hold; the incremental snapshot holds it as the fresh one does."""
    _, engine = small_db
    build(engine, RUN_DATE - ONE_DAY, tmp_path / "prev")
    add_rows_of_the_day(engine, RUN_DATE, case)
    m = build(engine, RUN_DATE, tmp_path / "inc", previous=tmp_path / "prev")
    assert m["built_from"] == "previous"
    build(engine, RUN_DATE, tmp_path / "fresh")
    assert_same_snapshot(tmp_path / "inc", tmp_path / "fresh")
    if not case.startswith("unknown"):  # the former implementation refused unknown ids as it read them
        build(engine, RUN_DATE, tmp_path / "former", how=_reference_snapshot)
        assert_same_snapshot(tmp_path / "inc", tmp_path / "former")
    report = quality.run_checks(tmp_path / "inc", RUN_DATE)
    assert check in [c.name for c in report.failed], report.to_markdown()
    # and the next day, from this snapshot: the same as fresh again
    nxt = RUN_DATE + ONE_DAY
    db.bulk_insert(engine, db.sales, sales_frame([("CA_1", "FOODS_1_001", str(nxt), 2, f"{nxt} 09:00:00")]))
    build(engine, nxt, tmp_path / "next", previous=tmp_path / "inc")
    build(engine, nxt, tmp_path / "next-fresh")
    assert_same_snapshot(tmp_path / "next", tmp_path / "next-fresh")


def test_a_negative_row_corrected_the_same_day_is_fine(small_db, tmp_path):
    _, engine = small_db
    build(engine, RUN_DATE - ONE_DAY, tmp_path / "prev")
    db.bulk_insert(engine, db.sales, sales_frame([("TX_1", "HOBBIES_1_001", "2016-05-20", -3, "2016-05-22 08:00:00"),
                                                  ("TX_1", "HOBBIES_1_001", "2016-05-20", 3, "2016-05-22 09:00:00")]))
    m = build(engine, RUN_DATE, tmp_path / "inc", previous=tmp_path / "prev")
    assert m["built_from"] == "previous"
    build(engine, RUN_DATE, tmp_path / "fresh")
    assert_same_snapshot(tmp_path / "inc", tmp_path / "fresh")


# ----------------------------------------------------------------------------------------------
# PostgreSQL (skipped with a message when no server is reachable, as in test_postgres.py)
# ----------------------------------------------------------------------------------------------


PER_DATABASE = ("built_from", "source_max_rowid")  # SQLite notes its rowids, PostgreSQL has none

from tests.test_postgres import pg_world  # noqa: E402,F401  (the fixture: the tiny world on a fresh database)


def test_postgres_fresh_adbc_sqlalchemy_and_incremental_agree_with_sqlite(pg_world, tiny_world_file, tmp_path,  # noqa: F811
                                                                          monkeypatch, caplog):
    pg = db.engine_for(pg_world)
    sqlite = sa.create_engine(f"sqlite:///{tiny_world_file}")
    dates = [RUN_DATE - ONE_DAY, RUN_DATE, RUN_DATE + ONE_DAY]
    with caplog.at_level("DEBUG", logger="pipeline"):
        last = chain(pg, dates, tmp_path / "pg")
    assert not [r for r in caplog.records if "SQLAlchemy" in r.getMessage()]  # ADBC served every read
    assert storage.read_json(last / "manifest.json")["built_from"] == "previous"
    for date in dates:
        build(sqlite, date, tmp_path / "sqlite" / date.isoformat())
        assert_same_snapshot(tmp_path / "pg" / "fresh" / date.isoformat(), tmp_path / "sqlite" / date.isoformat(),
                             provenance=PER_DATABASE)

    def no_adbc(engine):
        raise source.NoAdbc("disabled by the test")

    monkeypatch.setattr(source, "adbc_connect", no_adbc)
    build(pg, RUN_DATE, tmp_path / "pg-sqlalchemy")
    assert_same_snapshot(tmp_path / "pg-sqlalchemy", tmp_path / "sqlite" / RUN_DATE.isoformat(), provenance=PER_DATABASE)
    pg.dispose()


# ----------------------------------------------------------------------------------------------
# Rows back-dated after yesterday's snapshot was taken: today's snapshot is still the fresh one
# ----------------------------------------------------------------------------------------------


def back_dated(engine, d):
    """Rows inserted now but recorded before the cutoff of ``d - 1`` and before its latest row: invisible to
    a check of the latest recorded_at alone."""
    db.bulk_insert(engine, db.sales, sales_frame([
        ("TX_1", "FOODS_1_001", "2016-04-02", 31, "2016-04-03 12:00:00"),  # a correction of an old day
        ("CA_1", "HOBBIES_1_001", "2015-12-30", 2, "2016-01-05 08:00:00"),  # a new key before the history began
    ]))
    add_prices(engine, [("CA_1", "FOODS_1_001", 11610, 7.25, "2016-04-01 00:00:00")])


def assert_back_dated_rows_are_seen(engine, d, root):
    build(engine, d - ONE_DAY, root / "prev")
    back_dated(engine, d)
    m = build(engine, d, root / "inc", previous=root / "prev")
    assert m["built_from"] == "fresh"  # the count of rows before yesterday's cutoff gave them away
    build(engine, d, root / "fresh")
    assert_same_snapshot(root / "inc", root / "fresh")
    sales = pd.read_parquet(root / "inc" / "sales.parquet")
    row = sales[(sales.store_id == "TX_1") & (sales.item_id == "FOODS_1_001") & (sales.date == "2016-04-02")]
    assert row["units"].tolist() == [31]
    # and the next day builds on today's (complete) snapshot again
    m = build(engine, d + ONE_DAY, root / "next", previous=root / "inc")
    assert m["built_from"] == "previous"
    build(engine, d + ONE_DAY, root / "next-fresh")
    assert_same_snapshot(root / "next", root / "next-fresh")


def test_back_dated_rows_make_the_incremental_snapshot_equal_the_fresh_one_on_sqlite(small_db, tmp_path):
    _, engine = small_db  # its history ends on RUN_DATE, the "next" day of the check
    assert_back_dated_rows_are_seen(engine, RUN_DATE - ONE_DAY, tmp_path)


def test_back_dated_rows_make_the_incremental_snapshot_equal_the_fresh_one_on_postgres(pg_world, tmp_path):  # noqa: F811
    engine = db.engine_for(pg_world)
    try:
        assert_back_dated_rows_are_seen(engine, RUN_DATE - ONE_DAY, tmp_path)
    finally:
        engine.dispose()
