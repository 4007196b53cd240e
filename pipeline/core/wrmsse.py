"""The M5 WRMSSE of a forecast against actuals, as the organisers define it.

For every aggregated series ``s`` of every level (``pipeline.core.hierarchy.LEVELS``),
with ``h`` forecast days (M5 Competitors' Guide, section 4)::

    RMSSE_s = sqrt( mean_t (y_t - f_t)^2 / scale_s )
    WRMSSE  = sum_levels 1/12 * sum_{s in level} weight_s * RMSSE_s

Weights and scales come from a :class:`pipeline.core.wrmsse_setup.WrmsseSetup`
(see :mod:`pipeline.core.wrmsse_weights` for how they are computed).

**Zero or undefined scale** (a rule this module adds where M5 is silent; M5's own
data never hits it): RMSSE is not defined for a series whose scale is 0 or NaN,
so such a series **contributes 0** to the WRMSSE and the other weights are
**not** renormalised. A series that never sold in the 28-day window has weight 0,
so nothing is lost in the usual case (a product not launched yet); when a series
with positive weight is dropped, a ``RuntimeWarning`` is emitted and the dropped
weight is reported in ``WrmsseResult.excluded_weight``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.core.days import day_number
from pipeline.core.long_frames import align, pair_text
from pipeline.core.wrmsse_setup import WrmsseSetup

__all__ = ["WrmsseResult", "wrmsse"]


@dataclass(frozen=True, eq=False)
class WrmsseResult:
    """Outcome of :func:`wrmsse`.

    ``total``: the WRMSSE (mean of ``per_level`` over the 12 levels);
    ``per_level``: ``{level: sum over its series of weight x RMSSE}`` (weights sum
    to 1 within the level); ``rmsse``: ``{level: RMSSE per aggregated series}``,
    aligned with ``setup.levels[level].keys`` (NaN where the scale is 0/undefined);
    ``excluded_weight``: ``{level: weight of series left out for a 0/undefined
    scale}`` (0.0 on M5's data).
    """

    total: float
    per_level: dict[str, float]
    rmsse: dict[str, np.ndarray] = field(repr=False)
    excluded_weight: dict[str, float] = field(repr=False)
    setup: WrmsseSetup = field(repr=False)

    def table(self) -> pd.DataFrame:
        """Every aggregated series with ``level``, hierarchy columns, ``weight``,
        ``scale``, ``rmsse`` and ``contribution`` (weight x RMSSE / number of levels)."""
        out = self.setup.table()
        out["rmsse"] = np.concatenate([self.rmsse[name] for name in self.setup.levels])
        out["contribution"] = np.nan_to_num(out["weight"] * out["rmsse"]) / len(self.setup.levels)
        return out


def wrmsse(forecast: pd.DataFrame, actuals: pd.DataFrame, setup: WrmsseSetup) -> WrmsseResult:
    """Weighted root mean squared scaled error of a forecast, M5 style.

    In: ``forecast`` and ``actuals``, long (``item_id, store_id, date, units``), both
    covering exactly the same (series, date) pairs: every series of
    ``setup.series`` on every one of the h forecast days (all after
    ``setup.origin`` when known); no NaN, no negative units. ``setup`` from
    :func:`pipeline.core.wrmsse_weights.wrmsse_weights_scales` or
    :meth:`WrmsseSetup.from_arrays`.
    Out: a ``WrmsseResult``. Series with zero or undefined scale contribute 0
    (see the module docstring). Raises ``ValueError`` on any input violation.
    """
    series, day_idx, f, a, days = align(forecast, actuals, setup.indexer)
    n, h = len(setup.series), len(days)
    if len(series) != n * h:
        full = np.zeros(n * h, dtype=bool)
        full[series * h + day_idx] = True
        gap = int(np.flatnonzero(~full)[0])
        raise ValueError(
            f"forecast/actuals must hold every series on every day ({n} x {h} = {n * h} rows), "
            f"got {len(series)}; e.g. missing {pair_text(setup.indexer, gap, days)}"
        )
    if setup.origin is not None and days[0] <= day_number(setup.origin):
        raise ValueError(
            f"forecast days must be after the origin {setup.origin.date()}, got {np.datetime64(int(days[0]), 'D')}"
        )
    # Rows are sorted by (series, day), so a reshape gives the (series x days) matrices.
    err = (f - a).reshape(n, h)
    # Aggregation is linear: summing the errors equals the error of the sums.
    sq_err = {name: np.mean(m**2, axis=1) for name, m in setup.aggregate(err).items()}

    per_level, rmsse, excluded = {}, {}, {}
    dropped = []
    for name, level in setup.levels.items():
        valid = level.scales > 0  # False for 0 and NaN
        r = np.full(level.n_series, np.nan)
        r[valid] = np.sqrt(sq_err[name][valid] / level.scales[valid])
        rmsse[name] = r
        per_level[name] = float(np.dot(level.weights[valid], r[valid]))
        excluded[name] = float(level.weights[~valid].sum())
        if excluded[name] > 0:
            dropped.append(f"{name}: {int((~valid & (level.weights > 0)).sum())} series, weight {excluded[name]:.3g}")
    if dropped:
        warnings.warn(
            "WRMSSE leaves out series with positive weight but zero/undefined scale ("
            + "; ".join(dropped)
            + ")",
            RuntimeWarning,
            stacklevel=2,
        )
    total = float(np.mean(list(per_level.values())))
    return WrmsseResult(total=total, per_level=per_level, rmsse=rmsse, excluded_weight=excluded, setup=setup)
