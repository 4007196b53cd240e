"""The classic baseline forecasts a model is compared with: seasonal naive, 28-day average, zero.

A baseline forecast of run date D is made from the sales up to D alone, for the
same series and days as the model's forecast, so both are scored on the same
(series, day) pairs.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.days import as_day
from pipeline.core.series import ITEM, SERIES_KEY, STORE

__all__ = ["BASELINES", "baselines"]

#: The baselines' names, in the order they are reported.
BASELINES = ("seasonal_naive", "moving_average_28", "zero")

WINDOW_DAYS = 28  # the days of history a baseline reads (D-27..D)
WEEK = 7


def baselines(history: pd.DataFrame, series: pd.DataFrame, run_date: Any, horizon: int = 28) -> dict[str, pd.DataFrame]:
    """Baseline forecasts (long: item_id, store_id, date, units) of ``series`` from ``history`` up to ``run_date``.

    seasonal_naive: day D+h gets the units of the same weekday in the last week
    (D−6..D); moving_average_28: the mean of D−27..D; zero: 0. A day missing
    from the history counts as 0 units (a series not sold yet). Out: ``{name:
    frame}`` in ``BASELINES`` order, rows sorted by item, store, date.
    """
    run = as_day(run_date)
    last = pd.date_range(end=run, periods=WINDOW_DAYS)
    recent = history[history["date"].between(last[0], run)]
    wide = (recent.assign(**{c: recent[c].astype(str) for c in SERIES_KEY})
            .pivot_table(index=SERIES_KEY, columns="date", values="units", aggfunc="sum", observed=True)
            .reindex(columns=last))
    keys = series[SERIES_KEY].astype(str).drop_duplicates().sort_values(SERIES_KEY)
    wide = wide.reindex(pd.MultiIndex.from_frame(keys)).fillna(0.0).to_numpy(dtype=np.float64)
    days = pd.date_range(start=run + pd.Timedelta(days=1), periods=horizon)
    h = np.arange(1, horizon + 1)
    # the same weekday in D-6..D: the last column is D, so D+h maps to D - 7 + ((h-1) % 7) + 1
    seasonal = wide[:, WINDOW_DAYS - 1 - WEEK + ((h - 1) % WEEK) + 1]
    values = {
        "seasonal_naive": seasonal,
        "moving_average_28": np.repeat(wide.mean(axis=1, keepdims=True), horizon, axis=1),
        "zero": np.zeros((len(keys), horizon)),
    }

    def long(v: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({ITEM: np.repeat(keys[ITEM].to_numpy(), horizon),
                             STORE: np.repeat(keys[STORE].to_numpy(), horizon),
                             "date": np.tile(days.to_numpy(), len(keys)), "units": v.ravel()})

    return {name: long(values[name]) for name in BASELINES}
