"""As-of semantics: the row of each key in force at the end of a run date is its latest recorded one.

``sales`` and ``sell_prices`` are append-only; the value in force at time T is the
latest row recorded at or before T. The snapshot of date D keeps, for every key,
the latest row with ``recorded_at`` before :func:`cutoff` (D+1 00:00). Two rows of
one key recorded at the same instant leave the snapshot undefined (neither is the
correction of the other): :func:`latest` refuses them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.core.keys import Vocabulary


def cutoff(date: dt.date) -> dt.datetime:
    """First instant after the run date: rows recorded before it are known at the end of ``date``."""
    return dt.datetime.combine(date + dt.timedelta(days=1), dt.time.min)


@dataclasses.dataclass
class Rows:
    """Rows of a versioned table as read, in scan order, as parallel arrays."""

    key: np.ndarray  # int64, see Vocabulary.key
    value: np.ndarray  # units (int32, int64 if needed) or sell_price (float64)
    rec: np.ndarray  # recorded_at, int64 microseconds since 1970

    def __len__(self) -> int:
        return len(self.key)


@dataclasses.dataclass
class InForce:
    """The latest row of each key, in key order; ``recorded_at(i)`` of row i is kept for messages only."""

    key: np.ndarray
    value: np.ndarray
    recorded_at: Callable[[int], int] | None
    max_recorded: int | None  # over every row read: the latest row of all is always in force
    rows_read: int  # source rows read (every version of every key)

    def __len__(self) -> int:
        return len(self.key)

    def describe(self, vocab: Vocabulary, spec, i: int) -> str:
        return vocab.describe(spec, self.key[i], self.value[i], self.recorded_at(i))


def latest(vocab: Vocabulary, spec, rows: Rows) -> InForce:
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
                f"{vocab.describe(spec, key[first], rows.value[group_rows[first]], rec[first])}"
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
    return InForce(key, value, lambda i: int(rec[winners[i]]), max_recorded, n)


def max_recorded(base: str | None, delta_us: int | None) -> str | None:
    """The later of a manifest's latest recorded_at (ISO text) and a read's (microseconds), as ISO text."""
    if delta_us is None:
        return base
    ts = pd.Timestamp(delta_us, unit="us")
    return base if base is not None and pd.Timestamp(base) >= ts else ts.isoformat()
