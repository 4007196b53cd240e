"""Values arrive in the snapshot exactly or stop it with a message naming the row: no narrowing,
no truncation, no wrap-around, whichever reader (ADBC or SQLAlchemy) serves the rows. A value the
snapshot can hold but that is implausible (a negative count, a price of zero) arrives as it is and
stops the chain at CheckSnapshot instead, naming the row: one validation boundary."""
from __future__ import annotations

import datetime as dt
import sqlite3

import pandas as pd
import pytest

from pipeline.core import bounds
from pipeline.stages import extract, quality
from pipeline.data import source, storage
from pipeline.core.errors import DataError
from tests.conftest import RUN_DATE

DAY = "2016-05-20"
REC = "2016-05-21 10:00:00.000000"


def _loose_tables(engine) -> None:
    """Recreate sales and sell_prices without NOT NULL: a source database the pipeline did not create."""
    path = engine.url.database
    with sqlite3.connect(path) as conn:
        for table, cols in (("sales", "store_id, item_id, date, units, recorded_at"),
                            ("sell_prices", "store_id, item_id, wm_yr_wk, sell_price, recorded_at")):
            conn.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
            kinds = {"units": "INTEGER", "sell_price": "FLOAT", "wm_yr_wk": "INTEGER", "date": "DATE",
                     "recorded_at": "DATETIME", "store_id": "VARCHAR(10)", "item_id": "VARCHAR(40)"}
            conn.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {kinds[c]}' for c in cols.split(', '))})")
            conn.execute(f"INSERT INTO {table} SELECT {cols} FROM {table}_old")
            conn.execute(f"DROP TABLE {table}_old")
            conn.execute(f"CREATE INDEX ix_{table}_recorded_at ON {table} (recorded_at)")


def _insert(engine, table: str, value) -> None:
    with sqlite3.connect(engine.url.database) as conn:
        if table == "sales":
            conn.execute("INSERT INTO sales VALUES ('TX_1', 'FOODS_1_001', ?, ?, ?)", (DAY, value, REC))
        else:
            conn.execute("INSERT INTO sell_prices VALUES ('TX_1', 'FOODS_1_001', 11616, ?, ?)", (value, REC))


def _snapshot(engine, tmp_path, name="snap"):
    out = tmp_path / name
    with storage.atomic_dir(out) as tmp:
        extract.extract_snapshot(engine, RUN_DATE, tmp)
    return out


def _refused(small_db, tmp_path, table: str, value) -> str:
    """The message of the snapshot refusing a row of ``table`` holding ``value``; nothing is written."""
    _, engine = small_db
    _loose_tables(engine)
    _insert(engine, table, value)
    with pytest.raises(DataError) as info:
        _snapshot(engine, tmp_path)
    assert not (tmp_path / "snap").exists()
    return str(info.value)


@pytest.fixture(params=["adbc", "sqlalchemy"])
def reader(request, monkeypatch):
    if request.param == "sqlalchemy":
        def no_adbc(engine):
            raise source.NoAdbc("disabled by the test")

        monkeypatch.setattr(source, "adbc_connect", no_adbc)
    return request.param


@pytest.mark.parametrize("units", [0, 65_541, 70_000, 1_000_000, bounds.MAX_UNITS])
def test_large_units_arrive_exactly(small_db, tmp_path, reader, units):
    _, engine = small_db
    _insert(engine, "sales", units)
    sales = pd.read_parquet(_snapshot(engine, tmp_path) / "sales.parquet")
    row = sales[(sales.store_id == "TX_1") & (sales.item_id == "FOODS_1_001") & (sales.date == DAY)]
    assert row["units"].tolist() == [units]
    assert sales["units"].dtype.itemsize >= 4


@pytest.mark.parametrize("units", [-1, -70_000, -bounds.MAX_UNITS])
def test_negative_units_arrive_exactly_for_check_snapshot_to_stop(small_db, tmp_path, reader, units):
    """A snapshot holds a negative count exactly; whether it may be negative is CheckSnapshot's negative_units."""
    _, engine = small_db
    _insert(engine, "sales", units)
    out = _snapshot(engine, tmp_path)
    sales = pd.read_parquet(out / "sales.parquet")
    row = sales[(sales.store_id == "TX_1") & (sales.item_id == "FOODS_1_001") & (sales.date == DAY)]
    assert row["units"].tolist() == [units]
    message = _stopped_at_check_snapshot(out, "negative_units")
    assert f"units={units:,}" in message or f"units={units}" in message, message


@pytest.mark.parametrize("units, expected", [
    (bounds.MAX_UNITS + 1, "whole numbers up to"), (1_000_000_000, "whole numbers up to"),
    (-bounds.MAX_UNITS - 1, "whole numbers up to"), (-(10**15), "whole numbers up to"),
    (2.5, "whole numbers up to"), (-2.5, "whole numbers up to"), (None, "whole numbers up to"),
    ("abc", "stored as numbers"), (float("nan"), "whole numbers up to"), (10**15, "whole numbers up to"),
])
def test_units_that_cannot_arrive_exactly_stop_the_snapshot_naming_the_row(small_db, tmp_path, reader, units,
                                                                           expected):
    message = _refused(small_db, tmp_path, "sales", units)
    assert expected in message and "units" in message, message
    for part in ("store_id=TX_1", "item_id=FOODS_1_001", "2016-05-20", "2016-05-21 10:00:00"):
        assert part in message, message


@pytest.mark.parametrize("price, expected", [
    (None, "must be a number"), ("cheap", "stored as numbers"), (float("nan"), "must be a number"),
    (float("inf"), "must be a number"), (float("-inf"), "must be a number"),
])
def test_prices_a_snapshot_cannot_hold_stop_it_naming_the_row(small_db, tmp_path, reader, price, expected):
    message = _refused(small_db, tmp_path, "sell_prices", price)
    assert expected in message and "sell_price" in message, message
    assert "store_id=TX_1" in message and "item_id=FOODS_1_001" in message and "11616" in message, message


@pytest.mark.parametrize("price, check", [(0.0, "price_not_positive"), (-1.5, "price_not_positive"),
                                          (-0.0, "price_not_positive"), (1_000_000.0, "price_above_max")])
def test_implausible_prices_arrive_exactly_for_check_snapshot_to_stop(small_db, tmp_path, reader, price, check):
    _, engine = small_db
    _insert(engine, "sell_prices", price)
    out = _snapshot(engine, tmp_path)
    prices = pd.read_parquet(out / "prices.parquet")
    row = prices[(prices.store_id == "TX_1") & (prices.item_id == "FOODS_1_001") & (prices.wm_yr_wk == 11616)]
    assert row["sell_price"].tolist() == [price]
    message = _stopped_at_check_snapshot(out, check)
    assert "wm_yr_wk=11,616" in message or "wm_yr_wk=11616" in message, message


def _stopped_at_check_snapshot(out, check: str) -> str:
    """CheckSnapshot's error for ``out``: ``check`` failed, naming the row of TX_1 / FOODS_1_001."""
    report = quality.run_checks(out, RUN_DATE)
    assert check in [c.name for c in report.failed], report.to_markdown()
    with pytest.raises(DataError) as info:
        report.raise_if_failed()
    message = report.check(check).message
    assert message in str(info.value) and "store_id=TX_1" in message and "item_id=FOODS_1_001" in message, message
    return message


def test_text_that_spells_a_number_is_refused_too(small_db, tmp_path, reader):
    """In a column without a numeric type SQLite keeps '7' as text; the driver then spells the batch's
    doubles with 6 digits, so nothing in that batch can be taken as exact."""
    _, engine = small_db
    with sqlite3.connect(engine.url.database) as conn:
        conn.execute("ALTER TABLE sales RENAME TO sales_old")
        conn.execute("CREATE TABLE sales (store_id, item_id, date, units, recorded_at)")
        conn.execute("INSERT INTO sales SELECT * FROM sales_old")
        conn.execute("DROP TABLE sales_old")
        conn.execute("CREATE INDEX ix_sales_recorded_at ON sales (recorded_at)")
        conn.execute("INSERT INTO sales VALUES ('TX_1', 'FOODS_1_001', ?, '7', ?)", (DAY, REC))
    with pytest.raises(DataError, match="units must be stored as numbers, the column holds text") as info:
        _snapshot(engine, tmp_path)
    assert "units='7'" in str(info.value) and "store_id=TX_1" in str(info.value)


def test_prices_are_kept_as_recorded(small_db, tmp_path, reader):
    _, engine = small_db
    _insert(engine, "sell_prices", 1234.5678901)
    prices = pd.read_parquet(_snapshot(engine, tmp_path) / "prices.parquet")
    row = prices[(prices.store_id == "TX_1") & (prices.item_id == "FOODS_1_001") & (prices.wm_yr_wk == 11616)]
    assert row["sell_price"].tolist() == [1234.5678901]


def test_a_bad_value_recorded_after_the_run_date_does_not_stop_it(small_db, tmp_path):
    _, engine = small_db
    _loose_tables(engine)
    with sqlite3.connect(engine.url.database) as conn:
        conn.execute("INSERT INTO sales VALUES ('TX_1', 'FOODS_1_001', ?, 2.5, ?)",
                     (DAY, f"{RUN_DATE + dt.timedelta(days=1)} 10:00:00.000000"))
    assert (_snapshot(engine, tmp_path) / "sales.parquet").exists()


@pytest.mark.parametrize("column, value", [("year", 70000), ("wday", 2.5), ("snap_CA", "yes"), ("wm_yr_wk", None)])
def test_a_calendar_value_its_column_cannot_hold_stops_the_snapshot(small_db, tmp_path, column, value):
    _, engine = small_db
    with sqlite3.connect(engine.url.database) as conn:
        if value is None:  # the pipeline's schema says NOT NULL; a database made elsewhere may not
            conn.execute("ALTER TABLE calendar RENAME TO calendar_old")
            conn.execute("CREATE TABLE calendar AS SELECT * FROM calendar_old")
            conn.execute("DROP TABLE calendar_old")
        conn.execute(f"UPDATE calendar SET {column} = ? WHERE date = '2016-05-20'", (value,))
    with pytest.raises(DataError) as info:
        _snapshot(engine, tmp_path)
    assert f"calendar: {column} must be a whole number" in str(info.value) and "date=2016-05-20" in str(info.value)


def test_an_id_missing_from_its_master_table_arrives_for_check_snapshot_to_stop(small_db, tmp_path, reader):
    _, engine = small_db
    with sqlite3.connect(engine.url.database) as conn:
        conn.execute("INSERT INTO sales VALUES ('TX_1', 'NOPE_1_001', ?, 4, ?)", (DAY, REC))
        conn.execute("INSERT INTO sell_prices VALUES ('XX_9', 'FOODS_1_001', 11616, 1.25, ?)", (REC,))
    out = _snapshot(engine, tmp_path)
    sales, prices = pd.read_parquet(out / "sales.parquet"), pd.read_parquet(out / "prices.parquet")
    assert sales.loc[sales.item_id == "NOPE_1_001", "units"].tolist() == [4]
    assert prices.loc[prices.store_id == "XX_9", "sell_price"].tolist() == [1.25]
    report = quality.run_checks(out, RUN_DATE)
    message = report.check("unknown_ids").message
    assert not report.check("unknown_ids").passed and "NOPE_1_001" in message and "XX_9" in message, message
