"""Tests of pipeline.stages.scoring_setup: WRMSSE weights and scales of some series from a snapshot folder."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.wrmsse_weights import wrmsse_weights_scales
from pipeline.stages.scoring_setup import snapshot_scoring
from tests.wrmsse_cases import ORIGIN, small_calendar, small_hierarchy, small_history, small_prices


def write_snapshot(folder, categorical: bool):
    """The hand-made data as a snapshot, plus a store S3 that is not scored (its sales and prices must be left out)."""
    h = small_hierarchy()
    other = pd.DataFrame({"item_id": ["A"] * 6, "store_id": ["S3"] * 6, "date": pd.date_range("2016-01-01", periods=6),
                          "units": [50, 0, 50, 0, 50, 0]})
    sales = pd.concat([small_history(), other], ignore_index=True)
    prices = pd.concat([small_prices(), pd.DataFrame({"store_id": ["S3"], "item_id": ["A"], "wm_yr_wk": [102],
                                                      "sell_price": [100.0]})], ignore_index=True)
    if categorical:  # as extract writes them
        sales = sales.astype({"item_id": "category", "store_id": "category"})
        prices = prices.astype({"item_id": "category", "store_id": "category"})
    tables = {
        "items": h[["item_id", "dept_id", "cat_id"]].drop_duplicates(),
        "stores": pd.concat([h[["store_id", "state_id"]].drop_duplicates(),
                             pd.DataFrame({"store_id": ["S3"], "state_id": ["P"]})]),
        "sales": sales, "prices": prices, "calendar": small_calendar().assign(weekday="x"),
    }
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.mark.parametrize("categorical", [False, True])
def test_the_setup_of_the_given_series_only(tmp_path, categorical):
    snapshot = write_snapshot(tmp_path, categorical)
    # the scored series, in any order and repeated as in a forecast (one row per day)
    forecast = pd.concat([small_hierarchy()[["store_id", "item_id"]].iloc[::-1]] * 3, ignore_index=True)
    setup, sales = snapshot_scoring(snapshot, forecast, ORIGIN.date())
    expected = wrmsse_weights_scales(small_history(), small_prices(), small_calendar(), small_hierarchy(), ORIGIN)
    pd.testing.assert_frame_equal(setup.series, expected.series)
    assert setup.origin == expected.origin and setup.missing_price_days == expected.missing_price_days == 3
    for name, level in expected.levels.items():
        np.testing.assert_array_equal(setup.levels[name].weights, level.weights, err_msg=name)
        np.testing.assert_array_equal(setup.levels[name].scales, level.scales, err_msg=name)
    # S3 sold (and has a price): had it been read, the store level would have three series
    assert setup.levels["store"].n_series == 2
    assert set(sales["store_id"].astype(str)) == {"S1", "S2"} and sales["date"].max() == ORIGIN
    assert len(sales) == len(small_history()) - 1  # the row after the origin is left out


def test_series_unknown_to_the_snapshot_are_an_error(tmp_path):
    snapshot = write_snapshot(tmp_path, categorical=False)
    with pytest.raises(ValueError, match="hierarchy is empty"):
        snapshot_scoring(snapshot, pd.DataFrame({"item_id": ["Z"], "store_id": ["S1"]}), ORIGIN)
