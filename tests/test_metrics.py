"""Tests of pipeline.core.metrics: MAE, RMSE and bias by hand and on the real M5 test period, and the metric table."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.core.metrics import TABLE_COLUMNS, metric_table, point_metrics
from pipeline.core.wrmsse import wrmsse
from tests.wrmsse_cases import (  # noqa: F401  (m5 is a fixture)
    SMALL_ACTUALS, SMALL_FORECAST, long_frame, m5, small_setup, to_long,
)


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


def test_point_metrics_real(m5):
    truth = m5["wide"][m5["d_cols"]].to_numpy().astype(np.float64)
    actuals = to_long(m5["wide"], truth, m5["dates"])
    got = point_metrics(to_long(m5["wide"], truth * 1.1, m5["dates"]), actuals)
    assert got == pytest.approx(
        {"mae": 0.1 * truth.mean(), "rmse": 0.1 * np.sqrt((truth**2).mean()), "bias": 0.1 * truth.mean()}, rel=1e-12
    )


def test_metric_table_rows_per_forecast():
    setup = small_setup()
    forecast, actuals = long_frame(SMALL_FORECAST), long_frame(SMALL_ACTUALS)
    table = metric_table({"f": forecast, "perfect": actuals}, actuals, setup)
    assert list(table.columns) == TABLE_COLUMNS
    levels = list(setup.levels)
    one = [("wrmsse", "all")] + [("wrmsse", lv) for lv in levels] + [(m, "item_store") for m in ("mae", "rmse", "bias")]
    assert list(zip(table["model"], table["metric"], table["level"])) == [("f", *k) for k in one] + [("perfect", *k) for k in one]
    f = table[table["model"] == "f"].set_index(["metric", "level"])["value"]
    result = wrmsse(forecast, actuals, setup)
    assert f[("wrmsse", "all")] == result.total
    assert [f[("wrmsse", lv)] for lv in levels] == [result.per_level[lv] for lv in levels]
    assert f[("mae", "item_store")] == point_metrics(forecast, actuals)["mae"] == pytest.approx(7 / 8)
    assert (table.loc[table["model"] == "perfect", "value"] == 0).all()
    with pytest.raises(ValueError, match="do not cover the same"):
        metric_table({"short": forecast.iloc[1:]}, actuals, setup)
