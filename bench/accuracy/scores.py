"""One origin's numbers: WRMSSE (all and the 12 levels) and the 28-day total's bias of each side and baseline.

The pipeline's and the baselines' numbers are read from what ``Evaluate`` wrote
(``metrics.parquet`` and ``daily_totals.parquet``): the panel reports them, it does not
recompute them. The mlforecast reference's forecast is scored by the pipeline's own
``evaluate_run`` with ``others``, on the same (series, day) pairs as the pipeline's forecast,
with the same weights, scales and actuals; that pass scores the pipeline's forecast again, and
its numbers must equal Evaluate's to the last bit (else the reference was not scored on the
same footing, and the panel stops saying so).
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.core.hierarchy import LEVELS  # noqa: E402
from pipeline.stages import evaluate  # noqa: E402

PIPELINE, REFERENCE = "pipeline", "mlforecast"
# the panel's names of Evaluate's models (the zero forecast is left out: it is no contender)
FROM_EVALUATE = {evaluate.MODEL: PIPELINE, "seasonal_naive": "seasonal_naive", "moving_average_28": "moving_average_28"}
ONLINE = "online"  # the online model, where Evaluate scored it (from its start date on)
SIDES = (PIPELINE, ONLINE, REFERENCE, "seasonal_naive", "moving_average_28")
LEVEL_NAMES = ["all", *(name for name, _ in LEVELS)]


def _wrmsse(table: pd.DataFrame, model: str) -> dict[str, float]:
    rows = table[(table["model"] == model) & (table["metric"] == "wrmsse")].set_index("level")["value"]
    missing = sorted(set(LEVEL_NAMES) - set(rows.index))
    if missing:
        raise ValueError(f"metrics of {model!r} lack the WRMSSE of levels {missing}")
    return {level: float(rows[level]) for level in LEVEL_NAMES}


def _quantile_numbers(table: pd.DataFrame) -> dict:
    """WSPL (all levels) and the series-level 95 % interval coverage of the pipeline's and the seasonal-naive
    quantiles, where Evaluate scored quantiles (empty before quantile forecasts existed)."""
    out: dict = {}
    for model, side in ((evaluate.MODEL, PIPELINE), ("seasonal_naive", "seasonal_naive")):
        rows = table[table["model"] == model]
        wspl = rows[(rows["metric"] == "wspl") & (rows["level"] == "all")]["value"]
        cover = rows[rows["metric"] == "coverage_95"]["value"]
        if len(wspl) and len(cover):
            out.setdefault("wspl", {})[side] = float(wspl.iloc[0])
            out.setdefault("coverage_95", {})[side] = float(cover.iloc[0])
    return out


def _bias(totals: pd.DataFrame, model: str) -> float:
    """Sum of the forecast over the 28 days and all series / the actual sum - 1."""
    sums = totals.groupby("model")["units"].sum()
    return float(sums[model] / sums[evaluate.ACTUAL] - 1.0)


def origin_numbers(folders: dict[str, Path], origin: dt.date, reference: Path | None) -> dict:
    """``{"wrmsse": {side: {level: value}}, "bias": {side: value}}`` of one origin, and where Evaluate scored
    quantiles, ``"wspl"`` and ``"coverage_95"``: ``{side: value}`` for the pipeline and seasonal naive.

    ``folders``: the chain's output folders (bench.accuracy.folders); ``reference``: the mlforecast
    reference's forecast.parquet, or None (left out).
    """
    metrics = pd.read_parquet(folders["evaluate"] / "metrics.parquet")
    totals = pd.read_parquet(folders["evaluate"] / "daily_totals.parquet")
    out = {"wrmsse": {side: _wrmsse(metrics, m) for m, side in FROM_EVALUATE.items()},
           "bias": {side: _bias(totals, m) for m, side in FROM_EVALUATE.items()}, **_quantile_numbers(metrics)}
    if (metrics["model"] == evaluate.ONLINE).any():
        out["wrmsse"][ONLINE] = _wrmsse(metrics, evaluate.ONLINE)
        out["bias"][ONLINE] = _bias(totals, evaluate.ONLINE)
    if reference is None:
        return out
    mine = pd.read_parquet(folders["forecast"] / "forecast.parquet")
    theirs = pd.read_parquet(reference)
    keys = mine[["item_id", "store_id", "date"]].astype({"item_id": str, "store_id": str})
    theirs = keys.merge(theirs.astype({"item_id": str, "store_id": str}), on=["item_id", "store_id", "date"],
                        how="left")
    if theirs["units"].isna().any():
        first = theirs[theirs["units"].isna()].iloc[0]
        raise ValueError(f"the mlforecast reference's forecast of {origin} lacks {int(theirs['units'].isna().sum())} "
                         f"of the pipeline's (series, day) pairs, e.g. {first['item_id']} {first['store_id']} "
                         f"{first['date'].date()}")
    table, again = evaluate.evaluate_run(mine, folders["snapshot"], folders["later_snapshot"], origin,
                                         others={REFERENCE: theirs})
    for model in FROM_EVALUATE:
        same = _wrmsse(table, model) == _wrmsse(metrics, model) and _bias(again, model) == _bias(totals, model)
        if not same:
            raise ValueError(f"scoring the reference beside the pipeline gave {model!r} other numbers than "
                             f"Evaluate's {folders['evaluate']}: the reference was not scored on the same footing")
    out["wrmsse"][REFERENCE] = _wrmsse(table, REFERENCE)
    out["bias"][REFERENCE] = _bias(again, REFERENCE)
    return out


def mean_of(records: list[dict], path: tuple[str, ...]) -> float | None:
    """The mean over ``records`` of the value at ``path`` (None when any record lacks it)."""
    values = []
    for record in records:
        value = record
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        values.append(value)
    return float(np.mean(values)) if values else None
