"""No bad model promoted: the validation scores a promotion decision is made from.

The candidate (the model of a training date T) and the models of the previous
``lookback`` training dates are all scored on the candidate's validation window
(the last 28 days before T) by the M5 WRMSSE, with weights and scales as of the
day before that window. The candidate is promoted when
``candidate ≤ best previous × (1 + margin)``; otherwise the best previous model
serves (``pipeline.core.serving.decide``). A decision needs those ``lookback + 1`` models and nothing else (no chain
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


def validation_rows(train_dir: Path, run_date: dt.date) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The training set's rows of its validation window (the last 28 days up to ``run_date``) of the series
    with all 28 days (launched before the window), sorted by series and day; and the window's eve."""
    frame = feature_sets.read_feature_set(train_dir)
    origin = as_day(run_date) - pd.Timedelta(days=VALID_DAYS)
    valid = frame[frame["date"] > origin].copy()
    valid[SERIES_KEY] = valid[SERIES_KEY].astype(str)
    full = valid.groupby(SERIES_KEY, observed=True)["date"].transform("size") == VALID_DAYS
    return valid[full].sort_values(SERIES_KEY + ["date"], ignore_index=True), origin


def validation_forecast(model_dir: Path, valid: pd.DataFrame) -> np.ndarray:
    """The forecast of the validation rows by the model as it was before any refit: never one that saw them."""
    booster, meta = load_model(model_dir, for_validation=True)
    return np.clip(booster.predict(encode(valid, meta["vocab"], meta["features"])), 0.0, None)


def validation_wrmsse(model_dirs: dict[object, Path], train_dir: Path, snapshot_dir: Path, run_date: dt.date) -> dict[str, float]:
    """WRMSSE of each model in ``model_dirs`` on the validation window of the training set in ``train_dir``.

    Only series with all 28 validation days (launched before the window) are scored.
    """
    valid, origin = validation_rows(train_dir, run_date)
    actuals = valid[SERIES_KEY + ["date"]].assign(units=valid[F.TARGET].astype(np.float64))
    setup = snapshot_scoring(snapshot_dir, valid, origin).setup
    scores = {}
    for name, folder in model_dirs.items():
        forecast = actuals.assign(units=validation_forecast(folder, valid))
        scores[name] = wrmsse(forecast, actuals, setup).total
    return scores
