"""Import the Kaggle M5 files into the source database (schema of :mod:`pipeline.db`).

``import_m5(url_or_engine, m5_dir)`` reads from ``m5_dir``:

* ``calendar.csv`` -> ``calendar`` (its ``d`` column maps ``d_N`` to a date and is not stored);
* ``sales_train_evaluation.csv`` if present, else ``sales_train_validation.csv`` (wide: one line
  per series, one ``d_N`` column per day) -> ``items``, ``stores`` and ``sales`` (long, one row per
  series and day, ``recorded_at`` = 23:00 of the sale's day, "end of the day", as the synthetic
  world of :mod:`pipeline.world` does);
* ``sell_prices.csv`` -> ``sell_prices`` (``recorded_at`` = 00:00 of the first calendar date of its
  Walmart week). A file covering only some stores is fine: the others get no price rows (price
  features are then missing for them, never invented).

Order and atomicity
    Every header, the whole calendar and the id columns of the sales file (items, stores,
    duplicate series) are checked before anything is written; ``calendar``, ``items`` and
    ``stores`` are then written in one transaction (only keys not present yet). ``sales`` and
    ``sell_prices`` are streamed: each chunk of lines is parsed with explicit dtypes, checked,
    turned long (vectorised) and written in a transaction of its own. A check failing in a chunk
    writes nothing of that chunk, but the earlier chunks stay written; importing the (fixed) file
    again skips them, see below, and adds the rest.

Idempotency
    Importing the same files twice adds nothing. Master keys (date, item_id, store_id) already
    present are skipped if their attributes are equal and are a DataError otherwise. For a sales /
    price row the importer looks, in the same transaction as the write, at the rows already in the
    table for the chunk's series: a key with a row recorded at the very instant the importer would
    record it, with the same value, is skipped; any other existing row of the key (another value,
    or only rows recorded at other instants) is a DataError: the tables are append-only and a
    correction is a new row with a later ``recorded_at``, which this importer never invents (the
    wall clock must not decide what the database holds).

Speed and memory
    Memory is bounded by the chunk sizes, not the file: about 0.4 GB for a first import with the
    defaults (500 series x 1,941 days = ~1 M long rows per sales chunk, 1 M price lines), about
    0.5 GB for a re-import. On SQLite a first import writes ~200 k rows/s (its B-trees, not the
    parsing, are the limit); the full M5 (59 M sales + 6.8 M price rows) takes minutes. A first
    import into an empty ``sales`` table needs no look-ups of existing rows; a re-import reads the
    existing rows of each chunk's series (no index on (store_id, item_id): one table scan per
    chunk), so it is slower than the first import.

Errors (``DataError``) name the file, the 1-based line (header = line 1; the Kaggle files have no
quoted line breaks, so a CSV row is one line) and the column, e.g.
``sales_train_evaluation.csv line 1532, column d_1207: units must be a non-negative integer, got '-3'``.

Command line: ``python -m pipeline.m5import --dir M5_DIR [--url URL]``.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import gc
import json
import re
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline import db
from pipeline.errors import DataError

CALENDAR_FILE = "calendar.csv"
PRICES_FILE = "sell_prices.csv"
SALES_FILES = ("sales_train_evaluation.csv", "sales_train_validation.csv")  # first present wins

CALENDAR_COLUMNS = ("date", "wm_yr_wk", "weekday", "wday", "month", "year", "d", "event_name_1",
                    "event_type_1", "event_name_2", "event_type_2", "snap_CA", "snap_TX", "snap_WI")
SALES_ID_COLUMNS = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
PRICE_COLUMNS = ("store_id", "item_id", "wm_yr_wk", "sell_price")

# ~1 M long rows per sales chunk with the full 1,941 days; a few hundred MB at most in flight
SALES_CHUNK_ROWS = 500
PRICES_CHUNK_ROWS = 1_000_000
SALE_RECORDED_AT = np.timedelta64(23 * 3600, "s")  # end of the sale's day, as pipeline.world
# ids per IN list (rendered as literals, so no bound-parameter limit applies): one list, hence
# one scan of the table, per chunk; the cap only bounds the statement's length
_IN_BATCH = 30_000
# rows per db.bulk_insert call inside a chunk's transaction: its SQLite path holds a Python
# object per value, so this (not the chunk size) bounds that memory
_WRITE_ROWS = 250_000

_DAY_COLUMN = re.compile(r"d_[1-9][0-9]*")
# only an empty field is missing: a string like "NA" or "null" must not silently become NaN
_CSV_OPTIONS = dict(keep_default_na=False, na_values=[""], skip_blank_lines=False, encoding="utf-8-sig")

Progress = Callable[[float, str], None]


# ----------------------------------------------------------------------------------------------
# Small helpers: error messages with file / line / column
# ----------------------------------------------------------------------------------------------

def _at(path: Path, line: int, column: str, message: str) -> DataError:
    return DataError(f"{path.name} line {line}, column {column}: {message}")


def _raise_first(path: Path, bad: np.ndarray, first_line: int, column: str, message: Callable[[int], str]) -> None:
    """Raise a DataError for the first True of ``bad`` (row i of the chunk is line ``first_line + i``)."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _at(path, first_line + i, column, message(i))


def _no_empty_lines(path: Path, raw: pd.DataFrame, first_line: int) -> None:
    """An empty line is read as a row of missing values: name it as what it is."""
    _raise_first(path, raw.isna().all(axis=1).to_numpy(), first_line, raw.columns[0],
                 lambda i: "the line is empty (remove empty lines, also at the end of the file)")


def _shown(value) -> str:
    """A raw CSV value as the message shows it (an empty field is '')."""
    return repr("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def _read_header(path: Path) -> list[str]:
    """The header line of a CSV file, as written (no pandas renaming of duplicates)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = fh.readline()
    if not first.strip():
        raise DataError(f"{path.name} line 1: the file is empty or has no header")
    return [c.strip() for c in next(csv.reader([first]))]


def _check_header(path: Path, header: list[str], expected: tuple[str, ...], extra: Callable[[str], bool] | None = None) -> None:
    """Missing, unknown or repeated columns are a DataError naming the file and the expected header."""
    want = ", ".join(expected) + (", d_1, d_2, ..." if extra else "")
    missing = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected and not (extra and extra(c))]
    repeated = sorted(c for c, n in collections.Counter(header).items() if n > 1)
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated[:5])}")
    if problems:
        raise DataError(f"{path.name} line 1: {'; '.join(problems)}; expected the header {want}")


def _int_column(path: Path, raw: pd.Series, first_line: int, what: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """Parse a column of raw strings as integers in [lo, hi]; the first bad field is a DataError."""
    text = raw.astype(object)
    ok = raw.notna().to_numpy() & raw.astype(str).str.fullmatch(r"-?[0-9]{1,18}").fillna(False).to_numpy(dtype=bool)
    rng = f" in {lo}..{hi}" if lo is not None and hi is not None else ""
    _raise_first(path, ~ok, first_line, raw.name, lambda i: f"{what} must be an integer{rng}, got {_shown(text.iloc[i])}")
    values = raw.astype(str).astype(np.int64).to_numpy()
    out = np.zeros(len(values), dtype=bool)
    if lo is not None:
        out |= values < lo
    if hi is not None:
        out |= values > hi
    _raise_first(path, out, first_line, raw.name, lambda i: f"{what} must be an integer{rng}, got {_shown(text.iloc[i])}")
    return values


def _batches(values: list, size: int) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _count_lines(path: Path) -> int:
    """Data lines of a CSV (lines after the header), counted on raw bytes: only for progress."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return max(0, n + (last != b"\n") - 1)


# ----------------------------------------------------------------------------------------------
# calendar.csv
# ----------------------------------------------------------------------------------------------

def read_calendar(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Read and check ``calendar.csv``.

    Returns ``(calendar, day_dates)``: ``calendar`` has the columns of ``db.calendar``
    (``date`` datetime64, events as object with None where empty); ``day_dates`` maps each
    ``d_N`` label to its date (datetime64). Raises DataError naming file, line and column.
    """
    _check_header(path, _read_header(path), CALENDAR_COLUMNS)
    raw = pd.read_csv(path, dtype=str, **_CSV_OPTIONS)
    if raw.empty:
        raise DataError(f"{path.name}: the calendar has no rows")
    first = 2
    _no_empty_lines(path, raw, first)
    for col in ("date", "wm_yr_wk", "weekday", "wday", "month", "year", "d", "snap_CA", "snap_TX", "snap_WI"):
        _raise_first(path, raw[col].isna().to_numpy(), first, col, lambda i: "missing value")
    date = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    _raise_first(path, date.isna().to_numpy(), first, "date",
                 lambda i: f"date must be a date YYYY-MM-DD, got {_shown(raw['date'].iloc[i])}")
    _raise_first(path, date.duplicated().to_numpy(), first, "date",
                 lambda i: f"date {raw['date'].iloc[i]} appears twice (first on line {first + int(np.flatnonzero((date == date.iloc[i]).to_numpy())[0])})")
    ints = {
        "wm_yr_wk": _int_column(path, raw["wm_yr_wk"], first, "wm_yr_wk", 10000, 99999),
        "wday": _int_column(path, raw["wday"], first, "wday", 1, 7),
        "month": _int_column(path, raw["month"], first, "month", 1, 12),
        "year": _int_column(path, raw["year"], first, "year", 1900, 2999),
        **{c: _int_column(path, raw[c], first, c, 0, 1) for c in ("snap_CA", "snap_TX", "snap_WI")},
    }
    # the derived columns must agree with the date: a shifted row would silently move events
    expect = {
        "weekday": date.dt.day_name().to_numpy(dtype=object),
        "wday": ((date.dt.day_of_week.to_numpy() - 5) % 7 + 1),
        "month": date.dt.month.to_numpy(),
        "year": date.dt.year.to_numpy(),
    }
    for col, want in expect.items():
        got = raw[col].to_numpy(dtype=object) if col == "weekday" else ints[col]
        _raise_first(path, got != want, first, col,
                     lambda i, col=col, want=want: f"{col} of {raw['date'].iloc[i]} is {want[i]}, got {_shown(raw[col].iloc[i])}")
    d = raw["d"].astype(str)
    _raise_first(path, ~d.str.fullmatch(_DAY_COLUMN.pattern).to_numpy(dtype=bool), first, "d",
                 lambda i: f"d must look like d_1, d_2, ..., got {_shown(raw['d'].iloc[i])}")
    _raise_first(path, d.duplicated().to_numpy(), first, "d", lambda i: f"{d.iloc[i]} appears twice")
    # a week is seven consecutive days: one wm_yr_wk spread over far-apart dates is a typo
    by_week = date.groupby(ints["wm_yr_wk"])
    span = (by_week.transform("max") - by_week.transform("min")).dt.days
    _raise_first(path, (span > 6).to_numpy(), first, "wm_yr_wk",
                 lambda i: f"week {ints['wm_yr_wk'][i]} spans more than 7 days")

    calendar = pd.DataFrame({
        "date": date.astype("datetime64[s]"),
        "wm_yr_wk": ints["wm_yr_wk"],
        "weekday": raw["weekday"].to_numpy(dtype=object),
        "wday": ints["wday"],
        "month": ints["month"],
        "year": ints["year"],
    })
    for col in ("event_name_1", "event_type_1", "event_name_2", "event_type_2"):
        # object with None: SQL NULL where there is no event (not NaN, not the string 'nan')
        calendar[col] = pd.Series(np.where(raw[col].isna(), None, raw[col].to_numpy(dtype=object)), dtype=object)
    for col in ("snap_CA", "snap_TX", "snap_WI"):
        calendar[col] = ints[col]
    calendar = calendar[[c.name for c in db.calendar.columns]]
    day_dates = pd.Series(calendar["date"].to_numpy(), index=pd.Index(d.to_numpy(dtype=object), name="d"))
    return calendar, day_dates


# ----------------------------------------------------------------------------------------------
# The sales file's id columns: items and stores
# ----------------------------------------------------------------------------------------------

def read_sales_ids(path: Path) -> pd.DataFrame:
    """Read and check the id columns of the wide sales file (one pass, the day columns are skipped).

    Returns one row per line (``line`` = its line number) with the id columns. Checks: no empty
    id, ``id`` = ``{item_id}_{store_id}_validation|evaluation``, each series once, an item's
    dept_id/cat_id and a store's state_id the same on every line and consistent with the ids
    (M5's ids embed them: item HOBBIES_1_001 is in dept HOBBIES_1, category HOBBIES; store CA_1 is
    in state CA).
    """
    ids = pd.read_csv(path, usecols=list(SALES_ID_COLUMNS), dtype=str, **_CSV_OPTIONS)
    if ids.empty:
        raise DataError(f"{path.name}: the file has a header but no series")
    ids = ids[list(SALES_ID_COLUMNS)]
    first = 2
    blank = ids.isna().all(axis=1).to_numpy()  # only the id columns are read here: maybe an empty line
    for col in SALES_ID_COLUMNS:
        _raise_first(path, ids[col].isna().to_numpy(), first, col,
                     lambda i: "missing value" + (" (is the line empty?)" if blank[i] else ""))
    ids = ids.astype(object)
    kaggle = ids["item_id"] + "_" + ids["store_id"] + "_"
    _raise_first(path, ~((ids["id"] == kaggle + "evaluation") | (ids["id"] == kaggle + "validation")).to_numpy(), first, "id",
                 lambda i: f"id must be {kaggle.iloc[i]}evaluation or ...validation, got {_shown(ids['id'].iloc[i])}")
    # M5's ids embed their parent: store CA_1 -> state CA, item HOBBIES_1_001 -> dept HOBBIES_1 -> cat HOBBIES
    checks = (("state_id", "store_id", "store"), ("dept_id", "item_id", "item"), ("cat_id", "dept_id", "department"))
    for part, whole, noun in checks:
        ok = (ids[whole].str.rsplit("_", n=1).str[0] == ids[part]).to_numpy(dtype=bool)
        _raise_first(path, ~ok, first, part, lambda i, part=part, whole=whole, noun=noun:
                     f"{part} {_shown(ids[part].iloc[i])} does not match {noun} {ids[whole].iloc[i]!r}")
    for key, attrs in (("item_id", ("dept_id", "cat_id")), ("store_id", ("state_id",))):
        for attr in attrs:
            first_seen = ids.groupby(key, sort=False)[attr].transform("first")
            _raise_first(path, (ids[attr] != first_seen).to_numpy(), first, attr, lambda i, key=key, attr=attr, fs=first_seen:
                         f"{key} {ids[key].iloc[i]} has {attr} {fs.iloc[i]!r} on an earlier line, here {_shown(ids[attr].iloc[i])}")
    dup = ids.duplicated(["item_id", "store_id"]).to_numpy()
    _raise_first(path, dup, first, "id", lambda i: f"series {ids['id'].iloc[i]} appears twice (first on line "
                 f"{first + int(np.flatnonzero(((ids['item_id'] == ids['item_id'].iloc[i]) & (ids['store_id'] == ids['store_id'].iloc[i])).to_numpy())[0])})")
    ids.insert(0, "line", np.arange(first, first + len(ids)))
    return ids


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


def _write_master(engine: sa.Engine, calendar: pd.DataFrame, cal_path: Path, ids: pd.DataFrame, sales_path: Path) -> dict:
    """Write the new calendar, items and stores rows in one transaction; returns rows added per table."""
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
    with engine.begin() as conn:
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


def _chunks(path: Path, dtypes: dict, chunk_rows: int, diagnose: Callable[[pd.DataFrame, int], None]) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(first_line, chunk)`` of a CSV read with explicit dtypes.

    When a chunk does not parse with those dtypes (a non-number, an empty field), the same lines
    are read again as text and ``diagnose(raw, first_line)`` raises the DataError naming the
    field; the fast typed parse stays the common path.
    """
    reader = pd.read_csv(path, dtype=dtypes, chunksize=chunk_rows, **_CSV_OPTIONS)
    first_line = 2
    with reader:
        while True:
            try:
                chunk = next(reader)
            except StopIteration:
                return
            except pd.errors.ParserError as exc:  # wrong field count: pandas names the line itself
                raise DataError(f"{path.name}: {str(exc).strip()}") from exc
            except (ValueError, OverflowError) as exc:
                raw = pd.read_csv(path, dtype=str, skiprows=range(1, first_line - 1), nrows=chunk_rows, **_CSV_OPTIONS)
                _no_empty_lines(path, raw, first_line)
                diagnose(raw, first_line)
                raise DataError(f"{path.name} lines {first_line}..{first_line + len(raw) - 1}: cannot read: {exc}") from exc
            yield first_line, chunk
            first_line += len(chunk)


# ----------------------------------------------------------------------------------------------
# The wide sales file
# ----------------------------------------------------------------------------------------------

def _diagnose_units(path: Path, day_cols: list[str]) -> Callable[[pd.DataFrame, int], None]:
    def diagnose(raw: pd.DataFrame, first_line: int) -> None:
        cells = raw[day_cols].to_numpy(dtype=object)
        ok = pd.Series(cells.reshape(-1)).astype(str).str.fullmatch(r"[0-9]{1,9}").to_numpy(dtype=bool)
        ok = ok & pd.notna(cells.reshape(-1))
        if not ok.all():
            k = int(np.flatnonzero(~ok)[0])
            r, c = divmod(k, len(day_cols))
            v = cells[r, c]
            got = "an empty field" if pd.isna(v) else repr(str(v))
            raise _at(path, first_line + r, day_cols[c], f"units must be a non-negative integer, got {got}")
    return diagnose


def _import_sales(engine: sa.Engine, path: Path, header: list[str], day_dates: pd.Series, ids: pd.DataFrame,
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
    for first_line, chunk in _chunks(path, dtypes, chunk_rows, _diagnose_units(path, day_cols)):
        # the id columns were checked in the first pass; a file changed since then is caught here
        expect = ids.iloc[first_line - 2:first_line - 2 + len(chunk)]
        if len(expect) != len(chunk) or not ((chunk["item_id"].to_numpy(dtype=object) == expect["item_id"].to_numpy())
                                             & (chunk["store_id"].to_numpy(dtype=object) == expect["store_id"].to_numpy())).all():
            raise DataError(f"{path.name} changed while it was being imported (lines {first_line}.. differ from the first pass)")
        units = chunk[day_cols].to_numpy(dtype=np.int64)
        neg = units < 0
        if neg.any():
            r, c = divmod(int(np.flatnonzero(neg.reshape(-1))[0]), n_days)
            raise _at(path, first_line + r, day_cols[c], f"units must be a non-negative integer, got '{units[r, c]}'")
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
        with engine.begin() as conn:
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

def _diagnose_prices(path: Path) -> Callable[[pd.DataFrame, int], None]:
    def diagnose(raw: pd.DataFrame, first_line: int) -> None:
        _int_column(path, raw["wm_yr_wk"], first_line, "wm_yr_wk")
        price = pd.to_numeric(raw["sell_price"], errors="coerce").to_numpy(dtype=np.float64)
        _raise_first(path, np.isnan(price), first_line, "sell_price",
                     lambda i: f"sell_price must be a positive number, got {_shown(raw['sell_price'].iloc[i])}")
    return diagnose


def _import_prices(engine: sa.Engine, path: Path, week_start: pd.Series, chunk_rows: int,
                   report: Callable[[int, str], None]) -> tuple[int, int]:
    """Stream ``sell_prices.csv`` into ``sell_prices``; returns (rows added, rows already present)."""
    with engine.connect() as conn:
        stores = sorted(str(s) for s in conn.execute(sa.select(db.stores.c.store_id)).scalars())
        items = sorted(str(s) for s in conn.execute(sa.select(db.items.c.item_id)).scalars())
    store_ix, item_ix = pd.Index(stores, dtype=object), pd.Index(items, dtype=object)
    weeks = pd.Index(week_start.index)
    dtypes = {"store_id": str, "item_id": str, "wm_yr_wk": "int64", "sell_price": "float64"}
    added = skipped = 0
    for first_line, chunk in _chunks(path, dtypes, chunk_rows, _diagnose_prices(path)):
        n = len(chunk)
        store_codes = store_ix.get_indexer(chunk["store_id"].astype(object))
        item_codes = item_ix.get_indexer(chunk["item_id"].astype(object))
        for col, codes, table in (("store_id", store_codes, "stores"), ("item_id", item_codes, "items")):
            _raise_first(path, codes < 0, first_line, col, lambda i, col=col, table=table:
                         "missing value" if pd.isna(chunk[col].iloc[i]) else
                         f"{col} {chunk[col].iloc[i]!r} is not in the {table} table (the sales file has no series of it)")
        week = chunk["wm_yr_wk"].to_numpy()
        wk_ix = weeks.get_indexer(week)
        _raise_first(path, wk_ix < 0, first_line, "wm_yr_wk",
                     lambda i: f"week {week[i]} is not in the calendar (weeks {weeks.min()}..{weeks.max()})")
        price = chunk["sell_price"].to_numpy(dtype=np.float64)
        # only an empty field parses to NaN (see _CSV_OPTIONS); 'inf' parses to inf
        _raise_first(path, ~(np.isfinite(price) & (price > 0)), first_line, "sell_price",
                     lambda i: "sell_price must be a positive number, got "
                     + ("an empty field" if np.isnan(price[i]) else repr(f"{price[i]:g}")))
        store = pd.Categorical.from_codes(store_codes, categories=stores)
        item = pd.Categorical.from_codes(item_codes, categories=items)
        long = pd.DataFrame({
            "store_id": store,
            "item_id": item,
            "wm_yr_wk": week.astype(np.int64),
            "sell_price": price,
            "recorded_at": week_start.to_numpy()[wk_ix],
        })
        dup = long.duplicated(["store_id", "item_id", "wm_yr_wk"]).to_numpy()
        _raise_first(path, dup, first_line, "wm_yr_wk", lambda i: f"store {store[i]} item {item[i]} week {week[i]} "
                     "appears twice in the file (an earlier line has the same key)")
        # written week by week (the file is sorted by series): local inserts into the recorded_at index
        order = np.argsort(week, kind="stable")
        long = long.iloc[order].reset_index(drop=True)
        used = long.assign(store_id=long["store_id"].cat.remove_unused_categories(),
                           item_id=long["item_id"].cat.remove_unused_categories())
        with engine.begin() as conn:
            # always checked: besides earlier imports, an earlier chunk of this file may hold the key
            keep = _new_rows(conn, db.sell_prices, "wm_yr_wk", "sell_price", used,
                             lambda i: (first_line + int(order[i]), "sell_price"), path)
            added += _write(conn, db.sell_prices, long, keep)
        skipped += int((~keep).sum())
        report(n, f"{path.name}: through line {first_line + n - 1}")
    return added, skipped


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------

def _engine(url: str) -> sa.Engine:
    """An engine for ``url``; a SQLite file (and its folder) is created when missing."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return engine


def _table_has_rows(engine: sa.Engine, table: sa.Table) -> bool:
    with engine.connect() as conn:
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

    Creates the schema if missing. ``progress(done_fraction, message)`` is called after the
    master tables and after every chunk. ``sales_chunk_rows`` lines of the wide sales file
    (series) and ``prices_chunk_rows`` lines of sell_prices.csv are held and written at a time.

    Returns ``{"rows": {table: rows added}, "already_present": {table: rows skipped},
    "sales_file", "series", "first_date", "last_date", "seconds", "rows_per_second"}`` (dates as
    ``datetime.date``: the first and last day of the sales file; ``rows_per_second``: long sales
    rows plus price lines read, added or not, per second of the whole import). Importing the same
    files again returns zeros in ``rows``. Raises DataError (file, line, column) for bad input; see
    the module docstring for what is written before a failure.
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

    # every check that needs no database first: a bad header or calendar writes nothing
    sales_header = _read_header(sales_path)
    _check_header(sales_path, sales_header, SALES_ID_COLUMNS, extra=lambda c: bool(_DAY_COLUMN.fullmatch(c)))
    _check_header(prices_path, _read_header(prices_path), PRICE_COLUMNS)
    calendar, day_dates = read_calendar(cal_path)
    day_cols = [c for c in sales_header if _DAY_COLUMN.fullmatch(c)]
    if not day_cols:
        raise DataError(f"{sales_path.name} line 1: no day columns d_1, d_2, ...")
    for c in day_cols:
        if c not in day_dates.index:
            last = day_dates.index[int(np.argmax(day_dates.to_numpy()))]
            raise _at(sales_path, 1, c, f"day {c} is not in {CALENDAR_FILE} (which ends with {last} = "
                      f"{pd.Timestamp(day_dates.max()).date()})")
    ids = read_sales_ids(sales_path)
    n_sales = len(ids) * len(day_cols)
    n_prices = _count_lines(prices_path)
    total = max(1, n_sales + n_prices)
    report(0.0, "files checked")

    engine = url_or_engine if isinstance(url_or_engine, sa.Engine) else _engine(url_or_engine)
    try:
        db.create_schema(engine)
        sales_had_rows = _table_has_rows(engine, db.sales)
        rows = _write_master(engine, calendar, cal_path, ids, sales_path)
        report(0.0, f"calendar, items, stores: {sum(rows.values())} rows added")

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
        rows["sales"], skipped["sales"] = _import_sales(engine, sales_path, sales_header, day_dates, ids,
                                                        sales_chunk_rows, sales_had_rows, step)
        with engine.connect() as conn:
            cal = pd.read_sql(sa.select(db.calendar.c.date, db.calendar.c.wm_yr_wk), conn)
        # a price is known from the first day of its week on (the world's convention too)
        week_start = pd.to_datetime(cal["date"]).astype("datetime64[s]").groupby(cal["wm_yr_wk"].astype(np.int64)).min()
        rows["sell_prices"], skipped["sell_prices"] = _import_prices(engine, prices_path, week_start, prices_chunk_rows, step)
    finally:
        if not isinstance(url_or_engine, sa.Engine):
            engine.dispose()
    seconds = time.perf_counter() - began
    report(1.0, "done")
    return {
        "rows": rows,
        "already_present": skipped,
        "sales_file": sales_path.name,
        "series": len(ids),
        "first_date": pd.Timestamp(day_dates.loc[day_cols].min()).date(),
        "last_date": pd.Timestamp(day_dates.loc[day_cols].max()).date(),
        "seconds": round(seconds, 2),
        "rows_per_second": round((n_sales + n_prices) / seconds) if seconds > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: import ``--dir`` into ``--url`` (default: the configured source database)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.m5import", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="folder with calendar.csv, sell_prices.csv, sales_train_*.csv")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: pipeline.config.database_url())")
    parser.add_argument("--sales-chunk-rows", type=int, default=SALES_CHUNK_ROWS, help="series (lines) per sales chunk")
    parser.add_argument("--prices-chunk-rows", type=int, default=PRICES_CHUNK_ROWS, help="lines per sell_prices chunk")
    args = parser.parse_args(argv)
    if args.url is None:
        from pipeline import config

        args.url = config.database_url()

    from pipeline.progress import ProgressBar

    show = ProgressBar("import-m5")

    try:
        summary = import_m5(args.url, args.dir, progress=show,
                            sales_chunk_rows=args.sales_chunk_rows, prices_chunk_rows=args.prices_chunk_rows)
    except DataError as exc:
        show.close()
        print(f"pipeline.m5import: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI reports any failure as one line, with its type
        from pipeline.errors import PipelineError

        if not isinstance(exc, (PipelineError, sa.exc.SQLAlchemyError, OSError)):
            raise
        show.close()
        print(f"pipeline.m5import: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    show.close()
    print(json.dumps({"url": db.redact(args.url), "dir": str(args.dir), **summary}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
