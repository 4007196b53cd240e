"""Checks of which series, items and stores have rows: what vanished, what appeared from nothing.

``vanished_series``   a series that sold >= 1 unit on >= ``regular_share`` of the ``regular_days``
                      days before the run date but has no row at all on the run date; a store with
                      rows in those days and none on the run date; with a previous snapshot, an
                      item or store that had rows there and has none at all now.
``new_from_nothing``  with a previous snapshot: a store that had no row there, and an item that had
                      no row there but whose first row is dated before the previous snapshot's date
                      (history that appeared retroactively; a brand-new item first sold after that
                      date is a normal launch). An id missing from the items / stores table is
                      ``unknown_ids``' (:mod:`pipeline.core.checks.rows`) and not counted here.

Both can be right (a store closed for a day, an item delisted, a store opened) and can be accepted.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.checks.frame import Snap
from pipeline.core.checks.report import CheckResult
from pipeline.core.checks.rows import unknown_codes
from pipeline.core.checks.text import NAT_DAY, NULL_ID, day, num
from pipeline.core.series import split_series

_LISTED = 5  # ids a message lists by name before "..." (fixed: the report lists them all)


def vanished_series(s: Snap) -> CheckResult:
    t, run = s.t, s.run_day
    d = s.run_date.isoformat()
    window = s.between(run - t.regular_days, run)
    wday = s.days(window)
    wser = s.series[window].astype(np.int64)
    on_run = wday == run
    before = ~on_run
    n_series = s.n_stores * s.n_items
    present = np.bincount(wser[on_run], minlength=n_series) > 0
    # distinct (series, day) pairs, so that a duplicated row does not count twice
    sold = before & (s.units[window] >= 1)
    width = t.regular_days + 1  # a (series, day) pair as series * width + days back from the run date
    sold_days = np.bincount(np.unique(wser[sold] * width + (run - wday[sold])) // width, minlength=n_series)
    last_day = np.full(n_series, NAT_DAY, dtype=np.int64)
    np.maximum.at(last_day, wser[before], wday[before])
    regular = sold_days >= t.regular_share * t.regular_days

    wstore = s.store.codes[window]
    store_present = np.bincount(wstore[on_run], minlength=s.n_stores) > 0
    store_pairs = np.unique(wstore[before].astype(np.int64) * width + (run - wday[before]))
    store_days = np.bincount(store_pairs // width, minlength=s.n_stores)
    store_last = np.full(s.n_stores, NAT_DAY, dtype=np.int64)
    np.maximum.at(store_last, wstore[before], wday[before])
    named_store, named_item = s.store.names != NULL_ID, s.item.names != NULL_ID  # a missing id is unknown_ids'
    gone_stores = np.flatnonzero((store_days > 0) & ~store_present & named_store)
    series_store, series_item = split_series(np.arange(n_series), s.n_items)
    gone_series = np.flatnonzero(regular & ~present & ~np.isin(series_store, gone_stores) & named_store[series_store]
                                 & named_item[series_item])

    rows, parts = [], []
    for st in gone_stores:
        rows.append({"what": "store", "store_id": s.store.names[st], "item_id": None,
                     "days_with_rows": int(store_days[st]), "days_with_sales": None, "last_row_date": day(store_last[st])})
    if len(gone_stores):
        listed = ", ".join(f"{s.store.names[st]} (rows on {int(store_days[st])} of the previous {t.regular_days} days, "
                           f"the last on {day(store_last[st])})" for st in gone_stores)
        parts.append(f"{len(gone_stores)} store(s) with no sales row on {d}: {listed}")
    series_rows = []
    store_of, item_of = split_series(gone_series, s.n_items)
    for code, st, it in zip(gone_series, store_of, item_of):
        series_rows.append({"what": "series", "store_id": s.store.names[st], "item_id": s.item.names[it],
                            "days_with_rows": None, "days_with_sales": int(sold_days[code]),
                            "last_row_date": day(last_day[code])})
    if len(gone_series):
        eg = "; ".join(f"item_id={r['item_id']} store_id={r['store_id']} (sold on {r['days_with_sales']} of "
                       f"{t.regular_days} days, last row {r['last_row_date']})" for r in series_rows[:3])
        parts.append(f"{len(gone_series):,} series that sold >= 1 unit on >= {num(100 * t.regular_share)}% of the "
                     f"previous {t.regular_days} days have no sales row on {d}, e.g. {eg}"
                     + ("; ..." if len(series_rows) > 3 else ""))
    rows += series_rows
    if s.previous is not None:
        now_stores, now_items = set(s.store.names[s.store.used()]), set(s.item.names[s.item.used()])
        lost = ([("store", x) for x in sorted(s.previous.store_ids - now_stores)]
                + [("item", x) for x in sorted(s.previous.item_ids - now_items)])
        for what, x in lost:
            rows.append({"what": what, "store_id": x if what == "store" else None, "item_id": x if what == "item" else None,
                         "days_with_rows": 0, "days_with_sales": None, "last_row_date": None})
        if lost:
            parts.append(f"{len(lost)} id(s) with sales rows in the previous snapshot ({s.previous.date.isoformat()}) "
                         f"have no row at all now: " + ", ".join(f"{w} {x}" for w, x in lost[:_LISTED])
                         + (", ..." if len(lost) > _LISTED else ""))
    if not rows:
        return s.result("vanished_series", 0,
                        f"every store with rows in the previous {t.regular_days} days and every series that sold on "
                        f">= {num(100 * t.regular_share)}% of them has a row on {d}")
    return s.result("vanished_series", len(rows), "; ".join(parts), pd.DataFrame(rows))


def _first_days(s: Snap, codes: np.ndarray, n: int, selected) -> dict[int, tuple[int, int]]:
    """{code: (rows, first day)} for the selected codes, in one pass over the rows of those codes."""
    pick = np.zeros(n, dtype=bool)
    pick[np.asarray(list(selected), dtype=np.int64)] = True
    idx = np.flatnonzero(pick[codes])
    c, d = codes[idx].astype(np.int64), s.days(idx).astype(np.int64)
    counts = np.bincount(c, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, c, d)
    return {int(k): (int(counts[k]), int(first[k])) for k in selected}


def new_from_nothing(s: Snap) -> CheckResult:
    prev = s.previous
    if prev is None:
        return s.result("new_from_nothing", 0, "not checked: no previous snapshot to compare with")
    known_items = set(s.items["item_id"].astype(str)) if "item_id" in s.items else set()
    known_stores = set(s.stores["store_id"].astype(str)) if "store_id" in s.stores else set()
    unknown = {("store", c) for c, _ in unknown_codes(s.store, known_stores, "store", "stores")}
    unknown |= {("item", c) for c, _ in unknown_codes(s.item, known_items, "item", "items")}
    p = prev.date.isoformat()
    prev_day = int(np.datetime64(prev.date, "D").astype(np.int64))
    flagged: list[tuple[str, str, int, str]] = []  # (kind, id, code, reason)
    for code in np.flatnonzero(s.store.used()):
        name = s.store.names[code]
        if name not in prev.store_ids and ("store", code) not in unknown:
            flagged.append(("store", name, int(code), f"store_id has no row in the previous snapshot ({p})"))
    candidates = [int(c) for c in np.flatnonzero(s.item.used())
                  if s.item.names[c] not in prev.item_ids and ("item", c) not in unknown]
    if candidates:
        first = _first_days(s, s.item.codes, s.n_items, candidates)
        for c in candidates:
            if first[c][1] < prev_day:
                flagged.append(("item", s.item.names[c], c, f"item_id has no row in the previous snapshot ({p}) but "
                                                            "rows dated before it: history that appeared retroactively"))
    if not flagged:
        return s.result("new_from_nothing", 0, f"every store, and every item with rows dated before {p}, already had "
                                               f"rows in the previous snapshot of {p}")
    stats = {}
    for kind, found in (("store", s.store), ("item", s.item)):
        codes = [c for k, _, c, _ in flagged if k == kind]
        if codes:
            stats[kind] = _first_days(s, found.codes, len(found.names), codes)
    rows = pd.DataFrame([{"reason": reason, "store_id": name if kind == "store" else None,
                          "item_id": name if kind == "item" else None,
                          "first_date": day(stats[kind][code][1]), "rows": int(stats[kind][code][0])}
                         for kind, name, code, reason in flagged])
    eg = "; ".join(f"{r.store_id or r.item_id}: {r.reason} ({r.rows:,} rows from {r.first_date})"
                   for r in rows.head(3).itertuples())
    return s.result("new_from_nothing", len(rows),
                    f"{len(rows)} id(s) in sales appeared from nothing: {eg}" + ("; ..." if len(rows) > 3 else ""), rows)
