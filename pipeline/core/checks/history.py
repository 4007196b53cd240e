"""The ``history_change`` check: every sales row that became known since the previous snapshot, whatever
day it is for. It can be right (a genuine late correction) and can be accepted.

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

How: :mod:`pipeline.core.checks.history_keys` (the comparison of two snapshots' keys). Without a
previous snapshot, or without its sales rows, the check passes, saying it could not compare.
Its cost at full scale is measured in docs/intake.md.

Fixed: ``RANGE_MAX_ROWS``, the rows range-tested at most (a bound on the work; more changed rows
than that exceed the ``rewrite`` limit anyway, and the message says when the test was capped).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.checks.frame import Snap, date_ticks, ids
from pipeline.core.checks.history_keys import (Diff, Sales, compare, day_totals, distinct_series, keys, sorted_unique,
                                               usual_ranges)
from pipeline.core.checks.report import CheckResult
from pipeline.core.checks.text import day as iso_day, num
from pipeline.core.checks.thresholds import Thresholds
from pipeline.core.checks.totals import is_outlier, weekday_band
from pipeline.core.series import key_series, key_third, split_series

RANGE_MAX_ROWS = 2_000_000  # rows range-tested at most (fixed, see the module docstring)


def history_change(s: Snap) -> CheckResult:
    """The check on a snapshot: its sales against the previous snapshot's (:func:`compare_history`)."""
    prev = s.previous
    sales = prev.sales if prev is not None else None
    if prev is not None and sales is None:
        return s.result("history_change", 0, "not checked: the previous snapshot's sales rows were not given, "
                                             "so the rows that became known since it cannot be told apart")
    cur = Sales(s.store.codes, s.store.names, s.item.codes, s.item.names, s.ticks, s.ticks_per_day, s.units)
    old = None
    if sales is not None:
        store, item = ids(sales["store_id"]), ids(sales["item_id"])
        ticks, per_day = date_ticks(sales["date"])
        old = Sales(store.codes, store.names, item.codes, item.names, ticks, per_day, sales["units"].to_numpy())
    count, message, rows = compare_history(cur, old, prev.date if prev is not None else None, s.run_day,
                                           s.closed_days(), s.t)
    return s.result("history_change", count, message, rows)


def _n(x) -> str:
    return num(float(x), 1)


def _olds(diff: Diff, idx: np.ndarray) -> pd.Series:
    """The previous units of the rows ``idx`` of ``diff`` (None for a new key), as objects."""
    return pd.Series([None if nk else int(o) for nk, o in zip(diff.new_key[idx], diff.old[idx])], dtype=object)


def _code_map(names_from: np.ndarray, names_to: np.ndarray) -> np.ndarray:
    """Index into ``names_to`` of each of ``names_from`` (-1: not there)."""
    return pd.Index(names_to).get_indexer(pd.Index(names_from)).astype(np.int64)


def compare_history(cur: Sales, prev: Sales | None, prev_date, run_day: int, closed_days,
                    t: Thresholds) -> tuple[int, str, pd.DataFrame]:
    """The check: ``(count of offending rows, message without the check's name, offending rows)``.

    ``prev`` is the previous snapshot's sales (None: not compared), ``prev_date`` its date,
    ``run_day`` the run date in epoch days, ``closed_days`` epoch days never tested nor used as
    reference (stores closed), ``t`` the thresholds.
    """
    if prev is None:
        return 0, ("not checked: no previous snapshot to compare with, so the rows that became known since it "
                   "cannot be told apart"), pd.DataFrame()
    prev_iso = prev_date.isoformat() if prev_date is not None else "the previous snapshot"
    n_items = len(cur.item_names)
    n_stores = len(cur.store_names)

    cur_keys, _, _ = keys(cur, n_items)
    cur_order, cur_unique = sorted_unique(cur_keys)
    cur_units = cur.units
    if cur_order is not None:
        cur_keys, cur_units = cur_keys[cur_order], cur_units[cur_order]
    cur_series = distinct_series(cur_keys)
    store_used = np.zeros(n_stores, bool)
    item_used = np.zeros(n_items, bool)
    used_store, used_item = split_series(cur_series, n_items)
    store_used[used_store] = True
    item_used[used_item] = True
    # the previous snapshot's ids in the current codes; rows of ids with no row now are vanished_series'
    store_map, item_map = _code_map(prev.store_names, cur.store_names), _code_map(prev.item_names, cur.item_names)
    store_to = np.where(store_map >= 0, np.where(store_used[np.maximum(store_map, 0)], store_map, -1), -1)
    item_to = np.where(item_map >= 0, np.where(item_used[np.maximum(item_map, 0)], item_map, -1), -1)
    identity = (lambda m: None if np.array_equal(m, np.arange(len(m))) else m)
    prev_keys, prev_last, valid = keys(prev, n_items, identity(store_to), identity(item_to))
    p_units = prev.units if valid is None else prev.units[valid]
    prev_order, prev_unique = sorted_unique(prev_keys)
    if not (cur_unique and prev_unique):
        which = " and ".join(w for w, u in (("this", cur_unique), ("the previous", prev_unique)) if not u)
        return 0, (f"not compared with the previous snapshot ({prev_iso}): {which} snapshot holds duplicate keys "
                   "(see duplicate_keys)"), pd.DataFrame()
    if prev_order is not None:
        prev_keys, p_units = prev_keys[prev_order], p_units[prev_order]
    prev_series = distinct_series(prev_keys)
    # which current ids had rows in the previous snapshot (rows of the others are new_from_nothing's)
    had_store, had_item = np.zeros(n_stores, bool), np.zeros(n_items, bool)
    had_s, had_i = split_series(prev_series, n_items)
    had_store[had_s] = True
    had_item[had_i] = True
    diff = compare(prev_keys, p_units, cur_keys, cur_units, run_day, prev_last)

    # the rows that became known
    known = cur_keys[diff.pos]
    day = key_third(known)
    store, item = split_series(key_series(known), n_items)
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
    low, high, _ = usual_ranges(cur_keys, cur_units, diff.pos[tested], t.history_days, t.history_quantile)
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
            "date": [iso_day(d) for d in day[flagged]],
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
    del_day = key_third(del_keys)
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
        totals, nrows = day_totals(cur_keys, cur_units, first, need)
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
                day_rows.append({"what": "day_total", "store_id": None, "item_id": None, "date": iso_day(x[j]),
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
        dstore, ditem = split_series(key_series(prev_keys[shown]), n_items)
        rows = pd.DataFrame({
            "what": "deleted", "store_id": cur.store_names[dstore], "item_id": cur.item_names[ditem],
            "date": [iso_day(d) for d in key_third(prev_keys[shown])], "old_units": p_units[shown].astype(np.int64),
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
            "date": [iso_day(d) for d in day[shown]],
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
    message = "; ".join(parts) + f" ({summary}{capped})"
    rows = pd.concat([f for f in frames if len(f)], ignore_index=True).astype(object)
    rows = rows.where(pd.notna(rows), None)
    return count, message, rows
