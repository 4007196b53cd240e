"""The ``history_change`` check of :mod:`pipeline.stages.quality`: every sales row that became known since
the previous snapshot, whatever day it is for.

The source is append-only and a snapshot holds, per key ``(store_id, item_id, date)``, the value in
force at the end of its run date. Between the snapshot of the previous date and this one, a key can
only have appeared (the run date's rows, a late row for a past day) or changed value (a correction
recorded since). The check compares the two snapshots key by key and tests what it finds:

``series range``   every new or changed row dated on or before the run date whose units rose (from
                   the previous snapshot's value, 0 for a new row) by more than
                   ``max(history_factor`` [10] ``x q, floor)``, where ``q`` is the
                   ``history_quantile`` [95 %] quantile of that series' rows dated in the
                   ``history_days`` [56] days before the row's date (the "usual range" the message
                   shows is ``min .. q`` of those days) and the floor is ``history_min_units``
                   [100] for a row of a past day (a late row or a correction) and
                   ``history_run_date_min_units`` [1,000] for a row of the run date itself. A
                   decrease is never flagged here; a small correction of a value that was already
                   high (124 -> 127) is not either.
                   Why a high quantile, not the maximum: one or two earlier spikes must not widen
                   the range. Why ten times it and a floor: real series do jump, and intermittent
                   ones (a quantile of 0-2) genuinely sell dozens on some day. Measured on the
                   real M5 days 2016-04-25..05-22 (all 30,490 series, each day against the 14 days
                   before it, a narrower window than 56, so noisier): of 426,860 rows, 2,340 exceed
                   10 x q alone (hence the floor), the most units on a quantile of 0 are 38 and on
                   2 or less 43, and the largest ratio of units to max(10 x q, 100) is 0.77 (77
                   units against q = 4). Why a higher floor on the run date: its rows are the
                   whole day, one per series (30,490 a day at full scale against a hundred or so
                   corrections), so the same per-row rate of false alarms would stop the chain
                   300 times as often; over the synthetic demo world's whole history (900 series
                   x 1,913 days, each against its 56 days before), max(10 x q, 100) flags one
                   genuine row (124 units against q = 6), extrapolated about one run date in two
                   months at full scale, while max(10 x q, 1,000) flags none (the largest ratio to
                   it is 0.22). The run date's total is checked by ``daily_total_outlier`` besides.
                   A series with no row in those days (a launch) is held to the floor alone.
``day total``      every past day (before the run date) with a changed, new or deleted key whose
                   total units, after the changes, are an outlier by the rule of
                   ``daily_total_outlier`` (the same weekday's totals over the ``outlier_weeks``
                   weeks before that day: outside median +- ``outlier_k`` x MAD and more than
                   ``outlier_min_relative`` from the median; closed days and days with fewer than
                   ``outlier_min_reference`` usable reference days are not checked), moved away
                   from the median by the changes, by more than ``outlier_k`` x MAD and more than
                   ``outlier_min_relative`` x the median: the changes alone are as large as what
                   ``daily_total_outlier`` calls an outlier. So a day that was near the edge of its
                   band and gets a small correction (150 -> 153 against a median of 101 in the
                   tiny world), or a holiday far outside its band that is corrected a little, is
                   no alarm.
``deleted``        a key of the previous snapshot with no row now. An append-only source cannot
                   lose a row, so any such key means its history was rewritten (keys of an
                   item or store with no row at all now are ``vanished_series``' and not counted
                   here).
``rewrite``        more past keys changed or added than ``history_max_changed_days`` [1] days'
                   worth of rows (x the number of series in the previous snapshot): corrections
                   touch a few rows a day (the synthetic world corrects 0.3 % of the rows, 1-5
                   days late; the M5 import none), a whole day arriving late is one day's worth,
                   anything beyond is a rewrite of history. Keys of an item or store with no row
                   in the previous snapshot are ``new_from_nothing``'s and not counted here.

Everything is vectorised over integer keys ``series << 32 | (day + 2**31)``, block by block. The
snapshots are sorted by store, item and date, so the keys are too: a block of this snapshot whose
rows, but the run date's, are exactly a stretch of the previous one (the usual case) is compared
in one pass, any other block by ``searchsorted``; the range test gathers, for each tested row, the
``history_days`` rows before it in key order. On a 60 M-row snapshot the check takes about 3 s of
CPU, plus about 3 s to read the previous snapshot's sales (item_id, store_id, date, units).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

NAME = "history_change"
_BIAS = 1 << 31  # the day, biased to be non-negative, is a key's low 32 bits
_LOW = (1 << 32) - 1
_BLOCK = 1 << 22  # rows per block of the whole-column passes (bounds the temporaries)
_GATHER_ROWS = 100_000  # tested rows per block of the range test (x history_days values each)
RANGE_MAX_ROWS = 2_000_000  # rows range-tested at most (more changed rows exceed the rewrite limit anyway)


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


# ----------------------------------------------------------------------------------------------
# The weekday band, shared with daily_total_outlier
# ----------------------------------------------------------------------------------------------


def weekday_band(values: np.ndarray, k: float) -> tuple:
    """``(median, MAD, median - k MAD, median + k MAD)`` along the last axis (NaN: not a reference day)."""
    values = np.asarray(values, dtype=np.float64)
    med = np.nanmedian(values, axis=-1)
    mad = np.nanmedian(np.abs(values - np.expand_dims(med, -1)), axis=-1)
    return med, mad, med - k * mad, med + k * mad


def relative_deviation(total, med):
    """``|total - median| / median`` (infinite for a positive total against a zero median)."""
    total, med = np.asarray(total, dtype=np.float64), np.asarray(med, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(total - med) / med
    return np.where(med > 0, rel, np.where(total > 0, math.inf, 0.0))


def is_outlier(total, med, lo, hi, min_relative: float):
    """The rule of daily_total_outlier: outside [lo, hi] and more than ``min_relative`` from the median."""
    total = np.asarray(total, dtype=np.float64)
    return ((total < lo) | (total > hi)) & (relative_deviation(total, med) > min_relative)


# ----------------------------------------------------------------------------------------------
# Keys and the comparison
# ----------------------------------------------------------------------------------------------


def _keys(sales: Sales, n_items: int, store_to: np.ndarray | None = None,
          item_to: np.ndarray | None = None) -> tuple[np.ndarray, int, np.ndarray | None]:
    """``(keys, last day, valid)``: ``(store * n_items + item) << 32 | (day + 2**31)`` per row, block by block.

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
        st, it, o = sales.store[sl], sales.item[sl], out[sl]
        if store_to is not None:
            st = store_to[st]
        if item_to is not None:
            it = item_to[it]
        np.multiply(st, np.int64(n_items), out=o)
        o += it
        o <<= 32
        day = sales.ticks[sl] // sales.ticks_per_day  # NaT: a day far before any real one
        np.maximum(day, low, out=day)
        last = max(last, int(day.max()))
        day += _BIAS
        o |= day
        if store_to is not None or item_to is not None:
            bad = (st < 0) | (it < 0)
            if bad.any():
                if valid is None:
                    valid = np.ones(n, dtype=bool)
                valid[sl] = ~bad
    return (out if valid is None else out[valid]), last, valid


def _sorted_unique(keys: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """(order that sorts ``keys`` or None when they already are, whether they are unique)."""
    if len(keys) < 2:
        return None, True
    if all((keys[i + 1:i + _BLOCK + 1] > keys[i:i + _BLOCK][:len(keys) - i - 1]).all()
           for i in range(0, len(keys) - 1, _BLOCK)):
        return None, True
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    return order, not (k[1:] == k[:-1]).any()


def _series(keys: np.ndarray) -> np.ndarray:
    """The distinct series codes of sorted keys."""
    parts, prev = [], None
    for i in range(0, len(keys), _BLOCK):
        s = keys[i:i + _BLOCK] >> 32
        start = np.flatnonzero(s[1:] != s[:-1]) + 1
        if prev is None or s[0] != prev:
            start = np.concatenate(([0], start))
        parts.append(s[start])
        prev = s[-1]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _day_of(keys: np.ndarray) -> np.ndarray:
    return (keys & _LOW) - _BIAS


@dataclasses.dataclass
class _Diff:
    pos: np.ndarray  # positions (in key order of the current snapshot) of the new or changed keys up to the run date
    old: np.ndarray  # their previous units (int64; 0 for a new key)
    new_key: np.ndarray  # bool: no such key in the previous snapshot
    deleted: np.ndarray  # positions (in the previous snapshot's key order) of keys with no row now


def _compare(prev_keys, prev_units, cur_keys, cur_units, run_day: int, prev_last_day: int) -> _Diff:
    """Keys new or changed in ``cur`` (dated up to ``run_day``) and keys of ``prev`` absent from ``cur``.

    Both key arrays are sorted and unique. A block of ``cur`` whose rows, but the run date's, are
    exactly a stretch of ``prev`` (the usual case, when ``prev`` holds no row of the run date or
    later) is matched by comparing the stretch; any other block by ``searchsorted``.
    """
    n_prev = len(prev_keys)
    matched = np.zeros(n_prev, dtype=bool)
    run_low = run_day + _BIAS
    fast = prev_last_day < run_day and n_prev > 0
    pos, old, new_key = [], [], []
    for i in range(0, len(cur_keys), _BLOCK):
        b, u = cur_keys[i:i + _BLOCK], cur_units[i:i + _BLOCK]
        low = b & _LOW
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
    return _Diff(cat(pos, np.int64), cat(old, np.int64), cat(new_key, bool), np.flatnonzero(~matched))


def _day_totals(keys: np.ndarray, units: np.ndarray, first: int, need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(total units, rows) of the days ``first + k`` with ``need[k]``, in one pass over the keys' days."""
    span = len(need)
    totals, nrows = np.zeros(span), np.zeros(span, dtype=np.int64)
    base = first + _BIAS
    for i in range(0, len(keys), _BLOCK):
        off = (keys[i:i + _BLOCK] & _LOW) - base
        m = (off >= 0) & (off < span)
        m[m] = need[off[m]]
        if m.any():
            o = off[m]
            totals += np.bincount(o, weights=units[i:i + _BLOCK][m].astype(np.float64), minlength=span)
            nrows += np.bincount(o, minlength=span)
    return totals, nrows


# ----------------------------------------------------------------------------------------------
# The series' usual range
# ----------------------------------------------------------------------------------------------


def _usual_ranges(keys: np.ndarray, units: np.ndarray, pos: np.ndarray, days: int,
                  quantile: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(min, quantile, count) of the units of each tested row's series over the ``days`` days before it.

    ``keys`` are sorted and unique, so those rows are among the ``days`` rows before it in key order.
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
        rk, k = keys[ref], keys[p][:, None]
        ok &= ((rk >> 32) == (k >> 32)) & ((rk & _LOW) >= (k & _LOW) - days)
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


# ----------------------------------------------------------------------------------------------
# The check
# ----------------------------------------------------------------------------------------------


def _iso(day: int) -> str:
    return np.datetime64(int(day), "D").astype(object).isoformat()


def _n(x) -> str:
    x = float(x)
    return f"{int(x):,}" if x.is_integer() else f"{x:,.1f}"


def _olds(diff: _Diff, idx: np.ndarray) -> pd.Series:
    """The previous units of the rows ``idx`` of ``diff`` (None for a new key), as objects."""
    return pd.Series([None if nk else int(o) for nk, o in zip(diff.new_key[idx], diff.old[idx])], dtype=object)


def _code_map(names_from: np.ndarray, names_to: np.ndarray) -> np.ndarray:
    """Index into ``names_to`` of each of ``names_from`` (-1: not there)."""
    return pd.Index(names_to).get_indexer(pd.Index(names_from)).astype(np.int64)


def history_change(cur: Sales, prev: Sales | None, prev_date, run_day: int, closed_days,
                   t) -> tuple[int, str, pd.DataFrame]:
    """The check: ``(count of offending rows, message without the check's name, offending rows)``.

    ``prev`` is the previous snapshot's sales (None: not compared), ``prev_date`` its date,
    ``run_day`` the run date in epoch days, ``closed_days`` epoch days never tested nor used as
    reference (stores closed), ``t`` the :class:`pipeline.stages.quality.Thresholds`.
    """
    run_iso = _iso(run_day)
    if prev is None:
        return 0, ("not checked: no previous snapshot to compare with, so the rows that became known since it "
                   "cannot be told apart"), pd.DataFrame()
    prev_iso = prev_date.isoformat() if prev_date is not None else "the previous snapshot"
    n_items = len(cur.item_names)
    n_stores = len(cur.store_names)

    cur_keys, _, _ = _keys(cur, n_items)
    cur_order, cur_unique = _sorted_unique(cur_keys)
    cur_units = cur.units
    if cur_order is not None:
        cur_keys, cur_units = cur_keys[cur_order], cur_units[cur_order]
    cur_series = _series(cur_keys)
    store_used = np.zeros(n_stores, bool)
    item_used = np.zeros(n_items, bool)
    store_used[cur_series // n_items] = True
    item_used[cur_series % n_items] = True
    # the previous snapshot's ids in the current codes; rows of ids with no row now are vanished_series'
    store_map, item_map = _code_map(prev.store_names, cur.store_names), _code_map(prev.item_names, cur.item_names)
    store_to = np.where(store_map >= 0, np.where(store_used[np.maximum(store_map, 0)], store_map, -1), -1)
    item_to = np.where(item_map >= 0, np.where(item_used[np.maximum(item_map, 0)], item_map, -1), -1)
    identity = (lambda m: None if np.array_equal(m, np.arange(len(m))) else m)
    prev_keys, prev_last, valid = _keys(prev, n_items, identity(store_to), identity(item_to))
    p_units = prev.units if valid is None else prev.units[valid]
    prev_order, prev_unique = _sorted_unique(prev_keys)
    if not (cur_unique and prev_unique):
        which = " and ".join(w for w, u in (("this", cur_unique), ("the previous", prev_unique)) if not u)
        return 0, (f"not compared with the previous snapshot ({prev_iso}): {which} snapshot holds duplicate keys "
                   "(see duplicate_keys)"), pd.DataFrame()
    if prev_order is not None:
        prev_keys, p_units = prev_keys[prev_order], p_units[prev_order]
    prev_series = _series(prev_keys)
    # which current ids had rows in the previous snapshot (rows of the others are new_from_nothing's)
    had_store, had_item = np.zeros(n_stores, bool), np.zeros(n_items, bool)
    had_store[prev_series // n_items] = True
    had_item[prev_series % n_items] = True
    diff = _compare(prev_keys, p_units, cur_keys, cur_units, run_day, prev_last)

    # the rows that became known
    keys = cur_keys[diff.pos]
    day = _day_of(keys)
    series = keys >> 32
    store, item = series // n_items, series % n_items
    new_units = cur_units[diff.pos].astype(np.int64)
    past = day < run_day
    of_known_ids = had_store[store] & had_item[item]
    n_past, n_run = int(past.sum()), int((~past).sum())
    n_past_changed = int((past & ~diff.new_key).sum())
    past_days = np.unique(day[past])

    parts, frames = [], []
    count = 0

    # 1. far outside the series' usual range
    tested = np.arange(len(diff.pos))[:RANGE_MAX_ROWS]
    low, high, _ = _usual_ranges(cur_keys, cur_units, diff.pos[tested], t.history_days, t.history_quantile)
    floor = np.where(past[tested], t.history_min_units, t.history_run_date_min_units)
    limit = np.maximum(t.history_factor * high, floor)
    bad = new_units[tested] - diff.old[tested] > limit  # old is 0 for a new row
    flagged = tested[bad]
    rule = (f"units up by more than max({_n(t.history_factor)} x the {_n(100 * t.history_quantile)}th percentile "
            f"of the series' {t.history_days} days before, {_n(t.history_min_units)} on a past day, "
            f"{_n(t.history_run_date_min_units)} on the run date)")
    if len(flagged):
        sel = np.flatnonzero(bad)
        sel = sel[np.argsort(~past[tested[sel]], kind="stable")]  # the past rows first: those are the late ones
        flagged, lim, lo_, hi_ = tested[sel], limit[sel], low[sel], high[sel]
        rows = pd.DataFrame({
            "what": "series_range",
            "store_id": cur.store_names[store[flagged]], "item_id": cur.item_names[item[flagged]],
            "date": [_iso(d) for d in day[flagged]],
            "old_units": _olds(diff, flagged), "new_units": new_units[flagged],
            "usual_range": [f"{int(a)}..{int(b)}" for a, b in zip(lo_, hi_)],
            "limit": lim.astype(np.float64),
        })
        eg = "; ".join(f"store_id={r.store_id} item_id={r.item_id} date={r.date}: units "
                       f"{'(new row)' if r.old_units is None else _n(r.old_units)} -> {_n(r.new_units)}, "
                       f"usual range {r.usual_range} (limit {_n(r.limit)})" for r in rows.head(3).itertuples())
        parts.append(f"{len(flagged):,} row(s) that became known since the previous snapshot ({prev_iso}) are far "
                     f"outside their series' usual range ({rule}): {eg}" + ("; ..." if len(flagged) > 3 else ""))
        frames.append(rows)
        count += len(flagged)
    capped = (f" (the range test covered the first {RANGE_MAX_ROWS:,} of {len(diff.pos):,} rows)"
              if len(diff.pos) > RANGE_MAX_ROWS else "")

    # 2. past days whose total moved far outside the weekday's usual range
    del_keys = prev_keys[diff.deleted]
    del_day = _day_of(del_keys)
    del_units = p_units[diff.deleted].astype(np.int64)
    touched = np.unique(np.concatenate([past_days, del_day[del_day < run_day]]))
    closed = np.asarray(sorted(closed_days), dtype=np.int64)
    touched = touched[~np.isin(touched, closed)]
    day_rows = []
    if len(touched):
        weeks = t.outlier_weeks
        first = int(touched.min()) - 7 * weeks
        span = run_day - first + 1
        ref = touched[:, None] - 7 * np.arange(1, weeks + 1)[None, :]
        need = np.zeros(span, dtype=bool)
        need[touched - first] = True
        need[ref.ravel() - first] = True
        totals, nrows = _day_totals(cur_keys, cur_units, first, need)
        move = np.zeros(span)  # per day, the units the changes added (closed days before `first` left out)
        sel = past & (day >= first)
        np.add.at(move, day[sel] - first, (new_units[sel] - diff.old[sel]).astype(np.float64))
        sel = (del_day < run_day) & (del_day >= first)
        np.add.at(move, del_day[sel] - first, -del_units[sel].astype(np.float64))
        usable = (nrows[ref - first] > 0) & ~np.isin(ref, closed)
        values = np.where(usable, totals[ref - first], np.nan)
        enough = usable.sum(axis=1) >= t.outlier_min_reference
        if enough.any():
            x, values = touched[enough], values[enough]
            med, mad, lo, hi = weekday_band(values, t.outlier_k)
            new_total = totals[x - first]
            old_total = new_total - move[x - first]
            moved = np.abs(new_total - old_total)
            big_move = (moved > t.outlier_k * mad) & (moved > t.outlier_min_relative * med)
            away = np.abs(new_total - med) > np.abs(old_total - med)
            out = is_outlier(new_total, med, lo, hi, t.outlier_min_relative) & away & big_move
            for j in np.flatnonzero(out):
                day_rows.append({"what": "day_total", "store_id": None, "item_id": None, "date": _iso(x[j]),
                                 "old_units": int(round(old_total[j])), "new_units": int(round(new_total[j])),
                                 "usual_range": f"{_n(lo[j])}..{_n(hi[j])}", "limit": None,
                                 "_median": float(med[j]), "_mad": float(mad[j])})
    if day_rows:
        eg = "; ".join(f"{r['date']} ({pd.Timestamp(r['date']).day_name()}): {_n(r['old_units'])} -> "
                       f"{_n(r['new_units'])}, usual range {r['usual_range']} (median {_n(r['_median'])}, MAD "
                       f"{_n(r['_mad'])})" for r in day_rows[:3])
        parts.append(f"{len(day_rows)} past day(s) whose total units the changes since the previous snapshot moved "
                     f"far outside the same weekday's usual range over the {t.outlier_weeks} weeks before (median +- "
                     f"{_n(t.outlier_k)}*MAD and > {_n(100 * t.outlier_min_relative)}% off): {eg}"
                     + ("; ..." if len(day_rows) > 3 else ""))
        frames.append(pd.DataFrame(day_rows).drop(columns=["_median", "_mad"]))
        count += len(day_rows)

    # 3. history that disappeared
    if len(diff.deleted):
        shown = diff.deleted[: t.max_offending]
        dser = prev_keys[shown] >> 32
        rows = pd.DataFrame({
            "what": "deleted", "store_id": cur.store_names[dser // n_items], "item_id": cur.item_names[dser % n_items],
            "date": [_iso(d) for d in _day_of(prev_keys[shown])], "old_units": p_units[shown].astype(np.int64),
            "new_units": None, "usual_range": None, "limit": None})
        eg = "; ".join(f"store_id={r.store_id} item_id={r.item_id} date={r.date} (units {_n(r.old_units)})"
                       for r in rows.head(3).itertuples())
        n_days = len(np.unique(del_day))
        parts.append(f"{len(diff.deleted):,} key(s) of the previous snapshot ({prev_iso}) on {n_days:,} day(s) have no "
                     f"row now: history disappeared, which an append-only source cannot do (was the database "
                     f"rewritten?), e.g. {eg}" + ("; ..." if len(diff.deleted) > 3 else ""))
        frames.append(rows)
        count += len(diff.deleted)

    # 4. too many past keys changed at once
    n_series = len(prev_series)
    rewrite_limit = t.history_max_changed_days * n_series
    rewritten = np.flatnonzero(past & of_known_ids)
    if len(rewritten) > rewrite_limit:
        shown = rewritten[: t.max_offending]
        rows = pd.DataFrame({
            "what": "changed", "store_id": cur.store_names[store[shown]], "item_id": cur.item_names[item[shown]],
            "date": [_iso(d) for d in day[shown]],
            "old_units": _olds(diff, shown),
            "new_units": new_units[shown], "usual_range": None, "limit": None})
        n_days = len(np.unique(day[rewritten]))
        parts.append(f"{len(rewritten):,} past key(s) on {n_days:,} day(s) changed or appeared since the previous "
                     f"snapshot ({prev_iso}), more than {_n(t.history_max_changed_days)} day(s)' worth of rows "
                     f"({_n(rewrite_limit)}: {n_series:,} series): history rewritten? e.g. "
                     + "; ".join(f"store_id={r.store_id} item_id={r.item_id} date={r.date}"
                                 for r in rows.head(3).itertuples()))
        frames.append(rows)
        count += len(rewritten)

    summary = (f"{len(diff.pos):,} row(s) became known since the previous snapshot ({prev_iso}): {n_run:,} of the "
               f"run date and {n_past:,} of {len(past_days):,} past day(s) ({n_past_changed:,} changed, "
               f"{n_past - n_past_changed:,} new)")
    if not count:
        return 0, (f"{summary}; none is far outside its series' usual range ({rule}){capped}, no past day's total "
                   f"moved outside its weekday's usual range, no key of the previous snapshot is missing, "
                   f"{len(rewritten):,} past key(s) changed (at most {_n(rewrite_limit)})"), pd.DataFrame()
    message = ("; ".join(parts) + f" ({summary}{capped}). If the data is right, accept it in the [quality] "
               f"section of luigi.cfg: accept = {NAME}:{run_iso}")
    rows = pd.concat([f for f in frames if len(f)], ignore_index=True).astype(object)
    rows = rows.where(pd.notna(rows), None)
    return count, message, rows
