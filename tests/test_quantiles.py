"""Quantile forecasts: the pinball-optimal coefficients, the baseline's quantiles, M5 Uncertainty ids."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.core import quantiles as Q
from pipeline.stages import quantiles as stage


def pinball(y, q, u):
    d = y - q
    return np.where(d >= 0, u * d, (u - 1) * d)


def test_weighted_quantile_by_hand():
    # values 1, 2, 3 weighted 1, 1, 2: cumulative 1, 2, 4; half of 4 is reached at value 2
    assert Q.weighted_quantile([3.0, 1.0, 2.0], [2.0, 1.0, 1.0], 0.5) == 2.0
    assert Q.weighted_quantile([3.0, 1.0, 2.0], [2.0, 1.0, 1.0], 0.6) == 3.0
    assert Q.weighted_quantile([3.0, 1.0, 2.0], [2.0, 1.0, 1.0], 0.25) == 1.0
    assert np.isnan(Q.weighted_quantile([1.0], [0.0], 0.5))


def test_the_coefficients_minimise_the_pinball_loss_of_the_scaled_forecast():
    rng = np.random.default_rng(3)
    f = rng.gamma(2.0, 3.0, size=(20, 28))
    f[0, :5] = 0.0
    y = rng.poisson(f * rng.lognormal(0, 0.3, size=f.shape)).astype(float)
    fitted = Q.fit_coefficients({"lvl": f}, {"lvl": y})["lvl"]
    assert fitted["edges"] == [] and len(fitted["coefficients"]) == 1
    coef = fitted["coefficients"][0]
    grid = np.linspace(0, 4, 4001)
    for u, c in zip(Q.QUANTILES, coef):
        loss = lambda k: pinball(y, k * f, u).sum()  # noqa: E731
        best = min(loss(k) for k in grid)
        assert loss(c) <= best + 1e-9, (u, c)
    assert list(coef) == sorted(coef)


def test_size_bins_have_their_own_coefficients():
    rng = np.random.default_rng(5)
    small = np.full(600, 0.5)
    large = np.full(600, 50.0)
    f = np.concatenate([small, large])[None, :]
    # small forecasts are often 0 or 2 (a wide spread), large ones within 10 %
    y = np.concatenate([rng.choice([0.0, 2.0], 600), 50.0 * rng.uniform(0.9, 1.1, 600)])[None, :]
    fitted = Q.fit_coefficients({"l": f}, {"l": y}, quantiles=(0.1, 0.9), bins=2)["l"]
    assert len(fitted["edges"]) == 1 and 0.5 <= fitted["edges"][0] <= 50.0
    (lo_small, hi_small), (lo_large, hi_large) = fitted["coefficients"]
    assert (lo_small, hi_small) == (0.0, 4.0) and 0.9 <= lo_large < hi_large <= 1.1
    q = Q.model_quantiles({"l": np.array([[0.5, 50.0]])}, {"l": fitted})["l"]
    assert q[0, 0].tolist() == [0.0, 2.0] and q[0, 1].tolist() == [50 * lo_large, 50 * hi_large]
    # too few points for two bins of MIN_PER_BIN: one
    assert Q.fit_coefficients({"l": f[:, :300]}, {"l": y[:, :300]}, bins=2)["l"]["edges"] == []


def test_model_quantiles_are_monotone_and_zero_where_the_forecast_is():
    point = {"total": np.array([[10.0, 0.0, 4.0]])}
    q = Q.model_quantiles(point, {"total": {"edges": [], "coefficients": [[0.5, 1.0, 2.0]]}})["total"]
    assert q.shape == (1, 3, 3)
    assert q[0, 0].tolist() == [5.0, 10.0, 20.0] and q[0, 1].tolist() == [0.0, 0.0, 0.0]


def test_seasonal_naive_quantiles_by_hand():
    # 21 days: weeks of 1..7, then 2..8, then 3..9: every seasonal error is +1
    history = np.array([[*range(1, 8), *range(2, 9), *range(3, 10)]], dtype=float)
    q = Q.seasonal_naive_quantiles({"total": history}, horizon=10, quantiles=(0.1, 0.5, 0.9))["total"]
    assert q.shape == (1, 10, 3)
    # the last week 3..9 repeated, plus 1 at every quantile
    assert q[0, :, 1].tolist() == [4, 5, 6, 7, 8, 9, 10, 4, 5, 6]
    assert (q[0, :, 0] == q[0, :, 2]).all()
    # a falling series is floored at 0
    falling = np.array([[9.0] * 7 + [0.0] * 7])
    assert Q.seasonal_naive_quantiles({"x": falling}, 7, (0.5,))["x"].min() == 0.0


def test_coverage_counts_actuals_at_or_below_each_quantile():
    q = np.array([[[1.0, 2.0], [1.0, 2.0]]])  # one series, two days, two quantiles
    assert Q.coverage({"l": q}, {"l": np.array([[1.0, 3.0]])})["l"] == [0.5, 0.5]


def small_levels() -> stage.Levels:
    h = pd.DataFrame({"item_id": ["HOBBIES_1_001", "HOBBIES_1_001", "FOODS_1_001"],
                      "store_id": ["CA_1", "TX_1", "CA_1"], "dept_id": ["HOBBIES_1", "HOBBIES_1", "FOODS_1"],
                      "cat_id": ["HOBBIES", "HOBBIES", "FOODS"], "state_id": ["CA", "TX", "CA"]})
    return stage.Levels(h)


def test_m5_uncertainty_ids_of_every_level():
    ids = stage.level_ids(small_levels())
    assert ids["total"] == ["Total_X"] and ids["state"] == ["CA_X", "TX_X"] and ids["store"] == ["CA_1_X", "TX_1_X"]
    assert ids["category"] == ["FOODS_X", "HOBBIES_X"] and ids["department"] == ["FOODS_1_X", "HOBBIES_1_X"]
    assert ids["state_category"] == ["CA_FOODS", "CA_HOBBIES", "TX_HOBBIES"]
    assert ids["store_department"] == ["CA_1_FOODS_1", "CA_1_HOBBIES_1", "TX_1_HOBBIES_1"]
    assert ids["item"] == ["FOODS_1_001_X", "HOBBIES_1_001_X"]
    assert ids["item_state"] == ["FOODS_1_001_CA", "HOBBIES_1_001_CA", "HOBBIES_1_001_TX"]
    assert ids["item_store"] == ["FOODS_1_001_CA_1", "HOBBIES_1_001_CA_1", "HOBBIES_1_001_TX_1"]


def test_the_quantile_table_and_its_submission():
    levels = small_levels()
    days = pd.date_range("2016-04-25", periods=2)
    forecast = pd.DataFrame({"item_id": ["HOBBIES_1_001"] * 4 + ["FOODS_1_001"] * 2,
                             "store_id": ["CA_1", "CA_1", "TX_1", "TX_1", "CA_1", "CA_1"],
                             "date": list(days) * 3, "units": [1.0, 2.0, 3.0, 4.0, 10.0, 20.0]})
    point = levels.aggregate(levels.matrix(forecast, days, "units"))
    assert point["total"].tolist() == [[14.0, 26.0]] and point["item"].tolist() == [[10.0, 20.0], [4.0, 6.0]]
    coef = {name: {"edges": [], "coefficients": [[0.5, 1.0, 2.0]]} for name in point}
    table = stage.long_table(levels, Q.model_quantiles(point, coef), [0.025, 0.5, 0.975], 2)
    assert len(table) == 3 * sum(len(v) for v in point.values())
    total = table[table["id"] == "Total_X"]
    assert total["quantile"].tolist() == [0.025, 0.5, 0.975]
    assert total["F1"].tolist() == [7.0, 14.0, 28.0] and total["F2"].tolist() == [13.0, 26.0, 52.0]
    sub = stage.uncertainty_submission(table, dt.date(2016, 4, 25))
    assert sub["id"].iloc[0] == "Total_X_0.025_validation" and sub["id"].iloc[-1] == "HOBBIES_1_001_TX_1_0.975_validation"
    assert list(sub.columns) == ["id", "F1", "F2"]
    assert stage.uncertainty_submission(table, dt.date(2016, 5, 23))["id"].iloc[0] == "Total_X_0.025_evaluation"
    with pytest.raises(ValueError, match="cells have no units"):
        levels.matrix(forecast.iloc[1:], days, "units")


@pytest.mark.prebuilt_chain
def test_the_daily_run_writes_coherent_quantiles_and_evaluate_scores_them(chain_env):
    from tasks import Evaluate, ForecastQuantiles, ScoreForecast
    from tests.conftest import RUN_DATE

    folder = ForecastQuantiles(date=RUN_DATE).output().path
    table = pd.read_parquet(folder / "quantiles.parquet")
    forecast = pd.read_parquet(ScoreForecast(date=RUN_DATE).output().path / "forecast.parquet")
    days = [f"F{h}" for h in range(1, 29)]
    # every series of every level (140 bottom series of the tiny world), nine quantiles each
    assert table.groupby("level").size()["item_store"] == 140 * 9 and set(table["quantile"]) == set(Q.QUANTILES)
    values = table[days].to_numpy().reshape(-1, 9, 28)
    assert (np.diff(values, axis=1) >= 0).all() and (values >= 0).all()  # monotone in u, never negative
    # each level centres on the bottom-up sum of the point forecast: the total's median is its coefficient
    # times the forecast's daily total
    calibration = next((chain_env.data / "calibration").rglob("calibration.json"))
    import json

    total = json.loads(calibration.read_text())["coefficients"]["total"]
    assert total["edges"] == []  # 28 validation days: one bin
    coef = total["coefficients"][0][Q.QUANTILES.index(0.5)]
    median = table[(table["level"] == "total") & (table["quantile"] == 0.5)][days].to_numpy(dtype=np.float64)[0]
    daily = forecast.groupby("date")["units"].sum().to_numpy(dtype=np.float64)
    assert np.allclose(median, coef * daily, rtol=1e-6)
    submission = pd.read_csv(folder / "submission_uncertainty.csv")
    assert len(submission) == len(table) and submission["id"].str.endswith("_evaluation").all()
    assert submission["id"].iloc[0] == "Total_X_0.005_evaluation"
    metrics = pd.read_parquet(Evaluate(date=RUN_DATE).output().path / "metrics.parquet")
    wspl = metrics[(metrics["metric"] == "wspl") & (metrics["level"] == "all")].set_index("model")["value"]
    assert set(wspl.index) == {"model", "seasonal_naive"} and (wspl > 0).all()
    assert 0 < metrics[(metrics["metric"] == "coverage_95") & (metrics["model"] == "model")]["value"].iloc[0] <= 1
    # a rerun writes the same bytes
    before = (folder / "quantiles.parquet").read_bytes()
    import shutil

    shutil.rmtree(folder)
    assert chain_env.build([ForecastQuantiles(date=RUN_DATE)]).status.name == "SUCCESS"
    assert (ForecastQuantiles(date=RUN_DATE).output().path / "quantiles.parquet").read_bytes() == before


@pytest.mark.prebuilt_chain
def test_the_bins_setting_makes_new_quantiles_beside_the_old(chain_env):
    from tasks import CalibrateQuantiles, DailyForecast, ForecastQuantiles, ScoreForecast
    from tests.conftest import RUN_DATE
    from tests.test_identity import restore, set_option

    old_folder, forecast = ForecastQuantiles(date=RUN_DATE).output().path, ScoreForecast(date=RUN_DATE).output().path
    old_bytes = (old_folder / "quantiles.parquet").read_bytes()
    saved = set_option("quantiles", "bins", "3")
    try:
        assert not DailyForecast(date=RUN_DATE).complete()
        assert chain_env.build([DailyForecast(date=RUN_DATE)]).status.name == "SUCCESS"
        new_folder = ForecastQuantiles(date=RUN_DATE).output().path
        import json

        calibration = json.loads((CalibrateQuantiles(date=RUN_DATE).output().path / "calibration.json").read_text())
        new_bytes = (new_folder / "quantiles.parquet").read_bytes()
    finally:
        restore("quantiles", "bins", saved)
    assert new_folder != old_folder and ScoreForecast(date=RUN_DATE).output().path == forecast  # the point forecast is kept
    assert calibration["bins"] == 3 and len(calibration["coefficients"]["item_store"]["edges"]) == 2
    assert new_bytes != old_bytes and (old_folder / "quantiles.parquet").read_bytes() == old_bytes


@pytest.mark.prebuilt_chain
def test_the_report_draws_the_runs_quantiles_as_fan_charts(chain_env):
    import re

    from tasks import Report
    from tests.conftest import RUN_DATE

    assert chain_env.build([Report(date=RUN_DATE)]).status.name == "SUCCESS"
    page = (Report(date=RUN_DATE).output().path / "index.html").read_text()
    section = page[page.index('<section id="uncertainty">'):]
    section = section[:section.index("</section>")]
    assert sorted(re.findall(r'data-plot="(fan-[^"]+)"', section)) == ["fan-state-CA", "fan-state-TX", "fan-state-WI",
                                                                      "fan-total"]
    assert "of the days inside the 95 % interval" in section
