"""Features on small hand-made series with known answers, and the invariants of the engine."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.core import features as F
from pipeline.tools import world
CAL = world.build_calendar()
ITEMS = pd.DataFrame({"item_id": ["FOODS_1_001", "FOODS_1_002"], "dept_id": ["FOODS_1"] * 2, "cat_id": ["FOODS"] * 2})
STORES = pd.DataFrame({"store_id": ["CA_1", "TX_1"], "state_id": ["CA", "TX"]})
START = pd.Timestamp("2016-01-02")  # a Saturday: the first day of a Walmart week
N_DAYS = 120
RUN = (START + pd.Timedelta(days=N_DAYS - 1)).date()


def units_of(k: int) -> np.ndarray:
    """A different, irregular pattern per series k, with leading zeros for k odd."""
    u = ((np.arange(N_DAYS) * (k + 3)) % 7).astype(float)
    if k % 2:
        u[:40] = 0
    return u


def make_sales(series=((0, "CA_1", "FOODS_1_001"), (1, "CA_1", "FOODS_1_002"), (2, "TX_1", "FOODS_1_001"),
                       (3, "TX_1", "FOODS_1_002"))) -> pd.DataFrame:
    days = pd.date_range(START, periods=N_DAYS)
    return pd.concat([pd.DataFrame({"item_id": item, "store_id": store, "date": days, "units": units_of(k)})
                      for k, store, item in series], ignore_index=True)


def make_prices() -> pd.DataFrame:
    weeks = F.weeks_of(CAL)
    first = int(np.searchsorted(weeks, CAL.loc[CAL["date"] == START, "wm_yr_wk"].iloc[0]))
    rows = []
    # CA_1 FOODS_1_001: 2.0, 2.0, 1.5 (promotion), 2.0, then nothing recorded (carried forward)
    for offset, price in enumerate([2.0, 2.0, 1.5, 2.0]):
        rows.append(("FOODS_1_001", "CA_1", weeks[first + offset], price))
        rows.append(("FOODS_1_001", "TX_1", weeks[first + offset], 3.0))
        rows.append(("FOODS_1_002", "CA_1", weeks[first + offset], 1.0))
        rows.append(("FOODS_1_002", "TX_1", weeks[first + offset], 1.0))
    return pd.DataFrame(rows, columns=["item_id", "store_id", "wm_yr_wk", "sell_price"])


def build(sales, prices, targets, run=RUN, with_target=False):
    series = sales[["item_id", "store_id"]].drop_duplicates().astype(str)
    return F.build_features(sales, prices, CAL, ITEMS, STORES, F.item_mean_prices(prices, series, F.weeks_of(CAL)),
                            targets, run, with_target)


def test_lags_and_windows_match_hand_computed_values():
    sales = make_sales()
    targets = F.scoring_dates(RUN)
    out = build(sales, make_prices(), targets)
    assert len(out) == 4 * 28
    assert list(out.columns) == F.ID_COLUMNS + [c for c in F.FEATURES if c not in F.ID_COLUMNS]
    u = units_of(0)
    rows = out[(out["store_id"] == "CA_1") & (out["item_id"] == "FOODS_1_001")].reset_index(drop=True)
    for h in (1, 14, 28):
        j = N_DAYS - 1 + h  # index of the target day from START
        r = rows.iloc[h - 1]
        assert r["date"] == START + pd.Timedelta(days=j)
        assert r["lag_28"] == u[j - 28] and r["lag_35"] == u[j - 35] and r["lag_56"] == u[j - 56]
        assert np.isnan(r["lag_364"])  # before the series' history: missing, not zero
        assert r["rmean_7"] == pytest.approx(u[j - 34:j - 27].mean(), rel=1e-6)
        assert r["rmean_28"] == pytest.approx(u[j - 55:j - 27].mean(), rel=1e-6)
        assert r["rstd_7"] == pytest.approx(u[j - 34:j - 27].std(ddof=1), rel=1e-5)
        assert r["rzero_28"] == pytest.approx((u[j - 55:j - 27] == 0).mean(), rel=1e-6)
        # a window reaching before the history averages the days the snapshot holds
        assert r["rmean_112"] == pytest.approx(u[max(0, j - 139):j - 27].mean(), rel=1e-6)
        first_sale = int(np.argmax(u > 0))
        assert r["age"] == j - first_sale


def test_age_is_missing_until_the_first_sale_is_visible_from_the_lag_horizon():
    sales = make_sales()
    targets = pd.date_range(START + pd.Timedelta(days=50), START + pd.Timedelta(days=80))
    out = build(sales, make_prices(), targets)
    rows = out[(out["store_id"] == "CA_1") & (out["item_id"] == "FOODS_1_002")]  # k=1: first sale at day 40 or later
    first_sale = int(np.argmax(units_of(1) > 0))
    j = (rows["date"] - START).dt.days.to_numpy()
    assert np.isnan(rows["age"].to_numpy()[j - 28 < first_sale]).all()
    assert (rows["age"].to_numpy()[j - 28 >= first_sale] == (j - first_sale)[j - 28 >= first_sale]).all()


def test_age_stops_growing_at_the_cap():
    # two years of daily sales from the first day: an established series must not carry the calendar day
    days = pd.date_range(end=pd.Timestamp(RUN), periods=2 * 365)
    sales = pd.DataFrame({"item_id": "FOODS_1_001", "store_id": "CA_1", "date": days, "units": 1.0})
    out = build(sales, make_prices(), pd.date_range(days[300], RUN))
    j = (out["date"] - days[0]).dt.days.to_numpy()
    assert (out["age"].to_numpy() == np.minimum(j, F.AGE_CAP)).all()
    assert (j > F.AGE_CAP).sum() > 300  # the cap is reached on most of these days (the check can fail)


def test_calendar_snap_and_price_features():
    out = build(make_sales(), make_prices(), pd.date_range(START, periods=42))
    ca = out[(out["store_id"] == "CA_1") & (out["item_id"] == "FOODS_1_001")].set_index("date")
    tx = out[(out["store_id"] == "TX_1") & (out["item_id"] == "FOODS_1_001")].set_index("date")
    cal = CAL.set_index("date")
    for d in ca.index:
        assert ca.loc[d, "snap"] == cal.loc[d, "snap_CA"] and tx.loc[d, "snap"] == cal.loc[d, "snap_TX"]
        assert ca.loc[d, "wday"] == cal.loc[d, "wday"] and ca.loc[d, "month"] == d.month and ca.loc[d, "mday"] == d.day
        assert (ca.loc[d, "event_name_1"] is pd.NA) == pd.isna(cal.loc[d, "event_name_1"])
    week = lambda w: ca.iloc[7 * w]  # noqa: E731 - START is a Saturday, so row 7w is the first day of week w
    assert week(2)["sell_price"] == 1.5
    assert week(2)["price_norm"] == pytest.approx(0.75) and week(3)["price_norm"] == pytest.approx(1.0)
    assert week(2)["price_change"] == pytest.approx(-0.25) and week(3)["price_change"] == pytest.approx(2.0 / 1.5 - 1)
    assert np.isnan(week(0)["price_change"])
    assert week(0)["price_rel_stores"] == pytest.approx(2.0 / 2.5)
    assert week(2)["price_rel_stores"] == pytest.approx(1.5 / 2.25)
    # weeks 4 and 5 have no recorded price: the last recorded week's price state is carried forward whole,
    # its change included (a change of 0 would read as "the promotion's price held for another week")
    for w in (4, 5):
        for name in ("sell_price", "price_norm", "price_change", "price_rel_stores"):
            assert week(w)[name] == week(3)[name], (w, name)
    assert week(4)["price_change"] == pytest.approx(2.0 / 1.5 - 1)


def test_price_is_missing_before_the_first_recorded_price():
    prices = make_prices()
    out = build(make_sales(), prices, pd.date_range(START - pd.Timedelta(days=7), periods=7))
    assert out["sell_price"].isna().all() and out["price_norm"].isna().all()


def test_single_series_equals_batch():
    sales, prices = make_sales(), make_prices()
    targets = pd.date_range(START + pd.Timedelta(days=30), RUN + dt.timedelta(days=28))
    batch = build(sales, prices, targets)
    series = sales[["item_id", "store_id"]].drop_duplicates().astype(str)
    item_prices = F.item_mean_prices(prices, series, F.weeks_of(CAL))  # the one cross-series input
    for (item, store), one in sales.groupby(["item_id", "store_id"]):
        alone = F.build_features(one, prices[(prices.item_id == item) & (prices.store_id == store)], CAL, ITEMS,
                                 STORES, item_prices, targets, RUN, False)
        part = batch[(batch["item_id"] == item) & (batch["store_id"] == store)].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone, part)


def test_no_feature_sees_sales_after_target_minus_28_days():
    sales = make_sales()
    targets = pd.date_range(START + pd.Timedelta(days=60), RUN)
    before = build(sales, make_prices(), targets, with_target=True)
    cut = START + pd.Timedelta(days=80)
    changed = sales.copy()
    changed.loc[changed["date"] >= cut, "units"] += 50
    after = build(changed, make_prices(), targets, with_target=True)
    safe = before["date"] - pd.Timedelta(days=28) < cut
    cols = [c for c in F.NUMERIC]
    pd.testing.assert_frame_equal(before.loc[safe, cols], after.loc[safe, cols])
    assert not before.loc[~safe, "rmean_7"].equals(after.loc[~safe, "rmean_7"])  # the check can fail


def test_training_rows_start_at_the_first_sale_and_carry_the_label():
    sales = make_sales()
    targets = pd.date_range(START, RUN)
    out = build(sales, make_prices(), targets, with_target=True)
    late = out[(out["store_id"] == "CA_1") & (out["item_id"] == "FOODS_1_002")]
    first_sale = START + pd.Timedelta(days=int(np.argmax(units_of(1) > 0)))
    assert late["date"].min() == first_sale
    merged = late.merge(sales, on=["item_id", "store_id", "date"], suffixes=("", "_actual"))
    assert (merged["units"] == merged["units_actual"]).all() and len(merged) == len(late)


def test_scoring_more_than_28_days_ahead_is_refused():
    with pytest.raises(ValueError, match="28 days"):
        build(make_sales(), make_prices(), F.scoring_dates(RUN + dt.timedelta(days=1), 28), run=RUN)



def test_pooled_features_match_hand_computed_values():
    sales, prices = make_sales(), make_prices()
    targets = pd.date_range(START + pd.Timedelta(days=56), RUN + dt.timedelta(days=28))
    out = F.build_features(sales, prices, CAL, ITEMS, STORES,
                           F.item_mean_prices(prices, sales[["item_id", "store_id"]].drop_duplicates().astype(str),
                                              F.weeks_of(CAL)), targets, RUN, False, pooled=True)
    assert list(out.columns) == F.ID_COLUMNS + [c for c in F.feature_names(True) if c not in F.ID_COLUMNS]
    ca = units_of(0) + units_of(1)  # CA_1's two series, both FOODS_1: the store and its department alike
    for target in (START + pd.Timedelta(days=60), START + pd.Timedelta(days=100), START + pd.Timedelta(days=146)):
        t = (target - START).days
        last = t - 28  # the newest day a feature may use
        recent = ca[last - 27:last + 1].sum() / (2 * 28)
        first = max(last - 111, 0)  # days before the history have no row: the mean is over the days that do
        base = ca[first:last + 1].sum() / (2 * (last + 1 - first))
        row = out[(out.store_id == "CA_1") & (out.item_id == "FOODS_1_002") & (out.date == target)].iloc[0]
        assert row["store_rmean_28"] == pytest.approx(recent, rel=1e-6)
        assert row["dept_rmean_28"] == pytest.approx(recent, rel=1e-6)
        assert row["store_trend"] == pytest.approx(recent / base, rel=1e-6)
        assert row["dept_trend"] == pytest.approx(recent / base, rel=1e-6)
    # TX_1's FOODS series are their own store's and department's
    tx = units_of(2) + units_of(3)
    t = (START + pd.Timedelta(days=100) - START).days
    row = out[(out.store_id == "TX_1") & (out.item_id == "FOODS_1_001") & (out.date == START + pd.Timedelta(days=100))].iloc[0]
    assert row["store_rmean_28"] == pytest.approx(tx[t - 55:t - 27].sum() / 56, rel=1e-6)


def test_pooled_features_see_no_sales_after_target_minus_28_days_and_one_store_equals_the_batch():
    sales, prices = make_sales(), make_prices()
    targets = pd.date_range(START + pd.Timedelta(days=60), RUN)
    series = sales[["item_id", "store_id"]].drop_duplicates().astype(str)
    item_prices = F.item_mean_prices(prices, series, F.weeks_of(CAL))

    def pooled(s):
        return F.build_features(s, prices, CAL, ITEMS, STORES, item_prices, targets, RUN, True, pooled=True)

    before = pooled(sales)
    cut = START + pd.Timedelta(days=80)
    changed = sales.copy()
    changed.loc[changed["date"] >= cut, "units"] += 50
    after = pooled(changed)
    safe = before["date"] - pd.Timedelta(days=28) < cut
    pd.testing.assert_frame_equal(before.loc[safe, F.POOLED], after.loc[safe, F.POOLED])
    assert not before.loc[~safe, "store_rmean_28"].equals(after.loc[~safe, "store_rmean_28"])  # the check can fail
    # the batch engine gets a store's series at once (a partition is a store): one store alone is the batch
    for store, one in sales.groupby("store_id"):
        alone = pooled(one)
        part = before[before["store_id"] == store].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone, part)
