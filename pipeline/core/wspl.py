"""The M5 WSPL (Weighted Scaled Pinball Loss) of quantile forecasts, as the organisers define it.

For every aggregated series ``s`` of every level (``pipeline.core.hierarchy.LEVELS``),
every quantile ``u`` of ``QUANTILES`` and ``h`` forecast days (M5 Competitors'
Guide, Uncertainty track)::

    PL_t(u)  = (y_t - q_t(u)) * u        if q_t(u) <= y_t
               (q_t(u) - y_t) * (1 - u)  otherwise
    SPL_s(u) = mean_t PL_t(u) / scale_s  (scale: mean absolute naive error, see
                                          pipeline.core.wspl_setup)
    WSPL     = sum_levels 1/12 * sum_{s in level} weight_s * mean_u SPL_s(u)

The quantiles of an aggregated series are forecast for that series: unlike point
forecasts they do not sum up the hierarchy, so the caller gives them for every
level, while the actuals are given at the bottom and summed up here.

**Zero or undefined scale**: as in :func:`pipeline.core.wrmsse.wrmsse` (a rule
M5's data never hits), such a series contributes 0 and the other weights are not
renormalised; a ``RuntimeWarning`` names dropped series of positive weight, and
``WsplResult.excluded_weight`` reports their weight.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from pipeline.core.days import day_number, day_numbers
from pipeline.core.long_frames import DATE, UNITS, pair_text, read_long
from pipeline.core.wspl_setup import WsplSetup

__all__ = ["QUANTILES", "QUANTILE_COLUMNS", "WsplResult", "pinball", "wspl", "wspl_arrays", "coverage",
           "coverage_arrays", "read_quantiles"]

#: The nine quantiles M5 scores: the median and the 50%, 67%, 95% and 99% central intervals.
QUANTILES: tuple[float, ...] = (0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995)
LEVEL, QUANTILE = "level", "quantile"
#: Columns of a quantile frame besides the level's group-by columns.
QUANTILE_COLUMNS = [LEVEL, DATE, QUANTILE, UNITS]
# A given quantile matches one of QUANTILES when this close (text-parsed floats match exactly anyway).
_QUANTILE_TOLERANCE = 1e-9


@dataclass(frozen=True, eq=False)
class WsplResult:
    """Outcome of :func:`wspl`.

    ``total``: the WSPL (mean of ``per_level`` over the 12 levels); ``per_level``:
    ``{level: sum over its series of weight x mean SPL}``; ``spl``: ``{level:
    (level.n_series x len(QUANTILES)) SPL}``, rows aligned with
    ``setup.levels[level].keys`` (NaN where the scale is 0/undefined);
    ``excluded_weight``: ``{level: weight left out for a 0/undefined scale}``.
    """

    total: float
    per_level: dict[str, float]
    spl: dict[str, np.ndarray] = field(repr=False)
    excluded_weight: dict[str, float] = field(repr=False)
    setup: WsplSetup = field(repr=False)

    def table(self) -> pd.DataFrame:
        """Every aggregated series with ``level``, hierarchy columns, ``weight``, ``scale``,
        ``spl`` (mean over the quantiles) and ``contribution`` (weight x spl / number of levels)."""
        out = self.setup.table()
        out["spl"] = np.concatenate([self.spl[name].mean(axis=1) for name in self.setup.levels])
        out["contribution"] = np.nan_to_num(out["weight"] * out["spl"]) / len(self.setup.levels)
        return out


def pinball(actual: np.ndarray, quantile: np.ndarray, u: float | np.ndarray) -> np.ndarray:
    """Elementwise pinball loss of quantile forecasts ``quantile`` at level(s) ``u``.

    An under-forecast costs ``u`` per unit, an over-forecast ``1 - u``: so for
    ``u`` near 1 missing the upper tail is dear, which makes the loss's minimiser the
    ``u``-quantile. Arguments broadcast.
    """
    diff = np.asarray(actual, dtype=np.float64) - quantile
    return np.where(diff >= 0, diff * u, -diff * (1.0 - np.asarray(u)))


def wspl(actuals: pd.DataFrame, quantiles: pd.DataFrame, setup: WsplSetup) -> WsplResult:
    """Weighted scaled pinball loss of quantile forecasts, M5 style.

    In: ``actuals`` long (``item_id, store_id, date, units``): every series of
    ``setup.series`` on each of the h forecast days (after ``setup.origin`` when
    known), no NaN or negative units. ``quantiles`` long, see :func:`read_quantiles`,
    on the same days. ``setup`` from :func:`pipeline.core.wspl_setup.wspl_setup` or
    :meth:`WsplSetup.from_arrays`.
    Out: a ``WsplResult``. Raises ``ValueError`` on any input violation.
    """
    bottom, days = _bottom_matrix(actuals, setup)
    return wspl_arrays(bottom, read_quantiles(quantiles, setup, days), setup)


def wspl_arrays(actuals: np.ndarray, quantiles: Mapping[str, np.ndarray], setup: WsplSetup) -> WsplResult:
    """:func:`wspl` on arrays.

    In: ``actuals`` (bottom series x h days), rows in ``setup.series`` order;
    ``quantiles[level]`` (level.n_series x h x len(QUANTILES)), rows aligned with
    ``setup.levels[level].keys``, the last axis in ``QUANTILES`` order, for every level.
    Raises ``ValueError`` on a missing level, a wrong shape or a non-finite quantile.
    """
    sums = _checked(actuals, quantiles, setup)
    u = np.asarray(QUANTILES)
    per_level, spl, excluded, dropped = {}, {}, {}, []
    for name, level in setup.levels.items():
        loss = pinball(sums[name][:, :, None], quantiles[name], u).mean(axis=1)  # (series x quantiles)
        valid = level.scales > 0  # False for 0 and NaN
        s = np.full(loss.shape, np.nan)
        s[valid] = loss[valid] / level.scales[valid, None]
        spl[name] = s
        per_level[name] = float(np.dot(level.weights[valid], s[valid].mean(axis=1)))
        excluded[name] = float(level.weights[~valid].sum())
        if excluded[name] > 0:
            dropped.append(f"{name}: {int((~valid & (level.weights > 0)).sum())} series, weight {excluded[name]:.3g}")
    if dropped:
        warnings.warn("WSPL leaves out series with positive weight but zero/undefined scale ("
                      + "; ".join(dropped) + ")", RuntimeWarning, stacklevel=2)
    total = float(np.mean(list(per_level.values())))
    return WsplResult(total=total, per_level=per_level, spl=spl, excluded_weight=excluded, setup=setup)


def coverage(actuals: pd.DataFrame, quantiles: pd.DataFrame, setup: WsplSetup) -> pd.DataFrame:
    """Share of (series, day) whose actual is at or below the forecast quantile, per level.

    Inputs as :func:`wspl`. Out: one row per level (index ``level``, ``LEVELS``
    order), one column per quantile of ``QUANTILES``: a calibrated forecast has
    coverage near ``u`` in column ``u``, and an interval (u, 1 - u) holds the
    actuals in the difference of the two columns.
    """
    bottom, days = _bottom_matrix(actuals, setup)
    return coverage_arrays(bottom, read_quantiles(quantiles, setup, days), setup)


def coverage_arrays(actuals: np.ndarray, quantiles: Mapping[str, np.ndarray], setup: WsplSetup) -> pd.DataFrame:
    """:func:`coverage` on arrays shaped as for :func:`wspl_arrays`."""
    sums = _checked(actuals, quantiles, setup)
    rows = {name: (sums[name][:, :, None] <= quantiles[name]).mean(axis=(0, 1)) for name in setup.levels}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(QUANTILES)).rename_axis(LEVEL)


def read_quantiles(quantiles: pd.DataFrame, setup: WsplSetup, days: np.ndarray) -> dict[str, np.ndarray]:
    """Quantile forecasts of a long frame as ``{level: (n_series x h x len(QUANTILES))}`` arrays.

    In: ``quantiles`` with columns ``level`` (a name of ``LEVELS``), the level's
    group-by columns (``state_id``, ``store_id``, ``cat_id``, ``dept_id``,
    ``item_id``; read as str, ignored where the level does not group by them, as
    the NaN cells of ``setup.table()``), ``date``, ``quantile`` (one of
    ``QUANTILES``) and ``units`` (the forecast quantile: finite, >= 0). One row per
    (aggregated series, day of ``days``, quantile), for every series of every level,
    exactly once. ``days``: the forecast days as day numbers, sorted.
    Out: arrays aligned with ``setup.levels[level].keys``. Raises ``ValueError``
    on missing columns, bad values, unknown levels, series, days or quantiles,
    duplicates and gaps.
    """
    missing = [c for c in QUANTILE_COLUMNS if c not in quantiles.columns]
    if missing:
        raise ValueError(f"quantiles lacks columns {missing}; it needs {QUANTILE_COLUMNS} and the levels' columns")
    values = pd.to_numeric(quantiles[UNITS]).to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all():
        raise ValueError(f"quantiles has {int((~np.isfinite(values)).sum())} NaN or infinite units")
    if (values < 0).any():
        raise ValueError(f"quantiles has {int((values < 0).sum())} negative units")
    u = pd.to_numeric(quantiles[QUANTILE]).to_numpy(dtype=np.float64, na_value=np.nan)
    u_pos = np.searchsorted(QUANTILES, u - _QUANTILE_TOLERANCE).clip(0, len(QUANTILES) - 1)
    bad = ~(np.abs(np.asarray(QUANTILES)[u_pos] - u) <= _QUANTILE_TOLERANCE)
    if bad.any():
        raise ValueError(f"quantiles has {int(bad.sum())} rows whose quantile is not one of {QUANTILES}, "
                         f"e.g. {u[np.flatnonzero(bad)[0]]!r}")
    day_all = day_numbers(quantiles[DATE], "quantiles")
    d_pos = np.searchsorted(days, day_all).clip(0, len(days) - 1)
    bad = days[d_pos] != day_all
    if bad.any():
        raise ValueError(f"quantiles has {int(bad.sum())} rows on days without actuals, "
                         f"e.g. {np.datetime64(int(day_all[np.flatnonzero(bad)[0]]), 'D')}")
    level_col = quantiles[LEVEL].astype(str).to_numpy()
    unknown = ~np.isin(level_col, list(setup.levels))
    if unknown.any():
        raise ValueError(f"quantiles has {int(unknown.sum())} rows of unknown levels, e.g. "
                         f"{level_col[np.flatnonzero(unknown)[0]]!r}; levels are {list(setup.levels)}")

    h, k = len(days), len(QUANTILES)
    out = {}
    for name, level in setup.levels.items():
        rows = np.flatnonzero(level_col == name)
        if level.columns:
            lacking = [c for c in level.columns if c not in quantiles.columns]
            if lacking:
                raise ValueError(f"quantiles lacks columns {lacking} of level {name!r}")
            part = quantiles.iloc[rows]
            given = pd.MultiIndex.from_arrays([part[c].astype(str).to_numpy() for c in level.columns])
            series = pd.MultiIndex.from_frame(level.keys[list(level.columns)]).get_indexer(given)
            if (series < 0).any():
                raise ValueError(f"quantiles has rows of series not in level {name!r}, "
                                 f"e.g. {tuple(given[np.flatnonzero(series < 0)[0]])}")
        else:
            series = np.zeros(len(rows), dtype=np.int64)
        flat = (series * h + d_pos[rows]) * k + u_pos[rows]
        counts = np.bincount(flat, minlength=level.n_series * h * k)
        if counts.max() > 1 or counts.min() < 1:
            what = "duplicate" if counts.max() > 1 else "missing"
            pos = int(np.flatnonzero(counts != 1)[0])
            key = tuple(level.keys.iloc[pos // (h * k)]) if level.columns else ()
            raise ValueError(f"quantiles has {what} rows in level {name!r}: each series, day and quantile once "
                             f"({level.n_series} x {h} x {k}), e.g. {key} on "
                             f"{np.datetime64(int(days[pos // k % h]), 'D')} at {QUANTILES[pos % k]}")
        cube = np.empty(level.n_series * h * k)
        cube[flat] = values[rows]
        out[name] = cube.reshape(level.n_series, h, k)
    return out


def _bottom_matrix(actuals: pd.DataFrame, setup: WsplSetup) -> tuple[np.ndarray, np.ndarray]:
    """(bottom series x days matrix of the actuals, sorted day numbers); every series on every day."""
    base = setup.base
    series, day_all, units = read_long(actuals, "actuals", base.indexer)
    days = np.unique(day_all)
    n, h = len(setup.series), len(days)
    if h == 0:
        raise ValueError("actuals has no rows")
    flat = series * h + np.searchsorted(days, day_all)
    counts = np.bincount(flat, minlength=n * h)
    if counts.max() > 1:
        raise ValueError(f"actuals has {int((counts > 1).sum())} duplicate (item_id, store_id, date) rows")
    if len(flat) != n * h:
        gap = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(f"actuals must hold every series on every day ({n} x {h} = {n * h} rows), got "
                         f"{len(flat)}; e.g. missing {pair_text(base.indexer, gap, days)}")
    if setup.origin is not None and days[0] <= day_number(setup.origin):
        raise ValueError(f"actual days must be after the origin {setup.origin.date()}, "
                         f"got {np.datetime64(int(days[0]), 'D')}")
    bottom = np.empty(n * h)
    bottom[flat] = units
    return bottom.reshape(n, h), days


def _checked(actuals: np.ndarray, quantiles: Mapping[str, np.ndarray], setup: WsplSetup) -> dict[str, np.ndarray]:
    """The actuals summed up every level, after checking the arrays' shapes and values."""
    actuals = np.asarray(actuals, dtype=np.float64)
    if actuals.ndim != 2 or actuals.shape[0] != len(setup.series) or actuals.shape[1] < 1:
        raise ValueError(f"actuals must be ({len(setup.series)} series x days), got shape {actuals.shape}")
    h = actuals.shape[1]
    for name, level in setup.levels.items():
        if name not in quantiles:
            raise ValueError(f"quantiles lacks level {name!r}")
        shape = (level.n_series, h, len(QUANTILES))
        if np.shape(quantiles[name]) != shape:
            raise ValueError(f"quantiles[{name!r}] must have shape {shape}, got {np.shape(quantiles[name])}")
        if not np.isfinite(quantiles[name]).all():
            raise ValueError(f"quantiles[{name!r}] has NaN or infinite values")
    return setup.aggregate(actuals)
