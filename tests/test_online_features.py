"""Online == batch: the single-series feature path equals the batch engine's rows, value for value.

The batch rows are the chain's own (``BuildFeatures`` of a run date); the online rows come from
the source database through :func:`pipeline.data.series_history.read_series` and
:func:`pipeline.core.online.series_features`. Numbers are compared as the model reads them
(float32), exactly; ids, categories and dates as strings.
"""
from __future__ import annotations

import datetime as dt
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline.core import features as F
from pipeline.core.online import COLUMNS, Calendar, CalendarDay, SeriesHistory, series_features
from pipeline.data.series_history import create_indexes, read_calendar, read_series
from pipeline.stages.features import read_feature_set
from tests.conftest import RUN_DATE, fast_chain

TEXT = ["item_id", "store_id", "dept_id", "cat_id", "state_id", "event_name_1", "event_type_1", "event_name_2",
        "event_type_2"]
# 2016-03-27: rows of 2016-03-26 recorded on 2016-03-28 (late corrections after the run date) exist in the tiny world
PARITY_DATES = (dt.date(2016, 3, 27), dt.date(2016, 4, 24), RUN_DATE)


def differences(batch: pd.DataFrame, online: pd.DataFrame) -> list[str]:
    """Every column where the two frames' rows differ, with its first differing row."""
    assert len(batch) == len(online), (len(batch), len(online))
    problems = []
    for col in COLUMNS:
        a, b = batch[col], online[col]
        if col in TEXT:
            x = a.astype(object).where(a.notna(), None).to_numpy()
            y = b.astype(object).where(b.notna(), None).to_numpy()
            same = x == y
        elif col == "date":
            same = pd.to_datetime(a).dt.date.to_numpy() == pd.to_datetime(b).dt.date.to_numpy()
        else:
            x, y = a.to_numpy(np.float32), b.to_numpy(np.float64).astype(np.float32)
            same = (x == y) | (np.isnan(x) & np.isnan(y))
        if not same.all():
            k = int(np.flatnonzero(~same)[0])
            problems.append(f"{col}: {int((~same).sum())} rows differ, first {batch.loc[k, ['item_id', 'store_id', 'date']].tolist()}: "
                            f"batch {a.iloc[k]!r}, online {b.iloc[k]!r}")
    return problems


def online_rows(engine, keys: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    with engine.connect() as conn:
        calendar = read_calendar(conn)
        rows = [row for item, store in keys.itertuples(index=False)
                for row in series_features(read_series(conn, str(item), str(store), date), calendar, date)]
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.fixture(scope="module")
def tiny_feature_sets(tmp_path_factory, tiny_world_file):
    """The tiny world's batch feature sets of ``PARITY_DATES`` (the chain's BuildFeatures), and its database."""
    from tasks import BuildFeatures

    folder = tmp_path_factory.mktemp("parity")
    shutil.copy(tiny_world_file, folder / "world.sqlite")
    with pytest.MonkeyPatch.context() as monkeypatch, fast_chain(folder, monkeypatch) as env:
        result = env.build([BuildFeatures(date=d) for d in PARITY_DATES])
        assert result.scheduling_succeeded, result.summary_text
        create_indexes(env.engine)
        sets = {d: read_feature_set(BuildFeatures(date=d).output().path) for d in PARITY_DATES}
        yield env, sets


@pytest.mark.slow
@pytest.mark.parametrize("date", PARITY_DATES, ids=str)
def test_online_features_equal_the_batch_rows_for_every_series_of_the_tiny_world(tiny_feature_sets, date):
    env, sets = tiny_feature_sets
    batch = sets[date][COLUMNS].reset_index(drop=True)
    keys = batch[["item_id", "store_id"]].drop_duplicates()
    assert len(keys) == 140 and len(batch) == 140 * 28
    online = online_rows(env.engine, keys, date)
    assert differences(batch, online) == []


@pytest.mark.slow
def test_a_late_correction_changes_the_online_features_only_from_the_day_it_is_known(tiny_feature_sets):
    env, sets = tiny_feature_sets
    # a row of 2016-03-26 recorded on 2016-03-28: not known at the end of 2016-03-27
    with env.engine.connect() as conn:
        before = read_series(conn, "FOODS_3_002", "CA_3", dt.date(2016, 3, 27))
        after = read_series(conn, "FOODS_3_002", "CA_3", dt.date(2016, 3, 28))
    late = dt.date(2016, 3, 26)
    assert before.sales.get(late) != after.sales.get(late)
    assert {d: u for d, u in after.sales.items() if d != late and d <= dt.date(2016, 3, 27)} == \
        {d: u for d, u in before.sales.items() if d != late}


def test_a_corrupted_online_value_is_caught_by_the_comparison():
    # the comparison itself can fail: one float32 ulp in one cell is a difference
    frame = pd.DataFrame({c: ["x"] if c in TEXT else [pd.Timestamp("2016-01-01")] if c == "date" else [1.5]
                          for c in COLUMNS})
    other = frame.copy()
    other.loc[0, "rmean_28"] = float(np.nextafter(np.float32(1.5), np.float32(2)))
    assert differences(frame, frame) == []
    assert [p.split(":")[0] for p in differences(frame, other)] == ["rmean_28"]


# ---- hand-computed values on a small series ----------------------------------------------------------

def small_calendar(days: int = 120) -> Calendar:
    start = dt.date(2016, 1, 2)  # a Saturday: Walmart weeks start on Saturdays
    return Calendar(tuple(CalendarDay(date=start + dt.timedelta(days=i), wm_yr_wk=11600 + i // 7,
                                      wday=i % 7 + 1, month=(start + dt.timedelta(days=i)).month,
                                      events=(None, None, None, None), snap={"CA": i % 2})
                          for i in range(days)))


def test_hand_computed_features_of_a_small_series():
    cal = small_calendar()
    run = cal.start + dt.timedelta(days=60)
    # units 0,1,2,...: day i sold i % 4 units; no row for day 5
    sales = {cal.start + dt.timedelta(days=i): i % 4 for i in range(61) if i != 5}
    prices = {"CA_1": {11600: 2.0, 11601: 2.0, 11603: 1.5}, "CA_2": {11600: 3.0, 11608: 3.0}}
    history = SeriesHistory("FOODS_1_001", "CA_1", "FOODS_1", "FOODS", "CA", sales, prices)
    rows = series_features(history, cal, run, horizon=2)
    first = rows[0]  # target day 61: lags see day 61 - lag
    assert first["date"] == run + dt.timedelta(days=1)
    assert first["lag_28"] == 33 % 4 and first["lag_29"] == 32 % 4
    assert math.isnan(first["lag_56"])  # day 61 - 56 = 5 has no row
    assert math.isnan(first["lag_364"])  # before the history
    # the 7 days up to t - 28 = day 33: days 27..33 -> 3,0,1,2,3,0,1
    window = [i % 4 for i in range(27, 34)]
    assert first["rmean_7"] == sum(window) / 7
    mean = sum(window) / 7
    assert first["rstd_7"] == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in window) / 6), rel=1e-12)
    assert first["rzero_28"] == sum(1 for i in range(6, 34) if i % 4 == 0) / 28  # days 6..33, all present
    assert first["rmean_28"] == sum(i % 4 for i in range(6, 34)) / 28
    assert math.isnan(first["rmean_56"])  # days -22..33: the window starts before the history
    assert first["age"] == 61 - 1  # first sale on day 1 (day 0 sold 0)
    # prices: week 11608 (days 56..62): CA_1's last recorded price 1.5 carried forward, week-over-week
    # change of its last recorded week (11603: 1.5 / 2.0 - 1), against its running max 2.0, against the
    # mean of CA_1's 1.5 and CA_2's 3.0
    assert first["sell_price"] == 1.5 and first["price_norm"] == 0.75 and first["price_change"] == -0.25
    assert first["price_rel_stores"] == 1.5 / ((1.5 + 3.0) / 2)
    assert first["snap"] == 61 % 2 and first["wday"] == 61 % 7 + 1


def same_row(a: dict, b: dict) -> bool:
    """Equal keys and values, NaN equal to NaN."""
    nan = lambda v: isinstance(v, float) and math.isnan(v)  # noqa: E731
    return a.keys() == b.keys() and all(a[k] == b[k] or (nan(a[k]) and nan(b[k])) for k in a)


def test_a_price_override_changes_only_its_own_week():
    cal = small_calendar()
    run = cal.start + dt.timedelta(days=53)  # targets: days 54..81, weeks 11607..11611
    sales = {cal.start + dt.timedelta(days=i): 2 for i in range(54)}
    history = SeriesHistory("FOODS_1_001", "CA_1", "FOODS_1", "FOODS", "CA", sales,
                            {"CA_1": {11600: 2.0}, "CA_2": {11600: 4.0}})
    base = series_features(history, cal, run)
    cut = series_features(history, cal, run, price_overrides={11609: 1.0})
    for b, c in zip(base, cut):
        week = 11600 + (b["date"] - cal.start).days // 7
        if week == 11609:
            assert (c["sell_price"], c["price_norm"], c["price_change"]) == (1.0, 0.5, -0.5)
            assert c["price_rel_stores"] == 1.0 / 2.5
        else:
            assert same_row(c, b)
    with pytest.raises(ValueError, match="week 11630"):
        series_features(history, cal, run, price_overrides={11630: 1.0})


def test_the_item_mean_price_adds_the_stores_in_store_order():
    weeks = np.array([1, 2])
    series = pd.DataFrame({"item_id": ["A", "A", "A", "B"], "store_id": ["S3", "S1", "S2", "S1"]})
    prices = pd.DataFrame({"item_id": ["A", "A", "A", "B", "A"], "store_id": ["S1", "S2", "S3", "S1", "S3"],
                           "wm_yr_wk": [1, 1, 1, 1, 2], "sell_price": [0.1, 0.2, 0.3, 5.0, 0.7]})
    mean = F.item_mean_prices(prices, series, weeks)
    assert mean.loc["A", 1] == ((0.1 + 0.2) + 0.3) / 3  # the sum in store order, exactly
    assert mean.loc["A", 2] == (0.1 + 0.2 + 0.7) / 3  # S1, S2 carry their week-1 price forward
    assert mean.loc["B", 1] == 5.0 and list(mean.index) == ["A", "B"]


@pytest.mark.slow
def test_online_features_equal_the_batch_rows_on_a_few_hundred_series_of_the_demo_world(tmp_path, monkeypatch):
    from pipeline.tools import world
    from tasks import BuildFeatures

    world.generate_world(f"sqlite:///{tmp_path / 'world.sqlite'}", scale="demo", seed=11)
    dates = (dt.date(2016, 4, 10), RUN_DATE)
    with fast_chain(tmp_path, monkeypatch) as env:
        result = env.build([BuildFeatures(date=d) for d in dates])
        assert result.scheduling_succeeded, result.summary_text
        create_indexes(env.engine)
        for date in dates:
            batch = read_feature_set(BuildFeatures(date=date).output().path)[COLUMNS]
            keys = batch[["item_id", "store_id"]].drop_duplicates().iloc[::3]  # every third series: 300
            assert len(keys) == 300
            batch = batch.merge(keys, on=["item_id", "store_id"]).reset_index(drop=True)
            assert differences(batch, online_rows(env.engine, keys, date)) == [], date
