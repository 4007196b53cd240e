"""vanished_series and new_from_nothing (pipeline.core.checks.presence)."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline.stages import quality
from tests.checks_support import D, as_of, base, check, expect_only, regular_series, row_of, series_rows, with_master  # noqa: F401 (base: fixture)
from tests.conftest import RUN_DATE


def test_a_regular_series_without_a_row_on_the_run_date(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    days = regular_series(f["sales"])
    (store, item), sold = days.index[0], int(days.iloc[0])
    assert sold >= 14
    f["sales"] = f["sales"].drop(index=row_of(f["sales"], store, item, D)).reset_index(drop=True)
    result = expect_only(check(tmp_path, f), "vanished_series", "1 series", store, item, f"sold on {sold} of 28 days",
                         "no sales row on 2016-05-22", "last row 2016-05-21")
    assert result.offending[["what", "store_id", "item_id"]].to_dict("records") == [
        {"what": "series", "store_id": store, "item_id": item}]


def test_an_irregular_series_without_a_row_is_not_an_alarm(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    days = regular_series(f["sales"])
    (store, item) = days.index[-1]
    assert days.iloc[-1] < 14
    f["sales"] = f["sales"].drop(index=row_of(f["sales"], store, item, D)).reset_index(drop=True)
    assert check(tmp_path, f).passed


def test_a_store_without_rows_on_the_run_date(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    f["sales"] = s[~((s["store_id"] == "WI_3") & (s["date"] == pd.Timestamp(RUN_DATE)))].reset_index(drop=True)
    result = expect_only(check(tmp_path, f), "vanished_series", "1 store(s) with no sales row on 2016-05-22: "
                         "WI_3 (rows on 28 of the previous 28 days, the last on 2016-05-21)")
    assert list(result.offending["what"]) == ["store"] and list(result.offending["store_id"]) == ["WI_3"]


def test_an_item_of_the_previous_snapshot_with_no_row_at_all(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    previous = as_of(base[0], RUN_DATE - dt.timedelta(days=1))
    s = f["sales"]
    f["sales"] = s[s["item_id"] != "HOBBIES_2_001"].reset_index(drop=True)
    expect_only(check(tmp_path, f, previous=previous), "vanished_series", "previous snapshot (2016-05-21)",
                "item HOBBIES_2_001")


def test_a_store_absent_from_the_previous_snapshot(base, tmp_path):
    previous = as_of(base[0], RUN_DATE - dt.timedelta(days=1))
    f = with_master(as_of(base[0], RUN_DATE), store="CA_5")
    f["sales"] = pd.concat([f["sales"], series_rows(f["sales"], "CA_5", "FOODS_1_001", D, D)], ignore_index=True)
    assert check(tmp_path, f).passed  # in the stores table: only the previous snapshot tells
    expect_only(check(tmp_path, f, previous=previous), "new_from_nothing", "CA_5",
                "no row in the previous snapshot (2016-05-21)")


def test_item_history_that_appeared_retroactively(base, tmp_path):
    previous = as_of(base[0], RUN_DATE - dt.timedelta(days=1))
    f = with_master(as_of(base[0], RUN_DATE), item="FOODS_1_999")
    f["sales"] = pd.concat([f["sales"], series_rows(f["sales"], "CA_1", "FOODS_1_999", "2016-01-01", D)],
                           ignore_index=True)
    result = expect_only(check(tmp_path, f, previous=previous), "new_from_nothing", "FOODS_1_999", "retroactively",
                         "from 2016-01-01")
    assert result.offending.iloc[0]["rows"] == 143


def test_a_brand_new_item_is_a_launch_not_an_alarm(base, tmp_path):
    previous = as_of(base[0], RUN_DATE - dt.timedelta(days=1))
    f = with_master(as_of(base[0], RUN_DATE), item="FOODS_1_998")
    f["sales"] = pd.concat([f["sales"], series_rows(f["sales"], "CA_1", "FOODS_1_998", D, D, units=3)],
                           ignore_index=True)
    assert check(tmp_path, f, previous=previous).passed


def test_regular_share_is_a_knob(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    days = regular_series(f["sales"])
    occasional = days[(days > 3) & (days < 14)]
    (store, item), sold = occasional.index[0], int(occasional.iloc[0])
    f["sales"] = f["sales"].drop(index=row_of(f["sales"], store, item, D)).reset_index(drop=True)
    assert check(tmp_path, f).passed  # sold on fewer than half of the 28 days: not regular
    share = quality.Thresholds(regular_share=sold / 28)
    expect_only(check(tmp_path, f, thresholds=share), "vanished_series", store, item, f"sold on {sold} of 28 days")


def test_regular_days_is_a_knob(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    (store, item), sold = next(iter(regular_series(s).items()))
    week = ((s["store_id"] == store) & (s["item_id"] == item) & (s["date"] < pd.Timestamp(RUN_DATE))
            & (s["date"] >= pd.Timestamp(RUN_DATE) - pd.Timedelta(days=7))).to_numpy()
    units = s["units"].to_numpy().copy()
    units[week] = 0  # sold nothing in the last week, regularly before it
    s["units"] = units
    f["sales"] = s.drop(index=row_of(s, store, item, D)).reset_index(drop=True)
    expect_only(check(tmp_path, f), "vanished_series", store, item, f"sold on {sold - 7} of 28 days")
    assert check(tmp_path, f, thresholds=quality.Thresholds(regular_days=7)).passed
