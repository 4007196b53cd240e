"""The Kaggle M5 importer on real pieces of M5: values round-trip, idempotency, streaming, clear errors.

The pieces in ``SHARED_M5`` (parquet) are written out in the Kaggle CSV layout: the complete
calendar, 10 full series (d_1..d_1913, 10 items in 5 stores of 3 states) and the sell_prices rows
of store CA_1 for those 10 items (prices of the other four stores are absent, as allowed).
"""
from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.data.snapshot import SNAPSHOT_FILES, read_snapshot
from pipeline.data import db
from pipeline.stages import extract
from pipeline.tools import m5import
from pipeline.data import storage
from pipeline.core.errors import DataError
from tests.conftest import SHARED_M5, fresh_postgres, sales_frame

NEEDED = ("calendar.parquet", "sales_train_validation_sample10.parquet", "sell_prices_CA_1.parquet",
          "sales_test_validation.parquet")
pytestmark = pytest.mark.skipif(
    not all((SHARED_M5 / name).exists() for name in NEEDED),
    reason=f"the real M5 pieces ({', '.join(NEEDED)}) are not all in {SHARED_M5} (see SOURCE.md there); "
           "the M5 importer tests run on them",
)

SALES_CSV = "sales_train_validation.csv"
LAST_DAY = dt.date(2016, 4, 24)  # d_1913


# ----------------------------------------------------------------------------------------------
# Fixtures: the Kaggle files, and databases imported from them
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pieces():
    """The real M5 pieces as frames: calendar (with d), the 10-series wide sample, CA_1 prices of its items."""
    calendar = pd.read_parquet(SHARED_M5 / "calendar.parquet")
    wide = pd.read_parquet(SHARED_M5 / "sales_train_validation_sample10.parquet")
    wide = wide.astype({c: str for c in m5import.SALES_ID_COLUMNS})
    prices = pd.read_parquet(SHARED_M5 / "sell_prices_CA_1.parquet")
    prices = prices[prices["item_id"].astype(str).isin(set(wide["item_id"]))].astype({"store_id": str, "item_id": str})
    # float32 in the parquet; the CSV has the 2-decimal prices
    prices = prices.assign(sell_price=prices["sell_price"].astype(np.float64).round(2)).reset_index(drop=True)
    return {"calendar": calendar, "wide": wide, "prices": prices}


def write_m5(folder, pieces, wide=None, prices=None, calendar=None):
    """Write calendar.csv, sales_train_validation.csv and sell_prices.csv (Kaggle layout) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (pieces["calendar"] if calendar is None else calendar).to_csv(folder / "calendar.csv", index=False)
    (pieces["wide"] if wide is None else wide).to_csv(folder / SALES_CSV, index=False)
    (pieces["prices"] if prices is None else prices).to_csv(folder / "sell_prices.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def m5_dir(pieces, tmp_path_factory):
    return write_m5(tmp_path_factory.mktemp("m5"), pieces)


def fresh(tmp_path, name="m5.sqlite"):
    """(url, engine) of a SQLite file in ``tmp_path``; the engine skips fsync, to keep the tests fast."""
    url = f"sqlite:///{tmp_path / name}"
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def no_fsync(dbapi_conn, record):
        dbapi_conn.execute("PRAGMA synchronous=OFF")

    return url, engine


@pytest.fixture(scope="module")
def imported(m5_dir, tmp_path_factory):
    """One import of the good files (shared by the read-only tests): (engine, summary, progress calls)."""
    url, engine = fresh(tmp_path_factory.mktemp("db"))
    calls = []
    summary = m5import.import_m5(engine, m5_dir, progress=lambda f, m: calls.append((f, m)))
    yield engine, summary, calls
    engine.dispose()


def copy_of_imported(imported, tmp_path):
    """(url, engine) of a private copy of the database the good files were imported into."""
    shutil.copy(imported[0].url.database, tmp_path / "copy.sqlite")
    return fresh(tmp_path, "copy.sqlite")


def table(engine, name, order):
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(f'SELECT * FROM "{name}" ORDER BY {order}'), conn)
    return frame


def counts(engine):
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"')).scalar() for t in db.SOURCE_TABLES}


def long_sales(wide):
    """The wide sample as the long (store_id, item_id, date, units) rows it should become."""
    days = [c for c in wide.columns if c.startswith("d_")]
    dates = pd.Timestamp("2011-01-29") + pd.to_timedelta([int(d[2:]) - 1 for d in days], unit="D")
    return pd.DataFrame({
        "store_id": np.repeat(wide["store_id"].to_numpy(dtype=object), len(days)),
        "item_id": np.repeat(wide["item_id"].to_numpy(dtype=object), len(days)),
        "date": np.tile(dates.to_numpy(), len(wide)),
        "units": wide[days].to_numpy(dtype=np.int64).reshape(-1),
    })


# ----------------------------------------------------------------------------------------------
# A good import
# ----------------------------------------------------------------------------------------------

def test_import_fills_every_table(imported, pieces):
    engine, summary, _ = imported
    c = counts(engine)
    assert c["calendar"] == 1969 and c["items"] == 10 and c["stores"] == 5
    assert c["sales"] == 10 * 1913 and c["sell_prices"] == len(pieces["prices"]) == 2318
    assert summary["rows"] == {"calendar": 1969, "items": 10, "stores": 5, "sales": 19130, "sell_prices": 2318}
    assert summary["sales_file"] == SALES_CSV and summary["series"] == 10
    assert (summary["first_date"], summary["last_date"]) == (dt.date(2011, 1, 29), LAST_DAY)
    stores = table(engine, "stores", "store_id")
    assert stores.values.tolist() == [["CA_1", "CA"], ["CA_2", "CA"], ["CA_3", "CA"], ["TX_1", "TX"], ["WI_1", "WI"]]
    items = table(engine, "items", "item_id").set_index("item_id")
    assert items.loc["HOUSEHOLD_1_002"].tolist() == ["HOUSEHOLD_1", "HOUSEHOLD"]


def test_calendar_round_trips_without_its_d_column(imported, pieces):
    engine, _, _ = imported
    got = table(engine, "calendar", "date")
    want = pieces["calendar"].drop(columns="d")
    assert list(got.columns) == [c.name for c in db.calendar.columns]
    assert got["date"].astype(str).tolist() == want["date"].astype(str).tolist()
    for col in ("wm_yr_wk", "wday", "month", "year", "snap_CA", "snap_TX", "snap_WI"):
        assert (got[col].to_numpy() == want[col].to_numpy()).all(), col
    for col in ("weekday", "event_name_1", "event_type_1", "event_name_2", "event_type_2"):
        assert got[col].astype(object).fillna("<none>").tolist() == want[col].astype(object).fillna("<none>").tolist(), col
    with engine.connect() as conn:
        # no event is SQL NULL, never '' or 'nan'
        nulls = conn.execute(sa.text("SELECT COUNT(*) FROM calendar WHERE event_name_1 IS NULL")).scalar()
        blanks = conn.execute(sa.text("SELECT COUNT(*) FROM calendar WHERE event_name_1 IN ('', 'nan', 'None')")).scalar()
    assert nulls == int(want["event_name_1"].isna().sum()) > 1800 and blanks == 0
    row = got[got["date"].astype(str) == "2016-06-19"].iloc[0]
    assert (row["event_name_1"], row["event_name_2"]) == ("NBAFinalsEnd", "Father's day")


def test_sales_values_round_trip_cell_by_cell(imported, pieces):
    engine, _, _ = imported
    wide = pieces["wide"]
    sales = table(engine, "sales", "store_id, item_id, date")
    by_key = sales.set_index(["store_id", "item_id", "date"])["units"]
    # a few cells of the wide file: (0-based row, day column)
    for r, d in [(0, "d_1"), (3, "d_2"), (4, "d_1"), (6, "d_1207"), (9, "d_1913"), (2, "d_500"), (7, "d_1000")]:
        date = (dt.date(2011, 1, 29) + dt.timedelta(days=int(d[2:]) - 1)).isoformat()
        assert by_key[(wide["store_id"][r], wide["item_id"][r], date)] == int(wide[d][r]), (r, d)
    # and all of them
    want = long_sales(wide).sort_values(["store_id", "item_id", "date"], ignore_index=True)
    assert sales["units"].tolist() == want["units"].tolist()
    assert sales["date"].astype(str).tolist() == want["date"].dt.strftime("%Y-%m-%d").tolist()


def test_recorded_at_conventions(imported, pieces):
    engine, _, _ = imported
    sales = table(engine, "sales", "date")
    # the end of each sale's day, 23:00, as the synthetic world records them
    assert (pd.to_datetime(sales["recorded_at"]) == pd.to_datetime(sales["date"]) + pd.Timedelta(hours=23)).all()
    prices = table(engine, "sell_prices", "store_id, item_id, wm_yr_wk")
    cal = pieces["calendar"]
    week_start = pd.to_datetime(cal["date"]).groupby(cal["wm_yr_wk"].astype(int)).min()
    rec = pd.to_datetime(prices["recorded_at"])
    assert (rec == prices["wm_yr_wk"].map(week_start)).all()
    assert (rec.dt.day_name() == "Saturday").all() and (rec.dt.hour == 0).all()
    want = pieces["prices"].sort_values(["store_id", "item_id", "wm_yr_wk"], ignore_index=True)
    assert prices["sell_price"].tolist() == want["sell_price"].tolist()


def test_prices_of_other_stores_are_absent_not_invented(imported):
    engine, _, _ = imported
    prices = table(engine, "sell_prices", "store_id")
    assert set(prices["store_id"]) == {"CA_1"}
    assert counts(engine)["stores"] == 5


def test_progress_is_reported_per_chunk_up_to_one(imported):
    _, _, calls = imported
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("sales_train_validation.csv" in m for _, m in calls) and any("sell_prices.csv" in m for _, m in calls)


def test_snapshot_extraction_works_on_the_import(imported, pieces, tmp_path):
    engine, _, _ = imported
    with storage.atomic_dir(tmp_path / "snap") as t:
        manifest = extract.extract_snapshot(engine, LAST_DAY, t)
    assert manifest["rows"]["sales"] == 19130 and manifest["series"] == 10
    sales = read_snapshot(tmp_path / "snap", "sales")
    got = sales.astype({"store_id": str, "item_id": str}).sort_values(["store_id", "item_id", "date"], ignore_index=True)
    want = long_sales(pieces["wide"]).sort_values(["store_id", "item_id", "date"], ignore_index=True)
    assert got["units"].astype(np.int64).tolist() == want["units"].tolist()
    assert (got["date"].to_numpy() == want["date"].to_numpy()).all()
    prices = read_snapshot(tmp_path / "snap", "prices")
    # a price is known from the start of its week: weeks starting after the run date are not yet
    cal = pieces["calendar"]
    week_start = pd.to_datetime(cal["date"]).groupby(cal["wm_yr_wk"].astype(int)).min()
    known = pieces["prices"]["wm_yr_wk"].astype(int).map(week_start) <= pd.Timestamp(LAST_DAY)
    assert set(prices["store_id"].astype(str)) == {"CA_1"} and len(prices) == int(known.sum()) == 2238


# ----------------------------------------------------------------------------------------------
# Idempotency and streaming
# ----------------------------------------------------------------------------------------------

def test_importing_twice_adds_nothing(m5_dir, imported, tmp_path):
    first = imported[1]
    url, engine = copy_of_imported(imported, tmp_path)
    before = counts(engine)
    again = m5import.import_m5(engine, m5_dir)
    assert counts(engine) == before
    assert again["rows"] == {t: 0 for t in first["rows"]}
    assert again["already_present"] == first["rows"]


def test_small_chunks_give_the_same_tables(m5_dir, imported, tmp_path):
    big_engine, _, _ = imported
    url, engine = fresh(tmp_path)
    m5import.import_m5(engine, m5_dir, sales_chunk_rows=3, prices_chunk_rows=500)
    for name, order in (("calendar", "date"), ("items", "item_id"), ("stores", "store_id"),
                        ("sales", "store_id, item_id, date"), ("sell_prices", "store_id, item_id, wm_yr_wk")):
        pd.testing.assert_frame_equal(table(engine, name, order), table(big_engine, name, order), obj=name)


def test_evaluation_file_is_preferred_and_adds_only_the_new_days(m5_dir, pieces, imported, tmp_path):
    url, engine = copy_of_imported(imported, tmp_path)
    # the 28 real days after d_1913 of the same 10 series, from the M5 test-period file
    test = pd.read_parquet(SHARED_M5 / "sales_test_validation.parquet").astype({"item_id": str, "store_id": str})
    later = pieces["wide"][["item_id", "store_id"]].merge(test, on=["item_id", "store_id"], how="left")
    days = [f"d_{k}" for k in range(1914, 1942)]
    evaluation = pd.concat([pieces["wide"], later[days].reset_index(drop=True)], axis=1)
    evaluation["id"] = evaluation["id"].str.replace("_validation", "_evaluation")
    folder = tmp_path / "eval"
    shutil.copytree(m5_dir, folder)
    evaluation.to_csv(folder / "sales_train_evaluation.csv", index=False)
    summary = m5import.import_m5(engine, folder, sales_chunk_rows=4)
    assert summary["sales_file"] == "sales_train_evaluation.csv"
    assert summary["rows"]["sales"] == 10 * 28 and summary["already_present"]["sales"] == 10 * 1913
    assert counts(engine)["sales"] == 10 * 1941
    with storage.atomic_dir(tmp_path / "snap") as t:
        extract.extract_snapshot(engine, dt.date(2016, 5, 22), t)
    snap = read_snapshot(tmp_path / "snap", "sales")
    row = snap[(snap["item_id"] == "FOODS_1_001") & (snap["store_id"] == "CA_3") & (snap["date"] == "2016-05-22")]
    assert int(row["units"].iloc[0]) == int(evaluation.loc[evaluation["item_id"] == "FOODS_1_001", "d_1941"].iloc[0])


def test_a_changed_value_is_refused_not_appended(pieces, imported, tmp_path):
    url, engine = copy_of_imported(imported, tmp_path)
    before = counts(engine)
    wide = pieces["wide"].copy()
    wide.loc[4, "d_1207"] = wide.loc[4, "d_1207"] + 5
    folder = write_m5(tmp_path / "changed", pieces, wide=wide)
    with pytest.raises(DataError) as err:
        m5import.import_m5(engine, folder)
    msg = str(err.value)
    assert f"{SALES_CSV} line 6, column d_1207" in msg and "already holds units=" in msg
    assert "later recorded_at" in msg
    prices = pieces["prices"].copy()
    prices.loc[10, "sell_price"] = 99.99
    folder = write_m5(tmp_path / "changed_price", pieces, prices=prices)
    with pytest.raises(DataError, match=r"sell_prices.csv line 12, column sell_price: .*already holds sell_price="):
        m5import.import_m5(engine, folder)
    assert counts(engine) == before


def test_corrections_stay_and_rows_recorded_at_other_instants_are_refused(m5_dir, imported, tmp_path):
    url, engine = copy_of_imported(imported, tmp_path)
    # a correction appended later (a new row, later recorded_at) does not block a re-import, and stays
    db.bulk_insert(engine, db.sales, sales_frame([("CA_1", "HOBBIES_1_001", "2016-04-20", 42, "2016-04-26 09:00:00")]))
    before = counts(engine)
    assert m5import.import_m5(engine, m5_dir)["rows"]["sales"] == 0 and counts(engine) == before
    # a key whose only row was recorded at another instant than 23:00 of its day is refused
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE sales SET recorded_at = '2016-04-21 12:00:00.000000' WHERE store_id = 'CA_1' "
                             "AND item_id = 'HOBBIES_1_001' AND date = '2016-04-21'"))
    with pytest.raises(DataError, match=rf"^{SALES_CSV} line 2, column d_1910: the sales table already holds units=\d+ "
                                        r"for store_id=CA_1 item_id=HOBBIES_1_001 date=2016-04-21 recorded at "
                                        r"2016-04-21 12:00:00, not at 2016-04-21 23:00:00"):
        m5import.import_m5(engine, m5_dir)
    assert counts(engine) == before


def test_a_master_row_with_other_attributes_is_refused(pieces, imported, tmp_path):
    url, engine = copy_of_imported(imported, tmp_path)
    calendar = pieces["calendar"].copy()
    calendar["event_name_1"] = calendar["event_name_1"].astype(object)
    calendar.loc[100, "event_name_1"] = "Invented"
    folder = write_m5(tmp_path / "cal", pieces, calendar=calendar)
    with pytest.raises(DataError, match=r"calendar.csv line 102, column event_name_1: the calendar table already holds"):
        m5import.import_m5(engine, folder)


# ----------------------------------------------------------------------------------------------
# All or nothing: a failed import leaves the database exactly as it was
# ----------------------------------------------------------------------------------------------

def state(engine):
    """Every table of the database and all its rows (sorted): what a failed import must not change."""
    inspector = sa.inspect(engine)
    names = sorted(inspector.get_table_names())
    rows = {}
    with engine.connect() as conn:
        for name in names:
            order = ", ".join(str(k + 1) for k in range(len(inspector.get_columns(name))))
            rows[name] = conn.execute(sa.text(f'SELECT * FROM "{name}" ORDER BY {order}')).all()
    return names, rows


def refused(engine, folder, **kwargs) -> str:
    """Import ``folder`` expecting a DataError, check that the database is exactly as before; the message."""
    before = state(engine)
    with pytest.raises(DataError) as err:
        m5import.import_m5(engine, folder, **kwargs)
    after = state(engine)
    assert after[0] == before[0], "tables created or dropped"
    for name in before[0]:
        assert len(after[1][name]) == len(before[1][name]), name
        assert after[1][name] == before[1][name], name
    return str(err.value)


# into a filled database: the same checks on a copy of an imported world, slower (the slow tier runs them)
@pytest.fixture(params=["empty", pytest.param("filled", marks=pytest.mark.slow)])
def target(request, imported, tmp_path):
    """A database to import into: a new SQLite file, or a copy of one the good files were imported into."""
    return fresh(tmp_path)[1] if request.param == "empty" else copy_of_imported(imported, tmp_path)[1]


def on_both(cases: dict, while_writing) -> list:
    """(case, database) pairs: every case into an empty database; into a filled one as well where the
    failure comes while writing (the file checks before the transaction cannot change anything)."""
    return [pytest.param(case, kind, id=f"{kind}-{case}", marks=[pytest.mark.slow] if kind == "filled" else [])
            for case in cases for kind in (("empty", "filled") if while_writing(case) else ("empty",))]


@pytest.fixture(scope="module")
def evaluation_wide(pieces):
    """The 10 series with the 28 real days after d_1913 (the evaluation file): new rows on a filled database."""
    test = pd.read_parquet(SHARED_M5 / "sales_test_validation.parquet").astype({"item_id": str, "store_id": str})
    later = pieces["wide"][["item_id", "store_id"]].merge(test, on=["item_id", "store_id"], how="left")
    evaluation = pd.concat([pieces["wide"], later[[f"d_{k}" for k in range(1914, 1942)]]], axis=1)
    evaluation["id"] = evaluation["id"].str.replace("_validation", "_evaluation")
    return evaluation


def with_bad_last_price(pieces, folder, evaluation_wide):
    folder = write_m5(folder, pieces)
    evaluation_wide.to_csv(folder / "sales_train_evaluation.csv", index=False)
    prices = pieces["prices"].astype({"sell_price": object})
    prices.loc[len(prices) - 1, "sell_price"] = "-1"  # the very last line, 2319
    prices.to_csv(folder / "sell_prices.csv", index=False)
    return folder


def test_a_bad_last_price_line_leaves_the_database_as_it_was(target, pieces, evaluation_wide, tmp_path):
    folder = with_bad_last_price(pieces, tmp_path / "m5", evaluation_wide)
    # small chunks: many sales and price chunks are written in the transaction before the failure
    msg = refused(target, folder, sales_chunk_rows=3, prices_chunk_rows=500)
    assert msg == "sell_prices.csv line 2319, column sell_price: sell_price must be a positive number, got '-1'"


def test_a_new_sqlite_file_is_not_left_behind(pieces, evaluation_wide, tmp_path):
    folder = with_bad_last_price(pieces, tmp_path / "m5", evaluation_wide)
    path = tmp_path / "new" / "m5.sqlite"
    with pytest.raises(DataError, match="sell_prices.csv line 2319"):
        m5import.import_m5(f"sqlite:///{path}", folder)
    assert not path.exists()


def test_an_interrupted_import_leaves_the_database_as_it_was(target, evaluation_wide, pieces, m5_dir, tmp_path):
    folder = tmp_path / "m5"
    shutil.copytree(m5_dir, folder)
    evaluation_wide.to_csv(folder / "sales_train_evaluation.csv", index=False)

    def stop_in_the_prices(fraction, message):
        if "sell_prices.csv" in message:
            raise KeyboardInterrupt

    before = state(target)
    with pytest.raises(KeyboardInterrupt):
        m5import.import_m5(target, folder, progress=stop_in_the_prices, prices_chunk_rows=1000)
    assert state(target) == before


def test_a_conflict_in_a_later_chunk_leaves_the_database_as_it_was(pieces, imported, evaluation_wide, tmp_path):
    url, engine = copy_of_imported(imported, tmp_path)
    wide = evaluation_wide.copy()
    wide.loc[9, "d_1913"] = wide.loc[9, "d_1913"] + 1  # the last series: earlier chunks add their 28 new days first
    folder = write_m5(tmp_path / "m5", pieces)
    wide.to_csv(folder / "sales_train_evaluation.csv", index=False)
    msg = refused(engine, folder, sales_chunk_rows=2)
    assert msg.startswith("sales_train_evaluation.csv line 11, column d_1913: the sales table already holds units=")
    # the same key twice in the price file with two values, in two chunks: the first chunk's row is
    # in the transaction already, and the second is refused against it
    prices = pd.concat([pieces["prices"], pieces["prices"].iloc[[3]].assign(sell_price=1.23)], ignore_index=True)
    msg = refused(engine, write_m5(tmp_path / "twice", pieces, prices=prices), prices_chunk_rows=1000)
    assert msg.startswith("sell_prices.csv line 2320, column sell_price: the sell_prices table already holds sell_price=")


# ----------------------------------------------------------------------------------------------
# A price file covering more items and stores than the sales file
# ----------------------------------------------------------------------------------------------

def test_prices_of_items_and_stores_the_sales_file_lacks_are_skipped_and_counted(pieces, imported, tmp_path):
    good = pieces["prices"]
    other_store = good.assign(store_id="TX_3")  # a store the sales file lacks, items it has
    other_item = good[good["item_id"] == "HOBBIES_1_001"].assign(item_id="FOODS_3_827")  # an item it lacks
    prices = pd.concat([good, other_item, other_store], ignore_index=True).sort_values(
        ["store_id", "item_id", "wm_yr_wk"], kind="stable", ignore_index=True)
    folder = write_m5(tmp_path / "m5", pieces, prices=prices)
    url, engine = fresh(tmp_path)
    summary = m5import.import_m5(engine, folder, prices_chunk_rows=700)
    assert summary["prices_not_in_sales_file"] == {"rows": len(other_store) + len(other_item), "items": 1, "stores": 1}
    assert summary["rows"] == imported[1]["rows"]
    for name, order in (("sales", "store_id, item_id, date"), ("sell_prices", "store_id, item_id, wm_yr_wk")):
        pd.testing.assert_frame_equal(table(engine, name, order), table(imported[0], name, order), obj=name)
    again = m5import.import_m5(engine, folder)
    assert sum(again["rows"].values()) == 0 and again["prices_not_in_sales_file"] == summary["prices_not_in_sales_file"]


def test_largest_units_and_prices_are_stored_exactly(pieces, tmp_path):
    wide = _set(pieces["wide"].copy(), 0, "d_1", str(m5import.MAX_UNITS))
    prices = pieces["prices"].astype({"sell_price": object})
    for row, text in ((0, "100000"), (1, "0.1"), (2, "2.675"), (3, "0.01"), (4, "99999.99")):
        prices.loc[row, "sell_price"] = text
    folder = write_m5(tmp_path / "m5", pieces, wide=wide, prices=prices)
    url, engine = fresh(tmp_path)
    m5import.import_m5(engine, folder)
    with engine.connect() as conn:
        units = conn.execute(sa.text("SELECT units FROM sales WHERE store_id = 'CA_1' AND item_id = 'HOBBIES_1_001' "
                                     "AND date = '2011-01-29'")).scalar()
        got = dict(conn.execute(sa.text("SELECT wm_yr_wk, sell_price FROM sell_prices WHERE item_id = :i"),
                                {"i": prices["item_id"][0]}).all())
    assert units == 2_147_483_647 == m5import.MAX_UNITS
    assert m5import.MAX_SELL_PRICE == 100_000
    for row, text in ((0, "100000"), (1, "0.1"), (2, "2.675"), (3, "0.01"), (4, "99999.99")):
        assert got[int(prices["wm_yr_wk"][row])] == float(text)


def test_quoted_values_are_read_whole(pieces, tmp_path):
    calendar = _set(pieces["calendar"].copy(), 141, "event_name_2", 'Father\'s day, "observed"')
    wide = pieces["wide"].copy()
    folder = write_m5(tmp_path / "m5", pieces, calendar=calendar, wide=wide)
    text = (folder / SALES_CSV).read_bytes().replace(b"\nHOBBIES_1_002_CA_1_validation,", b'\n"HOBBIES_1_002_CA_1_validation",')
    (folder / SALES_CSV).write_bytes(text.replace(b",0,0,0\n", b',0,"0",0\n', 1))
    assert b'"Father\'s day, ""observed"""' in (folder / "calendar.csv").read_bytes()
    url, engine = fresh(tmp_path)
    m5import.import_m5(engine, folder)
    events = table(engine, "calendar", "date").set_index("date")["event_name_2"]
    assert events["2011-06-19"] == 'Father\'s day, "observed"'
    assert counts(engine)["sales"] == 10 * 1913


def test_windows_line_ends_and_a_byte_order_mark_are_fine(m5_dir, imported, tmp_path):
    folder = tmp_path / "m5"
    shutil.copytree(m5_dir, folder)
    for name in ("calendar.csv", SALES_CSV, "sell_prices.csv"):
        path = folder / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    url, engine = fresh(tmp_path)
    assert m5import.import_m5(engine, folder)["rows"] == imported[1]["rows"]
    pd.testing.assert_frame_equal(table(engine, "sell_prices", "store_id, item_id, wm_yr_wk"),
                                  table(imported[0], "sell_prices", "store_id, item_id, wm_yr_wk"))


# ----------------------------------------------------------------------------------------------
# Bad files: file, line and column named; the database as it was
# ----------------------------------------------------------------------------------------------

def test_missing_header_column_names_the_file_and_writes_nothing(pieces, tmp_path):
    folder = write_m5(tmp_path / "m5", pieces, wide=pieces["wide"].drop(columns="store_id"))
    url, engine = fresh(tmp_path)
    msg = refused(engine, folder)
    assert msg.startswith(f"{SALES_CSV} line 1: missing column(s) store_id")
    assert "expected the header id, item_id, dept_id, cat_id, store_id, state_id, d_1, d_2, ..." in msg


def test_a_bad_units_cell_writes_nothing_and_the_fixed_file_imports_whole(pieces, m5_dir, tmp_path):
    wide = _set(pieces["wide"].copy(), 7, "d_1207", "3000000000")  # 0-based row 7: line 9 (header = line 1)
    folder = write_m5(tmp_path / "m5", pieces, wide=wide)
    url, engine = fresh(tmp_path)
    # found while streaming (digits, but beyond the Integer column): chunks of lines 2-4 and 5-7 were written
    msg = refused(engine, folder, sales_chunk_rows=3)
    assert msg == (f"{SALES_CSV} line 9, column d_1207: units must be a non-negative integer of at most 2147483647 "
                   "(sales.units is a 32-bit integer), got '3000000000'")
    summary = m5import.import_m5(engine, m5_dir, sales_chunk_rows=3)
    assert summary["already_present"]["sales"] == 0 and summary["rows"]["sales"] == 10 * 1913


def test_a_day_column_beyond_the_calendar_writes_nothing(pieces, tmp_path):
    wide = pd.concat([pieces["wide"], pd.DataFrame({"d_1970": 0}, index=pieces["wide"].index)], axis=1)
    folder = write_m5(tmp_path / "m5", pieces, wide=wide)
    url, engine = fresh(tmp_path)
    msg = refused(engine, folder)
    assert msg.startswith(f"{SALES_CSV} line 1, column d_1970: day d_1970 is not in calendar.csv "
                          "(which ends with d_1969 = 2016-06-19)")


def _set(frame, row, col, value):
    values = frame[col].to_numpy(dtype=object).copy()
    values[row] = value
    frame[col] = values
    return frame


UNITS = "units must be a non-negative integer, got"
PRICE = "sell_price must be a positive number, got"


def _price(line, got):
    return f"sell_prices.csv line {line}, column sell_price: {PRICE} {got}"


BAD = {
    # name: (which piece, change, expected message)
    "fractional units": ("wide", lambda w: _set(w, 2, "d_5", "2.5"), f"{SALES_CSV} line 4, column d_5: {UNITS} '2.5'"),
    "empty units": ("wide", lambda w: _set(w, 0, "d_1913", ""), f"{SALES_CSV} line 2, column d_1913: {UNITS} an empty field"),
    "NULL units": ("wide", lambda w: _set(w, 1, "d_10", "NULL"), f"{SALES_CSV} line 3, column d_10: {UNITS} 'NULL'"),
    "text units": ("wide", lambda w: _set(w, 3, "d_1", "abc"), f"{SALES_CSV} line 5, column d_1: {UNITS} 'abc'"),
    "negative units": ("wide", lambda w: _set(w, 7, "d_1207", -3), f"{SALES_CSV} line 9, column d_1207: {UNITS} '-3'"),
    "units 5.0": ("wide", lambda w: _set(w, 4, "d_3", "5.0"), f"{SALES_CSV} line 6, column d_3: {UNITS} '5.0'"),
    "units 1e3": ("wide", lambda w: _set(w, 4, "d_3", "1e3"), f"{SALES_CSV} line 6, column d_3: {UNITS} '1e3'"),
    "units +5": ("wide", lambda w: _set(w, 4, "d_3", "+5"), f"{SALES_CSV} line 6, column d_3: {UNITS} '+5'"),
    "units with a blank": ("wide", lambda w: _set(w, 4, "d_3", " 5"), f"{SALES_CSV} line 6, column d_3: {UNITS} ' 5'"),
    "units beyond the Integer column": (
        "wide", lambda w: _set(w, 9, "d_1913", "2147483648"),
        f"{SALES_CSV} line 11, column d_1913: units must be a non-negative integer of at most 2147483647 "
        "(sales.units is a 32-bit integer), got '2147483648'"),
    "units beyond int64": (
        "wide", lambda w: _set(w, 5, "d_2", "99999999999999999999"),
        f"{SALES_CSV} line 7, column d_2: units must be a non-negative integer of at most 2147483647 "
        "(sales.units is a 32-bit integer), got '99999999999999999999'"),
    "state of another store": ("wide", lambda w: _set(w, 6, "state_id", "CA"),
                               f"{SALES_CSV} line 8, column state_id: state_id 'CA' does not match store 'TX_1'"),
    "a malformed store in the sales file": (
        "wide", lambda w: _set(w, 0, "store_id", "CA1"),
        f"{SALES_CSV} line 2, column store_id: store_id must look like CA_1 (letters and digits joined by '_'), got 'CA1'"),
    "a series twice": ("wide", lambda w: pd.concat([w, w.iloc[[3]]], ignore_index=True),
                       f"{SALES_CSV} line 12, column id: series HOUSEHOLD_1_002_CA_2_validation appears twice (first on line 5)"),
    "unparsable date": ("calendar", lambda c: _set(c, 30, "date", "2011-02-31"),
                        "calendar.csv line 32, column date: date must be a date YYYY-MM-DD, got '2011-02-31'"),
    "an event name too long": (
        "calendar", lambda c: _set(c, 100, "event_name_1", "E" * 41),
        f"calendar.csv line 102, column event_name_1: event_name_1 '{'E' * 41}' is longer than the 40 characters "
        "the calendar table holds"),
    "d labels swapped": (
        "calendar", lambda c: _set(_set(c, 99, "d", "d_101"), 100, "d", "d_100"),
        "calendar.csv line 101, column d: d_101 is dated 2011-05-08, but line 2 has d_1 = 2011-01-29, which puts "
        "d_101 on 2011-05-09: the d labels and the dates disagree"),
    "a d label twice": ("calendar", lambda c: _set(c, 100, "d", "d_100"),
                        "calendar.csv line 102, column d: d_100 appears twice (first on line 101)"),
    "a day missing": (
        "calendar", lambda c: c.drop(index=498).reset_index(drop=True),
        "calendar.csv line 500, column d: no d_499 (2012-06-10) between d_498 (line 499) and d_500: the calendar "
        "must list every day"),
    "d labels consecutive, the dates not": (
        "calendar", lambda c: c.drop(index=498).reset_index(drop=True).assign(d=[f"d_{k}" for k in range(1, 1969)]),
        "calendar.csv line 500, column d: d_499 is dated 2012-06-11, but line 2 has d_1 = 2011-01-29, which puts "
        "d_499 on 2012-06-10: the d labels and the dates disagree"),
    "week not in calendar": ("prices", lambda p: _set(p, 20, "wm_yr_wk", 11700),
                             "sell_prices.csv line 22, column wm_yr_wk: week 11700 is not in the calendar (weeks 11101..11621)"),
    "week not an integer": ("prices", lambda p: _set(p, 20, "wm_yr_wk", "11101.0"),
                            "sell_prices.csv line 22, column wm_yr_wk: wm_yr_wk must be an integer, got '11101.0'"),
    "empty price": ("prices", lambda p: _set(p, 30, "sell_price", ""), _price(32, "an empty field")),
    "text price": ("prices", lambda p: _set(p, 1500, "sell_price", "abc"), _price(1502, "'abc'")),
    "nan price": ("prices", lambda p: _set(p, 5, "sell_price", "nan"), _price(7, "'nan'")),
    "NaN price": ("prices", lambda p: _set(p, 5, "sell_price", "NaN"), _price(7, "'NaN'")),
    "inf price": ("prices", lambda p: _set(p, 5, "sell_price", "inf"), _price(7, "'inf'")),
    "-inf price": ("prices", lambda p: _set(p, 5, "sell_price", "-inf"), _price(7, "'-inf'")),
    "zero price": ("prices", lambda p: _set(p, 5, "sell_price", "0"), _price(7, "'0'")),
    "a price that underflows to zero": ("prices", lambda p: _set(p, 5, "sell_price", "1e-400"),
                                        _price(7, "'1e-400'")),
    "negative price": ("prices", lambda p: _set(p, 5, "sell_price", "-1.5"), _price(7, "'-1.5'")),
    "absurd price": ("prices", lambda p: _set(p, 2000, "sell_price", "100000.01"),
                     "sell_prices.csv line 2002, column sell_price: sell_price must be at most 100,000 (MAX_SELL_PRICE), "
                     "got '100000.01'"),
    "a price item missing": ("prices", lambda p: _set(p, 0, "item_id", ""),
                             "sell_prices.csv line 2, column item_id: missing value"),
    "item and store swapped": (
        "prices", lambda p: _set(_set(p, 40, "item_id", "CA_1"), 40, "store_id", "HOBBIES_1_001"),
        "sell_prices.csv line 42, column store_id: store_id must look like CA_1 (letters and digits joined by '_'), "
        "got 'HOBBIES_1_001'"),
    "a malformed price item": (
        "prices", lambda p: _set(p, 0, "item_id", "FOODS 3 999"),
        "sell_prices.csv line 2, column item_id: item_id must look like HOBBIES_1_001 (letters and digits joined by "
        "'_'), got 'FOODS 3 999'"),
    "a price item too long": (
        "prices", lambda p: _set(p, 0, "item_id", "FOODS_3_" + "9" * 40),
        f"sell_prices.csv line 2, column item_id: item_id 'FOODS_3_{'9' * 40}' is longer than the 40 characters the "
        "items table holds"),
}


# found while streaming, after earlier chunks were written in the transaction
WHILE_WRITING = {"empty units", "units beyond the Integer column", "units beyond int64"}


@pytest.mark.parametrize(("case", "target"), on_both(BAD, lambda c: BAD[c][0] == "prices" or c in WHILE_WRITING),
                         indirect=["target"])
def test_bad_values_name_file_line_and_column(case, target, pieces, tmp_path):
    piece, change, message = BAD[case]
    folder = write_m5(tmp_path / "m5", pieces, **{piece: change(pieces[piece].copy())})
    assert refused(target, folder) == message


def _line(k, change):
    """A change of line ``k`` (1-based) of a file's bytes."""
    def edit(data):
        lines = data.split(b"\n")
        lines[k - 1] = change(lines[k - 1])
        return b"\n".join(lines)
    return edit


def _zip(data):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("sell_prices.csv", data)
    return buf.getvalue()


CUT = "the last line does not end with a line break, so the file looks cut short (a value cut there cannot be told " \
      "from a whole one); if the file is complete, add the line break"
NOT_UTF8 = "is not UTF-8 (the file must be UTF-8 text; was it saved as Latin-1 / Windows-1252?)"
BAD_BYTES = {
    # name: (file, change of its bytes, expected message)
    "sales cut inside its last line": (SALES_CSV, lambda b: b[:-1000], f"{SALES_CSV} line 11: {CUT}"),
    "prices cut inside the last value": ("sell_prices.csv", lambda b: b[:-2], f"sell_prices.csv line 2319: {CUT}"),
    "calendar without its last line break": ("calendar.csv", lambda b: b[:-1], f"calendar.csv line 1970: {CUT}"),
    "a sales line with fewer fields": (
        SALES_CSV, _line(5, lambda t: b",".join(t.split(b",")[:1000])),
        f"{SALES_CSV} line 5: 1000 fields where the header has 1919: the line ends after column d_994, before d_995 "
        "(is the file cut short?)"),
    "a price line with fewer fields": (
        "sell_prices.csv", _line(100, lambda t: t.rsplit(b",", 1)[0]),
        "sell_prices.csv line 100: 3 fields where the header has 4: the line ends after column wm_yr_wk, before "
        "sell_price (is the file cut short?)"),
    "a calendar line with more fields": (
        "calendar.csv", _line(10, lambda t: t + b",1"),
        "calendar.csv line 10: 15 fields where the header has 14 (a comma too many, or a comma in an unquoted value?)"),
    "an empty line at the end": (
        "sell_prices.csv", lambda b: b + b"\n",
        "sell_prices.csv line 2320: the line is empty (remove empty lines, also at the end of the file)"),
    "a carriage return inside a line": (
        SALES_CSV, _line(3, lambda t: t.replace(b",", b",\r", 8)[:len(t)]),
        f"{SALES_CSV} line 3: a carriage return inside the line (CSV readers would split the line there)"),
    "calendar in UTF-16": ("calendar.csv", lambda b: b.decode().encode("utf-16"),
                           "calendar.csv line 1: the file is UTF-16 text (it starts with bytes ff fe), not UTF-8 CSV text; "
                           "save it as UTF-8"),
    "calendar in UTF-16 without a byte-order mark": (
        "calendar.csv", lambda b: b.decode().encode("utf-16-le"),
        "calendar.csv line 1: a NUL byte: the file is not UTF-8 text (UTF-16 or UTF-32 without a byte-order mark? binary?)"),
    "Latin-1 bytes in the calendar": ("calendar.csv", lambda b: b.replace(b"Father's day", "Fête des pères".encode("latin-1")),
                                      f"calendar.csv line 143, column event_name_1: byte 0xea {NOT_UTF8}"),
    "Latin-1 bytes in the prices": ("sell_prices.csv", _line(1800, lambda t: t.replace(b"CA_1", b"CA_\xb9")),
                                    f"sell_prices.csv line 1800, column store_id: byte 0xb9 {NOT_UTF8}"),
    "Latin-1 bytes in the sales header": (SALES_CSV, lambda b: b.replace(b"state_id", b"\xe9tat", 1),
                                          f"{SALES_CSV} line 1, field 6: byte 0xe9 {NOT_UTF8}"),
    "a quoted line with a bad day": (
        SALES_CSV, _line(4, lambda t: b'"' + t.replace(b",", b'",', 1).rsplit(b",", 1)[0] + b',"x"'),
        f"{SALES_CSV} line 4, column d_1913: units must be a non-negative integer, got 'x'"),
    "an unterminated quote": (
        "sell_prices.csv", _line(50, lambda t: b'"' + t),
        "sell_prices.csv line 50: the quotes do not parse (unexpected end of data); a value may not span lines"),
    "gzip file named .csv": (SALES_CSV, lambda b: __import__("gzip").compress(b),
                             f"{SALES_CSV} line 1: the file is gzip-compressed (it starts with bytes 1f 8b), not UTF-8 CSV "
                             "text; unpack it first"),
    "zip file named .csv": ("sell_prices.csv", _zip,
                            "sell_prices.csv line 1: the file is a zip archive (it starts with bytes 50 4b 03 04), not UTF-8 "
                            "CSV text; unpack it first"),
}


@pytest.mark.parametrize(("case", "target"), on_both(BAD_BYTES, lambda c: c == "prices cut inside the last value"),
                         indirect=["target"])
def test_bad_files_name_file_and_line(case, target, m5_dir, tmp_path):
    name, change, message = BAD_BYTES[case]
    folder = tmp_path / "m5"
    shutil.copytree(m5_dir, folder)
    (folder / name).write_bytes(change((folder / name).read_bytes()))
    assert refused(target, folder) == message


# ----------------------------------------------------------------------------------------------
# PostgreSQL: the same transaction, the same refusals (skipped with a message when no server is reachable)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_engine():
    """An engine on a fresh PostgreSQL database (dropped afterwards)."""
    with fresh_postgres("pipeline_m5import") as url:
        engine = sa.create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def test_postgres_import_is_all_or_nothing_exact_and_idempotent(pg_engine, pieces, imported, evaluation_wide, tmp_path):
    engine = pg_engine
    # a failure into the empty database: not even the tables stay
    bad = with_bad_last_price(pieces, tmp_path / "bad", evaluation_wide)
    assert refused(engine, bad, sales_chunk_rows=3, prices_chunk_rows=500) == (
        "sell_prices.csv line 2319, column sell_price: sell_price must be a positive number, got '-1'")
    assert state(engine) == ([], {})
    # the good files, with prices of another store, the largest units and the largest price
    prices = pd.concat([pieces["prices"], pieces["prices"].assign(store_id="TX_3")], ignore_index=True).astype(
        {"sell_price": object})
    prices.loc[0, "sell_price"] = "100000"
    wide = _set(pieces["wide"].copy(), 0, "d_1", str(m5import.MAX_UNITS))
    good = write_m5(tmp_path / "good", pieces, wide=wide, prices=prices)
    summary = m5import.import_m5(engine, good, prices_chunk_rows=1000)
    assert summary["rows"] == imported[1]["rows"]
    assert summary["prices_not_in_sales_file"] == {"rows": len(pieces["prices"]), "items": 0, "stores": 1}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT MAX(units) FROM sales")).scalar() == 2_147_483_647
        assert conn.execute(sa.text("SELECT MAX(sell_price) FROM sell_prices")).scalar() == 100_000.0
    want = prices[prices["store_id"] == "CA_1"].astype({"sell_price": float}).sort_values(["item_id", "wm_yr_wk"])
    assert table(engine, "sell_prices", "store_id, item_id, wm_yr_wk")["sell_price"].tolist() == want["sell_price"].tolist()
    # a failure into the filled database, after the 28 new days of sales were written: as it was. The
    # bad line is of the store that the sales file lacks: skipped lines are checked all the same
    bad = tmp_path / "bad2"
    shutil.copytree(good, bad)
    _set(evaluation_wide.copy(), 0, "d_1", str(m5import.MAX_UNITS)).to_csv(bad / "sales_train_evaluation.csv", index=False)
    _set(prices.copy(), len(prices) - 1, "sell_price", "1e3").to_csv(bad / "sell_prices.csv", index=False)
    assert refused(engine, bad, sales_chunk_rows=3, prices_chunk_rows=500) == (
        "sell_prices.csv line 4637, column sell_price: sell_price must be a positive number, got '1e3'")
    # a value that is not what the database holds, found in the last sales chunk
    changed = write_m5(tmp_path / "changed", pieces, wide=_set(wide.copy(), 9, "d_5", 7 + int(wide["d_5"][9])), prices=prices)
    assert refused(engine, changed, sales_chunk_rows=3).startswith(
        f"{SALES_CSV} line 11, column d_5: the sales table already holds")
    # importing the good files again adds nothing
    again = m5import.import_m5(engine, good, sales_chunk_rows=4, prices_chunk_rows=1000)
    assert sum(again["rows"].values()) == 0 and again["already_present"] == summary["rows"]


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def test_command_line_imports_and_prints_a_summary(m5_dir, tmp_path, capsys):
    url, engine = fresh(tmp_path)
    assert m5import.main(["--dir", str(m5_dir), "--url", url]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["rows"]["sales"] == 19130 and "100.0%" in err
    assert summary["prices_not_in_sales_file"] == {"rows": 0, "items": 0, "stores": 0}
    assert m5import.main(["--dir", str(tmp_path / "nowhere"), "--url", url]) == 1
    assert "does not exist" in capsys.readouterr().err
    # a bad file: one line naming file, line and column, and no database file left behind
    folder = tmp_path / "bad"
    shutil.copytree(m5_dir, folder)
    (folder / "sell_prices.csv").write_bytes((folder / "sell_prices.csv").read_bytes()[:-2])
    new = tmp_path / "new.sqlite"
    assert m5import.main(["--dir", str(folder), "--url", f"sqlite:///{new}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "pipeline.tools.m5import: sell_prices.csv line 2319: the last line does not end with a line break")
    assert not new.exists()
