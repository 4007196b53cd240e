"""Forecast accuracy on the bottom level (MAE, RMSE, bias) and the metric table of several forecasts.

The table puts, for each forecast, the M5 WRMSSE (:mod:`pipeline.core.wrmsse`:
over all levels and per level) beside the point errors, one row per
``(model, metric, level)``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from pipeline.core.long_frames import LONG_COLUMNS, align
from pipeline.core.series import SERIES_KEY, SeriesIndexer
from pipeline.core.wrmsse import wrmsse
from pipeline.core.wrmsse_setup import WrmsseSetup

__all__ = ["TABLE_COLUMNS", "point_metrics", "metric_table"]

#: Columns of :func:`metric_table`.
TABLE_COLUMNS = ["model", "metric", "level", "value"]


def point_metrics(forecast: pd.DataFrame, actuals: pd.DataFrame) -> dict[str, float]:
    """MAE, RMSE and bias on the bottom level (one value per series-day).

    In: ``forecast`` and ``actuals``, long (``item_id, store_id, date, units``),
    covering the same (series, date) pairs (any set of them); no NaN or negative
    units. Out: ``{"mae", "rmse", "bias"}`` with bias = mean(forecast - actual)
    (positive: over-forecast). Raises ``ValueError`` on mismatched coverage,
    duplicates, or bad values.
    """
    for what, frame in (("forecast", forecast), ("actuals", actuals)):
        missing = [c for c in SERIES_KEY if c not in frame.columns]
        if missing:
            raise ValueError(f"{what} lacks columns {missing}; it needs {LONG_COLUMNS}")
    pairs = pd.concat(
        [
            pd.DataFrame({c: frame[c].astype(str).to_numpy() for c in SERIES_KEY}).drop_duplicates()
            for frame in (forecast, actuals)
        ],
        ignore_index=True,
    ).drop_duplicates()
    if pairs.empty:
        raise ValueError("forecast and actuals are empty")
    _, _, f, a, _ = align(forecast, actuals, SeriesIndexer(pairs))
    e = f - a
    return {
        "mae": float(np.mean(np.abs(e))),
        "rmse": float(np.sqrt(np.mean(e**2))),
        "bias": float(np.mean(e)),
    }


def metric_table(forecasts: Mapping[str, pd.DataFrame], actuals: pd.DataFrame, setup: WrmsseSetup) -> pd.DataFrame:
    """The metrics of every forecast against the same actuals: ``model, metric, level, value``.

    In: ``forecasts`` by name (the ``model`` column), each long and covering what
    :func:`pipeline.core.wrmsse.wrmsse` asks for; ``actuals``; ``setup``. Out: per
    forecast, in the given order, ``wrmsse`` at level ``all`` then at each of the 12
    levels, then ``mae``, ``rmse`` and ``bias`` at level ``item_store``. Raises
    ``ValueError`` as ``wrmsse`` and :func:`point_metrics` do.
    """
    rows = []
    for name, forecast in forecasts.items():
        result = wrmsse(forecast, actuals, setup)
        rows.append((name, "wrmsse", "all", result.total))
        rows += [(name, "wrmsse", level, value) for level, value in result.per_level.items()]
        rows += [(name, metric, "item_store", value) for metric, value in point_metrics(forecast, actuals).items()]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
