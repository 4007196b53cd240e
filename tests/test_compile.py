"""The compiled library gives LightGBM's predictions, and a disagreement fails loudly."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from pipeline import compile as compile_
from pipeline.errors import ModelCheckError


def train(X, y, seed, rounds=60):
    params = {"objective": "tweedie", "num_leaves": 31, "min_data_in_leaf": 5, "verbosity": -1, "seed": seed,
              "deterministic": True, "force_row_wise": True, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(X, y, categorical_feature=[0, 1]), rounds)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 5000
    X = np.column_stack([rng.integers(0, 40, n), rng.integers(0, 7, n), rng.gamma(2, 2, n), rng.normal(size=n)])
    X = X.astype(np.float32)
    X[rng.random(n) < 0.1, 2] = np.nan  # missing values take the default branch in both
    X[rng.random(n) < 0.05, 0] = np.nan
    y = rng.poisson(np.exp(0.3 * X[:, 1] / 7 + 0.2 * np.nan_to_num(X[:, 2]) / 4 + (X[:, 0] % 3 == 0)))
    return X, y


def test_compiled_equals_lightgbm_with_categoricals_and_missing_values(data, tmp_path):
    X, y = data
    booster = train(X, y, seed=1)
    booster.save_model(str(tmp_path / "model.txt"))
    lib = tmp_path / "model.so"
    compile_.compile_model(tmp_path / "model.txt", lib, parallel_comp=2)
    report = compile_.check_compiled(booster, lib, X)
    assert report["rows_outside_tolerance"] == 0 and report["max_abs_diff"] <= compile_.ATOL
    got = compile_.predict_compiled(lib, X)
    np.testing.assert_allclose(got, booster.predict(X), rtol=compile_.RTOL, atol=compile_.ATOL)


def test_a_library_that_disagrees_is_refused(data, tmp_path):
    X, y = data
    booster = train(X, y, seed=1)
    other = train(X, y, seed=2, rounds=10)
    other.save_model(str(tmp_path / "other.txt"))
    lib = tmp_path / "other.so"
    compile_.compile_model(tmp_path / "other.txt", lib, parallel_comp=1)
    with pytest.raises(ModelCheckError, match="disagrees with LightGBM"):
        compile_.check_compiled(booster, lib, X)
