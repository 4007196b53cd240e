"""Checks of the sell prices.

``price_not_positive``  a sell_price that is zero, negative or missing (whole history). A hard stop:
                        it is no price, and the price features would divide by it.
``price_above_max``     a sell_price above :data:`~pipeline.core.bounds.MAX_SELL_PRICE` a unit
                        (whole history). A hard stop: a data-entry error, not a price (the bound is
                        fixed by its definition there, not a knob).
``price_jump``          an item-store's price changing by more than a factor ``price_jump_factor``
                        (up or down) from its previous priced week, into the run date's week or a
                        later one (``price_jump_weeks``: how many weeks up to the run date's are
                        checked, 0 = all history; real M5 history holds a few such jumps, which must
                        not fail every later date). A real price change can be accepted.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.bounds import MAX_SELL_PRICE
from pipeline.core.checks.frame import Snap, epoch_days
from pipeline.core.checks.report import CheckResult
from pipeline.core.checks.text import describe, num
from pipeline.core.series import series_codes


def _price_rows(p: pd.DataFrame, idx: np.ndarray) -> pd.DataFrame:
    """The price rows ``idx`` as (store_id, item_id, wm_yr_wk, sell_price), as a message names them."""
    return pd.DataFrame({
        "store_id": p["store_id"].to_numpy()[idx].astype(str).astype(object),
        "item_id": p["item_id"].to_numpy()[idx].astype(str).astype(object),
        "wm_yr_wk": p["wm_yr_wk"].to_numpy()[idx].astype(np.int64),
        "sell_price": p["sell_price"].to_numpy()[idx].astype(np.float64),
    })


def price_not_positive(s: Snap) -> CheckResult:
    p = s.prices
    idx = np.flatnonzero(~(p["sell_price"].to_numpy().astype(np.float64) > 0))
    if not len(idx):
        return s.result("price_not_positive", 0, f"every sell_price is positive ({len(p):,} rows)")
    rows = _price_rows(p, idx[: s.t.max_offending])
    return s.result("price_not_positive", len(idx), f"{len(idx):,} price row(s) with a sell_price that is zero, "
                                                    f"negative or missing, e.g. {describe(rows)}", rows)


def price_above_max(s: Snap) -> CheckResult:
    p = s.prices
    idx = np.flatnonzero(p["sell_price"].to_numpy().astype(np.float64) > MAX_SELL_PRICE)
    if not len(idx):
        return s.result("price_above_max", 0, f"every sell_price is at most {num(MAX_SELL_PRICE)} a unit "
                                              "(pipeline.core.bounds.MAX_SELL_PRICE)")
    rows = _price_rows(p, idx[: s.t.max_offending])
    return s.result("price_above_max", len(idx), f"{len(idx):,} price row(s) with a sell_price above "
                                                 f"{num(MAX_SELL_PRICE)} a unit (pipeline.core.bounds.MAX_SELL_PRICE), "
                                                 f"a data-entry error, e.g. {describe(rows)}", rows)


def _first_checked_week(s: Snap) -> int | None:
    """The first wm_yr_wk whose change from the week before is checked (None: all of them)."""
    if s.t.price_jump_weeks <= 0 or not len(s.calendar):
        return None
    cal = s.calendar
    weeks = np.unique(cal["wm_yr_wk"].to_numpy()[epoch_days(cal["date"].to_numpy()) <= s.run_day])
    if not len(weeks):
        return None
    return int(weeks[-min(s.t.price_jump_weeks, len(weeks))])


def price_jump(s: Snap) -> CheckResult:
    t, p = s.t, s.prices
    f = t.price_jump_factor
    st, it = s.price_ids
    ser = series_codes(st.codes, it.codes, len(it.names))
    wk = p["wm_yr_wk"].to_numpy().astype(np.int64)
    price = p["sell_price"].to_numpy().astype(np.float64)
    if len(wk):
        key = ser * (int(wk.max()) - int(wk.min()) + 1) + (wk - int(wk.min()))
        order = np.arange(len(key)) if (key[1:] >= key[:-1]).all() else np.argsort(key, kind="stable")
    else:
        order = np.arange(0)
    ser, wk, price = ser[order], wk[order], price[order]
    first_week = _first_checked_week(s)
    since = ("in any week" if first_week is None else
             f"into week {first_week} (the run date's week) or later" if t.price_jump_weeks == 1 else
             f"into week {first_week} or later (the last {t.price_jump_weeks} weeks up to the run date's)")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = price[1:] / price[:-1]
    jump = ((ser[1:] == ser[:-1]) & (price[1:] > 0) & (price[:-1] > 0) & ((ratio > f) | (ratio < 1 / f)))
    if first_week is not None:
        jump &= wk[1:] >= first_week
    idx = np.flatnonzero(jump)
    if not len(idx):
        return s.result("price_jump", 0,
                        f"no item-store price changes by more than a factor {num(f)} from its previous priced week {since}")
    shown = idx[: t.max_offending]  # positions (in sorted order) of the week before each jump
    to_row = order[shown + 1]
    rows = pd.DataFrame({
        "store_id": st.name(st.codes[to_row]), "item_id": it.name(it.codes[to_row]),
        "from_week": wk[shown], "to_week": wk[shown + 1],
        "from_price": price[shown], "to_price": price[shown + 1],
        "factor": np.round(ratio[shown], 4),
    })
    eg = "; ".join(f"item_id={r.item_id} store_id={r.store_id}: {r.from_price:.2f} in week {r.from_week} -> "
                   f"{r.to_price:.2f} in week {r.to_week} (x {num(r.factor)})" for r in rows.head(3).itertuples())
    return s.result("price_jump", len(idx),
                    f"{len(idx):,} item-store price change(s) by more than a factor {num(f)} (up or down) from the "
                    f"previous priced week {since}, e.g. {eg}" + ("; ..." if len(idx) > 3 else ""), rows)
