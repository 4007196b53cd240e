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

from pipeline import db, extract, m5import, storage
from pipeline.errors import DataError
from tests.conftest import SHARED_M5, sales_frame

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
    sales = extract.read_snapshot(tmp_path / "snap", "sales")
    got = sales.astype({"store_id": str, "item_id": str}).sort_values(["store_id", "item_id", "date"], ignore_index=True)
    want = long_sales(pieces["wide"]).sort_values(["store_id", "item_id", "date"], ignore_index=True)
    assert got["units"].astype(np.int64).tolist() == want["units"].tolist()
    assert (got["date"].to_numpy() == want["date"].to_numpy()).all()
    prices = extract.read_snapshot(tmp_path / "snap", "prices")
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
    snap = extract.read_snapshot(tmp_path / "snap", "sales")
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
# Bad files: file, line and column named; nothing of the failing chunk written
# ----------------------------------------------------------------------------------------------

def test_missing_header_column_names_the_file_and_writes_nothing(pieces, tmp_path):
    folder = write_m5(tmp_path / "m5", pieces, wide=pieces["wide"].drop(columns="store_id"))
    url, engine = fresh(tmp_path)
    with pytest.raises(DataError) as err:
        m5import.import_m5(engine, folder)
    msg = str(err.value)
    assert msg.startswith(f"{SALES_CSV} line 1: missing column(s) store_id")
    assert "expected the header id, item_id, dept_id, cat_id, store_id, state_id, d_1, d_2, ..." in msg
    assert not sa.inspect(engine).get_table_names() or sum(counts(engine).values()) == 0


def test_negative_units_name_line_and_column_and_earlier_chunks_stay(pieces, m5_dir, tmp_path):
    wide = pieces["wide"].copy()
    wide.loc[7, "d_1207"] = -3  # 0-based row 7: line 9 of the CSV (header = line 1)
    folder = write_m5(tmp_path / "m5", pieces, wide=wide)
    url, engine = fresh(tmp_path)
    with pytest.raises(DataError) as err:
        m5import.import_m5(engine, folder, sales_chunk_rows=3)
    assert str(err.value) == f"{SALES_CSV} line 9, column d_1207: units must be a non-negative integer, got '-3'"
    # chunks of lines 2-4 and 5-7 are written, the chunk of lines 8-10 is not, nor anything after
    sales = table(engine, "sales", "store_id")
    written = set(zip(sales["store_id"], sales["item_id"]))
    assert written == set(zip(wide["store_id"][:6], wide["item_id"][:6]))
    assert len(sales) == 6 * 1913 and counts(engine)["sell_prices"] == 0
    # a re-import of the fixed file skips what is there and adds the rest
    summary = m5import.import_m5(engine, m5_dir)
    assert summary["already_present"]["sales"] == 6 * 1913 and summary["rows"]["sales"] == 4 * 1913
    assert counts(engine)["sales"] == 10 * 1913


def test_non_numeric_price_names_line_and_column(pieces, tmp_path):
    prices = pieces["prices"].astype({"sell_price": object})
    prices.loc[1500, "sell_price"] = "abc"  # line 1502
    folder = write_m5(tmp_path / "m5", pieces, prices=prices)
    url, engine = fresh(tmp_path)
    with pytest.raises(DataError) as err:
        m5import.import_m5(engine, folder, prices_chunk_rows=1000)
    assert str(err.value) == "sell_prices.csv line 1502, column sell_price: sell_price must be a positive number, got 'abc'"
    c = counts(engine)
    # sales complete; of the prices only the first chunk (lines 2-1001)
    assert c["sales"] == 10 * 1913 and c["sell_prices"] == 1000


def test_a_day_column_beyond_the_calendar_writes_nothing(pieces, tmp_path):
    wide = pd.concat([pieces["wide"], pd.DataFrame({"d_1970": 0}, index=pieces["wide"].index)], axis=1)
    folder = write_m5(tmp_path / "m5", pieces, wide=wide)
    url, engine = fresh(tmp_path)
    with pytest.raises(DataError, match=rf"^{SALES_CSV} line 1, column d_1970: day d_1970 is not in calendar.csv "
                                        r"\(which ends with d_1969 = 2016-06-19\)"):
        m5import.import_m5(engine, folder)
    assert not sa.inspect(engine).get_table_names() or sum(counts(engine).values()) == 0


def _set(frame, row, col, value):
    values = frame[col].to_numpy(dtype=object).copy()
    values[row] = value
    frame[col] = values
    return frame


BAD = {
    # name: (which piece, change, expected message)
    "fractional units": ("wide", lambda w: _set(w, 2, "d_5", "1.5"),
                         f"{SALES_CSV} line 4, column d_5: units must be a non-negative integer, got '1.5'"),
    "empty units": ("wide", lambda w: _set(w, 0, "d_1913", ""),
                    f"{SALES_CSV} line 2, column d_1913: units must be a non-negative integer, got an empty field"),
    "state of another store": ("wide", lambda w: _set(w, 6, "state_id", "CA"),
                               f"{SALES_CSV} line 8, column state_id: state_id 'CA' does not match store 'TX_1'"),
    "a series twice": ("wide", lambda w: pd.concat([w, w.iloc[[3]]], ignore_index=True),
                       f"{SALES_CSV} line 12, column id: series HOUSEHOLD_1_002_CA_2_validation appears twice (first on line 5)"),
    "unparsable date": ("calendar", lambda c: _set(c, 30, "date", "2011-02-31"),
                        "calendar.csv line 32, column date: date must be a date YYYY-MM-DD, got '2011-02-31'"),
    "week not in calendar": ("prices", lambda p: _set(p, 20, "wm_yr_wk", 11700),
                             "sell_prices.csv line 22, column wm_yr_wk: week 11700 is not in the calendar (weeks 11101..11621)"),
    "zero price": ("prices", lambda p: _set(p, 5, "sell_price", 0),
                   "sell_prices.csv line 7, column sell_price: sell_price must be a positive number, got '0'"),
    "unknown item": ("prices", lambda p: _set(p, 0, "item_id", "FOODS_3_999"),
                     "sell_prices.csv line 2, column item_id: item_id 'FOODS_3_999' is not in the items table"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_values_name_file_line_and_column(case, pieces, tmp_path):
    piece, change, message = BAD[case]
    folder = write_m5(tmp_path / "m5", pieces, **{piece: change(pieces[piece].copy())})
    url, engine = fresh(tmp_path)
    with pytest.raises(DataError) as err:
        m5import.import_m5(engine, folder)
    assert str(err.value).startswith(message)
    if piece == "wide" or piece == "calendar":
        # the failing sales chunk (one chunk here) or master file: no sales written
        assert not sa.inspect(engine).get_table_names() or counts(engine)["sales"] == 0


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def test_command_line_imports_and_prints_a_summary(m5_dir, tmp_path, capsys):
    url, engine = fresh(tmp_path)
    assert m5import.main(["--dir", str(m5_dir), "--url", url]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["rows"]["sales"] == 19130 and "100.0%" in err
    assert m5import.main(["--dir", str(tmp_path / "nowhere"), "--url", url]) == 1
    assert "does not exist" in capsys.readouterr().err
