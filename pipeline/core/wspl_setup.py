"""What the WSPL needs besides quantile forecasts and actuals: every aggregated series with its weight and scale.

The M5 Uncertainty track (Competitors' Guide) weights series exactly as the
Accuracy track does (dollar sales over the last 28 days, each level summing to 1)
but scales them by the mean *absolute* one-step naive error::

    scale_s = 1/(n-1) * sum_{t=2..n} |y_t - y_{t-1}|   over the in-sample days
              counted from the series' first non-zero sale up to the origin

(the WRMSSE squares the differences). A :class:`WsplSetup` therefore wraps a
:class:`pipeline.core.wrmsse_setup.WrmsseSetup` whose ``scales`` are these absolute
ones: hierarchy, keys, codes and weights are shared, and a WSPL setup cannot be
passed to :func:`pipeline.core.wrmsse.wrmsse` by mistake (it is another type).
The history is read and the leading zeros dropped by the same code as the WRMSSE
scales (:mod:`pipeline.core.wrmsse_weights`), so both metrics see the same
"active" history; its rules (missing rows, undefined or zero scales) hold here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from pipeline.core.days import as_day
from pipeline.core.hierarchy import LEVELS, aggregation_plan, check_hierarchy, level_codes, sum_up
from pipeline.core.series import SeriesIndexer
from pipeline.core.wrmsse_setup import LevelSetup, WrmsseSetup
from pipeline.core.wrmsse_weights import history_matrix, naive_scales, wrmsse_weights_scales

__all__ = ["WsplSetup", "absolute_scales", "wspl_setup"]


@dataclass(frozen=True, eq=False)
class WsplSetup:
    """Hierarchy, weights and absolute scales of every aggregated series.

    ``base``: a ``WrmsseSetup`` whose ``levels[name].scales`` are mean *absolute*
    naive errors (NaN where undefined); everything else (bottom ``series`` order,
    level ``keys`` and ``codes``, within-level ``weights``, ``origin``) as in WRMSSE.
    """

    base: WrmsseSetup

    @property
    def series(self) -> pd.DataFrame:
        """The bottom series (hierarchy columns), sorted by item then store."""
        return self.base.series

    @property
    def levels(self) -> dict[str, LevelSetup]:
        """``{level: LevelSetup}`` in ``LEVELS`` order; ``scales`` are absolute."""
        return self.base.levels

    @property
    def origin(self) -> pd.Timestamp | None:
        return self.base.origin

    @property
    def n_series(self) -> int:
        return self.base.n_series

    def table(self) -> pd.DataFrame:
        """All aggregated series, long: ``level``, hierarchy columns, ``weight``, ``scale`` (absolute)."""
        return self.base.table()

    def aggregate(self, bottom: np.ndarray) -> dict[str, np.ndarray]:
        """Sum a (series x days) matrix, rows in ``series`` order, up every level."""
        return self.base.aggregate(bottom)

    @classmethod
    def from_weights(cls, weights: WrmsseSetup, history: pd.DataFrame) -> "WsplSetup":
        """The WSPL setup sharing a WRMSSE setup's weights, with absolute scales from ``history``.

        Saves recomputing the dollar-sales weights when a WRMSSE setup exists. The
        history (long ``item_id, store_id, date, units``) is read up to
        ``weights.origin`` (required) as :func:`wspl_setup` reads it.
        """
        if weights.origin is None:
            raise ValueError("the WRMSSE setup has no origin: the scales' history cannot be cut")
        scales = absolute_scales(history, weights.series, weights.origin)
        levels = {name: replace(level, scales=scales[name]) for name, level in weights.levels.items()}
        return cls(WrmsseSetup(series=weights.series, levels=levels, origin=weights.origin,
                               missing_price_days=weights.missing_price_days))

    @classmethod
    def from_arrays(
        cls,
        hierarchy: pd.DataFrame,
        weights: Mapping[str, pd.Series],
        scales: Mapping[str, pd.Series],
        origin: Any = None,
    ) -> "WsplSetup":
        """A setup from weights and *absolute* scales given per aggregated series
        (e.g. the organisers' own values); input rules as :meth:`WrmsseSetup.from_arrays`."""
        return cls(WrmsseSetup.from_arrays(hierarchy, weights, scales, origin=origin))


def absolute_scales(history: pd.DataFrame, hierarchy: pd.DataFrame, origin: Any) -> dict[str, np.ndarray]:
    """Mean absolute one-step naive error of every aggregated series, as of ``origin``.

    In: ``history`` long (``item_id, store_id, date, units``; rows after ``origin``
    ignored, a missing row inside [first date, origin] is 0 units); ``hierarchy`` one
    row per series. Out: ``{level: scales}`` in ``LEVELS`` order, aligned with the
    level's sorted keys; each from the aggregate's first non-zero day to the origin,
    NaN with fewer than two such days, 0 for a series constant from its first sale.
    """
    h = check_hierarchy(hierarchy)
    origin_ts = as_day(origin, "origin")
    y = history_matrix(history, h, SeriesIndexer(h), origin_ts)
    # The plan needs only each level's codes and size; weights and scales stay empty.
    levels = [LevelSetup(name, tuple(cols), keys, codes, np.empty(0), np.empty(0))
              for name, cols in LEVELS for codes, keys in [level_codes(h, cols)]]
    sums = sum_up(y, aggregation_plan(levels, len(h)))
    del y
    return {name: naive_scales(sums[name], absolute=True) for name, _ in LEVELS}


def wspl_setup(
    history: pd.DataFrame,
    prices: pd.DataFrame,
    calendar: pd.DataFrame,
    hierarchy: pd.DataFrame,
    origin: Any,
    *,
    weight_days: int = 28,
) -> WsplSetup:
    """M5 WSPL weights and scales of every aggregated series, as of a forecast origin.

    In: as :func:`pipeline.core.wrmsse_weights.wrmsse_weights_scales` (the weights are
    its weights). Out: a ``WsplSetup`` whose scales are :func:`absolute_scales`.
    """
    return WsplSetup.from_weights(
        wrmsse_weights_scales(history, prices, calendar, hierarchy, origin, weight_days=weight_days), history
    )

