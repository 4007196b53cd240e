"""No bad model promoted: a new model serves only if it is not worse than the recent models.

The candidate (the model of a training date T) and the models of the previous
``lookback`` training dates are all scored on the candidate's validation window
(the last 28 days before T) by the M5 WRMSSE, with weights and scales as of the
day before that window. The candidate is promoted when
``candidate ≤ best previous × (1 + margin)``; otherwise the best previous model
serves. A decision needs those ``lookback + 1`` models and nothing else (no chain
of earlier decisions), so a run date needs a bounded number of trainings whatever
the date; and no model older than ``lookback`` training intervals ever serves.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import features as F
from pipeline.core.days import as_day
from pipeline.core.series import SERIES_KEY
from pipeline.core.wrmsse import wrmsse
from pipeline.stages import features as feature_sets
from pipeline.stages.scoring_setup import snapshot_scoring
from pipeline.stages.train import VALID_DAYS, encode, load_model


def validation_wrmsse(model_dirs: dict[object, Path], train_dir: Path, snapshot_dir: Path, run_date: dt.date) -> dict[str, float]:
    """WRMSSE of each model in ``model_dirs`` on the validation window of the training set in ``train_dir``.

    Only series with all 28 validation days (launched before the window) are scored.
    """
    frame = feature_sets.read_feature_set(train_dir)
    origin = as_day(run_date) - pd.Timedelta(days=VALID_DAYS)
    valid = frame[frame["date"] > origin].copy()
    valid[SERIES_KEY] = valid[SERIES_KEY].astype(str)
    full = valid.groupby(SERIES_KEY, observed=True)["date"].transform("size") == VALID_DAYS
    valid = valid[full].sort_values(SERIES_KEY + ["date"], ignore_index=True)
    actuals = valid[SERIES_KEY + ["date"]].assign(units=valid[F.TARGET].astype(np.float64))
    setup = snapshot_scoring(snapshot_dir, valid, origin).setup
    scores = {}
    for name, folder in model_dirs.items():
        booster, meta = load_model(folder)
        pred = booster.predict(encode(valid, meta["vocab"], meta["features"]))
        forecast = actuals.assign(units=np.clip(pred, 0.0, None))
        scores[name] = wrmsse(forecast, actuals, setup).total
    return scores


def decide(candidate: dt.date, scores: dict[dt.date, float], margin: float) -> dict:
    """The promotion decision of ``candidate`` from the validation WRMSSE of it and of the previous models.

    ``scores`` holds the candidate's own score and one per previous model (none: the first model of the
    promotion window, promoted as is).
    """
    previous = {d: v for d, v in scores.items() if d != candidate}
    base = {"candidate": candidate.isoformat(), "margin": margin,
            "previous": {d.isoformat(): round(v, 6) for d, v in sorted(previous.items())}}
    if not previous:
        return {**base, "candidate_wrmsse": None, "incumbent": None, "incumbent_wrmsse": None, "promoted": True,
                "serving_model": candidate.isoformat(),
                "reason": "first model on or after [training] promotion_start: promoted as is"}
    # the best previous model; on a tie the newer one
    incumbent = min(previous, key=lambda d: (previous[d], -d.toordinal()))
    cand, inc = scores[candidate], previous[incumbent]
    promoted = bool(cand <= inc * (1.0 + margin))
    return {
        **base, "candidate_wrmsse": round(cand, 6), "incumbent": incumbent.isoformat(), "incumbent_wrmsse": round(inc, 6),
        "promoted": promoted, "serving_model": (candidate if promoted else incumbent).isoformat(),
        "reason": (f"validation WRMSSE {cand:.4f} vs {inc:.4f} of the best of the {len(previous)} previous model(s) "
                   f"({incumbent}) on the same window: " + ("not worse than" if promoted else "worse than")
                   + f" the allowed {1 + margin:.2f}×"),
    }
