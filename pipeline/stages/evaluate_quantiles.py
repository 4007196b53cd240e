"""The quantile forecasts of a run, scored: WSPL of the model and of the seasonal-naive quantiles, coverage.

Rows of the evaluation's metric table (``model, metric, level, value``): ``wspl`` at level ``all``
and each of the 12 levels for ``model`` and ``seasonal_naive``; ``coverage_<u>`` (the share of
(series, day) whose actual is at or below the quantile ``u``) and ``coverage_95`` (the share inside
the 0.025..0.975 interval) at level ``item_store``, the series level.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core import quantiles as Q
from pipeline.core.wrmsse_setup import WrmsseSetup
from pipeline.core.wrmsse_weights import history_matrix
from pipeline.core.wspl import QUANTILES, coverage_arrays, wspl_arrays
from pipeline.core.wspl_setup import WsplSetup

BOTTOM = "item_store"


def table_arrays(table: pd.DataFrame, setup: WrmsseSetup, horizon: int) -> dict[str, np.ndarray]:
    """A quantile table (``pipeline.stages.quantiles``: one row per level series and quantile, F1..F<h>) as
    ``{level: (series × h × quantiles)}`` aligned with the setup's level keys."""
    if sorted(set(table["quantile"])) != sorted(QUANTILES):
        raise ValueError(f"the quantile table holds quantiles {sorted(set(table['quantile']))}, not M5's {QUANTILES}")
    out = {}
    for name, level in setup.levels.items():
        part = table[table["level"] == name]
        cols = list(level.columns)
        keys = part[cols].astype(str).iloc[::len(QUANTILES)].reset_index(drop=True) if cols else None
        if len(part) != level.n_series * len(QUANTILES) or (cols and not keys.equals(
                level.keys[cols].astype(str).reset_index(drop=True))):
            raise ValueError(f"the quantile table's {name} series are not the evaluated ones")
        values = part[[f"F{h + 1}" for h in range(horizon)]].to_numpy(dtype=np.float64)
        out[name] = values.reshape(level.n_series, len(QUANTILES), horizon).transpose(0, 2, 1)
    return out


def quantile_metrics(table: pd.DataFrame, actual: np.ndarray, setup: WrmsseSetup, history: pd.DataFrame,
                     model: str, baseline: str) -> list[tuple[str, str, str, float]]:
    """(model, metric, level, value) rows; ``actual``: bottom (series × h), rows in ``setup.series`` order."""
    horizon = actual.shape[1]
    wsetup = WsplSetup.from_weights(setup, history)
    past = history_matrix(history, setup.series, setup.indexer, setup.origin)[:, -(Q.RESIDUAL_DAYS + 7):]
    candidates = {model: table_arrays(table, setup, horizon),
                  baseline: Q.seasonal_naive_quantiles(setup.aggregate(past), horizon, QUANTILES)}
    rows = []
    for name, quantiles in candidates.items():
        result = wspl_arrays(actual, quantiles, wsetup)
        rows.append((name, "wspl", "all", result.total))
        rows += [(name, "wspl", level, value) for level, value in result.per_level.items()]
        shares = coverage_arrays(actual, quantiles, wsetup).loc[BOTTOM]
        rows += [(name, f"coverage_{u:.3f}", BOTTOM, float(shares[u])) for u in QUANTILES]
        bottom = quantiles[BOTTOM]
        inside = (actual >= bottom[:, :, QUANTILES.index(0.025)]) & (actual <= bottom[:, :, QUANTILES.index(0.975)])
        rows.append((name, "coverage_95", BOTTOM, float(inside.mean())))
    return rows
