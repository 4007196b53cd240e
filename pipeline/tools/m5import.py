"""Import the Kaggle M5 files into the source database (schema of :mod:`pipeline.data.db`).

``import_m5(url_or_engine, m5_dir)`` reads from ``m5_dir``:

* ``calendar.csv`` -> ``calendar`` (its ``d`` column maps ``d_N`` to a date and is not stored);
* ``sales_train_evaluation.csv`` if present, else ``sales_train_validation.csv`` (wide: one line
  per series, one ``d_N`` column per day) -> ``items``, ``stores`` and ``sales`` (long, one row per
  series and day, ``recorded_at`` = 23:00 of the sale's day, "end of the day", as the synthetic
  world of :mod:`pipeline.tools.world` does);
* ``sell_prices.csv`` -> ``sell_prices`` (``recorded_at`` = 00:00 of the first calendar date of its
  Walmart week). The sales file decides what is imported: a price line whose item or store the
  sales file lacks is checked like any other and then skipped, and counted in the summary
  (``prices_not_in_sales_file``): the full price file with a subset of the series is normal. A
  price file covering only some stores is fine too: the others get no price rows (price features
  are then missing for them, never invented).

Order and atomicity
    First, without a database: every header, the bytes of all three files (plain UTF-8 text, one
    row per line with the header's number of fields, a line break at the end: see
    :mod:`pipeline.tools.m5files`), the whole calendar (including that its ``d_N`` labels and dates
    agree) and the id columns of the sales file. Then one transaction holds the whole import:
    the schema if missing, ``calendar``, ``items``, ``stores`` (keys not present yet), then
    ``sales`` and ``sell_prices``, streamed: each chunk of lines is parsed, checked, turned long
    (vectorised) and written inside that transaction, so memory stays bounded by the chunk size.
    Any failure (a bad value in the last price line, a conflict with an existing row, the
    database refusing a row, an interrupt) rolls the transaction back: the database is exactly as
    it was before (a SQLite file the import created is removed again). On SQLite the transaction
    starts with ``BEGIN IMMEDIATE`` (other writers wait, readers go on; in rollback-journal mode
    readers are blocked while the transaction spills pages to the file and commits); on
    PostgreSQL the five tables are locked against other writers for the import's duration.

Idempotency
    Importing the same files twice adds nothing. Master keys (date, item_id, store_id) already
    present are skipped if their attributes are equal and are a DataError otherwise. For a sales /
    price row the importer looks, in the import's transaction, at the rows already in the table
    for the chunk's series (rows committed before, and rows of earlier chunks of this import): a
    key with a row recorded at the very instant the importer would record it, with the same value,
    is skipped; any other existing row of the key (another value, or only rows recorded at other
    instants) is a DataError: the tables are append-only and a correction is a new row with a
    later ``recorded_at``, which this importer never invents (the wall clock must not decide what
    the database holds).

Values: exact or refused
    Units are the digits 0-9 only (no sign, point, exponent or blank), 0..``MAX_UNITS`` =
    2,147,483,647 (``sales.units`` is a 32-bit Integer). Prices are plain decimals (``9.58``) in
    (0, ``MAX_SELL_PRICE``] = (0, 100,000] a unit (above that is a typo, not a price: store CA_1's
    prices are 0.01..30.98), parsed exactly; empty, text, ``nan``, ``inf``, zero and negative are
    refused.
    Ids must have M5's shape (item ``HOBBIES_1_001``, store ``CA_1``) and fit their columns. A
    file cut short (a line with fewer fields, no line break at the end), not UTF-8 (UTF-16,
    Latin-1 bytes), compressed (a gzip file named .csv) or a calendar whose labels and dates
    disagree (d_N not N - 1 days after d_1, a label twice, a day missing) is refused, naming the
    line.

Speed and memory
    Memory is bounded by the chunk sizes, not the file: about 0.4 GB for a first import with the
    defaults (500 series x 1,941 days = ~1 M long rows per sales chunk, 1 M price lines), about
    0.5 GB for a re-import. On SQLite a first import writes ~200 k rows/s (its B-trees, not the
    parsing, are the limit); the full M5 (59 M sales + 6.8 M price rows) takes minutes. The byte
    checks read each file once more (a few seconds per 100 MB). A first import into an empty ``sales``
    table needs no look-ups of existing rows; a re-import reads the existing rows of each chunk's
    series (no index on (store_id, item_id): one table scan per chunk), so it is slower than the
    first import.

Errors (``DataError``) name the file, the 1-based line (header = line 1; the Kaggle files have no
quoted line breaks, so a CSV row is one line) and the column, e.g.
``sales_train_evaluation.csv line 1532, column d_1207: units must be a non-negative integer, got '-3'``.

Command line: ``python -m pipeline.tools.m5import --dir M5_DIR [--url URL]``.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.data import db
from pipeline.core.errors import DataError
from pipeline.tools.m5files import (  # noqa: F401  (re-exported: the file layout and limits are part of this module's interface)
    CALENDAR_COLUMNS, CALENDAR_FILE, MAX_SELL_PRICE, MAX_UNITS, PRICE_COLUMNS, PRICE_DTYPES, PRICES_FILE,
    SALES_FILES, SALES_ID_COLUMNS, _DAY_COLUMN, _at, check_header, check_prices, chunks, diagnose_units,
    read_calendar, read_header, read_sales_ids, scan_csv, units_message,
)

# ~1 M long rows per sales chunk with the full 1,941 days; a few hundred MB at most in flight
SALES_CHUNK_ROWS = 500
PRICES_CHUNK_ROWS = 1_000_000
SALE_RECORDED_AT = np.timedelta64(23 * 3600, "s")  # end of the sale's day, as pipeline.tools.world
# ids per IN list (rendered as literals, so no bound-parameter limit applies): one list, hence
# one scan of the table, per chunk; the cap only bounds the statement's length
_IN_BATCH = 30_000
# rows per db.bulk_insert call inside the import's transaction: its SQLite path holds a Python
# object per value, so this (not the chunk size) bounds that memory
_WRITE_ROWS = 250_000

Progress = Callable[[float, str], None]


def _batches(values: list, size: int) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


# ----------------------------------------------------------------------------------------------
# Master tables: insert only new keys, refuse changed attributes
# ----------------------------------------------------------------------------------------------

def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Elementwise equality where two missing values are equal."""
    a, b = a.astype(object), b.astype(object)
    return ((a == b) | (a.isna() & b.isna())).to_numpy(dtype=bool)


def _new_master_rows(conn: sa.Connection, table: sa.Table, key: str, frame: pd.DataFrame,
                     where: Callable[[pd.DataFrame, int, str], DataError]) -> pd.DataFrame:
    """Rows of ``frame`` whose ``key`` is not in ``table``; an existing key with other attributes is an error.

    ``where(frame, i, column)`` builds the DataError for row i (so it can name the file and line).
    """
    existing = pd.read_sql(sa.select(table), conn)
    if key == "date":
        existing["date"] = pd.to_datetime(existing["date"]).astype("datetime64[s]")
    if existing.empty:
        return frame
    both = frame.reset_index(drop=True).merge(existing, on=key, how="left", suffixes=("", "__db"), indicator=True)
    present = (both["_merge"] == "both").to_numpy()
    for col in existing.columns:
        if col == key:
            continue
        differs = present & ~_same(both[col], both[f"{col}__db"])
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            raise where(both, i, col)
    return frame[~present]


def _write_master(conn: sa.Connection, calendar: pd.DataFrame, cal_path: Path, ids: pd.DataFrame, sales_path: Path) -> dict:
    """Write the new calendar, items and stores rows in the caller's transaction; returns rows added per table."""
    items = ids.drop_duplicates("item_id")[["line", "item_id", "dept_id", "cat_id"]]
    stores = ids.drop_duplicates("store_id")[["line", "store_id", "state_id"]]
    cal = calendar.assign(line=np.arange(2, 2 + len(calendar)))

    def conflict(path: Path, table: str, key: str):
        def where(both: pd.DataFrame, i: int, col: str) -> DataError:
            k = both[key].iloc[i]
            k = k.date() if isinstance(k, pd.Timestamp) else k
            return _at(path, int(both["line"].iloc[i]), col,
                       f"the {table} table already holds {col}={both[f'{col}__db'].iloc[i]!r} for {key} {k}, "
                       f"the file says {both[col].iloc[i]!r}; the database holds other data than these files")
        return where

    added = {}
    for name, table, key, frame, path in (("calendar", db.calendar, "date", cal, cal_path),
                                          ("items", db.items, "item_id", items, sales_path),
                                          ("stores", db.stores, "store_id", stores, sales_path)):
        new = _new_master_rows(conn, table, key, frame, conflict(path, name, key))
        added[name] = db.bulk_insert(conn, table, new.drop(columns="line"))
    return added


# ----------------------------------------------------------------------------------------------
# Streamed tables: which rows of a chunk are new
# ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored as it was on exit)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _parse_times(values: np.ndarray, unit: str) -> np.ndarray:
    """Dates or timestamps as the backend returns them (ISO text, date/datetime objects) -> int64 in ``unit``.

    Few distinct values (one per day): parse the distinct ones, then index.
    """
    codes, uniques = pd.factorize(values)
    parsed = pd.to_datetime(pd.Index(uniques, dtype=object)).to_numpy().astype(f"datetime64[{unit}]").astype(np.int64)
    return parsed[codes]


def _existing_rows(conn: sa.Connection, table: sa.Table, third: str, value: str,
                   store_ix: pd.Index, item_ix: pd.Index) -> pd.DataFrame:
    """Rows of ``table`` for the given stores and items (a superset of the chunk's series), integer-keyed.

    Columns ``s``, ``i`` (positions in ``store_ix``, ``item_ix``), ``k`` (the date as days since
    1970, or wm_yr_wk), ``t`` (recorded_at as seconds since 1970) and ``v`` (the value). Read with
    a plain DB-API cursor in slices and keyed at once: a re-import of the full M5 reads ~60 M rows
    and SQLAlchemy's per-row result processing would double that time.
    """
    cols = [table.c.store_id, table.c.item_id, table.c[third], table.c[value], table.c.recorded_at]
    parts = []
    for batch in _batches(list(item_ix), _IN_BATCH):
        query = sa.select(*cols).where(table.c.store_id.in_(list(store_ix)), table.c.item_id.in_(batch))
        # the ids are quoted by the dialect's own literal rendering
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        cursor = conn.connection.cursor()  # the same DB-API connection: inside the chunk's transaction
        try:
            cursor.execute(sql)
            # millions of short-lived row tuples trigger the cyclic GC over and over (a third of
            # the read time); none of them is in a cycle, so it is paused while they are keyed
            with _gc_paused():
                while rows := cursor.fetchmany(_WRITE_ROWS):
                    store, item, key, val, rec = (np.array(c, dtype=object) for c in zip(*rows))
                    del rows
                    parts.append(pd.DataFrame({
                        "s": store_ix.get_indexer(store),
                        "i": item_ix.get_indexer(item),
                        "k": _parse_times(key, "D") if third == "date" else key.astype(np.int64),
                        "t": _parse_times(rec, "s"),
                        "v": val.astype(np.float64),
                    }))
        finally:
            cursor.close()
    if not parts:
        return pd.DataFrame({c: np.array([], dtype=np.int64) for c in "sikt"} | {"v": np.array([], dtype=np.float64)})
    return pd.concat(parts, ignore_index=True)


def _new_rows(conn: sa.Connection, table: sa.Table, third: str, value: str, long: pd.DataFrame,
              where: Callable[[int], tuple[int, str]], path: Path) -> np.ndarray:
    """Boolean mask of the rows of ``long`` to write; raises DataError on a conflicting existing row.

    ``long`` has store_id, item_id (categoricals of the chunk's ids only), ``third`` (date or
    wm_yr_wk), ``value`` and recorded_at. A row is skipped when its key has a row recorded at the
    same instant with the same value; it is an error when its key has any other row (see the
    module docstring). ``where(i)`` gives (line, column) of row i for the message.
    """
    store_ix = pd.Index([str(s) for s in long["store_id"].cat.categories], dtype=object)
    item_ix = pd.Index([str(s) for s in long["item_id"].cat.categories], dtype=object)
    old_k = _existing_rows(conn, table, third, value, store_ix, item_ix)
    if old_k.empty:
        return np.ones(len(long), dtype=bool)
    # integer keys on both sides: merges on codes are fast and dtype-proof
    new = pd.DataFrame({
        "s": long["store_id"].cat.codes.to_numpy(dtype=np.int64),
        "i": long["item_id"].cat.codes.to_numpy(dtype=np.int64),
        "k": (long[third].to_numpy().astype("datetime64[D]").astype(np.int64) if third == "date"
              else long[third].to_numpy(dtype=np.int64)),
        "t": long["recorded_at"].to_numpy().astype("datetime64[s]").astype(np.int64),
        "v": long[value].to_numpy(dtype=np.float64),
    })
    new["pos"] = np.arange(len(new))
    seen = new.merge(old_k[["s", "i", "k"]].drop_duplicates(), on=["s", "i", "k"], how="inner")["pos"].to_numpy()
    if not len(seen):
        return np.ones(len(long), dtype=bool)
    at_instant = new.merge(old_k.drop_duplicates(["s", "i", "k", "t"]), on=["s", "i", "k", "t"], how="inner", suffixes=("", "_db"))
    same = at_instant.loc[at_instant["v"] == at_instant["v_db"], "pos"].to_numpy()
    # masks, not np.setdiff1d: that sorts/hashes millions of positions for nothing
    skip = np.zeros(len(long), dtype=bool)
    skip[same] = True
    conflict = np.zeros(len(long), dtype=bool)
    conflict[seen] = True
    bad = np.flatnonzero(conflict & ~skip)
    if len(bad):
        i = int(bad[0])
        line, column = where(i)
        row = long.iloc[i]
        key = f"store_id={row['store_id']} item_id={row['item_id']} {third}=" + (
            str(pd.Timestamp(row[third]).date()) if third == "date" else str(row[third]))
        here = at_instant[at_instant["pos"] == i]
        shown = lambda v: f"{v:g}" if value == "sell_price" else str(int(v))  # noqa: E731
        if len(here):
            what = f"already holds {value}={shown(here['v_db'].iloc[0])} for {key}, the file says {shown(row[value])}"
        else:
            o = old_k[(old_k["s"] == new["s"].iloc[i]) & (old_k["i"] == new["i"].iloc[i]) & (old_k["k"] == new["k"].iloc[i])].iloc[0]
            what = (f"already holds {value}={shown(o['v'])} for {key} recorded at {pd.Timestamp(np.datetime64(int(o['t']), 's'))}, "
                    f"not at {pd.Timestamp(row['recorded_at'])} where this import records it")
        raise _at(path, line, column, f"the {table.name} table {what}; import corrections as new rows "
                  "with a later recorded_at instead")
    return ~skip


def _write(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, keep: np.ndarray) -> int:
    """Append the rows of ``frame`` where ``keep``, in slices, inside the caller's transaction."""
    if not keep.all():
        frame = frame[keep]
    return sum(db.bulk_insert(conn, table, frame.iloc[a:a + _WRITE_ROWS]) for a in range(0, len(frame), _WRITE_ROWS))


# ----------------------------------------------------------------------------------------------
# The wide sales file
# ----------------------------------------------------------------------------------------------

def _import_sales(conn: sa.Connection, path: Path, header: list[str], day_dates: pd.Series, ids: pd.DataFrame,
                  chunk_rows: int, check_existing: bool, report: Callable[[int, str], None]) -> tuple[int, int]:
    """Stream the wide sales file into ``sales``; returns (rows added, rows already present)."""
    day_cols = [c for c in header if _DAY_COLUMN.fullmatch(c)]
    dates = day_dates.loc[day_cols].to_numpy().astype("datetime64[s]")
    recorded = dates + SALE_RECORDED_AT
    stores = sorted(ids["store_id"].unique())
    items = sorted(ids["item_id"].unique())
    # int64: pandas parses to it natively (int32 costs a cast per column and chunk)
    dtypes = {**{c: str for c in SALES_ID_COLUMNS}, **{c: "int64" for c in day_cols}}
    n_days = len(day_cols)
    added = skipped = 0
    for first_line, chunk in chunks(path, dtypes, chunk_rows, diagnose_units(path, day_cols)):
        # the id columns were checked in the first pass; a file changed since then is caught here
        expect = ids.iloc[first_line - 2:first_line - 2 + len(chunk)]
        if len(expect) != len(chunk) or not ((chunk["item_id"].to_numpy(dtype=object) == expect["item_id"].to_numpy())
                                             & (chunk["store_id"].to_numpy(dtype=object) == expect["store_id"].to_numpy())).all():
            raise DataError(f"{path.name} changed while it was being imported (lines {first_line}.. differ from the first pass)")
        units = chunk[day_cols].to_numpy(dtype=np.int64)
        # scan_csv let digits only through; what int64 holds but sales.units (32-bit) does not is refused
        wrong = (units < 0) | (units > MAX_UNITS)
        if wrong.any():
            r, c = divmod(int(np.flatnonzero(wrong.reshape(-1))[0]), n_days)
            raise _at(path, first_line + r, day_cols[c], units_message(str(units[r, c])))
        n = len(chunk)
        # wide -> long without a Python loop, day-major (all series of the chunk for day 1, then
        # day 2, ...): rows of one recorded_at are then written together, which keeps the inserts
        # into the recorded_at index local (twice as fast on SQLite as series-major order)
        store_codes = pd.Index(stores).get_indexer(chunk["store_id"].astype(object))
        item_codes = pd.Index(items).get_indexer(chunk["item_id"].astype(object))
        long = pd.DataFrame({
            "store_id": pd.Categorical.from_codes(np.tile(store_codes, n_days), categories=stores),
            "item_id": pd.Categorical.from_codes(np.tile(item_codes, n_days), categories=items),
            "date": np.repeat(dates, n),
            "units": units.T.reshape(-1),
            "recorded_at": np.repeat(recorded, n),
        })
        if check_existing:
            used = long.assign(store_id=long["store_id"].cat.remove_unused_categories(),
                               item_id=long["item_id"].cat.remove_unused_categories())
            keep = _new_rows(conn, db.sales, "date", "units", used,
                             lambda i: (first_line + i % n, day_cols[i // n]), path)
        else:
            keep = np.ones(len(long), dtype=bool)
        added += _write(conn, db.sales, long, keep)
        skipped += int((~keep).sum())
        report(n * n_days, f"{path.name}: through line {first_line + n - 1}")
    return added, skipped


# ----------------------------------------------------------------------------------------------
# sell_prices.csv
# ----------------------------------------------------------------------------------------------

def _import_prices(conn: sa.Connection, path: Path, week_start: pd.Series, ids: pd.DataFrame, chunk_rows: int,
                   report: Callable[[int, str], None]) -> tuple[int, int, dict]:
    """Stream ``sell_prices.csv`` into ``sell_prices``; returns (rows added, rows already present, lines skipped).

    Every line is checked; lines of an item or a store that the sales file lacks are then skipped
    (importing a subset of the series with the full price file is normal) and counted:
    ``{"rows": lines, "items": distinct such items, "stores": distinct such stores}``.
    """
    stores = sorted(ids["store_id"].unique())
    items = sorted(ids["item_id"].unique())
    store_ix, item_ix = pd.Index(stores, dtype=object), pd.Index(items, dtype=object)
    weeks = pd.Index(week_start.index)
    added = skipped = 0
    other_items: set[str] = set()
    other_stores: set[str] = set()
    outside = 0
    for first_line, chunk in chunks(path, PRICE_DTYPES, chunk_rows, lambda raw, first: None):
        n = len(chunk)
        checked = check_prices(path, chunk, first_line, weeks)
        (s_codes, s_texts), (i_codes, i_texts) = checked["store_id"], checked["item_id"]
        week, price = checked["wm_yr_wk"], checked["sell_price"]
        # the same key twice in the file, known series or not (across chunks: see _new_rows)
        dup = pd.DataFrame({"s": s_codes, "i": i_codes, "w": week}).duplicated().to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise _at(path, first_line + i, "wm_yr_wk", f"store {s_texts[s_codes[i]]} item {i_texts[i_codes[i]]} "
                      f"week {week[i]} appears twice in the file (an earlier line has the same key)")
        store_codes = store_ix.get_indexer(pd.Index(s_texts, dtype=object))[s_codes]
        item_codes = item_ix.get_indexer(pd.Index(i_texts, dtype=object))[i_codes]
        known = (store_codes >= 0) & (item_codes >= 0)
        if not known.all():
            other_stores.update(s_texts[c] for c in np.unique(s_codes[store_codes < 0]))
            other_items.update(i_texts[c] for c in np.unique(i_codes[item_codes < 0]))
            outside += int((~known).sum())
            rows = np.flatnonzero(known)
            store_codes, item_codes, week, price = store_codes[rows], item_codes[rows], week[rows], price[rows]
        else:
            rows = np.arange(n)
        long = pd.DataFrame({
            "store_id": pd.Categorical.from_codes(store_codes, categories=stores),
            "item_id": pd.Categorical.from_codes(item_codes, categories=items),
            "wm_yr_wk": week,
            "sell_price": price,
            "recorded_at": week_start.to_numpy()[weeks.get_indexer(week)],
        })
        # written week by week (the file is sorted by series): local inserts into the recorded_at index
        order = np.argsort(week, kind="stable")
        long = long.iloc[order].reset_index(drop=True)
        used = long.assign(store_id=long["store_id"].cat.remove_unused_categories(),
                           item_id=long["item_id"].cat.remove_unused_categories())
        # always checked: besides earlier imports, an earlier chunk of this file may hold the key
        keep = _new_rows(conn, db.sell_prices, "wm_yr_wk", "sell_price", used,
                         lambda i: (first_line + int(rows[order[i]]), "sell_price"), path)
        added += _write(conn, db.sell_prices, long, keep)
        skipped += int((~keep).sum())
        report(n, f"{path.name}: through line {first_line + n - 1}")
    return added, skipped, {"rows": outside, "items": len(other_items), "stores": len(other_stores)}


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------

def _engine(url: str) -> sa.Engine:
    """An engine for ``url``; a SQLite file (and its folder) is created when missing."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return engine


@contextlib.contextmanager
def _one_transaction(conn: sa.Connection) -> Iterator[None]:
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


def _table_has_rows(conn: sa.Connection, table: sa.Table) -> bool:
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
    check_header(sales_path, sales_header, SALES_ID_COLUMNS, extra=lambda c: bool(_DAY_COLUMN.fullmatch(c)))
    prices_header = read_header(prices_path)
    check_header(prices_path, prices_header, PRICE_COLUMNS)
    calendar, day_dates = read_calendar(cal_path)
    day_cols = [c for c in sales_header if _DAY_COLUMN.fullmatch(c)]
    if not day_cols:
        raise DataError(f"{sales_path.name} line 1: no day columns d_1, d_2, ...")
    for c in day_cols:
        if c not in day_dates.index:
            last = day_dates.index[int(np.argmax(day_dates.to_numpy()))]
            raise _at(sales_path, 1, c, f"day {c} is not in {CALENDAR_FILE} (which ends with {last} = "
                      f"{pd.Timestamp(day_dates.max()).date()})")
    scan_csv(sales_path, sales_header, digits_only=lambda c: bool(_DAY_COLUMN.fullmatch(c)))
    ids = read_sales_ids(sales_path)
    n_prices = scan_csv(prices_path, prices_header)
    n_sales = len(ids) * len(day_cols)
    total = max(1, n_sales + n_prices)
    report(0.0, "files checked")

    engine = url_or_engine if isinstance(url_or_engine, sa.Engine) else _engine(url_or_engine)
    new_file = None
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        new_file = None if Path(engine.url.database).expanduser().exists() else Path(engine.url.database).expanduser()
    try:
        with engine.connect() as conn, _one_transaction(conn):
            sales_had_rows = _table_has_rows(conn, db.sales)
            rows = _write_master(conn, calendar, cal_path, ids, sales_path)
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
            rows["sales"], skipped["sales"] = _import_sales(conn, sales_path, sales_header, day_dates, ids,
                                                            sales_chunk_rows, sales_had_rows, step)
            cal = pd.read_sql(sa.select(db.calendar.c.date, db.calendar.c.wm_yr_wk), conn)
            # a price is known from the first day of its week on (the world's convention too)
            week_start = pd.to_datetime(cal["date"]).astype("datetime64[s]").groupby(cal["wm_yr_wk"].astype(np.int64)).min()
            rows["sell_prices"], skipped["sell_prices"], outside = _import_prices(
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


def main(argv: list[str] | None = None) -> int:
    """Command line: import ``--dir`` into ``--url`` (default: the configured source database)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.m5import", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="folder with calendar.csv, sell_prices.csv, sales_train_*.csv")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: tasks.config.database_url())")
    parser.add_argument("--sales-chunk-rows", type=int, default=SALES_CHUNK_ROWS, help="series (lines) per sales chunk")
    parser.add_argument("--prices-chunk-rows", type=int, default=PRICES_CHUNK_ROWS, help="lines per sell_prices chunk")
    args = parser.parse_args(argv)
    if args.url is None:
        from tasks import config
        args.url = config.database_url()

    from pipeline.tools.progress import ProgressBar

    show = ProgressBar("import-m5")

    try:
        summary = import_m5(args.url, args.dir, progress=show,
                            sales_chunk_rows=args.sales_chunk_rows, prices_chunk_rows=args.prices_chunk_rows)
    except DataError as exc:
        show.close()
        print(f"pipeline.tools.m5import: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI reports any failure as one line, with its type
        from pipeline.core.errors import PipelineError

        if not isinstance(exc, (PipelineError, sa.exc.SQLAlchemyError, OSError)):
            raise
        show.close()
        print(f"pipeline.tools.m5import: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    show.close()
    print(json.dumps({"url": db.redact(args.url), "dir": str(args.dir), **summary}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
