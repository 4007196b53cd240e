"""Stage 1: the snapshot of the source database as known at the end of a run date.

``sales`` and ``sell_prices`` are append-only; the value in force at time T is
the latest row recorded at or before T. The snapshot of date D keeps, for every
key, the latest row with ``recorded_at`` before D+1 00:00, so a correction
recorded later changes only later snapshots.

Two ways to build the snapshot of D, with identical results (same files, same
``content_hash``):

* fresh: read every row recorded before D+1 00:00 and keep the latest per key;
* from the previous day's snapshot (``previous_dir``): the snapshot of D-1 plus
  the rows recorded on D (``D 00:00 <= recorded_at < D+1 00:00``, a range the
  ``recorded_at`` index makes cheap), applied latest-wins. Because the tables are
  append-only, a row recorded on D is later than every row of the snapshot of
  D-1, so it replaces the value of its key or adds a new key. Every check of the
  fresh path is made on those rows (the snapshot of D-1 passed them already).
  The previous folder is used only if its manifest is of D-1 and the database's
  latest row recorded before D 00:00 is the one its manifest names (so a snapshot
  of another database, or one taken before rows were back-dated into it, is not
  used); anything else, or unreadable files, means a fresh extraction.

Rows are read as Arrow batches through ADBC on SQLite and PostgreSQL (SQLAlchemy
with plain text SQL elsewhere, or when ADBC is not installed); ids become integer
codes batch by batch, so memory stays near 20 bytes a row. Keys are one int64 per
row, ``(store code, item code, day or week)``, so deduplication is one stable
integer sort; merging a day finds the day's keys in the previous snapshot's
sorted columns (``np.searchsorted`` over its series, bisection within a series)
and applies them with ``np.insert``.
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
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipeline.data import db
from pipeline.data import source_values
from pipeline.data import storage
from pipeline.data.snapshot import MANIFEST, SNAPSHOT_FILES, combined_hash
from pipeline.core.bounds import MAX_SELL_PRICE
from pipeline.core.errors import DataError

log = logging.getLogger("pipeline")

CHUNK_ROWS = 1_000_000  # rows per chunk of the SQLAlchemy reader (and of the unknown-id error's "first row")
ADBC_BATCH_ROWS = 262_144  # rows per Arrow batch from SQLite (PostgreSQL batches by bytes)

_DAY_US = 86_400 * 1_000_000
_DAY_NS = _DAY_US * 1_000
_BIAS = 1 << 31  # the third key component (day number or wm_yr_wk) is stored biased to be non-negative
_LOW32 = (1 << 32) - 1


def cutoff(date: dt.date) -> dt.datetime:
    """First instant after the run date: rows recorded before it are known at the end of ``date``."""
    return dt.datetime.combine(date + dt.timedelta(days=1), dt.time.min)


# ----------------------------------------------------------------------------------------------
# Tables, keys, ids
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Spec:
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


SALES = _Spec(db.sales, "date", "units")
PRICES = _Spec(db.sell_prices, "wm_yr_wk", "sell_price")


@dataclasses.dataclass
class _Ctx:
    """What every step needs: the engine, the id vocabularies (sorted as the master tables)."""

    engine: sa.Engine
    items: pd.Index
    stores: pd.Index

    def __post_init__(self):
        self.n_items = len(self.items)
        self.item_values = pa.array(self.items.to_numpy(dtype=object), pa.string())
        self.store_values = pa.array(self.stores.to_numpy(dtype=object), pa.string())
        if len(self.stores) * self.n_items >= 1 << 31:
            raise DataError(f"{len(self.stores)} stores x {self.n_items} items: too many series for one snapshot")

    def key(self, store: np.ndarray, item: np.ndarray, third: np.ndarray) -> np.ndarray:
        """int64 keys ordered as (store, item, third): series in the high 32 bits."""
        series = store.astype(np.int64) * self.n_items + item
        return (series << 32) | (third.astype(np.int64) + _BIAS)

    def decode(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        store, item = np.divmod(key >> 32, self.n_items)
        return store, item, (key & _LOW32) - _BIAS

    def describe(self, spec: _Spec, key: int, value, recorded_us: int) -> str:
        """A row as the messages name it: ``item_id=… store_id=… date=… units=… recorded_at=…``."""
        store, item, third = (int(v[0]) for v in self.decode(np.array([key], np.int64)))
        third_value = np.datetime64(third, "D").astype("datetime64[ns]") if spec.third == "date" else np.int32(third)
        row = pd.DataFrame({
            spec.third: [third_value], spec.value: [value],
            "recorded_at": [np.datetime64(int(recorded_us), "us")],
        }).iloc[0]
        return (f"item_id={self.items[item]} store_id={self.stores[store]} "
                + " ".join(f"{k}={row[k]}" for k in row.index))


@dataclasses.dataclass
class _Rows:
    """Rows of a versioned table as read, in scan order, as parallel arrays."""

    key: np.ndarray  # int64, see _Ctx.key
    value: np.ndarray  # units (int32, int64 if needed) or sell_price (float64)
    rec: np.ndarray  # recorded_at, int64 microseconds since 1970

    def __len__(self) -> int:
        return len(self.key)


@dataclasses.dataclass
class _InForce:
    """The latest row of each key, in key order; ``recorded_at(i)`` of row i is kept for messages only."""

    key: np.ndarray
    value: np.ndarray
    recorded_at: Callable[[int], int]
    max_recorded: int | None  # over every row read: the latest row of all is always in force
    rows_read: int  # source rows read (every version of every key)

    def __len__(self) -> int:
        return len(self.key)

    def describe(self, ctx: "_Ctx", spec: "_Spec", i: int) -> str:
        return ctx.describe(spec, self.key[i], self.value[i], self.recorded_at(i))


def _read_master(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
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
# Reading rows: Arrow batches from ADBC (SQLite, PostgreSQL) or from SQLAlchemy (anything else)
# ----------------------------------------------------------------------------------------------


class _NoAdbc(Exception):
    """ADBC cannot serve this engine (other backend, in-memory database, driver not installed)."""


def _adbc_connect(engine: sa.Engine):
    """An ADBC DBAPI connection to the engine's database, and statement options; raises _NoAdbc."""
    name = engine.dialect.name
    try:
        if name == "sqlite":
            import adbc_driver_sqlite.dbapi as driver

            path = engine.url.database
            if not path or path == ":memory:" or path.startswith("file:") or not Path(path).is_file():
                raise _NoAdbc(f"SQLite database {path!r} is not a plain file")
            uri = "file:" + urllib.parse.quote(str(Path(path).resolve())) + "?mode=ro"
            return driver.connect(uri), {"adbc.sqlite.query.batch_rows": str(ADBC_BATCH_ROWS)}
        if name == "postgresql":
            import adbc_driver_postgresql.dbapi as driver

            return driver.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False)), {}
    except ImportError as exc:
        raise _NoAdbc(f"ADBC driver not installed ({exc})") from exc
    raise _NoAdbc(f"no ADBC driver for {name}")


def _time_literal(engine: sa.Engine, t: dt.datetime) -> str:
    """``t`` as an SQL literal comparing exactly as SQLAlchemy's bound DateTime does."""
    if engine.dialect.name == "sqlite":  # text in SQLAlchemy's spelling (see db._sqlite_literals)
        return "'" + t.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
    return "TIMESTAMP '" + t.isoformat(sep=" ") + "'"


def _select_sql(engine: sa.Engine, spec: _Spec, lo: dt.datetime | None, hi: dt.datetime, literal,
                part: str = "") -> str:
    quote = engine.dialect.identifier_preparer.quote
    rec = quote("recorded_at")
    where = f"{rec} < {literal('hi', hi)}" + (f" AND {rec} >= {literal('lo', lo)}" if lo else "")
    table = quote(spec.name) + (" NOT INDEXED" if part else "")
    return f"SELECT {', '.join(quote(c) for c in spec.columns)} FROM {table} WHERE {part}{where}"


def _adbc_batches(engine: sa.Engine, spec: _Spec, lo, hi, part: str = "") -> Iterator[pa.RecordBatch]:
    """Arrow batches of the rows; ``part`` (SQLite) restricts them to a rowid range, read in table order."""
    conn, options = _adbc_connect(engine)
    with conn:
        with conn.cursor() as cur:
            if options:
                cur.adbc_statement.set_options(**options)
            cur.execute(_select_sql(engine, spec, lo, hi, lambda _, t: _time_literal(engine, t), part))
            yield from cur.fetch_record_batch()


def _sqlalchemy_batches(engine: sa.Engine, spec: _Spec, lo, hi) -> Iterator[pa.RecordBatch]:
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


def _codes(col: pa.Array, values: pa.Array) -> np.ndarray:
    """Positions of ``col``'s ids in ``values`` (int32), -1 where an id is not there."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = col.cast(pa.string())
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
        return col.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64) * _DAY_US
    if pa.types.is_timestamp(t) and t.tz is None:
        return col.to_numpy(zero_copy_only=False).astype("datetime64[us]").astype(np.int64)
    values = pd.to_datetime(pd.Series(col.to_pylist()))  # anything else a driver may give
    return values.to_numpy().astype("datetime64[us]").astype(np.int64)


class _UnknownIds:
    """The first row whose id is missing from a master table, as a chunked reader names it.

    Rows are checked in chunks of CHUNK_ROWS in scan order, items before stores within
    a chunk; so after the first bad row the scan goes on to the end of its chunk.
    """

    def __init__(self):
        self.first: dict[str, tuple[int, dict]] = {}

    def add(self, column: str, offset: int, codes: np.ndarray, batch: pa.RecordBatch) -> None:
        if column in self.first:
            return
        bad = np.flatnonzero(codes < 0)
        if bad.size:
            i = int(bad[0])
            self.first[column] = (offset + i, {c: batch.column(c)[i].as_py() for c in batch.schema.names})

    def chunk(self) -> int | None:
        return min(at for at, _ in self.first.values()) // CHUNK_ROWS if self.first else None

    def done(self, offset: int) -> bool:
        return bool(self.first) and offset >= (self.chunk() + 1) * CHUNK_ROWS

    def column(self) -> str:
        item = self.first.get("item_id")
        return "item_id" if item and item[0] // CHUNK_ROWS == self.chunk() else "store_id"


def _read_rows(ctx: _Ctx, spec: _Spec, lo: dt.datetime | None, hi: dt.datetime) -> _Rows:
    """Rows of ``spec`` with ``lo <= recorded_at < hi``, ids as codes; unknown ids raise DataError.

    Order: as the plain ``SELECT … WHERE recorded_at < hi`` returns them (which row a
    message names as the first depends on it); see _read_sqlite_parts for the exception.
    """
    try:
        if lo is None and ctx.engine.dialect.name == "sqlite":
            parts = _sqlite_parts(ctx.engine, spec, hi)
            if parts:
                rows = _read_sqlite_parts(ctx, spec, hi, parts)
                if rows is not None:
                    return rows
        return _collect(ctx, spec, lo, hi, _adbc_batches(ctx.engine, spec, lo, hi))
    except DataError:
        raise
    except _NoAdbc as exc:
        log.debug("extract: %s; reading %s through SQLAlchemy", exc, spec.name)
    except Exception as exc:  # a driver problem: the portable path gives the same rows
        log.warning("extract: ADBC read of %s failed (%s: %s); reading through SQLAlchemy",
                    spec.name, type(exc).__name__, exc)
    return _collect(ctx, spec, lo, hi, _sqlalchemy_batches(ctx.engine, spec, lo, hi))


def _sqlite_parts(engine: sa.Engine, spec: _Spec, hi: dt.datetime) -> list[str]:
    """Rowid ranges splitting a SQLite table for a parallel scan, or [] where the index is the better way.

    Reading most of a table, a scan in table order (one range per CPU, up to 4) is
    twice as fast as the ``recorded_at`` index and, in parallel, twice as fast again;
    reading an early date (less than half the rows), the index wins.
    """
    table = engine.dialect.identifier_preparer.quote(spec.name)
    try:
        with engine.connect() as conn:
            first = conn.exec_driver_sql(f"SELECT min(rowid) FROM {table}").scalar()
            last = conn.exec_driver_sql(f"SELECT max(rowid) FROM {table}").scalar()
            after = conn.exec_driver_sql(f"SELECT rowid FROM {table} WHERE recorded_at >= "
                                         f"{_time_literal(engine, hi)} ORDER BY recorded_at LIMIT 1").scalar()
    except sa.exc.DBAPIError:  # e.g. a table without rowid: the index it is
        return []
    if first is None or (after is not None and after - first < (last - first) / 2):
        return []
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(4, cpus))
    bounds = [first + (last + 1 - first) * k // workers for k in range(workers + 1)]
    return [f"rowid >= {a} AND rowid < {b} AND " for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _read_sqlite_parts(ctx: _Ctx, spec: _Spec, hi: dt.datetime, parts: list[str]) -> _Rows | None:
    """The rows, read by rowid ranges in parallel threads (ADBC releases the GIL), in rowid order.

    Rowid order differs from the index's (recorded_at) order only between rows recorded
    at different instants, so the latest row of each key and the duplicate found first
    are the same. Where an id is unknown this returns None: the sequential read then
    names the first such row as it always did.
    """
    def read(part: str):
        batches = _adbc_batches(ctx.engine, spec, None, hi, part)
        try:
            return _convert(ctx, spec, batches)
        finally:
            batches.close()

    with concurrent.futures.ThreadPoolExecutor(len(parts)) as pool:
        results = list(pool.map(read, parts))
    if any(unknown.first for *_, unknown in results):
        return None
    columns = []
    for k in range(3):  # column by column, each part dropped once copied
        parts = []
        for result in results:
            parts += result[k]
            result[k].clear()
        columns.append(_concatenate(parts))
    _release_memory()
    return _Rows(*columns)


def _collect(ctx: _Ctx, spec: _Spec, lo, hi, batches: Iterator[pa.RecordBatch]) -> _Rows:
    try:
        keys, values, recs, unknown = _convert(ctx, spec, batches)
    finally:
        batches.close()  # the connection, at once (also on errors)
    if unknown.first:
        _raise_unknown(ctx, spec, unknown, lo, hi)
    if not keys:
        return _Rows(np.empty(0, np.int64), np.empty(0, np.int32 if spec.value == "units" else np.float64),
                     np.empty(0, np.int64))
    rows = _Rows(*(_concatenate(parts) for parts in (keys, values, recs)))
    _release_memory()
    return rows


def _convert(ctx: _Ctx, spec: _Spec, batches: Iterator[pa.RecordBatch]):
    """Keys, values and recorded_at of each batch (lists of arrays), and the unknown ids met."""
    keys, values, recs = [], [], []
    unknown = _UnknownIds()
    offset = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        item = _codes(batch.column("item_id"), ctx.item_values)
        store = _codes(batch.column("store_id"), ctx.store_values)
        unknown.add("item_id", offset, item, batch)
        unknown.add("store_id", offset, store, batch)
        offset += batch.num_rows
        if unknown.first:
            if unknown.done(offset):
                break
            continue
        source_values.no_nulls(spec, batch)
        third_col = batch.column(spec.third)
        if spec.third == "date":
            third = np.floor_divide(_microseconds(third_col), _DAY_US)
        elif pa.types.is_integer(third_col.type):
            third = source_values.ints(third_col.to_numpy(zero_copy_only=False))
        else:
            raise DataError(f"{spec.name}: {spec.third} must be an integer week number, the column holds "
                            f"{third_col.type}; first row: {source_values.raw_row(batch, 0)}")
        keys.append(ctx.key(store, item, third))
        values.append(source_values.checked_values(ctx.engine, spec, batch))
        recs.append(_microseconds(batch.column("recorded_at")))
    return keys, values, recs, unknown


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


def _raise_unknown(ctx: _Ctx, spec: _Spec, unknown: _UnknownIds, lo, hi) -> None:
    column = unknown.column()
    raw = unknown.first[column][1]
    # the row as SQLAlchemy types it (the message shows its values' reprs)
    t = spec.table
    query = sa.select(*(t.c[c] for c in spec.columns)).where(
        t.c.recorded_at < hi, t.c.item_id == raw["item_id"], t.c.store_id == raw["store_id"])
    if lo is not None:
        query = query.where(t.c.recorded_at >= lo)
    third = raw[spec.third]
    if spec.third == "date" and isinstance(third, str):
        third = pd.Timestamp(third).date()
    try:
        with ctx.engine.connect() as conn:
            rows = pd.read_sql(query.where(t.c[spec.third] == third).limit(1), conn)
    except Exception:  # noqa: BLE001 - the message is still right with the raw values
        rows = pd.DataFrame()
    bad = rows.iloc[0] if len(rows) else pd.Series(raw)
    raise DataError(
        f"{spec.name} row refers to {column}={bad[column]!r}, which is not in the "
        f"{'items' if column == 'item_id' else 'stores'} table (row: {bad.to_dict()})"
    )


# ----------------------------------------------------------------------------------------------
# Latest row per key, checks
# ----------------------------------------------------------------------------------------------


def _latest(ctx: _Ctx, spec: _Spec, rows: _Rows) -> _InForce:
    """The latest-recorded row of each key, in key order (``rows`` are consumed).

    Two rows of one key recorded at the same instant are an error (neither is the
    correction of the other). Keys are sorted once (stable, so rows of one key stay
    in scan order); only the few keys with several rows are then ordered by recorded_at.
    """
    n = len(rows)
    max_recorded = int(rows.rec.max()) if n else None
    order = np.argsort(rows.key, kind="stable")
    sorted_key = rows.key[order]
    rows.key = None  # the sorted copy is all that is needed from here
    same = sorted_key[1:] == sorted_key[:-1]
    last = np.ones(n, bool)
    last[:-1] = ~same
    if same.any():
        in_group = np.zeros(n, bool)
        in_group[1:] |= same
        in_group[:-1] |= same
        positions = np.flatnonzero(in_group)  # by key, scan order within a key
        positions = positions[np.lexsort((rows.rec[order[positions]], sorted_key[positions]))]
        group_rows, key = order[positions], sorted_key[positions]
        rec = rows.rec[group_rows]
        new_key = np.ones(len(key), bool)
        new_key[1:] = key[1:] != key[:-1]
        tie = ~new_key[1:] & (rec[1:] == rec[:-1])
        if tie.any():
            first = 1 + int(np.argmax(tie))
            raise DataError(
                f"{spec.name}: {int(tie.sum())} duplicate row(s): two rows for the same key recorded at the same "
                f"instant, so neither is the correction of the other; first: "
                f"{ctx.describe(spec, key[first], rows.value[group_rows[first]], rec[first])}"
            )
        group_last = np.ones(len(key), bool)
        group_last[:-1] = new_key[1:]
        winners = order[last]
        winners[in_group[last]] = group_rows[group_last]
    else:
        winners = order
    del order
    key = sorted_key[last] if len(sorted_key) > 1 and not last.all() else sorted_key
    value = rows.value[winners]
    rec = rows.rec
    return _InForce(key, value, lambda i: int(rec[winners[i]]), max_recorded, n)


def _check_sales(ctx: _Ctx, rows: _InForce, date: dt.date, last_day: int) -> None:
    """Stop values no forecast should be built on; each message names a first offending row.

    ``rows`` are in-force rows in key order (all of them, or those of the day's delta:
    the previous snapshot passed these checks); ``last_day`` is the last day of all of them.
    """
    negative = rows.value < 0
    if negative.any():
        raise DataError(f"sales: {int(negative.sum())} row(s) in force with negative units; first: "
                        f"{rows.describe(ctx, SALES, int(np.argmax(negative)))}")
    run_day = (date - dt.date(1970, 1, 1)).days
    future = (rows.key & _LOW32) > _BIAS + run_day
    if future.any():
        raise DataError(f"sales: {int(future.sum())} row(s) dated after the run date {date} but recorded by then; "
                        f"first: {rows.describe(ctx, SALES, int(np.argmax(future)))}")
    if last_day < run_day:
        raise DataError(f"no sales are recorded for the run date {date}: the last recorded day as of then is "
                        f"{dt.date(1970, 1, 1) + dt.timedelta(days=int(last_day))}; a run date after the last "
                        "recorded day cannot be forecast from")


def _check_prices(ctx: _Ctx, rows: _InForce) -> None:
    bad = np.isnan(rows.value) | (rows.value <= 0)
    if bad.any():
        raise DataError(f"sell_prices: {int(bad.sum())} row(s) with a price that is not positive; first: "
                        f"{rows.describe(ctx, PRICES, int(np.argmax(bad)))}")
    bad = rows.value > MAX_SELL_PRICE
    if bad.any():
        raise DataError(f"sell_prices: {int(bad.sum())} row(s) with a price above {MAX_SELL_PRICE:,.0f} a unit "
                        f"(pipeline.core.bounds.MAX_SELL_PRICE); first: {rows.describe(ctx, PRICES, int(np.argmax(bad)))}")


def _last_day(key: np.ndarray) -> int:
    return int((key & _LOW32).max()) - _BIAS


# ----------------------------------------------------------------------------------------------
# Building from the previous day's snapshot
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Table:
    """A snapshot table as its output columns, in key order: store and item codes, third key, value.

    ``third`` is the date as int64 nanoseconds since 1970 (sales) or wm_yr_wk (prices, int32).
    ``starts`` (first row of each series) and ``series`` (their ids, store code x items + item
    code) are found on first use.
    """

    store: np.ndarray
    item: np.ndarray
    third: np.ndarray
    value: np.ndarray
    starts: np.ndarray | None = None
    series: np.ndarray | None = None
    n_series: int | None = None

    def __len__(self) -> int:
        return len(self.third)

    @classmethod
    def from_keys(cls, ctx: _Ctx, spec: _Spec, key: np.ndarray, value: np.ndarray) -> "_Table":
        """Columns of in-force rows given by sorted keys; ``key``'s memory becomes the ``third`` column."""
        n = len(key)
        series = key >> 32
        starts = np.flatnonzero(np.concatenate(([n > 0], series[1:] != series[:-1])))
        series = series[starts]
        lengths = np.diff(np.append(starts, n))
        run_store, run_item = np.divmod(series, ctx.n_items)
        store = np.repeat(_small(run_store, len(ctx.stores)), lengths)
        item = np.repeat(_small(run_item, ctx.n_items), lengths)
        third = np.bitwise_and(key, _LOW32, out=key)
        third -= _BIAS
        if spec.third == "date":
            third *= _DAY_NS
        else:
            third = third.astype(np.int32)
        return cls(store, item, third, value, starts, series, len(starts))

    def runs(self, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        if self.starts is None:
            change = (self.item[1:] != self.item[:-1]) | (self.store[1:] != self.store[:-1])
            self.starts = np.flatnonzero(np.concatenate(([len(self) > 0], change)))
            self.series = self.store[self.starts].astype(np.int64) * n_items + self.item[self.starts]
            self.n_series = len(self.starts)
        return self.starts, self.series


def _small(codes: np.ndarray, n: int) -> np.ndarray:
    """Codes of a vocabulary of ``n`` in the smallest integer type (the categoricals' own)."""
    return codes.astype(np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32, copy=False)


@dataclasses.dataclass
class _Base:
    """The previous snapshot: its manifest, and its sales and prices as tables."""

    manifest: dict
    sales: _Table
    prices: _Table


_BASE_SCHEMAS = {
    "sales": (("date", pa.timestamp("ns")), ("units", pa.int32())),
    "prices": (("wm_yr_wk", pa.int32()), ("sell_price", pa.float64())),
}


def _id_codes(column: pa.ChunkedArray, vocab: pd.Index) -> np.ndarray | None:
    """Codes of a stored categorical column against the current master table (by name); None if one is missing."""
    parts = []
    for chunk in column.chunks:
        if not pa.types.is_dictionary(chunk.type):
            return None
        mapping = vocab.get_indexer(chunk.dictionary.to_pandas())
        indices = chunk.indices.to_numpy(zero_copy_only=False)
        if not len(indices):
            continue
        if len(mapping) and (mapping == np.arange(len(mapping))).all():
            codes = indices  # the same vocabulary as when it was written: the codes as they are
        else:
            codes = _small(mapping, len(vocab))[indices]
        if codes.min() < 0:
            return None
        parts.append(codes)
    return _small(np.concatenate(parts), len(vocab)) if parts else np.empty(0, np.int16)


def _read_base_table(ctx: _Ctx, path: Path, name: str, rows: int) -> _Table | None:
    (third, third_type), (value, value_type) = _BASE_SCHEMAS[name]
    table = pq.read_table(path, memory_map=True)
    types = dict(zip(table.schema.names, table.schema.types))
    if (table.schema.names != ["item_id", "store_id", third, value] or types[third] != third_type
            or types[value] != value_type or table.num_rows != rows):
        return None
    item = _id_codes(table.column("item_id"), ctx.items)
    store = _id_codes(table.column("store_id"), ctx.stores)
    if item is None or store is None:
        return None
    third_values = table.column(third)
    third_values = third_values.cast(pa.int64()) if name == "sales" else third_values
    values = table.column(value).to_numpy()
    base = _Table(store, item, third_values.to_numpy(), values if values.flags.writeable else values.copy())
    _, series = base.runs(ctx.n_items)
    if len(series) > 1 and not (series[1:] > series[:-1]).all():  # ids renamed out of the written order
        return None
    return base


def _latest_before(engine: sa.Engine, table: sa.Table, until: dt.datetime):
    """The latest recorded_at before ``until`` (one index lookup)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(table.c.recorded_at).where(table.c.recorded_at < until)
                            .order_by(table.c.recorded_at.desc()).limit(1)).scalar()


def missing_run_date(engine: sa.Engine, date: dt.date) -> str | None:
    """Why ``date`` cannot be forecast because its sales were never recorded, or None.

    A day's sales are recorded on that day (a row dated after the day it is recorded on is
    refused as from the future), so a run date on which no sales row at all was recorded is
    after the data's end, or its sales have not arrived. Two index lookups: a date years away
    from the data is refused in milliseconds, before any work is scheduled for it.
    """
    latest = _latest_before(engine, db.sales, cutoff(date))
    if latest is None:
        with engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(db.sales.c.recorded_at))).scalar()
        if first is None:
            return "the sales table holds no rows: there is no history to forecast from"
        return f"run date {date} is before any history: the first sales row was recorded at {first}"
    if pd.Timestamp(latest) < pd.Timestamp(date):
        return (f"no sales are recorded for the run date {date}: no sales row was recorded on that day, the last "
                f"one before it at {latest}; a run date after the last recorded day cannot be forecast from")
    return None


def _max_rowid(engine: sa.Engine, table: sa.Table) -> int | None:
    """SQLite: the table's largest rowid (one b-tree lookup); None elsewhere."""
    if engine.dialect.name != "sqlite":
        return None
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                f"SELECT max(rowid) FROM {engine.dialect.identifier_preparer.quote(table.name)}").scalar()
    except sa.exc.DBAPIError:  # a table WITHOUT ROWID: counted instead
        return None


def _unread_rows(engine: sa.Engine, table: sa.Table, until: dt.datetime, manifest: dict) -> int:
    """How many rows recorded before ``until`` the snapshot of ``manifest`` did not read (back-dated rows
    inserted after it was taken; negative: rows removed).

    SQLite appends rows with growing rowids, so the rows inserted since are those above the rowid
    the snapshot noted: a range of the table's own b-tree, a few thousand rows a day. Elsewhere all
    rows are counted, less the few recorded since (a scan of the recorded_at index).
    """
    noted = (manifest.get("source_max_rowid") or {}).get(table.name)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite" and noted is not None:
            name = engine.dialect.identifier_preparer.quote(table.name)
            return int(conn.exec_driver_sql(
                # NOT INDEXED: the rowid range, not the recorded_at index (which the planner would pick)
                f"SELECT count(*) FROM {name} NOT INDEXED WHERE rowid > {int(noted)} "
                f"AND recorded_at < {_time_literal(engine, until)}"
            ).scalar())
        total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
        since = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.recorded_at >= until)).scalar()
    return int(total) - int(since) - manifest["source_rows"][table.name]


def _load_previous(ctx: _Ctx, previous_dir: Path, date: dt.date) -> _Base | None:
    """The snapshot of ``date - 1`` in ``previous_dir`` as a base for ``date``; None (fresh) if it is not usable."""
    prev = date - dt.timedelta(days=1)
    folder = Path(previous_dir)
    try:
        manifest = storage.read_json(folder / "manifest.json")
    except (OSError, ValueError) as exc:
        log.info("snapshot %s: previous snapshot %s unreadable (%s); extracting fresh", date, folder, exc)
        return None
    if not isinstance(manifest, dict) or manifest.get("date") != prev.isoformat() \
            or manifest.get("recorded_before") != cutoff(prev).isoformat():
        log.info("snapshot %s: %s is not the snapshot of %s; extracting fresh", date, folder, prev)
        return None
    try:
        # the database must hold, before the previous snapshot's cutoff, exactly the rows that snapshot read:
        # the same last row, and no row inserted since with an earlier recorded_at (back-dated).
        for spec in (SALES, PRICES):
            latest = _latest_before(ctx.engine, spec.table, cutoff(prev))
            recorded = manifest["max_recorded_at"][spec.name]
            if (latest is None) != (recorded is None) or (
                    latest is not None and pd.Timestamp(latest) != pd.Timestamp(recorded)):
                log.info("snapshot %s: the database's last %s row before %s is %s, the previous snapshot's %s; "
                         "extracting fresh", date, spec.name, cutoff(prev), latest, recorded)
                return None
            unread = _unread_rows(ctx.engine, spec.table, cutoff(prev), manifest)
            if unread:
                log.warning("snapshot %s: %d %s row(s) recorded before %s were %s since the previous snapshot was "
                            "taken; extracting fresh", date, abs(unread), spec.name, cutoff(prev),
                            "inserted (back-dated)" if unread > 0 else "removed")
                return None
        sales = _read_base_table(ctx, folder / "sales.parquet", "sales", manifest["rows"]["sales"])
        prices = _read_base_table(ctx, folder / "prices.parquet", "prices", manifest["rows"]["prices"])
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException) as exc:
        log.info("snapshot %s: previous snapshot %s unusable (%s: %s); extracting fresh",
                 date, folder, type(exc).__name__, exc)
        return None
    if sales is None or prices is None or not len(sales):
        log.info("snapshot %s: previous snapshot %s does not match the current tables; extracting fresh", date, folder)
        return None
    return _Base(manifest, sales, prices)


def _lower_bound(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: np.ndarray) -> np.ndarray:
    """For each i, the first position in ``values[lo[i]:hi[i]]`` (sorted) not below ``target[i]``: a vectorised bisection."""
    lo, hi = lo.copy(), hi.copy()
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        below = np.zeros(len(lo), bool)
        below[active] = values[mid[active]] < target[active]
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)


def _apply(ctx: _Ctx, spec: _Spec, base: _Table, delta: _InForce) -> _Table:
    """``delta`` (in-force rows of the day, in key order) applied to ``base``: a key already there gets
    the new value, a new key is inserted at its place. No key is built for the base's rows: the
    delta's series are found among the base's series, then their day (week) by bisection inside it."""
    if not len(delta):
        return base
    d = _Table.from_keys(ctx, spec, delta.key.copy(), delta.value)
    value = d.value.astype(base.value.dtype)  # the cast the output makes anyway
    if not len(base):
        return _Table(d.store, d.item, d.third, value, d.starts, d.series, d.n_series)
    starts, series = base.runs(ctx.n_items)
    ends = np.append(starts[1:], len(base))
    d_series = d.store.astype(np.int64) * ctx.n_items + d.item
    r = np.searchsorted(series, d_series)
    known = r < len(series)
    known[known] = series[r[known]] == d_series[known]
    # a key of a new series goes before the next series' first row (or at the end)
    pos = np.where(r < len(starts), starts[np.minimum(r, len(starts) - 1)], len(base))
    pos[known] = _lower_bound(base.third, starts[r[known]], ends[r[known]], d.third[known])
    found = known.copy()
    found[known] = pos[known] < ends[r[known]]
    found[found] = base.third[pos[found]] == d.third[found]
    base.value[pos[found]] = value[found]
    new = ~found
    if not new.any():
        return base
    at = pos[new]
    return _Table(np.insert(base.store, at, d.store[new]), np.insert(base.item, at, d.item[new]),
                  np.insert(base.third, at, d.third[new]), np.insert(base.value, at, value[new]),
                  n_series=len(series) + len(np.unique(d_series[~known])))


def _max_recorded(base: str | None, delta_us: int | None) -> str | None:
    if delta_us is None:
        return base
    ts = pd.Timestamp(delta_us, unit="us")
    return base if base is not None and pd.Timestamp(base) >= ts else ts.isoformat()


# ----------------------------------------------------------------------------------------------
# The snapshot
# ----------------------------------------------------------------------------------------------


def extract_snapshot(engine: sa.Engine, date: dt.date, out_dir: Path, previous_dir: Path | None = None) -> dict:
    """Write the snapshot of the database as known at the end of ``date`` into ``out_dir``.

    Files: ``calendar, items, stores, sales, prices`` (.parquet) and ``manifest.json``
    (row counts, max recorded_at, content hash, ``built_from``). ``sales`` is long:
    item_id, store_id (categoricals), date, units (int32), sorted by store, item, date;
    ``prices``: item_id, store_id, wm_yr_wk, sell_price (float64, as recorded). Values are
    exact: units above ``bounds.MAX_UNITS``, fractional, NULL or text are refused.

    ``previous_dir``, when it holds the snapshot of ``date - 1`` taken from this
    database, is the base: only the rows recorded on ``date`` are read and applied
    (``built_from: "previous"``); any other folder is ignored (``"fresh"``). Both
    give the same files and ``content_hash``.

    Raises DataError, naming the offending rows, when the data as of ``date``
    cannot give a forecast; nothing is written then.
    """
    db.check_schema(engine)
    missing = missing_run_date(engine, date)
    if missing:
        raise DataError(missing)
    calendar, items, stores = _read_master(engine)
    if items.empty or stores.empty:
        raise DataError(f"the items table holds {len(items)} rows and stores {len(stores)}: nothing to forecast")
    ctx = _Ctx(engine, pd.Index(items["item_id"]), pd.Index(stores["store_id"]))
    until = cutoff(date)
    # noted before any row is read: a row inserted during the read is above it, and checked tomorrow
    max_rowid = {spec.name: _max_rowid(engine, spec.table) for spec in (SALES, PRICES)}

    base = _load_previous(ctx, previous_dir, date) if previous_dir is not None else None
    if base is not None:
        since = cutoff(date - dt.timedelta(days=1))
        delta = _latest(ctx, SALES, _read_rows(ctx, SALES, since, until))
        last_day = int(base.sales.third.max()) // _DAY_NS
        _check_sales(ctx, delta, date, max(last_day, _last_day(delta.key)) if len(delta) else last_day)
        delta_prices = _latest(ctx, PRICES, _read_rows(ctx, PRICES, since, until))
        _check_prices(ctx, delta_prices)
        max_recorded = {name: _max_recorded(base.manifest["max_recorded_at"][name], rows.max_recorded)
                        for name, rows in (("sales", delta), ("sell_prices", delta_prices))}
        source_rows = {name: base.manifest["source_rows"][name] + rows.rows_read
                       for name, rows in (("sales", delta), ("sell_prices", delta_prices))}
        sales = _apply(ctx, SALES, base.sales, delta)
        prices = _apply(ctx, PRICES, base.prices, delta_prices)
        del base  # the previous snapshot's columns, unless still the output's
        log.info("snapshot %s: built from %s and the %d sales and %d price rows in force recorded on %s",
                 date, previous_dir, len(delta), len(delta_prices), date)
        built_from = "previous"
    else:
        rows = _read_rows(ctx, SALES, None, until)
        if not len(rows):  # missing_run_date found one: the table changed under the read
            raise DataError(f"no sales rows recorded before {until} could be read; the sales table changed during "
                            "the extraction, run again")
        in_force = _latest(ctx, SALES, rows)
        del rows
        _check_sales(ctx, in_force, date, _last_day(in_force.key))
        max_recorded = {"sales": _max_recorded(None, in_force.max_recorded)}
        source_rows = {"sales": in_force.rows_read}
        in_force.recorded_at = None  # frees every row's recorded_at: only messages needed them
        sales = _Table.from_keys(ctx, SALES, in_force.key, in_force.value)
        del in_force
        in_force = _latest(ctx, PRICES, _read_rows(ctx, PRICES, None, until))
        _check_prices(ctx, in_force)
        max_recorded["sell_prices"] = _max_recorded(None, in_force.max_recorded)
        source_rows["sell_prices"] = in_force.rows_read
        in_force.recorded_at = None
        prices = _Table.from_keys(ctx, PRICES, in_force.key, in_force.value)
        del in_force
        built_from = "fresh"
    return _write(ctx, date, until, out_dir, calendar, items, stores, sales, prices,
                  {"max_recorded_at": max_recorded, "source_rows": source_rows, "source_max_rowid": max_rowid,
                   "built_from": built_from})


def _write(ctx: _Ctx, date: dt.date, until: dt.datetime, out_dir: Path, calendar, items, stores,
           sales: _Table, prices: _Table, provenance: dict) -> dict:
    # copy=False: the frames are views of the columns (no second copy of 60 M rows)
    frames = {
        "calendar": calendar,
        "items": items,
        "stores": stores,
        "sales": pd.DataFrame({
            "item_id": pd.Categorical.from_codes(sales.item, categories=ctx.items),
            "store_id": pd.Categorical.from_codes(sales.store, categories=ctx.stores),
            "date": sales.third.view("datetime64[ns]"),
            "units": _exact(sales.value, np.int32, "units"),
        }, copy=False),
        "prices": pd.DataFrame({
            "item_id": pd.Categorical.from_codes(prices.item, categories=ctx.items),
            "store_id": pd.Categorical.from_codes(prices.store, categories=ctx.stores),
            "wm_yr_wk": prices.third.astype(np.int32, copy=False),
            "sell_price": _exact(prices.value, np.float64, "sell_price"),
        }, copy=False),
    }
    if sales.n_series is None:
        sales.runs(ctx.n_items)
    manifest = {
        "date": date.isoformat(),
        "recorded_before": until.isoformat(),
        "rows": {name: len(frame) for name, frame in frames.items()},
        "max_recorded_at": provenance["max_recorded_at"],
        "source_rows": provenance["source_rows"],
        "source_max_rowid": provenance["source_max_rowid"],
        "series": int(sales.n_series),
        "first_sales_date": str(np.datetime64(int(sales.third.min()), "ns").astype("datetime64[D]")),
        "built_from": provenance["built_from"],
    }
    # the files are written while the hashes are computed: both spend their time outside the GIL
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        written = pool.submit(lambda: [storage.write_parquet(frame, out_dir / f"{name}.parquet")
                                       for name, frame in frames.items()])
        manifest["content_hash"] = {name: storage.frame_hash(frame) for name, frame in frames.items()}
        written.result()
    manifest["content_hash"]["all"] = combined_hash(manifest["content_hash"])
    storage.write_json(out_dir / MANIFEST, manifest)
    return manifest


def _exact(values: np.ndarray, dtype, name: str) -> np.ndarray:
    """``values`` as ``dtype``, or an error if that would change any of them (the checks above rule it out)."""
    out = values.astype(dtype, copy=False)
    if out is not values and not np.array_equal(out, values):
        raise DataError(f"snapshot: {name} would not be stored exactly as {np.dtype(dtype).name}")
    return out
