"""price_not_positive, price_above_max and price_jump (pipeline.core.checks.prices)."""
from __future__ import annotations

from pipeline.stages import quality
from tests.checks_support import as_of, base, check, expect_only, set_price  # noqa: F401 (base: fixture)
from tests.conftest import RUN_DATE


def test_prices_not_positive(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    p = f["prices"]
    p.loc[(p["store_id"] == "TX_2") & (p["item_id"] == "HOUSEHOLD_1_002") & (p["wm_yr_wk"] == 11612), "sell_price"] = 0.0
    p.loc[(p["store_id"] == "CA_3") & (p["item_id"] == "FOODS_2_001") & (p["wm_yr_wk"] == 11510), "sell_price"] = -1.5
    result = expect_only(check(tmp_path, f), "price_not_positive", "2 price row(s)", "TX_2", "HOUSEHOLD_1_002",
                         "wm_yr_wk=11612 sell_price=0", "CA_3", "FOODS_2_001", "sell_price=-1.5")
    assert result.count == 2


def test_a_price_jump_into_the_run_dates_week(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    before = set_price(f["prices"], "CA_4", "HOBBIES_1_002", 11617, 10)
    set_price(f["prices"], "TX_3", "FOODS_3_001", 11617, 1 / 6)
    result = expect_only(check(tmp_path, f), "price_jump", "2 item-store price change(s) by more than a factor 5",
                         "CA_4", "HOBBIES_1_002", f"{before:.2f} in week 11616", "week 11617", "TX_3", "FOODS_3_001")
    assert set(result.offending["to_week"]) == {11617}


def test_price_jump_window_and_factor_are_knobs(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    set_price(f["prices"], "CA_4", "HOBBIES_1_001", 11605, 10)  # an old jump (and back, the week after)
    set_price(f["prices"], "WI_1", "FOODS_2_002", 11617, 4.5)  # big, yet below a factor 5
    assert check(tmp_path, f).passed  # the old week is not checked again on every later date; 4.5 < 5
    every_week = quality.run_checks(tmp_path / "snap-0", RUN_DATE, thresholds=quality.Thresholds(price_jump_weeks=0))
    assert every_week.check("price_jump").count == 2 and "11605" in every_week.check("price_jump").message
    strict = quality.run_checks(tmp_path / "snap-0", RUN_DATE, thresholds=quality.Thresholds(price_jump_factor=4.0))
    assert strict.check("price_jump").count == 1 and "WI_1" in strict.check("price_jump").message


def test_a_price_above_the_bound(base, tmp_path):
    f = as_of(base[0], RUN_DATE)
    p = f["prices"]
    p.loc[(p["store_id"] == "CA_2") & (p["item_id"] == "FOODS_1_001") & (p["wm_yr_wk"] == 11615), "sell_price"] = 250_000.0
    p.loc[(p["store_id"] == "CA_2") & (p["item_id"] == "FOODS_1_001") & (p["wm_yr_wk"] == 11614), "sell_price"] = 100_000.0
    result = expect_only(check(tmp_path, f), "price_above_max", "1 price row(s) with a sell_price above 100,000 a unit",
                         "store_id=CA_2 item_id=FOODS_1_001 wm_yr_wk=11615 sell_price=250,000", "A hard stop")
    assert result.hard_stop and result.offending["wm_yr_wk"].tolist() == [11615]
