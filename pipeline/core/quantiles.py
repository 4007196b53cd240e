"""Quantile forecasts of every level of the hierarchy from the point forecast, and the baselines' quantiles.

The model's quantiles are the point forecast, summed up each level, times a coefficient per level
and quantile: ``Q_l(u) = c_l(u) · F_l`` (optionally one row of coefficients per size bin of the
forecast, :func:`fit_coefficients`). The coefficients are fitted on the model's validation
window (its own forecasts of 28 days it had not seen, against what was sold): for one level and
one ``u``, the ``c`` minimising the pinball loss ``Σ ρ_u(y − c·f)`` is, since
``ρ_u(y − c·f) = f · ρ_u(y/f − c)`` for ``f > 0``, the ``u``-quantile of the ratios ``y/f``
weighted by ``f`` (:func:`weighted_quantile`). So every level's quantiles are monotone in ``u``
(the coefficients are), centre on the same bottom-up, coherent point forecast, and are zero where
it is zero. A sum's quantile is not the sum of quantiles: each level has its own spread, measured,
not assumed.

The baseline (seasonal naive with empirical residual quantiles): each series of each level
forecasts the last 7 days again, and its ``u``-quantile adds the ``u``-quantile of its own
seasonal-naive errors ``y_t − y_{t−7}`` over the last ``RESIDUAL_DAYS`` days, floored at 0.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from pipeline.core.wspl import QUANTILES

RESIDUAL_DAYS = 364  # a year of seasonal-naive errors: every season once


def weighted_quantile(values: np.ndarray, weights: np.ndarray, u: float) -> float:
    """The smallest value whose cumulative weight (values ascending) reaches ``u`` of the total.

    It minimises ``Σ w_i ρ_u(v_i − c)`` over ``c``. NaN when no positive weight is given.
    """
    values, weights = np.asarray(values, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    keep = (weights > 0) & np.isfinite(values)
    if not keep.any():
        return float("nan")
    order = np.argsort(values[keep], kind="stable")
    v, w = values[keep][order], weights[keep][order]
    cum = np.cumsum(w)
    return float(v[np.searchsorted(cum, u * cum[-1], side="left")])


MIN_PER_BIN = 200  # validation points (series-days with a positive forecast) a size bin needs


def _coefficients(ratio: np.ndarray, weight: np.ndarray, quantiles) -> list[float]:
    coef = [weighted_quantile(ratio, weight, u) for u in quantiles]
    return list(np.maximum.accumulate(np.asarray(coef)))  # monotone even with ties at float level


def fit_coefficients(forecast: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray],
                     quantiles=QUANTILES, bins: int = 1) -> dict[str, dict]:
    """Per level, the pinball-optimal multipliers of the point forecast, one row of them per size bin.

    ``forecast`` / ``actual``: level -> (series × days) arrays of the validation window, the same
    shape. ``bins``: the level's positive forecasts are cut at their quantiles into up to this many
    bins of at least ``MIN_PER_BIN`` points (a forecast of 0.3 units and one of 300 need not
    spread alike), each with its own multipliers. Out: level -> ``{"edges": [...], "coefficients":
    [[per quantile] per bin]}``; a forecast ``f`` falls in bin ``searchsorted(edges, f, "right")``.
    A level whose forecast is zero everywhere gets multipliers 1 (its quantiles stay 0).
    """
    out = {}
    for level, f in forecast.items():
        f, y = np.asarray(f, dtype=np.float64).ravel(), np.asarray(actual[level], dtype=np.float64).ravel()
        if f.shape != y.shape:
            raise ValueError(f"level {level}: forecast and actual shapes differ ({f.shape} vs {y.shape})")
        pos = f > 0
        if not pos.any():
            out[level] = {"edges": [], "coefficients": [[1.0] * len(quantiles)]}
            continue
        fp, ratio = f[pos], y[pos] / f[pos]
        n_bins = max(1, min(bins, int(pos.sum()) // MIN_PER_BIN))
        edges = np.unique(np.quantile(fp, np.linspace(0, 1, n_bins + 1)[1:-1])) if n_bins > 1 else np.array([])
        which = np.searchsorted(edges, fp, side="right")
        whole = _coefficients(ratio, fp, quantiles)
        out[level] = {"edges": edges.tolist(), "coefficients": [
            _coefficients(ratio[which == k], fp[which == k], quantiles) if (which == k).any() else whole
            for k in range(len(edges) + 1)]}
    return out


def model_quantiles(point: Mapping[str, np.ndarray], fitted: Mapping[str, dict]) -> dict[str, np.ndarray]:
    """level -> (series × days × quantiles) array: each level's point forecast times its bin's multipliers."""
    out = {}
    for level, f in point.items():
        f = np.asarray(f, dtype=np.float64)
        coef = np.asarray(fitted[level]["coefficients"])[np.searchsorted(fitted[level]["edges"], f, side="right")]
        out[level] = f[:, :, None] * coef
    return out


def seasonal_naive_quantiles(history: Mapping[str, np.ndarray], horizon: int, quantiles=QUANTILES,
                             residual_days: int = RESIDUAL_DAYS) -> dict[str, np.ndarray]:
    """level -> (series × horizon × quantiles): the last week repeated plus each series' own error quantiles.

    ``history``: level -> (series × days) units up to the origin (NaN before a series starts).
    """
    out = {}
    for level, h in history.items():
        h = np.asarray(h, dtype=np.float64)
        if h.shape[1] < 7:
            raise ValueError(f"level {level}: the seasonal naive needs 7 days of history, not {h.shape[1]}")
        week = h[:, -7:]
        point = np.nan_to_num(np.tile(week, (1, -(-horizon // 7)))[:, :horizon])
        recent = h[:, -(residual_days + 7):]
        errors = recent[:, 7:] - recent[:, :-7]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a series without errors: NaN, then 0 below
            q = np.nanquantile(errors, quantiles, axis=1).T  # (series × quantiles)
        q = np.nan_to_num(q)
        out[level] = np.maximum(point[:, :, None] + q[:, None, :], 0.0)
    return out


def coverage(quantiles_by_level: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> dict[str, list[float]]:
    """level -> for each quantile, the share of (series, day) whose actual is at or below it (actuals already
    summed up the levels; :func:`pipeline.core.wspl.coverage_arrays` sums bottom actuals itself)."""
    return {level: list(np.mean(np.asarray(actual[level])[:, :, None] <= q, axis=(0, 1)))
            for level, q in quantiles_by_level.items()}
