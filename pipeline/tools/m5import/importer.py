"""``import_m5``: the files checked first, then one transaction that writes them all (see the package docstring)."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.core.errors import DataError
from pipeline.data import db
from pipeline.tools.m5import.calendar import read_calendar
from pipeline.tools.m5import.ids import read_sales_ids
from pipeline.tools.m5import.layout import (
    CALENDAR_FILE, DAY_COLUMN, PRICE_COLUMNS, PRICES_FILE, SALES_FILES, SALES_ID_COLUMNS, error_at,
)
from pipeline.tools.m5import.master import write_master
from pipeline.tools.m5import.scan import check_header, read_header, scan_csv
from pipeline.tools.m5import.stream import import_prices, import_sales
from pipeline.tools.target import engine_creating_file

# ~1 M long rows per sales chunk with the full 1,941 days; a few hundred MB at most in flight
SALES_CHUNK_ROWS = 500
PRICES_CHUNK_ROWS = 1_000_000

Progress = Callable[[float, str], None]


@contextlib.contextmanager
def one_transaction(conn: sa.Connection) -> Iterator[None]:
    """One transaction around everything the import does (DDL included); rolled back on any failure.

    SQLite: Python's sqlite3 (legacy transaction control) opens a transaction only before an
    INSERT/UPDATE/DELETE, so a CREATE TABLE or the reads before the first write would run outside
    it; ``BEGIN IMMEDIATE`` starts it now and takes the write lock at once, so no other writer
    can change the tables between the comparisons with existing rows and the writes.
    PostgreSQL: the five tables are locked against other writers (readers go on) for the same
    reason, once they exist.
    """
    with conn.begin():
        dbapi = conn.connection.driver_connection
        if conn.dialect.name == "sqlite" and not getattr(dbapi, "in_transaction", True):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        db.create_schema(conn)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE calendar, items, stores, sales, sell_prices IN SHARE ROW EXCLUSIVE MODE")
        yield


def table_has_rows(conn: sa.Connection, table: sa.Table) -> bool:
    return conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None


def sales_file(m5_dir: Path | str) -> Path:
    """The wide sales file of ``m5_dir``: the evaluation file if present, else the validation file."""
    for name in SALES_FILES:
        if (Path(m5_dir) / name).is_file():
            return Path(m5_dir) / name
    raise DataError(f"{m5_dir} holds neither {SALES_FILES[0]} nor {SALES_FILES[1]}")


def import_m5(
    url_or_engine: str | sa.Engine,
    m5_dir: Path | str,
    progress: Progress | None = None,
    *,
    sales_chunk_rows: int = SALES_CHUNK_ROWS,
    prices_chunk_rows: int = PRICES_CHUNK_ROWS,
) -> dict:
    """Import the Kaggle M5 files of ``m5_dir`` into the database (a URL or an engine).

    Creates the schema if missing (in the import's transaction). ``progress(done_fraction,
    message)`` is called after the master tables and after every chunk. ``sales_chunk_rows`` lines of the wide sales file
    (series) and ``prices_chunk_rows`` lines of sell_prices.csv are held and written at a time.

    Returns ``{"rows": {table: rows added}, "already_present": {table: rows skipped},
    "prices_not_in_sales_file": {"rows", "items", "stores"}, "sales_file", "series",
    "first_date", "last_date", "seconds", "rows_per_second"}`` (``prices_not_in_sales_file``:
    sell_prices.csv lines skipped because the sales file lacks their item or store, and how many
    such items and stores; dates as ``datetime.date``: the first and last day of the sales file;
    ``rows_per_second``: long sales rows plus price lines read, added or not, per second of the
    whole import). Importing the same files again returns zeros in ``rows``. Raises DataError
    (file, line, column) for bad input, and then the database is as it was (one transaction).
    """
    if sales_chunk_rows < 1 or prices_chunk_rows < 1:
        raise ValueError(f"chunk sizes must be positive, got {sales_chunk_rows} and {prices_chunk_rows}")
    began = time.perf_counter()
    report = progress or (lambda fraction, message: None)
    m5_dir = Path(m5_dir)
    if not m5_dir.is_dir():
        raise DataError(f"M5 folder {m5_dir} does not exist")
    cal_path, prices_path, sales_path = m5_dir / CALENDAR_FILE, m5_dir / PRICES_FILE, sales_file(m5_dir)
    for path in (cal_path, prices_path):
        if not path.is_file():
            raise DataError(f"{m5_dir} has no {path.name}")

    # every check that needs no database first: a bad file writes nothing, and is found in seconds
    sales_header = read_header(sales_path)
    check_header(sales_path, sales_header, SALES_ID_COLUMNS, extra=lambda c: bool(DAY_COLUMN.fullmatch(c)))
    prices_header = read_header(prices_path)
    check_header(prices_path, prices_header, PRICE_COLUMNS)
    calendar, day_dates = read_calendar(cal_path)
    day_cols = [c for c in sales_header if DAY_COLUMN.fullmatch(c)]
    if not day_cols:
        raise DataError(f"{sales_path.name} line 1: no day columns d_1, d_2, ...")
    for c in day_cols:
        if c not in day_dates.index:
            last = day_dates.index[int(np.argmax(day_dates.to_numpy()))]
            raise error_at(sales_path, 1, c, f"day {c} is not in {CALENDAR_FILE} (which ends with {last} = "
                           f"{pd.Timestamp(day_dates.max()).date()})")
    scan_csv(sales_path, sales_header, digits_only=lambda c: bool(DAY_COLUMN.fullmatch(c)))
    ids = read_sales_ids(sales_path)
    n_prices = scan_csv(prices_path, prices_header)
    n_sales = len(ids) * len(day_cols)
    total = max(1, n_sales + n_prices)
    report(0.0, "files checked")

    engine = url_or_engine if isinstance(url_or_engine, sa.Engine) else engine_creating_file(url_or_engine)
    new_file = None
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        new_file = None if Path(engine.url.database).expanduser().exists() else Path(engine.url.database).expanduser()
    try:
        with engine.connect() as conn, one_transaction(conn):
            sales_had_rows = table_has_rows(conn, db.sales)
            rows = write_master(conn, calendar, cal_path, ids, sales_path)
            report(0.0, f"calendar, items, stores: {sum(rows.values())} rows to add")

            done = 0

            def step(n: int, message: str) -> None:
                nonlocal done
                done += n
                report(min(1.0, done / total), message)

            skipped = {"calendar": len(calendar) - rows["calendar"],
                       "items": ids["item_id"].nunique() - rows["items"],
                       "stores": ids["store_id"].nunique() - rows["stores"]}
            # a fresh table cannot hold the file's series, and the first pass proved each series is
            # on one line only: no existing-row lookups needed then (the common, first import)
            rows["sales"], skipped["sales"] = import_sales(conn, sales_path, sales_header, day_dates, ids,
                                                           sales_chunk_rows, sales_had_rows, step)
            cal = pd.read_sql(sa.select(db.calendar.c.date, db.calendar.c.wm_yr_wk), conn)
            # a price is known from the first day of its week on (the world's convention too)
            week_start = pd.to_datetime(cal["date"]).astype("datetime64[s]").groupby(cal["wm_yr_wk"].astype(np.int64)).min()
            rows["sell_prices"], skipped["sell_prices"], outside = import_prices(
                conn, prices_path, week_start, ids, prices_chunk_rows, step)
            report(min(1.0, done / total), "committing")
    except BaseException:
        # rolled back; a SQLite file this call created is left empty: remove it, as it was not there
        if new_file is not None and not isinstance(url_or_engine, sa.Engine):
            engine.dispose()
            with contextlib.suppress(OSError):
                if new_file.stat().st_size == 0:
                    new_file.unlink()
        raise
    finally:
        if not isinstance(url_or_engine, sa.Engine):
            engine.dispose()
    seconds = time.perf_counter() - began
    report(1.0, "done")
    return {
        "rows": rows,
        "already_present": skipped,
        "prices_not_in_sales_file": outside,
        "sales_file": sales_path.name,
        "series": len(ids),
        "first_date": pd.Timestamp(day_dates.loc[day_cols].min()).date(),
        "last_date": pd.Timestamp(day_dates.loc[day_cols].max()).date(),
        "seconds": round(seconds, 2),
        "rows_per_second": round((n_sales + n_prices) / seconds) if seconds > 0 else None,
    }
