"""unknown_ids, negative_units, duplicate_keys, future_dates (pipeline.core.checks.rows): hard stops."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.stages import quality
from tests.checks_support import D, add_category, as_of, base, check, expect_only, row_of  # noqa: F401 (base: fixture)
from tests.conftest import RUN_DATE


def test_negative_units(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    f["sales"].loc[row_of(f["sales"], "TX_1", "HOBBIES_1_001", "2016-05-20"), "units"] = -3
    result = expect_only(check(tmp_path, f), "negative_units", "1 sales row", "TX_1", "HOBBIES_1_001", "2016-05-20", "-3")
    assert result.offending.to_dict("records") == [
        {"store_id": "TX_1", "item_id": "HOBBIES_1_001", "date": "2016-05-20", "units": -3}]


def test_duplicate_sales_key(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    f["sales"] = pd.concat([s, s.iloc[[row_of(s, "CA_1", "HOBBIES_1_002", "2016-04-02")]]], ignore_index=True)
    result = expect_only(check(tmp_path, f), "duplicate_keys", "sales: 2 rows share 1 key", "CA_1", "HOBBIES_1_002",
                         "2016-04-02")
    assert result.count == 2 and set(result.offending["table"]) == {"sales"}


def test_duplicate_price_key(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    p = f["prices"]
    dup = p[(p["store_id"] == "WI_2") & (p["item_id"] == "FOODS_3_002") & (p["wm_yr_wk"] == 11610)].assign(sell_price=1.0)
    f["prices"] = pd.concat([p, dup], ignore_index=True).astype(p.dtypes.to_dict())
    expect_only(check(tmp_path, f), "duplicate_keys", "prices: 2 rows share 1 key", "WI_2", "FOODS_3_002", "11610")


def test_sales_dated_after_the_run_date(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    late = s.iloc[[row_of(s, "CA_2", "FOODS_1_002", D)] * 2].copy()
    late["date"] = pd.to_datetime(["2016-05-23", "2016-05-25"])
    f["sales"] = pd.concat([s, late], ignore_index=True)
    result = expect_only(check(tmp_path, f), "future_dates", "2 sales row(s) dated after the run date 2016-05-22",
                         "the latest 2016-05-25", "CA_2", "FOODS_1_002")
    assert list(result.offending["date"]) == ["2016-05-23", "2016-05-25"]


def test_an_item_not_in_the_items_table(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    extra = s.iloc[[row_of(s, "CA_1", "FOODS_1_001", "2016-05-21"), row_of(s, "CA_1", "FOODS_1_001", D)]].copy()
    add_category(extra, "item_id", "FOODS_9_999")
    extra["item_id"] = "FOODS_9_999"
    add_category(s, "item_id", "FOODS_9_999")
    f["sales"] = pd.concat([s, extra], ignore_index=True)
    result = expect_only(check(tmp_path, f), "unknown_ids", "sales: item_id not in the items table, 2 row(s), the "
                         "first store_id=CA_1 item_id=FOODS_9_999 date=2016-05-21", "A hard stop")
    assert result.hard_stop and result.count == 2
    assert result.offending.to_dict("records") == [
        {"table": "sales", "reason": "item_id not in the items table", "store_id": "CA_1", "item_id": "FOODS_9_999",
         "date": "2016-05-21", "wm_yr_wk": None, "rows": 2}]


def test_a_price_of_a_store_not_in_the_stores_table(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    p = f["prices"]
    extra = p[(p["store_id"] == "WI_2") & (p["item_id"] == "FOODS_3_002") & (p["wm_yr_wk"] >= 11616)].copy()
    add_category(extra, "store_id", "WI_9")
    extra["store_id"] = "WI_9"
    add_category(p, "store_id", "WI_9")
    f["prices"] = pd.concat([p, extra], ignore_index=True)
    result = expect_only(check(tmp_path, f), "unknown_ids", "prices: store_id not in the stores table, 2 row(s), the "
                         "first store_id=WI_9 item_id=FOODS_3_002 wm_yr_wk=11616")
    assert result.offending.iloc[0][["table", "store_id", "wm_yr_wk", "rows"]].tolist() == ["prices", "WI_9", 11616, 2]


def test_a_sales_row_without_a_store_id(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    s.loc[row_of(s, "TX_3", "FOODS_2_001", "2016-05-20"), "store_id"] = None
    result = expect_only(check(tmp_path, f), "unknown_ids", "sales: store_id missing, 1 row(s), the first "
                         "store_id=<null> item_id=FOODS_2_001 date=2016-05-20")
    assert result.offending.iloc[0]["reason"] == "store_id missing"


def test_max_offending_bounds_the_rows_listed_not_the_count(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    negative = np.flatnonzero((s["store_id"] == "CA_1").to_numpy())[:30]
    units = s["units"].to_numpy().copy()
    units[negative] = -1
    s["units"] = units
    report = check(tmp_path, f)
    assert report.check("negative_units").count == 30 and len(report.check("negative_units").offending) == 20
    fewer = quality.run_checks(sorted(tmp_path.glob("snap-*"))[-1], RUN_DATE, thresholds=quality.Thresholds(max_offending=3))
    assert fewer.check("negative_units").count == 30 and len(fewer.check("negative_units").offending) == 3
    assert "Offending rows (first 3 of 30)" in fewer.to_markdown()
