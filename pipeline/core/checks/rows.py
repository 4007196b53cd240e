"""Checks of single rows, over the whole history; each is a hard stop (:mod:`pipeline.core.checks.catalog`).

``unknown_ids``     a sales or price row whose item_id / store_id is missing or not in the items /
                    stores table (such a series has no department, category nor state to build
                    features from).
``negative_units``  a sales row with units < 0 (LightGBM's tweedie objective refuses a negative label).
``duplicate_keys``  two rows with one key: sales ``(store_id, item_id, date)``, prices
                    ``(store_id, item_id, wm_yr_wk)`` (which of them is the day's value?).
``future_dates``    a sales row dated after the run date (features would see the future).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.checks.frame import Ids, Snap
from pipeline.core.checks.report import CheckResult
from pipeline.core.checks.text import NULL_ID, day, describe
from pipeline.core.series import series_codes


def unknown_codes(found: Ids, known: set[str], kind: str, table: str) -> list[tuple[int, str]]:
    """(code, reason) of each id with rows that is missing or not in the master table ``table``."""
    out = []
    for code in np.flatnonzero(found.used()):
        name = found.names[code]
        if name == NULL_ID:
            out.append((int(code), f"{kind}_id missing"))
        elif name not in known:
            out.append((int(code), f"{kind}_id not in the {table} table"))
    return out


def _first_rows(codes: np.ndarray, order_by: np.ndarray, selected: list[int]) -> dict[int, tuple[int, int]]:
    """{code: (rows with it, position of its first row by ``order_by``)} for the selected codes."""
    pick = np.zeros(int(codes.max()) + 1 if len(codes) else 1, dtype=bool)
    pick[np.asarray(selected, dtype=np.int64)] = True
    idx = np.flatnonzero(pick[codes])
    c = codes[idx].astype(np.int64)
    order = np.lexsort((order_by[idx], c))
    c_sorted = c[order]
    starts = np.flatnonzero(np.r_[True, c_sorted[1:] != c_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(c_sorted)])
    return {int(c_sorted[s]): (int(n), int(idx[order[s]])) for s, n in zip(starts, counts)}


def unknown_ids(s: Snap) -> CheckResult:
    known = {"item": set(s.items["item_id"].astype(str)) if "item_id" in s.items else set(),
             "store": set(s.stores["store_id"].astype(str)) if "store_id" in s.stores else set()}
    p = s.prices
    p_store, p_item = s.price_ids
    p_week = p["wm_yr_wk"].to_numpy().astype(np.int64)
    rows = []
    for table, store, item, when in (("sales", s.store, s.item, s.ticks), ("prices", p_store, p_item, p_week)):
        for kind, found in (("store", store), ("item", item)):
            flagged = unknown_codes(found, known[kind], kind, f"{kind}s")
            if not flagged:
                continue
            first = _first_rows(found.codes, when, [c for c, _ in flagged])
            for code, reason in flagged:
                n, at = first[code]
                rows.append({"table": table, "reason": reason, "store_id": store.names[store.codes[at]],
                             "item_id": item.names[item.codes[at]],
                             "date": day(s.days(np.array([at]))[0]) if table == "sales" else None,
                             "wm_yr_wk": int(p_week[at]) if table == "prices" else None, "rows": n})
    if not rows:
        return s.result("unknown_ids", 0, f"every item_id and store_id of the {s.n_rows:,} sales rows and {len(p):,} "
                                          "price rows is in the items and stores tables")
    frame = pd.DataFrame(rows).astype(object)
    frame = frame.where(pd.notna(frame), None)
    eg = "; ".join(f"{r['table']}: {r['reason']}, {r['rows']:,} row(s), the first store_id={r['store_id']} "
                   f"item_id={r['item_id']} " + (f"date={r['date']}" if r["table"] == "sales" else f"wm_yr_wk={r['wm_yr_wk']}")
                   for r in rows[:3])
    total = sum(r["rows"] for r in rows)
    return s.result("unknown_ids", total, f"{len(rows)} id(s) with {total:,} row(s) missing or not in the items / "
                                          f"stores tables: {eg}" + ("; ..." if len(rows) > 3 else ""), frame)


def negative_units(s: Snap) -> CheckResult:
    idx = np.flatnonzero(s.units < 0)
    if not len(idx):
        return s.result("negative_units", 0, f"no sales row has negative units ({s.n_rows:,} rows)")
    rows = s.sales_rows(idx[: s.t.max_offending])
    return s.result("negative_units", len(idx), f"{len(idx):,} sales row(s) with negative units, e.g. {describe(rows)}",
                    rows)


def _duplicate_positions(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Positions of the rows whose key (major, minor) occurs more than once, grouped by key.

    O(n) comparisons when the rows are sorted by the key (as a snapshot is); otherwise one lexsort.
    """
    if len(major) < 2:
        return np.empty(0, dtype=np.int64)
    a0, a1, b0, b1 = major[:-1], major[1:], minor[:-1], minor[1:]
    same_major = a1 == a0
    if ((a1 > a0) | (same_major & (b1 > b0))).all():
        return np.empty(0, dtype=np.int64)
    if ((a1 > a0) | (same_major & (b1 >= b0))).all():
        order = None
        eq = same_major & (b1 == b0)
    else:
        order = np.lexsort((minor, major))
        ma, mi = major[order], minor[order]
        eq = (ma[1:] == ma[:-1]) & (mi[1:] == mi[:-1])
    dup = np.zeros(len(major), dtype=bool)
    dup[1:] |= eq
    dup[:-1] |= eq
    pos = np.flatnonzero(dup)
    return pos if order is None else order[pos]


def _n_keys(major: np.ndarray, minor: np.ndarray) -> int:
    return len(pd.MultiIndex.from_arrays([major, minor]).unique()) if len(major) else 0


def duplicate_keys(s: Snap) -> CheckResult:
    t, p = s.t, s.prices
    sales_dup = _duplicate_positions(s.series, s.ticks)  # (store_id, item_id, date)
    pst, pit = s.price_ids
    pser = series_codes(pst.codes, pit.codes, len(pit.names))
    wk = p["wm_yr_wk"].to_numpy().astype(np.int64)
    price_dup = _duplicate_positions(pser, wk)  # (store_id, item_id, wm_yr_wk)
    if not len(sales_dup) and not len(price_dup):
        return s.result("duplicate_keys", 0, f"every key is unique: {s.n_rows:,} sales rows (store_id, item_id, date), "
                                             f"{len(p):,} price rows (store_id, item_id, wm_yr_wk)")
    sales_rows = s.sales_rows(sales_dup[: t.max_offending]).assign(table="sales")
    pi = price_dup[: t.max_offending]
    price_rows = pd.DataFrame({
        "table": "prices", "store_id": pst.name(pst.codes[pi]), "item_id": pit.name(pit.codes[pi]),
        "wm_yr_wk": wk[pi], "sell_price": p["sell_price"].to_numpy()[pi].astype(np.float64),
    })
    cols = ["table", "store_id", "item_id", "date", "wm_yr_wk", "units", "sell_price"]
    rows = pd.concat([f for f in (sales_rows, price_rows) if len(f)], ignore_index=True).reindex(columns=cols)
    rows = rows.astype(object)
    rows = rows.where(pd.notna(rows), None)
    parts = []
    if len(sales_dup):
        parts.append(f"sales: {len(sales_dup):,} rows share {_n_keys(s.series[sales_dup], s.ticks[sales_dup]):,} key(s) "
                     f"(store_id, item_id, date), e.g. {describe(sales_rows.drop(columns='table'), 2)}")
    if len(price_dup):
        parts.append(f"prices: {len(price_dup):,} rows share {_n_keys(pser[price_dup], wk[price_dup]):,} key(s) "
                     f"(store_id, item_id, wm_yr_wk), e.g. {describe(price_rows.drop(columns='table'), 2)}")
    return s.result("duplicate_keys", len(sales_dup) + len(price_dup), "; ".join(parts), rows)


def future_dates(s: Snap) -> CheckResult:
    idx = np.flatnonzero(s.ticks >= s.start_of(s.run_day + 1))
    d = s.run_date.isoformat()
    if not len(idx):
        return s.result("future_dates", 0, f"no sales row is dated after the run date {d}")
    rows = s.sales_rows(idx[: s.t.max_offending])
    return s.result("future_dates", len(idx),
                    f"{len(idx):,} sales row(s) dated after the run date {d} (the latest {day(s.days(idx).max())}), "
                    f"e.g. {describe(rows)}", rows)
