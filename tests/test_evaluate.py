"""Evaluation against actuals and baselines, and backtests, on hand-made data and the tiny world."""
from __future__ import annotations

import datetime as dt

import luigi
import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.data import db
from pipeline.stages import evaluate
from pipeline.core.errors import DataError
from tasks import Backtest, Evaluate
from tests.outputs import out
from tests.conftest import RUN_DATE

OK = luigi.execution_summary.LuigiStatusCode.SUCCESS


def test_incomplete_actuals_are_an_error():
    forecast = pd.DataFrame({"item_id": ["A", "A"], "store_id": ["S", "S"],
                             "date": pd.to_datetime(["2016-05-23", "2016-05-24"]), "units": [1.0, 2.0]})
    later = forecast.iloc[:1].assign(units=3)
    with pytest.raises(DataError, match="incomplete.*2016-05-24"):
        evaluate.actuals_for(forecast, later)


@pytest.mark.prebuilt_chain
def test_evaluate_scores_model_and_baselines_and_is_idempotent(chain_env):
    assert chain_env.build([Evaluate(date=RUN_DATE)]).status == OK
    folder = out(chain_env.data, "metrics", RUN_DATE.isoformat())
    table = pd.read_parquet(folder / "metrics.parquet")
    # the model (the published forecast: the test chain's run date blends in the online model), its two parts
    assert set(table["model"]) == {"model", "batch", "online", "seasonal_naive", "moving_average_28", "zero"}
    wrmsse = table[(table.metric == "wrmsse") & (table.level == "all")].set_index("model")["value"]
    assert (wrmsse > 0).all() and wrmsse["zero"] > wrmsse["model"]
    assert len(table[(table.metric == "wrmsse") & (table.level != "all")]) == 6 * 12
    with chain_env.engine.connect() as conn:
        n1 = conn.execute(sa.select(sa.func.count()).select_from(db.forecast_metrics)).scalar()
    # the forecast replaced by the actuals scores 0: the metric really compares with the actuals
    snapshot = out(chain_env.data, "snapshots", RUN_DATE.isoformat())
    later = out(chain_env.data, "snapshots", (RUN_DATE + dt.timedelta(days=28)).isoformat())
    forecast = pd.read_parquet(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet")
    truth = evaluate.actuals_for(forecast, pd.read_parquet(later / "sales.parquet"))
    perfect = forecast.drop(columns="units").merge(truth, on=["item_id", "store_id", "date"])
    scored = evaluate.evaluate(perfect.astype({"item_id": str, "store_id": str}), snapshot, later, RUN_DATE)
    assert scored.query("model == 'model' and metric == 'wrmsse' and level == 'all'")["value"].iloc[0] == pytest.approx(0)
    # further forecasts scored in the same pass get exactly the metrics each gets scored alone
    alone = evaluate.evaluate(forecast, snapshot, later, RUN_DATE)
    both = evaluate.evaluate(forecast, snapshot, later, RUN_DATE, others={"perfect": perfect})
    by = ["model", "metric", "level"]
    pd.testing.assert_frame_equal(both[both["model"] != "perfect"].reset_index(drop=True), alone)
    got = both[both["model"] == "perfect"].assign(model="model").set_index(by)["value"]
    assert got.equals(scored[scored["model"] == "model"].set_index(by)["value"])
    with pytest.raises(ValueError, match="zero"):
        evaluate.evaluate(forecast, snapshot, later, RUN_DATE, others={"zero": perfect})
    # rerun after deleting the folder replaces the table's rows instead of adding to them
    import shutil

    shutil.rmtree(folder)
    assert chain_env.build([Evaluate(date=RUN_DATE)]).status == OK
    with chain_env.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.forecast_metrics)).scalar() == n1
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "metrics.parquet"), table)


def test_evaluate_waits_for_the_actuals(chain_env):
    late = RUN_DATE
    with chain_env.engine.begin() as conn:  # the 28th forecast day's sales have not arrived yet
        conn.execute(sa.delete(db.sales).where(db.sales.c.date == late + dt.timedelta(days=28)))
    result = chain_env.build([Evaluate(date=late)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.MISSING_EXT
    assert not (chain_env.data / "metrics" / late.isoformat()).exists()
    assert (out(chain_env.data, "forecasts", late.isoformat()) / "forecast.parquet").exists()  # the forecast itself ran


@pytest.mark.prebuilt_chain
def test_backtest_table(chain_env):
    assert chain_env.build([Backtest(start=RUN_DATE - dt.timedelta(days=1), stop=RUN_DATE + dt.timedelta(days=1))]).status == OK
    table = pd.read_csv(out(chain_env.data, "backtests", "2016-05-21_2016-05-23") / "wrmsse.csv")
    assert list(table.columns) == ["date", "model", "batch", "online", "seasonal_naive", "moving_average_28", "zero"]
    assert table["date"].tolist() == ["2016-05-21", "2016-05-22"]
    metrics = pd.read_parquet(out(chain_env.data, "metrics", "2016-05-22") / "metrics.parquet")
    expected = metrics.query("model == 'seasonal_naive' and metric == 'wrmsse' and level == 'all'")["value"].iloc[0]
    assert table.loc[1, "seasonal_naive"] == pytest.approx(expected, abs=1e-6)
    # the quantile forecasts over the backtest: WSPL of the model and of seasonal naive, the model's coverage
    wspl = pd.read_csv(out(chain_env.data, "backtests", "2016-05-21_2016-05-23") / "wspl.csv")
    assert list(wspl.columns) == ["date", "model", "seasonal_naive", "coverage_95"]
    assert wspl["date"].tolist() == ["2016-05-21", "2016-05-22"]
    expected = metrics.query("model == 'model' and metric == 'wspl' and level == 'all'")["value"].iloc[0]
    assert wspl.loc[1, "model"] == pytest.approx(expected, abs=1e-6) and 0 < wspl.loc[1, "coverage_95"] <= 1
