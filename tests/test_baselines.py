"""Tests of pipeline.core.baselines: seasonal naive, the 28-day average and zero, by hand."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.core.baselines import BASELINES, baselines


def test_baselines_by_hand():
    run = dt.date(2016, 5, 22)
    days = pd.date_range(end=run, periods=40)
    units = np.arange(40, dtype=float)
    history = pd.DataFrame({"item_id": "A", "store_id": "S", "date": days, "units": units})
    series = pd.DataFrame({"item_id": ["B", "A"], "store_id": ["S", "S"]})  # B never sold: all zeros
    out = baselines(history, series, run, horizon=28)
    a = {k: v[v.item_id == "A"]["units"].to_numpy() for k, v in out.items()}
    last_week = units[-7:]
    assert (a["seasonal_naive"] == np.tile(last_week, 4)).all()
    assert np.allclose(a["moving_average_28"], units[-28:].mean())
    assert (a["zero"] == 0).all()
    assert (out["seasonal_naive"].query("item_id == 'B'")["units"] == 0).all()
    dates = out["zero"][out["zero"].item_id == "A"]["date"]
    assert dates.iloc[0] == pd.Timestamp("2016-05-23") and dates.iloc[-1] == pd.Timestamp("2016-06-19")
    # the same weekday: D+1 and D-6 are the same day of the week
    assert (dates.dt.day_of_week.to_numpy() == (days[-7:].day_of_week.to_numpy().tolist() * 4)).all()
    assert list(out) == list(BASELINES)
    # sorted by item, store, date whatever the order of the series given
    assert out["zero"]["item_id"].tolist() == ["A"] * 28 + ["B"] * 28


def test_a_baseline_reads_only_the_days_up_to_the_run_date():
    run = pd.Timestamp("2016-05-22")
    days = pd.date_range(end=run + pd.Timedelta(days=5), periods=40)  # five days after the run date
    history = pd.DataFrame({"item_id": "A", "store_id": "S", "date": days, "units": np.arange(40, dtype=float)})
    series = history[["item_id", "store_id"]].iloc[:1]
    later = baselines(history, series, "2016-05-22 17:30", horizon=7)
    upto = baselines(history[history["date"] <= run], series, run.date(), horizon=7)
    for name in BASELINES:
        pd.testing.assert_frame_equal(later[name], upto[name])
    assert later["seasonal_naive"]["units"].tolist() == list(range(28, 35))  # D-6..D are units 28..34
