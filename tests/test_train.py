"""Training on a small synthetic feature set: the recorded metrics are those of the saved model."""
from __future__ import annotations

import datetime as dt
import types

import numpy as np
import pandas as pd
import pytest

from pipeline.core import features as F
from pipeline.stages import features as feature_sets
from pipeline.data import storage
from pipeline.stages import train
RUN = dt.date(2016, 3, 31)
# a small, fast model of the hand-made feature set
SMALL = types.SimpleNamespace(tweedie_variance_power=1.2, learning_rate=0.1, num_leaves=15, min_data_in_leaf=20,
                              feature_fraction=0.8, num_threads=2, seed=1)


@pytest.fixture
def feature_set(tmp_path):
    """A feature folder as BuildTrainingFeatures writes it: 40 series x 90 days, units from a few features."""
    rng = np.random.default_rng(7)
    days = pd.date_range(end=pd.Timestamp(RUN), periods=90)
    n = 40 * len(days)
    frame = pd.DataFrame({"item_id": np.repeat([f"FOODS_1_{i:03d}" for i in range(40)], len(days)),
                          "store_id": "CA_1", "date": np.tile(days, 40)})
    for col in F.CATEGORICAL:
        if col not in frame:
            frame[col] = pd.Series(rng.choice(["a", "b", None], n), dtype="string")
    for col in F.NUMERIC:
        frame[col] = rng.gamma(2.0, 1.0, n).astype(np.float32)
    frame["units"] = rng.poisson(frame["lag_28"] + 0.5 * frame["wday"]).astype(np.float32)
    folder = tmp_path / "train"
    folder.mkdir()
    storage.write_parquet(frame[F.ID_COLUMNS + [c for c in F.FEATURES if c not in F.ID_COLUMNS] + ["units"]],
                          folder / "part-CA_1.parquet")
    storage.write_json(folder / "features.json", {"parts": {"CA_1": n}, "features": F.FEATURES})
    return folder


@pytest.mark.slow
def test_validation_metrics_are_those_of_the_saved_model_on_the_validation_days(feature_set, tmp_path):
    cfg = SMALL
    out = tmp_path / "model"
    out.mkdir()
    meta = train.train_model(feature_set, RUN, train.lgb_params(cfg), 300, 5, out, {"content_hash": {"all": "x"}})
    booster, _ = train.load_model(out)
    assert booster.num_trees() == meta["metrics"]["best_iteration"] < 300  # early stopping chose the round
    frame = feature_sets.read_feature_set(feature_set)
    valid = frame[frame["date"] > pd.Timestamp(RUN) - pd.Timedelta(days=train.VALID_DAYS)]
    err = booster.predict(train.encode(valid, meta["vocab"], meta["features"])) - valid["units"].to_numpy(np.float64)
    m = meta["metrics"]
    assert m["valid_rows"] == len(valid) == 40 * train.VALID_DAYS
    assert m["valid_rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-9)
    assert m["valid_mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
    assert m["valid_bias"] == pytest.approx(np.mean(err), rel=1e-9, abs=1e-12)


@pytest.mark.slow
def test_refit_trains_the_chosen_rounds_again_on_the_whole_window(feature_set, tmp_path):
    import lightgbm as lgb

    cfg = SMALL
    plain, refit = tmp_path / "plain", tmp_path / "refit"
    plain.mkdir(), refit.mkdir()
    a = train.train_model(feature_set, RUN, train.lgb_params(cfg), 300, 5, plain, {"content_hash": {"all": "x"}})
    b = train.train_model(feature_set, RUN, train.lgb_params(cfg), 300, 5, refit, {"content_hash": {"all": "x"}},
                          refit=True)
    # the same number of rounds, chosen by the same early stopping; the window now ends at the run date
    assert b["metrics"]["best_iteration"] == a["metrics"]["best_iteration"]
    assert b["training_window"] == [a["training_window"][0], RUN.isoformat()] and b["refit"] and not a["refit"]
    booster, _ = train.load_model(refit)
    assert booster.num_trees() == b["metrics"]["best_iteration"]
    # it is LightGBM trained on every row of the window for that many rounds
    frame = feature_sets.read_feature_set(feature_set)
    X = train.encode(frame, b["vocab"], b["features"])
    cats = [b["features"].index(c) for c in F.CATEGORICAL]
    again = lgb.train(train.lgb_params(cfg), lgb.Dataset(X, frame["units"].to_numpy(np.float32),
                      feature_name=b["features"], categorical_feature=cats), num_boost_round=b["metrics"]["best_iteration"])
    np.testing.assert_array_equal(booster.predict(X), again.predict(X))
    assert not np.array_equal(booster.predict(X), train.load_model(plain)[0].predict(X))


@pytest.mark.slow
def test_a_refit_keeps_the_early_stopped_model_for_promotion_to_score(feature_set, tmp_path):
    cfg = SMALL
    plain, refit = tmp_path / "plain", tmp_path / "refit"
    plain.mkdir(), refit.mkdir()
    train.train_model(feature_set, RUN, train.lgb_params(cfg), 300, 5, plain, {"content_hash": {"all": "x"}})
    train.train_model(feature_set, RUN, train.lgb_params(cfg), 300, 5, refit, {"content_hash": {"all": "x"}}, refit=True)
    assert not (plain / train.VALIDATION_MODEL).exists()
    # the refit's validation model is the plain model: the same early-stopped trees
    assert (refit / train.VALIDATION_MODEL).read_text() == (plain / "model.txt").read_text()
    frame = feature_sets.read_feature_set(feature_set)
    for folder in (plain, refit):
        booster, meta = train.load_model(folder, for_validation=True)
        X = train.encode(frame, meta["vocab"], meta["features"])
        np.testing.assert_array_equal(booster.predict(X), train.load_model(plain)[0].predict(X))
