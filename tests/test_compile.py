"""The compiled model gives LightGBM's predictions, in one library or in blocks, and a disagreement fails loudly."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from pipeline.stages import compile as compile_
from pipeline.core.errors import ModelCheckError

N_ITEMS = 300  # wider than one 64-category word: TL2cgen writes a chain of range tests, which we rewrite


def train(X, y, seed, rounds=60):
    params = {"objective": "tweedie", "num_leaves": 31, "min_data_in_leaf": 5, "verbosity": -1, "seed": seed,
              "deterministic": True, "force_row_wise": True, "num_threads": 1, "max_cat_to_onehot": 4,
              "cat_smooth": 1, "min_data_per_group": 5}
    return lgb.train(params, lgb.Dataset(X, y, categorical_feature=[0, 1]), rounds)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 8000
    X = np.column_stack([rng.integers(0, N_ITEMS, n), rng.integers(0, 7, n), rng.gamma(2, 2, n), rng.normal(size=n)])
    X = X.astype(np.float32)
    X[rng.random(n) < 0.1, 2] = np.nan  # missing values take the default branch in both
    X[rng.random(n) < 0.05, 0] = np.nan
    item_effect = rng.gamma(1.0, 1.0, N_ITEMS + 1)
    item = np.nan_to_num(X[:, 0], nan=N_ITEMS).astype(int)
    y = rng.poisson(item_effect[item] * np.exp(0.3 * X[:, 1] / 7 + 0.2 * np.nan_to_num(X[:, 2]) / 4))
    return X, y


@pytest.fixture(scope="module")
def model(data, tmp_path_factory):
    X, y = data
    booster = train(X, y, seed=1)
    path = tmp_path_factory.mktemp("model") / "model.txt"
    booster.save_model(str(path))
    return booster, path


@pytest.mark.slow
def test_one_library_equals_lightgbm_with_wide_categoricals_and_missing_values(data, model, tmp_path):
    X, _ = data
    booster, path = model
    built = compile_.compile_model(path, tmp_path, trees_per_block=0, trees_per_unit=8)
    assert len(built["blocks"]) == 1 and built["blocks"][0]["trees"] == booster.num_trees()
    assert built["blocks"][0]["categorical_chains_rewritten"] > 0  # the item splits span several words
    report = compile_.check_compiled(booster, tmp_path, X)
    assert report["rows_outside_tolerance"] == 0 and report["max_abs_diff"] <= compile_.ATOL
    np.testing.assert_allclose(compile_.CompiledModel(tmp_path).predict(X), booster.predict(X),
                               rtol=compile_.RTOL, atol=compile_.ATOL)


@pytest.mark.slow
def test_blocks_of_trees_sum_to_the_whole_model(data, model, tmp_path):
    X, _ = data
    booster, path = model
    built = compile_.compile_model(path, tmp_path, trees_per_block=25, trees_per_unit=5, optimization="-O1")
    assert [b["trees"] for b in built["blocks"]] == [25, 25, 10]
    assert [b["first_tree"] for b in built["blocks"]] == [0, 25, 50]
    assert built["link"] == "exponential"
    assert compile_.library_files(tmp_path) == ["compiled.json", "block-000.so", "block-001.so", "block-002.so"]
    np.testing.assert_allclose(compile_.CompiledModel(tmp_path, nthread=2).predict(X), booster.predict(X),
                               rtol=compile_.RTOL, atol=compile_.ATOL)


@pytest.mark.slow
def test_annotated_and_quantized_libraries_give_the_same_predictions(data, model, tmp_path):
    X, _ = data
    booster, path = model
    compile_.compile_model(path, tmp_path, trees_per_block=30, annotate_rows=X[:2000], quantize=True)
    assert compile_.check_compiled(booster, tmp_path, X)["rows_outside_tolerance"] == 0


def test_the_categorical_rewrite_keeps_the_test_and_shares_tables():
    chain = ("((tmp >= 0 && tmp < 64 && (( (uint64_t)2U >> tmp) & 1) ) || "
             "(tmp >= 64 && tmp < 128 && (( (uint64_t)64U >> (tmp - 64) ) & 1) ))")
    source = ('#include "header.h"\n\nvoid predict_unit0(union Entry* data, double* result) {\n'
              f"  if (a && {chain}) x; if (b && {chain}) y;\n}}\n")
    out, n = compile_.rewrite_categorical_splits(source)
    assert n == 2
    assert "tmp >= 64" not in out
    assert out.count("static const uint64_t catbits0[2] = {2ULL, 64ULL};") == 1  # one table for both
    assert "catbits1" not in out
    assert out.count("CATBIT(catbits0, 2u, tmp)") == 2
    # categories 1 and 70 are in the set: word 0 bit 1, word 1 bit 6 (the macro's arithmetic, in Python)
    words = [2, 64]
    member = [c for c in range(200) if c < 64 * len(words) and (words[c >> 6] >> (c & 63)) & 1]
    assert member == [1, 70]


def test_a_chain_with_a_gap_is_left_alone():
    odd = ("((tmp >= 0 && tmp < 64 && (( (uint64_t)2U >> tmp) & 1) ) || "
           "(tmp >= 128 && tmp < 192 && (( (uint64_t)64U >> (tmp - 128) ) & 1) ))")
    source = f'#include "header.h"\nint f(unsigned tmp) {{ return {odd}; }}\n'
    assert compile_.rewrite_categorical_splits(source) == (source, 0)


@pytest.mark.slow
def test_a_library_that_disagrees_is_refused(data, model, tmp_path):
    X, y = data
    booster, _ = model
    other = train(X, y, seed=2, rounds=10)
    other.save_model(str(tmp_path / "other.txt"))
    compile_.compile_model(tmp_path / "other.txt", tmp_path / "lib")
    with pytest.raises(ModelCheckError, match="disagrees with LightGBM"):
        compile_.check_compiled(booster, tmp_path / "lib", X)


@pytest.mark.slow
def test_blocks_of_a_model_whose_link_cannot_be_summed_are_refused(data, tmp_path):
    X, y = data
    binary = lgb.train({"objective": "binary", "num_leaves": 7, "verbosity": -1, "num_threads": 1},
                       lgb.Dataset(X, (y > 2).astype(int)), 20)
    binary.save_model(str(tmp_path / "binary.txt"))
    with pytest.raises(ModelCheckError, match="objective 'binary' has no link"):
        compile_.compile_model(tmp_path / "binary.txt", tmp_path / "lib", trees_per_block=5)
    assert not (tmp_path / "lib" / "compiled.json").exists()
