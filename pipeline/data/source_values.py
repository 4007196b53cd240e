"""What a value read from the source database must be to enter a snapshot, and the messages when it is not.

Extraction refuses only what a snapshot cannot hold exactly (the data's plausibility, e.g. a
negative count or a price of zero, is judged by CheckSnapshot, :mod:`pipeline.stages.quality`):
``spec`` below is a table of :mod:`pipeline.data.source` (``table``, ``name``, ``third``,
``value``, ``columns``). Units must be whole numbers of magnitude at most
:data:`~pipeline.core.bounds.MAX_UNITS` (the float32 features and labels hold no larger one
exactly); a price a finite number (a driver gives NULL as NaN, so neither is a price); a numeric
column must not hold text (a driver then spells the batch's doubles inexactly); the key columns
no NULL; the calendar's numbers must fit their int16 / int32 columns. (An id missing from its
master table is held, and judged by CheckSnapshot's ``unknown_ids``.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from pipeline.core.bounds import MAX_UNITS
from pipeline.core.errors import DataError


def calendar_numbers(calendar: pd.DataFrame) -> pd.DataFrame:
    """The calendar's numbers as int16 / int32, or DataError naming the first date whose value its type cannot hold."""
    for col, dtype in (("wday", "int16"), ("month", "int16"), ("year", "int16"), ("snap_CA", "int16"),
                       ("snap_TX", "int16"), ("snap_WI", "int16"), ("wm_yr_wk", "int32")):
        # SQLite holds any value in these columns: each must be a whole number its type holds
        values = pd.to_numeric(calendar[col], errors="coerce").astype("float64").to_numpy()
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < np.iinfo(dtype).min) \
            | (values > np.iinfo(dtype).max)
        if bad.any():
            first = calendar.iloc[int(np.argmax(bad))]
            raise DataError(f"calendar: {col} must be a whole number that fits {dtype}; {int(bad.sum())} row(s) do "
                            f"not, first: date={first['date'].date()} {col}={first[col]!r}")
        calendar[col] = values.astype(dtype)
    return calendar


def ints(values: np.ndarray) -> np.ndarray:
    """Integers as int32 when they fit, else int64 (never a narrowing)."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        raise TypeError(f"not integers: {values.dtype}")
    if values.size and (values.min() < -(1 << 31) or values.max() >= 1 << 31):
        return values.astype(np.int64)
    return values.astype(np.int32)


def _numbers(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A numeric value column as float64 and a mask of the rows that hold no number (NULL, NaN, infinite)."""
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    else:
        values = np.full(len(col), np.nan)
    values = np.where(col.is_null().to_numpy(zero_copy_only=False), np.nan, values)
    return values, ~np.isfinite(values)


def _text_rows(col: pa.Array) -> np.ndarray | None:
    """For a value column that a driver gives as text (SQLite keeps text in a numeric column as is, and
    then spells that batch's doubles with 6 digits): the rows to name, those that are no number first."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return None
    parsed = pd.to_numeric(pd.Series(col.to_numpy(zero_copy_only=False)), errors="coerce").to_numpy(np.float64)
    not_numbers = np.flatnonzero(~np.isfinite(parsed))
    return not_numbers if len(not_numbers) else np.arange(len(col))


def _sqlite_text_rows(engine: sa.Engine, spec) -> list[str]:
    """The first rows whose value SQLite stores as text (none elsewhere: other databases type their columns)."""
    if engine.dialect.name != "sqlite":
        return []
    quote = engine.dialect.identifier_preparer.quote
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT {', '.join(quote(c) for c in spec.columns)} FROM {quote(spec.name)} "
            f"WHERE typeof({quote(spec.value)}) = 'text' ORDER BY {quote('recorded_at')} LIMIT 3").fetchall()
    return [" ".join(f"{c}={v!r}" if c == spec.value else f"{c}={v}" for c, v in zip(spec.columns, row)) for row in rows]


def checked_values(engine: sa.Engine, spec, batch: pa.RecordBatch) -> np.ndarray:
    """The batch's units (int32/int64) or sell_price (float64), exactly; DataError naming the first rows otherwise.

    Units must be whole numbers no larger than MAX_UNITS in magnitude (whether a negative one is
    plausible is CheckSnapshot's negative_units); a price must be a finite number (whether it is
    positive is CheckSnapshot's price_not_positive). Text in the column is refused whatever it
    spells: the driver's text of the other values of its batch is not exact.
    """
    col = batch.column(spec.value)
    text = _text_rows(col)
    if text is not None:
        rows = _sqlite_text_rows(engine, spec) or [raw_row(batch, int(i)) for i in text[:3]]
        raise DataError(f"{spec.name}: {spec.value} must be stored as numbers, the column holds text; first: "
                        + "; ".join(rows))
    if spec.value == "units" and pa.types.is_integer(col.type) and not col.null_count:
        values = ints(col.to_numpy(zero_copy_only=False))
        bad = (values > MAX_UNITS) | (values < -MAX_UNITS)
    else:
        values, bad = _numbers(col)
        if spec.value == "units":
            bad |= (values != np.floor(values)) | (np.abs(values) > MAX_UNITS)
            values = ints(np.where(bad, 0, values).astype(np.int64))
    if bad.any():
        rule = (f"units must be whole numbers up to {MAX_UNITS:,} in magnitude (the most the float32 features and "
                "labels hold exactly), not NULL, text or fractions" if spec.value == "units"
                else "sell_price must be a number, not NULL, text, NaN or infinite")
        rows = np.flatnonzero(bad)
        raise DataError(f"{spec.name}: {rule}; refused {len(rows)} row(s) of {batch.num_rows} read together, "
                        "first: " + "; ".join(raw_row(batch, int(i)) for i in rows[:3]))
    return values


def no_nulls(spec, batch: pa.RecordBatch) -> None:
    """DataError naming the first row with a NULL key column or recorded_at (a key the snapshot cannot hold)."""
    for name in ("item_id", "store_id", spec.third, "recorded_at"):
        col = batch.column(name)
        if col.null_count:
            i = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
            raise DataError(f"{spec.name}: {col.null_count} row(s) with a NULL {name}; first: {raw_row(batch, i)}")


def raw_row(batch: pa.RecordBatch, i: int) -> str:
    """One row of a batch as read, for messages: ``item_id=… store_id=… date=… units=… recorded_at=…``."""
    return " ".join(f"{name}={batch.column(name)[i].as_py()!r}" if name in ("units", "sell_price")
                    else f"{name}={batch.column(name)[i].as_py()}" for name in batch.schema.names)

