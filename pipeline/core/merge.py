"""A snapshot table as sorted columns, and a day's in-force rows merged into it latest-wins.

Because the source tables are append-only, a row recorded on D is later than every
row of the snapshot of D-1: it replaces the value of its key or adds a new key. The
merge finds the day's series among the previous snapshot's (``np.searchsorted``),
then the day (week) inside each series by bisection, and inserts new keys with
``np.insert``; no key is built for the previous snapshot's rows.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.core import series
from pipeline.core.keys import DAY_NS, Vocabulary, small
from pipeline.core.latest import InForce


@dataclasses.dataclass
class Table:
    """A snapshot table as its output columns, in key order: store and item codes, third key, value.

    ``third`` is the date as int64 nanoseconds since 1970 (sales) or wm_yr_wk (prices, int32).
    ``starts`` (first row of each series) and ``series`` (their codes, see
    :func:`pipeline.core.series.series_codes`, for ``n_items`` items) are found on first use.
    """

    store: np.ndarray
    item: np.ndarray
    third: np.ndarray
    value: np.ndarray
    starts: np.ndarray | None = None
    series: np.ndarray | None = None
    n_series: int | None = None
    n_items: int | None = None  # the number of items ``series`` was coded with

    def __len__(self) -> int:
        return len(self.third)

    @classmethod
    def from_keys(cls, vocab: Vocabulary, spec, key: np.ndarray, value: np.ndarray) -> "Table":
        """Columns of in-force rows given by sorted keys; ``key``'s memory becomes the ``third`` column."""
        n = len(key)
        codes = series.key_series(key)
        starts = np.flatnonzero(np.concatenate(([n > 0], codes[1:] != codes[:-1])))
        codes = codes[starts]
        lengths = np.diff(np.append(starts, n))
        run_store, run_item = series.split_series(codes, vocab.n_items)
        store = np.repeat(small(run_store, len(vocab.stores)), lengths)
        item = np.repeat(small(run_item, vocab.n_items), lengths)
        third = np.bitwise_and(key, series.KEY_LOW, out=key)  # in place: no second column of 60 M keys
        third -= series.KEY_BIAS
        if spec.third == "date":
            third *= DAY_NS
        else:
            third = third.astype(np.int32)
        return cls(store, item, third, value, starts, codes, len(starts), vocab.n_items)

    def runs(self, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        """(first row of each series, series codes for ``n_items`` items), found once."""
        if self.starts is None:
            change = (self.item[1:] != self.item[:-1]) | (self.store[1:] != self.store[:-1])
            self.starts = np.flatnonzero(np.concatenate(([len(self) > 0], change)))
            self.n_series = len(self.starts)
        if self.n_items != n_items:  # first use, or the vocabulary grew by ids missing from the master tables
            self.series = series.series_codes(self.store[self.starts], self.item[self.starts], n_items)
            self.n_items = n_items
        return self.starts, self.series


def lower_bound(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: np.ndarray) -> np.ndarray:
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


def merge(vocab: Vocabulary, spec, base: Table, delta: InForce) -> Table:
    """``delta`` (in-force rows of the day, in key order) applied to ``base``: a key already there gets
    the new value, a new key is inserted at its place. ``base``'s columns are changed in place."""
    if not len(delta):
        return base
    d = Table.from_keys(vocab, spec, delta.key.copy(), delta.value)
    value = d.value.astype(base.value.dtype)  # the cast the output makes anyway
    if not len(base):
        return Table(d.store, d.item, d.third, value, d.starts, d.series, d.n_series, d.n_items)
    starts, base_series = base.runs(vocab.n_items)
    ends = np.append(starts[1:], len(base))
    d_series = series.series_codes(d.store, d.item, vocab.n_items)
    r = np.searchsorted(base_series, d_series)
    known = r < len(base_series)
    known[known] = base_series[r[known]] == d_series[known]
    # a key of a new series goes before the next series' first row (or at the end)
    pos = np.where(r < len(starts), starts[np.minimum(r, len(starts) - 1)], len(base))
    pos[known] = lower_bound(base.third, starts[r[known]], ends[r[known]], d.third[known])
    found = known.copy()
    found[known] = pos[known] < ends[r[known]]
    found[found] = base.third[pos[found]] == d.third[found]
    base.value[pos[found]] = value[found]
    new = ~found
    if not new.any():
        return base
    at = pos[new]
    return Table(np.insert(base.store, at, d.store[new]), np.insert(base.item, at, d.item[new]),
                 np.insert(base.third, at, d.third[new]), np.insert(base.value, at, value[new]),
                 n_series=len(base_series) + len(np.unique(d_series[~known])))
