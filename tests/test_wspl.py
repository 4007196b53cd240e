"""Tests of pipeline.core.wspl and pipeline.core.wspl_setup: the M5 Uncertainty metric (WSPL) by hand,
against an independent implementation written from the Competitors' Guide, and its properties."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pipeline.core.hierarchy import LEVELS
from pipeline.core.wrmsse_weights import wrmsse_weights_scales
from pipeline.core.wspl import QUANTILES, coverage, pinball, read_quantiles, wspl, wspl_arrays
from pipeline.core.wspl_setup import WsplSetup, absolute_scales, wspl_setup
from tests.wrmsse_cases import (
    HIER_COLS, ORIGIN, SMALL_ACTUALS, by_key, long_frame, small_calendar, small_hierarchy, small_history,
    small_prices,
)

GUIDE_QUANTILES = [0.005, 0.025, 0.165, 0.25, 0.5, 0.75, 0.835, 0.975, 0.995]  # Competitors' Guide, as printed


def level_actuals(actuals: pd.DataFrame, hierarchy: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{level: long frame of the level's group-by columns, date, units}: the actuals summed by pandas."""
    frame = actuals.merge(hierarchy, on=["item_id", "store_id"])
    return {name: frame.groupby(cols + ["date"], as_index=False)["units"].sum() for name, cols in LEVELS}


def quantile_rows(name: str, sums: pd.DataFrame, values_of) -> pd.DataFrame:
    """Long quantile rows of one level: ``values_of(row of sums, k) -> quantile k`` for every row and quantile
    (``row.Index`` is the row's position in ``sums``)."""
    parts = []
    for k, u in enumerate(GUIDE_QUANTILES):
        part = sums.drop(columns="units").assign(level=name, quantile=u)
        part["units"] = [values_of(row, k) for row in sums.itertuples()]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def perfect_quantiles(actuals: pd.DataFrame, hierarchy: pd.DataFrame) -> pd.DataFrame:
    """Every quantile of every series equal to its actual."""
    return pd.concat([quantile_rows(name, sums, lambda row, k: row.units)
                      for name, sums in level_actuals(actuals, hierarchy).items()], ignore_index=True)


# --------------------------------------------------------------------------- 1. by hand


def test_quantiles_are_the_guides():
    assert list(QUANTILES) == GUIDE_QUANTILES


def test_absolute_scales_by_hand():
    # In-sample (2016-01-01..06): A,S1 0 0 2 1 3 3; A,S2 1 2 1 2 1 2; B,S1 never; B,S2 4 0 0 4 0 0.
    setup = wspl_setup(small_history(), small_prices(), small_calendar(), small_hierarchy(), ORIGIN)
    expected = {
        "total": {(): (3 + 1 + 4 + 3 + 1) / 5},  # 5 2 3 7 4 5
        "store": {("S1",): (1 + 2 + 0) / 3, ("S2",): (3 + 1 + 5 + 5 + 1) / 5},  # S1 = 2 1 3 3 (leading zeros out)
        "category": {("X",): (1 + 1 + 0 + 1 + 1) / 5, ("Y",): (4 + 0 + 4 + 4 + 0) / 5},  # X = 1 2 3 3 4 5
        "item_store": {("A", "S1"): 3 / 3, ("A", "S2"): 5 / 5, ("B", "S1"): np.nan, ("B", "S2"): 12 / 5},
    }
    for level, values in expected.items():
        got = by_key(setup.base, level, "scales")
        assert got.keys() == values.keys(), level
        for key, value in values.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-12, err_msg=f"{level} {key}")
    # The weights are WRMSSE's, unchanged.
    wrmsse_setup = wrmsse_weights_scales(small_history(), small_prices(), small_calendar(), small_hierarchy(), ORIGIN)
    for name, level in setup.levels.items():
        np.testing.assert_array_equal(level.weights, wrmsse_setup.levels[name].weights)
    assert by_key(setup.base, "item_store", "weights")[("A", "S1")] == pytest.approx(16 / 24)


def test_wspl_small_by_hand():
    setup = wspl_setup(small_history(), small_prices(), small_calendar(), small_hierarchy(), ORIGIN)
    actuals = long_frame(SMALL_ACTUALS)  # 2016-01-07, 08: A,S1 3 2; A,S2 1 1; B,S1 0 1; B,S2 0 4
    sums = level_actuals(actuals, small_hierarchy())
    special = {
        "total": lambda row, k: [2, 3, 4, 5, 6, 7, 8, 9, 10][k],  # actual 4, 8
        "store": lambda row, k: [1, 1, 2, 2, 3, 4, 4, 5, 5][k] if row.store_id == "S1" else row.units,  # S1: 3 3
        "item_store": lambda row, k: {("A", "S1"): 2, ("A", "S2"): 1, ("B", "S1"): 0, ("B", "S2"): 1}[
            (row.item_id, row.store_id)],
    }
    quantiles = pd.concat([quantile_rows(name, s, special.get(name, lambda row, k: row.units))
                           for name, s in sums.items()], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # B,S1 (never sold) has weight 0: no warning
        result = wspl(actuals, quantiles.sample(frac=1, random_state=3), setup)

    # total (scale 2.4), per quantile: sum over the 2 days of the pinball loss, actual 4 then 8.
    total_sums = [
        (4 - 2) * .005 + (8 - 2) * .005,   # u=.005, Q=2: under both days
        (4 - 3) * .025 + (8 - 3) * .025,   # u=.025, Q=3
        0 + (8 - 4) * .165,                # u=.165, Q=4: Q = Y on day 1 costs 0
        (5 - 4) * .75 + (8 - 5) * .25,     # u=.25,  Q=5: over on day 1 costs (1 - u)
        (6 - 4) * .5 + (8 - 6) * .5,       # u=.5,   Q=6
        (7 - 4) * .25 + (8 - 7) * .75,     # u=.75,  Q=7
        (8 - 4) * .165 + 0,                # u=.835, Q=8
        (9 - 4) * .025 + (9 - 8) * .025,   # u=.975, Q=9
        (10 - 4) * .005 + (10 - 8) * .005,  # u=.995, Q=10
    ]
    np.testing.assert_allclose(result.spl["total"][0], np.array(total_sums) / 2 / 2.4, rtol=1e-12)
    total = (.04 + .15 + .66 + 1.5 + 2 + 1.5 + .66 + .15 + .04) / 2 / 9 / 2.4
    assert result.per_level["total"] == pytest.approx(total, rel=1e-12)

    # store: S1 (weight 2/3, scale 1) actual 3, 3; S2 perfect.
    s1 = (2 * .005 + 2 * .025 + 1 * .165 + 1 * .25 + 0 + 1 * .25 + 1 * .165 + 2 * .025 + 2 * .005) / 9 / 1.0
    assert result.per_level["store"] == pytest.approx(2 / 3 * s1, rel=1e-12)
    assert result.spl["store"][1].tolist() == [0.0] * 9

    # item_store: A,S1 (w 2/3, scale 1) Q=2 vs 3, 2 -> mean_t u/2, mean_u .25; A,S2 perfect; B,S1 no scale
    # (weight 0); B,S2 (w 1/6, scale 2.4) Q=1 vs 0, 4 -> ((1 - u) + 3u)/2, mean_u 1.
    a_s1 = np.mean([u / 2 for u in GUIDE_QUANTILES]) / 1.0
    b_s2 = np.mean([((1 - u) + 3 * u) / 2 for u in GUIDE_QUANTILES]) / 2.4
    assert a_s1 == pytest.approx(.25) and b_s2 == pytest.approx(1 / 2.4)
    assert result.per_level["item_store"] == pytest.approx(2 / 3 * a_s1 + 1 / 6 * b_s2, rel=1e-12)
    assert np.isnan(result.spl["item_store"][2]).all() and result.excluded_weight["item_store"] == 0.0

    others = [name for name in result.per_level if name not in special]
    assert [result.per_level[name] for name in others] == [0.0] * 9
    assert result.total == pytest.approx((total + 2 / 3 * s1 + 2 / 3 * .25 + 1 / 6 / 2.4) / 12, rel=1e-12)
    assert result.table().contribution.sum() == pytest.approx(result.total, rel=1e-12)

    # Coverage of total: day 1 (Y=4) is under Q from Q=4 on, day 2 (Y=8) from Q=8 on.
    cov = coverage(actuals, quantiles, setup)
    assert cov.loc["total"].tolist() == [0, 0, .5, .5, .5, .5, 1, 1, 1]
    assert list(cov.index) == [name for name, _ in LEVELS] and list(cov.columns) == GUIDE_QUANTILES


# --------------------------------------------------------------------------- 2. against the Guide, independently


def random_world(seed: int = 20200302):
    """A random hierarchy (3 states, 5 stores, 3 categories, 4 departments, 14 items, not every item in
    every store) with 70 in-sample days (zeros, late starts, one series that never sells) and 28 days to score."""
    rng = np.random.default_rng(seed)
    stores = {"CA_1": "CA", "CA_2": "CA", "TX_1": "TX", "WI_1": "WI", "WI_2": "WI"}
    depts = {"FOODS_1": "FOODS", "FOODS_2": "FOODS", "HOBBIES_1": "HOBBIES", "HOUSEHOLD_1": "HOUSEHOLD"}
    items = [(f"{d}_{i:03d}", d, depts[d]) for i, d in enumerate(rng.choice(list(depts), 14))]
    rows = [(item, store, dept, cat, state) for item, dept, cat in items for store, state in stores.items()
            if rng.random() < 0.85]
    hierarchy = pd.DataFrame(rows, columns=HIER_COLS)
    start = pd.Timestamp("2015-03-01")
    dates = pd.date_range(start, periods=98)
    origin = dates[69]
    hist_rows, act_rows = [], []
    for s, (item, store) in enumerate(hierarchy[["item_id", "store_id"]].itertuples(index=False)):
        lam = rng.gamma(1.0, 2.0)
        units = rng.poisson(lam, 98) * (rng.random(98) > 0.3)  # zero-inflated
        first = 0 if s % 4 else int(rng.integers(5, 60))  # a quarter start late
        units[:first] = 0
        if s == 7:
            units[:70] = 0  # never sold in-sample
        units[first] = max(units[first], 1) if s != 7 else 0
        keep_from = 0 if s % 3 else first  # some late starters have no rows before their launch
        hist_rows += [(item, store, d, u) for d, u in zip(dates[keep_from:70], units[keep_from:70])]
        act_rows += [(item, store, d, u) for d, u in zip(dates[70:], units[70:])]
    cols = ["item_id", "store_id", "date", "units"]
    calendar = pd.DataFrame({"date": dates, "wm_yr_wk": 11501 + np.arange(98) // 7})
    prices = pd.DataFrame([(store, item, wk, round(rng.uniform(0.5, 12.0), 2))
                           for item, store in hierarchy[["item_id", "store_id"]].itertuples(index=False)
                           for wk in calendar.wm_yr_wk.unique()],
                          columns=["store_id", "item_id", "wm_yr_wk", "sell_price"])
    return {"hierarchy": hierarchy, "history": pd.DataFrame(hist_rows, columns=cols), "prices": prices,
            "calendar": calendar, "origin": origin, "actuals": pd.DataFrame(act_rows, columns=cols)}


def random_quantiles(world, seed: int = 5) -> pd.DataFrame:
    """Increasing integer quantiles around each level series' actuals (ties with the actuals happen)."""
    rng = np.random.default_rng(seed)
    parts = []
    for name, sums in level_actuals(world["actuals"], world["hierarchy"]).items():
        center = sums["units"].to_numpy() * rng.uniform(0.6, 1.4, len(sums))
        spread = np.sort(rng.normal(0, 1, (len(sums), 9)), axis=1) * np.sqrt(center + 1)[:, None] * 1.5
        q = np.clip(np.round(center[:, None] + spread), 0, None)
        parts.append(quantile_rows(name, sums, lambda row, k, q=q: q[row.Index, k]))
    return pd.concat(parts, ignore_index=True).sample(frac=1, random_state=seed, ignore_index=True)


def groups(frame: pd.DataFrame, cols: list[str]) -> dict[tuple, pd.DataFrame]:
    """{key tuple: rows} of a group-by (the whole frame under () for no columns)."""
    if not cols:
        return {(): frame}
    return {key if isinstance(key, tuple) else (key,): part for key, part in frame.groupby(cols)}


def guide_wspl(world, quantiles: pd.DataFrame):
    """The WSPL straight from the Guide: per level, series and quantile, plain loops.

    Weights: dollar sales (units x the week's price) of the last 28 in-sample days, over the level's.
    Scale: mean absolute one-step difference of the in-sample sums from the first non-zero day.
    """
    hierarchy, origin = world["hierarchy"], world["origin"]
    hist = world["history"][world["history"].date <= origin].merge(hierarchy, on=["item_id", "store_id"])
    in_sample = pd.date_range(hist.date.min(), origin)
    window = hist[hist.date > origin - pd.Timedelta(days=28)].merge(world["calendar"], on="date").merge(
        world["prices"], on=["store_id", "item_id", "wm_yr_wk"])
    window = window.assign(dollars=window.units * window.sell_price)
    actual = world["actuals"].merge(hierarchy, on=["item_id", "store_id"])
    per_level, spl = {}, {}
    for name, cols in LEVELS:
        dollars = {key: part.dollars.sum() for key, part in groups(window, cols).items()}
        level_dollars = sum(dollars.values())
        hist_groups = groups(hist, cols)
        q_groups = groups(quantiles[quantiles.level == name], cols + ["quantile"])  # quantiles are exact floats
        score = 0.0
        for key, part in groups(actual, cols).items():
            weight = dollars.get(key, 0.0) / level_dollars
            y_hist = hist_groups[key].groupby("date").units.sum().reindex(in_sample, fill_value=0).to_numpy()
            active = np.flatnonzero(y_hist)
            y_hist = y_hist[active[0]:] if len(active) else y_hist[:0]
            n = len(y_hist)
            scale = sum(abs(y_hist[t] - y_hist[t - 1]) for t in range(1, n)) / (n - 1) if n > 1 else np.nan
            y = part.groupby("date").units.sum().sort_index().to_numpy()
            h = len(y)
            losses = []
            for u in GUIDE_QUANTILES:
                q_u = q_groups[key + (u,)]
                q = q_u.units.to_numpy()[np.argsort(q_u.date.to_numpy())]
                assert len(q) == h
                total = 0.0
                for t in range(h):
                    total += (y[t] - q[t]) * u if q[t] <= y[t] else (q[t] - y[t]) * (1 - u)
                losses.append(total / h / scale if scale > 0 else np.nan)
            spl[(name, key)] = losses
            if scale > 0:
                score += weight * np.mean(losses)
        per_level[name] = score
    return np.mean(list(per_level.values())), per_level, spl


@pytest.fixture(scope="module")
def world():
    return random_world()


def test_wspl_equals_the_guides_formulas(world):
    setup = wspl_setup(world["history"], world["prices"], world["calendar"], world["hierarchy"], world["origin"])
    quantiles = random_quantiles(world)
    result = wspl(world["actuals"], quantiles, setup)
    total, per_level, spl = guide_wspl(world, quantiles)
    assert setup.n_series == len(spl) and min(per_level.values()) > 0
    assert result.per_level == pytest.approx(per_level, rel=1e-10)
    assert result.total == pytest.approx(total, rel=1e-10)
    n_nan = 0
    for name, level in setup.levels.items():
        keys = [tuple(r) for r in level.keys.itertuples(index=False)] if level.columns else [()]
        for row, key in enumerate(keys):
            np.testing.assert_allclose(result.spl[name][row], spl[(name, key)], rtol=1e-10, err_msg=f"{name} {key}")
            n_nan += np.isnan(spl[(name, key)]).all()
    assert n_nan >= 1  # the series that never sold in-sample has no scale


def test_setup_routes_agree(world):
    """wspl_setup, WsplSetup.from_weights and WsplSetup.from_arrays give one setup."""
    args = (world["history"], world["prices"], world["calendar"], world["hierarchy"], world["origin"])
    setup = wspl_setup(*args)
    from_weights = WsplSetup.from_weights(wrmsse_weights_scales(*args), world["history"])
    scales = absolute_scales(world["history"], world["hierarchy"], world["origin"])
    w, s = {}, {}
    for name, level in setup.levels.items():
        index = pd.MultiIndex.from_frame(level.keys) if level.columns else pd.Index([0])
        w[name], s[name] = pd.Series(level.weights, index=index), pd.Series(scales[name], index=index)
    from_arrays = WsplSetup.from_arrays(world["hierarchy"], w, s, origin=world["origin"])
    for other in (from_weights, from_arrays):
        for name, level in setup.levels.items():
            np.testing.assert_array_equal(other.levels[name].scales, level.scales)
            np.testing.assert_array_equal(other.levels[name].weights, level.weights)
    # the absolute scale is not the squared one
    assert not np.allclose(np.nan_to_num(setup.levels["store"].scales),
                           np.nan_to_num(wrmsse_weights_scales(*args).levels["store"].scales))


# --------------------------------------------------------------------------- 3. properties


def test_perfect_forecast_scores_zero_and_covers_everything(world):
    setup = wspl_setup(world["history"], world["prices"], world["calendar"], world["hierarchy"], world["origin"])
    perfect = perfect_quantiles(world["actuals"], world["hierarchy"])
    result = wspl(world["actuals"], perfect, setup)
    assert result.total == 0.0 and set(result.per_level.values()) == {0.0}
    cov = coverage(world["actuals"], perfect, setup)
    assert (cov.to_numpy() == 1.0).all() and cov.shape == (12, 9)


def test_pinball_is_asymmetric():
    assert pinball(10.0, 8.0, 0.995) == pytest.approx(2 * 0.995)  # under-forecast: u per unit
    assert pinball(10.0, 12.0, 0.995) == pytest.approx(2 * 0.005)  # over-forecast: 1 - u per unit
    assert pinball(10.0, 8.0, 0.005) == pytest.approx(2 * 0.005)
    # The same through the whole metric: the total's 0.995 quantile 2 under, or 2 over, the actual.
    setup = wspl_setup(small_history(), small_prices(), small_calendar(), small_hierarchy(), ORIGIN)
    actuals = long_frame(SMALL_ACTUALS)
    perfect = perfect_quantiles(actuals, small_hierarchy())
    top = (perfect.level == "total") & (perfect["quantile"] == 0.995)
    under = wspl(actuals, perfect.assign(units=np.where(top, perfect.units - 2, perfect.units)), setup)
    over = wspl(actuals, perfect.assign(units=np.where(top, perfect.units + 2, perfect.units)), setup)
    assert under.spl["total"][0, 8] == pytest.approx(2 * 0.995 / 2.4, rel=1e-12)
    assert over.spl["total"][0, 8] == pytest.approx(2 * 0.005 / 2.4, rel=1e-12)
    assert under.total > over.total > 0


def test_zero_scale_with_positive_weight_is_left_out_with_a_warning():
    # A,S1 sells 2 every day from its first sale: scale 0, but it has dollar sales.
    hist = long_frame({("A", "S1"): [0, 2, 2, 2], ("A", "S2"): [1, 2, 3, 4], ("B", "S1"): [1, 0, 1, 0],
                       ("B", "S2"): [0, 1, 1, 0]}, "2016-01-03")
    setup = wspl_setup(hist, small_prices(), small_calendar(), small_hierarchy(), ORIGIN)
    assert by_key(setup.base, "item_store", "scales")[("A", "S1")] == 0.0
    actuals = long_frame(SMALL_ACTUALS)
    quantiles = perfect_quantiles(actuals, small_hierarchy()).assign(units=lambda f: f.units + 1)
    with pytest.warns(RuntimeWarning, match="zero/undefined scale"):
        result = wspl(actuals, quantiles, setup)
    level = setup.levels["item_store"]
    assert result.excluded_weight["item_store"] == pytest.approx(
        by_key(setup.base, "item_store", "weights")[("A", "S1")])
    # The other weights are not renormalised: they sum to less than 1 here.
    kept = level.scales > 0
    assert level.weights[kept].sum() < 0.9
    assert result.per_level["item_store"] == pytest.approx(
        float(np.dot(level.weights[kept], result.spl["item_store"][kept].mean(axis=1))), rel=1e-12)
    assert np.isfinite(result.total)


def test_arrays_equal_frames_and_input_errors():
    setup = wspl_setup(small_history(), small_prices(), small_calendar(), small_hierarchy(), ORIGIN)
    actuals = long_frame(SMALL_ACTUALS)
    quantiles = perfect_quantiles(actuals, small_hierarchy()).assign(units=lambda f: f.units * 1.5)
    days = np.unique(actuals.date.to_numpy().astype("datetime64[D]").view(np.int64))
    cubes = read_quantiles(quantiles, setup, days)
    bottom = np.array([SMALL_ACTUALS[k] for k in [("A", "S1"), ("A", "S2"), ("B", "S1"), ("B", "S2")]])
    assert wspl_arrays(bottom, cubes, setup).total == wspl(actuals, quantiles, setup).total > 0

    with pytest.raises(ValueError, match="missing rows in level 'store'"):
        wspl(actuals, quantiles.drop(index=quantiles.index[quantiles.level == "store"][0]), setup)
    with pytest.raises(ValueError, match="duplicate rows in level 'total'"):
        wspl(actuals, pd.concat([quantiles, quantiles[quantiles.level == "total"].head(1)]), setup)
    with pytest.raises(ValueError, match="not one of"):
        wspl(actuals, quantiles.assign(quantile=quantiles["quantile"].replace(0.165, 0.17)), setup)
    with pytest.raises(ValueError, match="unknown levels"):
        wspl(actuals, quantiles.assign(level=quantiles.level.replace("item", "items")), setup)
    with pytest.raises(ValueError, match="not in level 'item'"):
        wspl(actuals, quantiles.assign(item_id=np.where(quantiles.level == "item", "Z", quantiles.item_id)), setup)
    with pytest.raises(ValueError, match="days without actuals"):
        wspl(actuals, quantiles.assign(date=quantiles.date + pd.Timedelta(days=1)), setup)
    with pytest.raises(ValueError, match="NaN"):
        wspl(actuals, quantiles.assign(units=quantiles.units.where(quantiles.index != 3)), setup)
    with pytest.raises(ValueError, match="every series on every day"):
        wspl(actuals.iloc[1:], quantiles, setup)
    with pytest.raises(ValueError, match="after the origin"):
        wspl(long_frame(SMALL_ACTUALS, "2016-01-06"), quantiles, setup)
    with pytest.raises(ValueError, match="lacks columns"):
        wspl(actuals, quantiles.drop(columns="quantile"), setup)
    with pytest.raises(ValueError, match="must have shape"):
        wspl_arrays(bottom, {**cubes, "store": cubes["store"][:, :1]}, setup)
