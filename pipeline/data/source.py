"""Reading the source database's versioned tables as integer keys, values and recorded_at.

Rows are read as Arrow batches through ADBC on SQLite and PostgreSQL (SQLAlchemy
with plain text SQL elsewhere, or when ADBC is not installed); ids become integer
codes batch by batch (:class:`pipeline.core.keys.Vocabulary`), so memory stays
near 20 bytes a row. Reading most of a SQLite table, rowid ranges are scanned in
parallel threads. Every value is checked as it is read
(:mod:`pipeline.data.source_values`): what a snapshot column cannot hold exactly is
refused there, naming the row. Ids missing from the master tables are held, as extra
codes after the master tables' (:func:`read_rows`), for CheckSnapshot to judge.
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import dataclasses
import datetime as dt
import logging
import os
import urllib.parse
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from pipeline.core.errors import DataError
from pipeline.core.keys import DAY_US, Vocabulary
from pipeline.core.latest import Rows
from pipeline.data import db
from pipeline.data import source_values

log = logging.getLogger("pipeline")

CHUNK_ROWS = 1_000_000  # rows per chunk of the SQLAlchemy reader
ADBC_BATCH_ROWS = 262_144  # rows per Arrow batch from SQLite (PostgreSQL batches by bytes)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A versioned table: key (item_id, store_id, ``third``), value and recorded_at."""

    table: sa.Table
    third: str  # "date" (a day) or "wm_yr_wk" (a week number)
    value: str

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def columns(self) -> list[str]:
        return ["item_id", "store_id", self.third, self.value, "recorded_at"]


SALES = Spec(db.sales, "date", "units")
PRICES = Spec(db.sell_prices, "wm_yr_wk", "sell_price")


def read_master(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The calendar (its numbers checked), items and stores tables, sorted by their keys."""
    with engine.connect() as conn:
        calendar = pd.read_sql(sa.select(db.calendar).order_by(db.calendar.c.date), conn)
        items = pd.read_sql(sa.select(db.items).order_by(db.items.c.item_id), conn)
        stores = pd.read_sql(sa.select(db.stores).order_by(db.stores.c.store_id), conn)
    calendar["date"] = pd.to_datetime(calendar["date"])
    calendar = source_values.calendar_numbers(calendar)
    for frame in (items, stores):
        for col in frame.columns:
            frame[col] = frame[col].astype(str)
    return calendar, items, stores


# ----------------------------------------------------------------------------------------------
# Batches: from ADBC (SQLite, PostgreSQL) or from SQLAlchemy (anything else)
# ----------------------------------------------------------------------------------------------


class NoAdbc(Exception):
    """ADBC cannot serve this engine (other backend, in-memory database, driver not installed)."""


def adbc_connect(engine: sa.Engine):
    """An ADBC DBAPI connection to the engine's database, and statement options; raises NoAdbc."""
    name = engine.dialect.name
    try:
        if name == "sqlite":
            import adbc_driver_sqlite.dbapi as driver

            path = engine.url.database
            if not path or path == ":memory:" or path.startswith("file:") or not Path(path).is_file():
                raise NoAdbc(f"SQLite database {path!r} is not a plain file")
            uri = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"
            return driver.connect(uri), {"adbc.sqlite.query.batch_rows": str(ADBC_BATCH_ROWS)}
        if name == "postgresql":
            import adbc_driver_postgresql.dbapi as driver

            return driver.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False)), {}
    except ImportError as exc:
        raise NoAdbc(f"ADBC driver not installed ({exc})") from exc
    raise NoAdbc(f"no ADBC driver for {name}")


def time_literal(engine: sa.Engine, t: dt.datetime) -> str:
    """``t`` as an SQL literal comparing exactly as SQLAlchemy's bound DateTime does."""
    if engine.dialect.name == "sqlite":  # text in SQLAlchemy's spelling (see db._sqlite_literals)
        return "'" + t.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
    return "TIMESTAMP '" + t.isoformat(sep=" ") + "'"


def _select_sql(engine: sa.Engine, spec: Spec, lo: dt.datetime | None, hi: dt.datetime, literal,
                part: str = "") -> str:
    quote = engine.dialect.identifier_preparer.quote
    rec = quote("recorded_at")
    where = f"{rec} < {literal('hi', hi)}" + (f" AND {rec} >= {literal('lo', lo)}" if lo else "")
    table = quote(spec.name) + (" NOT INDEXED" if part else "")
    return f"SELECT {', '.join(quote(c) for c in spec.columns)} FROM {table} WHERE {part}{where}"


def _adbc_batches(engine: sa.Engine, spec: Spec, lo, hi, part: str = "") -> Iterator[pa.RecordBatch]:
    """Arrow batches of the rows; ``part`` (SQLite) restricts them to a rowid range, read in table order."""
    conn, options = adbc_connect(engine)
    with conn:
        with conn.cursor() as cur:
            if options:
                cur.adbc_statement.set_options(**options)
            cur.execute(_select_sql(engine, spec, lo, hi, lambda _, t: time_literal(engine, t), part))
            yield from cur.fetch_record_batch()


def _sqlalchemy_batches(engine: sa.Engine, spec: Spec, lo, hi) -> Iterator[pa.RecordBatch]:
    """Plain text SQL (no per-row type processing by SQLAlchemy), CHUNK_ROWS rows at a time."""
    query = sa.text(_select_sql(engine, spec, lo, hi, lambda name, _: f":{name}")).bindparams(
        *(sa.bindparam(n, type_=sa.DateTime) for n in (("hi", "lo") if lo else ("hi",))))
    params = {"hi": hi, **({"lo": lo} if lo else {})}
    with engine.connect().execution_options(stream_results=True) as conn:
        for chunk in pd.read_sql(query, conn, params=params, chunksize=CHUNK_ROWS):
            value = chunk[spec.value]
            if value.dtype == object:  # mixed types (text among numbers, as SQLite allows): as text, checked later
                chunk[spec.value] = value.map(lambda v: None if v is None else str(v)).astype(object)
            yield pa.RecordBatch.from_pandas(chunk, preserve_index=False)


# ----------------------------------------------------------------------------------------------
# Rows: batches as keys, values and recorded_at
# ----------------------------------------------------------------------------------------------


def read_rows(engine: sa.Engine, vocab: Vocabulary, spec: Spec, lo: dt.datetime | None,
              hi: dt.datetime) -> tuple[Rows, Vocabulary]:
    """Rows of ``spec`` with ``lo <= recorded_at < hi``, ids as codes, and the vocabulary they are coded in.

    An id missing from the master tables is no reason to refuse the rows (CheckSnapshot's
    ``unknown_ids`` names them): the vocabulary grows by the missing ids, appended after the
    master tables' in sorted order (so codes already given keep their meaning), and the rows
    are read again. Order: as the plain ``SELECT … WHERE recorded_at < hi`` returns them
    (which row a message names as the first depends on it); see _read_sqlite_parts.
    """
    while True:
        rows, unknown = _read(engine, vocab, spec, lo, hi)
        if not unknown:
            return rows, vocab
        log.info("extract: %s holds ids missing from the items / stores tables (%s); reading it again with them",
                 spec.name, unknown)
        vocab = unknown.extend(vocab)


class _UnknownIds:
    """The distinct item and store ids a read met that are not in its vocabulary."""

    def __init__(self):
        self.items: set[str] = set()
        self.stores: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.items or self.stores)

    def __str__(self) -> str:
        names = [f"item_id={x}" for x in sorted(self.items)] + [f"store_id={x}" for x in sorted(self.stores)]
        return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")

    def add(self, column: str, col: pa.Array, codes: np.ndarray) -> None:
        missing = codes < 0
        if missing.any():
            names = pc.unique(_as_text(col).filter(pa.array(missing))).to_pylist()
            (self.items if column == "item_id" else self.stores).update(names)

    def update(self, other: "_UnknownIds") -> None:
        self.items |= other.items
        self.stores |= other.stores

    def extend(self, vocab: Vocabulary) -> Vocabulary:
        def more(index: pd.Index, names: set[str]) -> pd.Index:
            return index.append(pd.Index(sorted(names), dtype=index.dtype)) if names else index
        return Vocabulary(more(vocab.items, self.items), more(vocab.stores, self.stores))


def _read(engine: sa.Engine, vocab: Vocabulary, spec: Spec, lo, hi) -> tuple[Rows | None, _UnknownIds]:
    """The rows, or None and the ids missing from ``vocab`` where there are any."""
    ids = _IdValues(vocab)
    try:
        if lo is None and engine.dialect.name == "sqlite":
            parts = _sqlite_parts(engine, spec, hi)
            if parts:
                return _read_sqlite_parts(engine, ids, spec, hi, parts)
        return _collect(engine, ids, spec, _adbc_batches(engine, spec, lo, hi))
    except DataError:
        raise
    except NoAdbc as exc:
        log.debug("extract: %s; reading %s through SQLAlchemy", exc, spec.name)
    except Exception as exc:  # a driver problem: the portable path gives the same rows
        log.warning("extract: ADBC read of %s failed (%s: %s); reading through SQLAlchemy",
                    spec.name, type(exc).__name__, exc)
    return _collect(engine, ids, spec, _sqlalchemy_batches(engine, spec, lo, hi))


class _IdValues:
    """The vocabulary's ids as Arrow arrays, to code a batch's id columns against."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self.items = pa.array(vocab.items.to_numpy(dtype=object), pa.string())
        self.stores = pa.array(vocab.stores.to_numpy(dtype=object), pa.string())


def _sqlite_parts(engine: sa.Engine, spec: Spec, hi: dt.datetime) -> list[str]:
    """Rowid ranges splitting a SQLite table for a parallel scan, or [] where the index is the better way.

    Reading most of a table, a scan in table order (one range per CPU, up to 4) is
    faster than the ``recorded_at`` index and, in parallel, faster again; reading an
    early date (less than half the rows), the index wins.
    """
    table = engine.dialect.identifier_preparer.quote(spec.name)
    try:
        with engine.connect() as conn:
            first = conn.exec_driver_sql(f"SELECT min(rowid) FROM {table}").scalar()
            last = conn.exec_driver_sql(f"SELECT max(rowid) FROM {table}").scalar()
            after = conn.exec_driver_sql(f"SELECT rowid FROM {table} WHERE recorded_at >= "
                                         f"{time_literal(engine, hi)} ORDER BY recorded_at LIMIT 1").scalar()
    except sa.exc.DBAPIError:  # e.g. a table without rowid: the index it is
        return []
    if first is None or (after is not None and after - first < (last - first) / 2):
        return []
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(4, cpus))
    bounds = [first + (last + 1 - first) * k // workers for k in range(workers + 1)]
    return [f"rowid >= {a} AND rowid < {b} AND " for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _read_sqlite_parts(engine: sa.Engine, ids: _IdValues, spec: Spec, hi: dt.datetime,
                       parts: list[str]) -> tuple[Rows | None, _UnknownIds]:
    """The rows, read by rowid ranges in parallel threads (ADBC releases the GIL), in rowid order.

    Rowid order differs from the index's (recorded_at) order only between rows recorded
    at different instants, so the latest row of each key and the duplicate found first
    are the same.
    """
    def read(part: str):
        batches = _adbc_batches(engine, spec, None, hi, part)
        try:
            return _convert(engine, ids, spec, batches)
        finally:
            batches.close()

    with concurrent.futures.ThreadPoolExecutor(len(parts)) as pool:
        results = list(pool.map(read, parts))
    unknown = _UnknownIds()
    for *_, part_unknown in results:
        unknown.update(part_unknown)
    if unknown:
        return None, unknown
    columns = []
    for k in range(3):  # column by column, each part dropped once copied
        pieces = []
        for result in results:
            pieces += result[k]
            result[k].clear()
        columns.append(_concatenate(pieces))
    _release_memory()
    return Rows(*columns), unknown


def _collect(engine: sa.Engine, ids: _IdValues, spec: Spec,
             batches: Iterator[pa.RecordBatch]) -> tuple[Rows | None, _UnknownIds]:
    try:
        keys, values, recs, unknown = _convert(engine, ids, spec, batches)
    finally:
        batches.close()  # the connection, at once (also on errors)
    if unknown:
        return None, unknown
    if not keys:
        return Rows(np.empty(0, np.int64), np.empty(0, np.int32 if spec.value == "units" else np.float64),
                    np.empty(0, np.int64)), unknown
    rows = Rows(*(_concatenate(parts) for parts in (keys, values, recs)))
    _release_memory()
    return rows, unknown


def _convert(engine: sa.Engine, ids: _IdValues, spec: Spec, batches: Iterator[pa.RecordBatch]):
    """Keys, values and recorded_at of each batch (lists of arrays), and the ids missing from the vocabulary.

    Once an id is missing the rows will be read again: the rest of the scan only collects such ids.
    """
    keys, values, recs = [], [], []
    unknown = _UnknownIds()
    for batch in batches:
        if batch.num_rows == 0:
            continue
        source_values.no_nulls(spec, batch)
        item = _codes(batch.column("item_id"), ids.items)
        store = _codes(batch.column("store_id"), ids.stores)
        unknown.add("item_id", batch.column("item_id"), item)
        unknown.add("store_id", batch.column("store_id"), store)
        if unknown:
            keys.clear()
            values.clear()
            recs.clear()
            continue
        third_col = batch.column(spec.third)
        if spec.third == "date":
            third = np.floor_divide(_microseconds(third_col), DAY_US)
        elif pa.types.is_integer(third_col.type):
            third = source_values.ints(third_col.to_numpy(zero_copy_only=False))
        else:
            raise DataError(f"{spec.name}: {spec.third} must be an integer week number, the column holds "
                            f"{third_col.type}; first row: {source_values.raw_row(batch, 0)}")
        keys.append(ids.vocab.key(store, item, third))
        values.append(source_values.checked_values(engine, spec, batch))
        recs.append(_microseconds(batch.column("recorded_at")))
    return keys, values, recs, unknown


def _as_text(col: pa.Array) -> pa.Array:
    return col if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) else col.cast(pa.string())


def _codes(col: pa.Array, values: pa.Array) -> np.ndarray:
    """Positions of ``col``'s ids in ``values`` (int32), -1 where an id is not there."""
    col = _as_text(col)
    index = pc.index_in(col, value_set=values.cast(col.type))
    return index.fill_null(-1).to_numpy(zero_copy_only=False)


def _microseconds(col: pa.Array) -> np.ndarray:
    """A date/time column (native, or text as SQLite stores it) as int64 microseconds since 1970."""
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        # few distinct values per batch (one a day, plus corrections): parse those, not every row
        encoded = pc.dictionary_encode(col)
        parsed = pd.to_datetime(encoded.dictionary.to_pandas(), format="ISO8601")
        uniques = parsed.to_numpy().astype("datetime64[us]").astype(np.int64)
        return uniques[encoded.indices.to_numpy(zero_copy_only=False)]
    if pa.types.is_date32(t):
        return col.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64) * DAY_US
    if pa.types.is_timestamp(t) and t.tz is None:
        return col.to_numpy(zero_copy_only=False).astype("datetime64[us]").astype(np.int64)
    values = pd.to_datetime(pd.Series(col.to_pylist()))  # anything else a driver may give
    return values.to_numpy().astype("datetime64[us]").astype(np.int64)


def _release_memory() -> None:
    """Give freed memory back to the system (batch-sized arrays leave the C heap fragmented)."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(None).malloc_trim(0)  # glibc; elsewhere there is nothing to do
    except (AttributeError, OSError):
        pass


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """One array of the parts; the parts are dropped as it is made, so a column is never held twice."""
    out = np.concatenate(parts)
    parts.clear()
    return out
