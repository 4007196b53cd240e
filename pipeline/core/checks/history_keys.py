"""The machinery of ``history_change`` (:mod:`pipeline.core.checks.history`): two snapshots' sales as
sorted integer keys, compared key by key, and the usual range of a series before a row.

A row's key is :func:`pipeline.core.series.row_keys` of (store, item, epoch day):
``series << 32 | (day + 2**31)``. The snapshots are sorted by store, item and date, so the keys
are too: a block of this snapshot whose rows, but the run date's, are exactly a stretch of the
previous one (the usual case) is compared in one pass, any other block by ``searchsorted``; the
range test gathers, for each tested row, the ``history_days`` rows before it in key order.

Fixed constants (they bound the memory of the whole-column passes and change no result):
``_BLOCK`` rows per block, ``_GATHER_ROWS`` tested rows per block of the range test.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.core.series import KEY_BIAS, KEY_LOW, key_series, key_third, row_keys

_BLOCK = 1 << 22  # rows per block of the whole-column passes (bounds the temporaries)
_GATHER_ROWS = 100_000  # tested rows per block of the range test (x history_days values each)


@dataclasses.dataclass
class Sales:
    """A sales table as integer columns (no copies of the frame's columns)."""

    store: np.ndarray  # store codes into store_names, every row >= 0
    store_names: np.ndarray
    item: np.ndarray  # item codes into item_names, every row >= 0
    item_names: np.ndarray
    ticks: np.ndarray  # int64 datetime ticks, NaT the smallest int64
    ticks_per_day: int
    units: np.ndarray  # any integer dtype

    def __len__(self) -> int:
        return len(self.units)


def keys(sales: Sales, n_items: int, store_to: np.ndarray | None = None,
         item_to: np.ndarray | None = None) -> tuple[np.ndarray, int, np.ndarray | None]:
    """``(keys, last day, valid)``: the row key of every row, block by block.

    ``store_to`` / ``item_to`` map the table's codes to the codes of the keys (-1: the row is not
    keyed; ``valid`` then says which rows are, and ``keys`` holds those only); None: the codes as
    they are. The last day is that of the latest row (epoch days).
    """
    n = len(sales)
    out = np.empty(n, dtype=np.int64)
    low = np.iinfo(np.int32).min
    last, valid = low, None
    for i in range(0, n, _BLOCK):
        sl = slice(i, i + _BLOCK)
        st, it = sales.store[sl], sales.item[sl]
        if store_to is not None:
            st = store_to[st]
        if item_to is not None:
            it = item_to[it]
        day = sales.ticks[sl] // sales.ticks_per_day  # NaT: a day far before any real one
        np.maximum(day, low, out=day)
        last = max(last, int(day.max()))
        out[sl] = row_keys(st, it, n_items, day)
        if store_to is not None or item_to is not None:
            bad = (st < 0) | (it < 0)
            if bad.any():
                if valid is None:
                    valid = np.ones(n, dtype=bool)
                valid[sl] = ~bad
    return (out if valid is None else out[valid]), last, valid


def sorted_unique(k: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """(order that sorts the keys ``k`` or None when they already are, whether they are unique)."""
    if len(k) < 2:
        return None, True
    if all((k[i + 1:i + _BLOCK + 1] > k[i:i + _BLOCK][:len(k) - i - 1]).all() for i in range(0, len(k) - 1, _BLOCK)):
        return None, True
    order = np.argsort(k, kind="stable")
    s = k[order]
    return order, not (s[1:] == s[:-1]).any()


def distinct_series(k: np.ndarray) -> np.ndarray:
    """The distinct series codes of sorted keys."""
    parts, prev = [], None
    for i in range(0, len(k), _BLOCK):
        s = key_series(k[i:i + _BLOCK])
        start = np.flatnonzero(s[1:] != s[:-1]) + 1
        if prev is None or s[0] != prev:
            start = np.concatenate(([0], start))
        parts.append(s[start])
        prev = s[-1]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


@dataclasses.dataclass
class Diff:
    pos: np.ndarray  # positions (in key order of the current snapshot) of the new or changed keys up to the run date
    old: np.ndarray  # their previous units (int64; 0 for a new key)
    new_key: np.ndarray  # bool: no such key in the previous snapshot
    deleted: np.ndarray  # positions (in the previous snapshot's key order) of keys with no row now


def compare(prev_keys, prev_units, cur_keys, cur_units, run_day: int, prev_last_day: int) -> Diff:
    """Keys new or changed in ``cur`` (dated up to ``run_day``) and keys of ``prev`` absent from ``cur``.

    Both key arrays are sorted and unique. A block of ``cur`` whose rows, but the run date's, are
    exactly a stretch of ``prev`` (the usual case, when ``prev`` holds no row of the run date or
    later) is matched by comparing the stretch; any other block by ``searchsorted``.
    """
    n_prev = len(prev_keys)
    matched = np.zeros(n_prev, dtype=bool)
    run_low = run_day + KEY_BIAS
    fast = prev_last_day < run_day and n_prev > 0
    pos, old, new_key = [], [], []
    for i in range(0, len(cur_keys), _BLOCK):
        b, u = cur_keys[i:i + _BLOCK], cur_units[i:i + _BLOCK]
        low = b & KEY_LOW
        if fast:
            others = np.flatnonzero(low == run_low)  # the run date's rows: not in prev (it ends before)
            keep = np.ones(len(b), dtype=bool)
            keep[others] = False
            bb = b[keep]
            a0 = int(np.searchsorted(prev_keys, bb[0])) if len(bb) else 0
            a1 = a0 + len(bb)
            if a1 <= n_prev and np.array_equal(prev_keys[a0:a1], bb):
                matched[a0:a1] = True
                before = prev_units[a0:a1]
                changed = np.flatnonzero(before != u[keep])  # indices among the kept rows
                # block position of the j-th kept row: j + the run date's rows before it
                at = changed + np.searchsorted(others - np.arange(len(others)), changed, side="right")
                idx = np.concatenate((at, others))
                order = np.argsort(idx, kind="stable")
                pos.append(i + idx[order])
                new_key.append(np.concatenate((np.zeros(len(at), bool), np.ones(len(others), bool)))[order])
                old.append(np.concatenate((before[changed].astype(np.int64), np.zeros(len(others), np.int64)))[order])
                continue
        if n_prev:
            at = np.minimum(np.searchsorted(prev_keys, b), n_prev - 1)
            found = prev_keys[at] == b
            before = prev_units[at]
            differs = ~found | (before != u)
            matched[at[found]] = True
        else:
            found, before, differs = np.zeros(len(b), bool), np.zeros(len(b), np.int64), np.ones(len(b), bool)
        differs &= low <= run_low  # rows after the run date are future_dates'
        idx = np.flatnonzero(differs)
        pos.append(i + idx)
        new_key.append(~found[idx])
        old.append(np.where(found[idx], before[idx], 0).astype(np.int64))
    cat = (lambda parts, dtype: np.concatenate(parts) if parts else np.empty(0, dtype))
    return Diff(cat(pos, np.int64), cat(old, np.int64), cat(new_key, bool), np.flatnonzero(~matched))


def day_totals(k: np.ndarray, units: np.ndarray, first: int, need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(total units, rows) of the days ``first + j`` with ``need[j]``, in one pass over the keys' days."""
    span = len(need)
    totals, nrows = np.zeros(span), np.zeros(span, dtype=np.int64)
    for i in range(0, len(k), _BLOCK):
        off = key_third(k[i:i + _BLOCK]) - first
        m = (off >= 0) & (off < span)
        m[m] = need[off[m]]
        if m.any():
            o = off[m]
            totals += np.bincount(o, weights=units[i:i + _BLOCK][m].astype(np.float64), minlength=span)
            nrows += np.bincount(o, minlength=span)
    return totals, nrows


def usual_ranges(k: np.ndarray, units: np.ndarray, pos: np.ndarray, days: int,
                 quantile: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(min, quantile, count) of the units of each tested row's series over the ``days`` days before it.

    The keys ``k`` are sorted and unique, so those rows are among the ``days`` rows before it in key order.
    """
    if days <= 0:  # no reference: the floor alone decides
        zeros = np.zeros(len(pos), dtype=np.int64)
        return zeros, zeros, zeros
    lows, highs, counts = [], [], []
    back = np.arange(1, days + 1, dtype=np.int64)
    for i in range(0, len(pos), _GATHER_ROWS):
        p = pos[i:i + _GATHER_ROWS]
        ref = p[:, None] - back[None, :]
        ok = ref >= 0
        np.maximum(ref, 0, out=ref)
        rk, key = k[ref], k[p][:, None]
        ok &= (key_series(rk) == key_series(key)) & ((rk & KEY_LOW) >= (key & KEY_LOW) - days)
        vals = np.where(ok, units[ref].astype(np.int64), -1)
        vals.sort(axis=1)  # the missing (-1) first
        n = ok.sum(axis=1)
        first = days - n
        rank = np.maximum(np.ceil(quantile * n).astype(np.int64) - 1, 0)
        rows = np.arange(len(p))
        lows.append(np.where(n > 0, vals[rows, np.minimum(first, days - 1)], 0))
        highs.append(np.where(n > 0, vals[rows, np.minimum(first + rank, days - 1)], 0))
        counts.append(n)
    cat = (lambda parts: np.concatenate(parts) if parts else np.empty(0, np.int64))
    return cat(lows), cat(highs), cat(counts)
