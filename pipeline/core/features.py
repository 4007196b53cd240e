"""The feature engine: features for training rows and for the scoring rows of every series.

The engine is plain numpy/pandas over a dense (series × days) matrix and works
on any set of series (one series, one store, the chain); ``pipeline.stages.parallel``
maps it over partitions with Dask. Every lag is at least ``MIN_LAG`` = 28 days,
so all 28 horizons of a run date are scored in one batch without recursion: the
feature row of target day t only uses sales up to t − 28 ≤ run date.

Sales a snapshot does not hold (before the series' first row) are missing (NaN),
not zero, so a series' features do not depend on which other series share its
partition. A week whose price is not recorded yet (every week after the run
date's) repeats the last recorded week's price features, its week-over-week
change included; before an item's first price they are missing.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline.core.days import as_day
from pipeline.core.errors import DataError
from pipeline.core.series import SeriesIndexer, series_keys
from pipeline.core.spec import MIN_LAG, ForecastSpec

LAGS = (28, 29, 30, 35, 42, 49, 56, 364)
MEAN_WINDOWS = (7, 14, 28, 56, 112)
STD_WINDOWS = (7, 28)
ZERO_WINDOW = 28
AGE_CAP = 365  # days: a series older than a year is "established", whatever its launch date

ID_COLUMNS = ["item_id", "store_id", "date"]
CATEGORICAL = ["item_id", "dept_id", "cat_id", "store_id", "state_id",
               "event_name_1", "event_type_1", "event_name_2", "event_type_2"]
NUMERIC = (
    [f"lag_{lag}" for lag in LAGS]
    + [f"rmean_{w}" for w in MEAN_WINDOWS]
    + [f"rstd_{w}" for w in STD_WINDOWS]
    + [f"rzero_{ZERO_WINDOW}", "age", "wday", "month", "mday", "week", "snap",
       "sell_price", "price_norm", "price_change", "price_rel_stores"]
)
FEATURES = CATEGORICAL + NUMERIC
TARGET = "units"
# pooled over the series of the row's store and of its store × department (a store is one partition):
# their mean units per series and day over the 28 days up to t − 28, and that level against the
# 112 days up to t − 28 (a level shift or a drift of the store or department, seen from the lag horizon)
POOLED_WINDOW, POOLED_BASE = 28, 112
POOLED = ["store_rmean_28", "store_trend", "dept_rmean_28", "dept_trend"]


def feature_names(pooled: bool = False) -> list[str]:
    """The model's features in order: ``FEATURES``, then ``POOLED`` when the pooled features are on."""
    return FEATURES + (POOLED if pooled else [])


def weeks_of(calendar: pd.DataFrame) -> np.ndarray:
    """Walmart weeks in calendar order."""
    return calendar.sort_values("date")["wm_yr_wk"].drop_duplicates().to_numpy()


def price_panel(prices: pd.DataFrame, keys: pd.DataFrame, weeks: np.ndarray) -> np.ndarray:
    """Weekly prices of the series in ``keys`` (item_id, store_id) as a (series × weeks) float64 array.

    Weeks with no recorded price after the first one carry the last price
    forward (a future week's price is not known at the run date); weeks before
    the first price stay NaN.
    """
    return _ffill(recorded_prices(prices, keys, weeks))


def recorded_prices(prices: pd.DataFrame, keys: pd.DataFrame, weeks: np.ndarray) -> np.ndarray:
    """Like :func:`price_panel`, but NaN in every week without a recorded price."""
    panel = np.full((len(keys), len(weeks)), np.nan)
    if len(prices):
        row = SeriesIndexer(keys).codes(prices)
        col = pd.Index(weeks).get_indexer(prices["wm_yr_wk"])
        ok = (row >= 0) & (col >= 0)
        panel[row[ok], col[ok]] = prices["sell_price"].to_numpy(dtype=np.float64)[ok]
    return panel


def _ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along axis 1, vectorised."""
    idx = np.where(~np.isnan(a), np.arange(a.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = a[np.arange(a.shape[0])[:, None], idx]
    return out


def item_mean_prices(prices: pd.DataFrame, series: pd.DataFrame, weeks: np.ndarray) -> pd.DataFrame:
    """Mean weekly price of each item over the stores that sell it (rows item_id, columns weeks).

    This is the one feature input that crosses series, so it is computed once
    for the whole snapshot and handed to every partition. The stores' prices are
    added in ``store_id`` order, one store at a time, so that the single-series
    path (:mod:`pipeline.core.online`) can add them in the same order and get the
    same float.
    """
    panel = price_panel(prices, series, weeks)
    items = series["item_id"].astype(str).to_numpy()
    order = np.lexsort((series["store_id"].astype(str).to_numpy(), items))
    codes, uniques = pd.factorize(items[order], sort=True)
    starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    rank = np.arange(len(codes)) - np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    total = np.zeros((len(uniques), len(weeks)))
    count = np.zeros((len(uniques), len(weeks)))
    for k in range(int(rank.max(initial=-1)) + 1):
        at = rank == k  # the k-th store of every item: one row per item, so no index repeats
        p = panel[order[at]]
        known = ~np.isnan(p)
        total[codes[at]] += np.where(known, p, 0.0)
        count[codes[at]] += known
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    return pd.DataFrame(mean, index=pd.Index(uniques, name="item_id"), columns=weeks)


def build_features(
    sales: pd.DataFrame,
    prices: pd.DataFrame,
    calendar: pd.DataFrame,
    items: pd.DataFrame,
    stores: pd.DataFrame,
    item_prices: pd.DataFrame,
    target_dates: pd.DatetimeIndex,
    run_date: dt.date,
    with_target: bool,
    pooled: bool = False,
) -> pd.DataFrame:
    """Feature rows for every series in ``sales`` and every day in ``target_dates``.

    ``sales``: long item_id, store_id, date, units as known at ``run_date``;
    ``prices``: item_id, store_id, wm_yr_wk, sell_price of those series;
    ``item_prices``: :func:`item_mean_prices` of the whole snapshot.
    Returns ``ID_COLUMNS`` + ``feature_names(pooled)`` (+ ``units`` when ``with_target``),
    one row per series × target day, sorted by store_id, item_id, date;
    numeric features float32. Training rows (``with_target``) are kept only from
    the series' first sale on and where the day's units are known.
    """
    run_day = as_day(run_date)
    if target_dates.max() - pd.Timedelta(days=MIN_LAG) > run_day:
        raise ValueError("target dates more than 28 days after the run date need lags under 28 days")
    cal = calendar.sort_values("date").reset_index(drop=True)
    start = cal["date"].iloc[0]
    n_days = (run_day - start).days + 1
    keys = series_keys(sales)
    n = len(keys)

    # dense history: NaN where the snapshot holds no row
    row = SeriesIndexer(keys).codes(sales)
    day = ((sales["date"] - start).dt.days).to_numpy()
    keep = (day >= 0) & (day < n_days)
    values = np.full((n, n_days), np.nan)
    values[row[keep], day[keep]] = sales["units"].to_numpy(dtype=np.float64)[keep]

    t = ((target_dates - start).days).to_numpy()
    out: dict[str, np.ndarray] = {}
    for lag in LAGS:
        out[f"lag_{lag}"] = _take(values, t - lag)

    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    zeros = present & (values == 0)
    csum, csq, ccount, czero = (_cumsum0(a) for a in (filled, filled * filled, present, zeros))
    end = t - MIN_LAG + 1  # exclusive end of every window: the last usable day is t − 28

    def window(c: np.ndarray, w: int) -> np.ndarray:
        lo = end - w
        valid = lo >= 0
        res = np.full((n, len(t)), np.nan)
        res[:, valid] = c[:, end[valid]] - c[:, lo[valid]]
        return res

    for w in sorted(set(MEAN_WINDOWS) | set(STD_WINDOWS) | {ZERO_WINDOW}):
        count = window(ccount, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, window(csum, w) / count, np.nan)
            if w in MEAN_WINDOWS:
                out[f"rmean_{w}"] = mean
            if w in STD_WINDOWS:
                var = np.where(count > 1, (window(csq, w) - count * mean**2) / (count - 1), np.nan)
                out[f"rstd_{w}"] = np.sqrt(np.clip(var, 0, None))
            if w == ZERO_WINDOW:
                out[f"rzero_{w}"] = np.where(count > 0, window(czero, w) / count, np.nan)

    if pooled:
        out.update(_pooled(filled, present, keys, items, end))

    # days since the first sale known at t − 28 (a launch date seen from the lag horizon), capped at
    # AGE_CAP: it tells a new item's ramp-up from an established one. Uncapped, it is the calendar day
    # itself for every series sold since the history began, a time index that trees extrapolate past
    # the training window (measured on a panel of seeds: docs/accuracy.md).
    sold = present & (values > 0)
    first_sale = np.where(sold.any(axis=1), sold.argmax(axis=1), np.iinfo(np.int64).max)
    age = np.minimum(t[None, :] - first_sale[:, None], AGE_CAP).astype(np.float64)
    out["age"] = np.where(first_sale[:, None] <= (t - MIN_LAG)[None, :], age, np.nan)

    # calendar, events and SNAP of the series' state
    cal_rows = cal.set_index("date").reindex(target_dates)
    if cal_rows["wm_yr_wk"].isna().any():
        missing = target_dates[cal_rows["wm_yr_wk"].isna().to_numpy()][0]
        raise DataError(f"the calendar table has no row for {missing.date()}, a target day of run date {run_date}: "
                        "forecast days need their calendar (events, SNAP, Walmart week)")
    for name, values_ in (("wday", cal_rows["wday"]), ("month", cal_rows["month"]),
                          ("mday", target_dates.day), ("week", target_dates.isocalendar().week)):
        out[name] = np.broadcast_to(np.asarray(values_, dtype=np.float64), (n, len(t)))
    state = keys["store_id"].map(stores.set_index("store_id")["state_id"].astype(str))
    if state.isna().any():
        raise ValueError(f"store {keys['store_id'][state.isna()].iloc[0]} is not in the stores table")
    snap = np.full((n, len(t)), np.nan)
    for st in state.unique():
        col = f"snap_{st}"
        if col in cal_rows:
            snap[(state == st).to_numpy()] = cal_rows[col].to_numpy(dtype=np.float64)
    out["snap"] = snap

    # prices: level, against the item's own history, week over week, against the item in other stores
    weeks = weeks_of(cal)
    week_ix = pd.Index(weeks).get_indexer(cal_rows["wm_yr_wk"].astype(int))
    recorded = recorded_prices(prices, keys, weeks)
    panel = _ffill(recorded)
    price = panel[:, week_ix]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["sell_price"] = price
        out["price_norm"] = price / np.fmax.accumulate(panel, axis=1)[:, week_ix]
        prev = np.concatenate([np.full((n, 1), np.nan), panel[:, :-1]], axis=1)
        # A week without a recorded price (every week after the run date's) repeats the whole price
        # state of the last recorded week, its change included, as it repeats its price. A change of
        # 0 there would pair a promotion's price with "no change", which in training rows only occurs
        # in a promotion's later weeks, and the forecast was clearly worse with it (docs/accuracy.md,
        # "Against mlforecast").
        change = np.where(np.isnan(recorded), np.nan, panel / prev - 1.0)
        out["price_change"] = _ffill(change)[:, week_ix]
        item_mean = item_prices.reindex(keys["item_id"]).reindex(columns=weeks).to_numpy(dtype=np.float64)
        out["price_rel_stores"] = price / item_mean[:, week_ix]

    # assemble series-major rows
    frame = pd.DataFrame({
        "item_id": np.repeat(keys["item_id"].to_numpy(), len(t)),
        "store_id": np.repeat(keys["store_id"].to_numpy(), len(t)),
        "date": np.tile(target_dates.to_numpy(dtype="datetime64[ns]"), n),
    })
    hierarchy = keys.merge(items.astype(str), on="item_id", how="left").merge(stores.astype(str), on="store_id", how="left")
    for col in ("dept_id", "cat_id", "state_id"):
        frame[col] = np.repeat(hierarchy[col].to_numpy(), len(t))
    for col in ("event_name_1", "event_type_1", "event_name_2", "event_type_2"):
        frame[col] = np.tile(cal_rows[col].astype(object).where(cal_rows[col].notna(), None).to_numpy(), n)
    numeric = NUMERIC + (POOLED if pooled else [])
    for name in numeric:
        frame[name] = np.ascontiguousarray(out[name], dtype=np.float32).ravel()
    for col in CATEGORICAL:
        frame[col] = frame[col].astype("string")
    if with_target:
        label = _take(values, t)
        frame[TARGET] = label.ravel().astype(np.float32)
        after_launch = (t[None, :] >= first_sale[:, None]).ravel()
        frame = frame[after_launch & ~np.isnan(label.ravel())]
    names = feature_names(pooled)
    return frame[ID_COLUMNS + [c for c in names if c not in ID_COLUMNS] + ([TARGET] if with_target else [])].reset_index(drop=True)


def _pooled(filled: np.ndarray, present: np.ndarray, keys: pd.DataFrame, items: pd.DataFrame,
            end: np.ndarray) -> dict[str, np.ndarray]:
    """``POOLED`` for every series (rows) and target day (columns), from the days before ``end``.

    A group is every series of one store, or of one store and department, among those given (the
    batch engine gets a store's series at once). Its level is the mean units per series and day
    over the window, counting only the days a series has a row.
    """
    dept = keys[["item_id"]].merge(items.astype(str), on="item_id", how="left")["dept_id"].fillna("")
    groups = {"store": keys["store_id"].astype(str).to_numpy(), "dept": (keys["store_id"].astype(str) + "|" + dept).to_numpy()}
    out = {}
    for name, labels in groups.items():
        codes, uniques = pd.factorize(labels)
        member = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(uniques), len(codes)))
        csum, ccount = _cumsum0(member @ filled), _cumsum0(member @ present.astype(np.float64))

        def level(w):
            lo = end - w
            ok = lo >= 0
            s = np.full((len(uniques), len(end)), np.nan)
            c = np.full((len(uniques), len(end)), np.nan)
            s[:, ok], c[:, ok] = csum[:, end[ok]] - csum[:, lo[ok]], ccount[:, end[ok]] - ccount[:, lo[ok]]
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(c > 0, s / c, np.nan)

        recent, base = level(POOLED_WINDOW), level(POOLED_BASE)
        with np.errstate(invalid="ignore", divide="ignore"):
            trend = np.where(base > 0, recent / base, np.nan)
        out[f"{name}_rmean_{POOLED_WINDOW}"] = recent[codes]
        out[f"{name}_trend"] = trend[codes]
    return out


def _cumsum0(a: np.ndarray) -> np.ndarray:
    """Cumulative sum along days with a leading zero column: window sums are differences."""
    out = np.zeros((a.shape[0], a.shape[1] + 1))
    np.cumsum(a, axis=1, out=out[:, 1:])
    return out


def _take(values: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """values[:, cols] with NaN where a column lies outside the history."""
    res = np.full((values.shape[0], len(cols)), np.nan)
    ok = (cols >= 0) & (cols < values.shape[1])
    res[:, ok] = values[:, cols[ok]]
    return res


def training_dates(run_date: dt.date, window_days: int) -> pd.DatetimeIndex:
    """The target days a model trained on ``run_date`` learns from: the window ending at it."""
    return pd.date_range(end=as_day(run_date), periods=window_days, freq="D")


def scoring_dates(run_date: dt.date, horizon: int = 28) -> pd.DatetimeIndex:
    """The ``horizon`` days after ``run_date`` (see ``ForecastSpec``)."""
    return ForecastSpec(horizon=horizon).target_dates(run_date)
