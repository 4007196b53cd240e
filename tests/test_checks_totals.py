"""daily_total_outlier (pipeline.core.checks.totals) and its thresholds."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.stages import quality
from tests.checks_support import D, as_of, base, check, expect_only, failing  # noqa: F401 (base: fixture)
from tests.conftest import RUN_DATE


@pytest.mark.parametrize("factor, phrase", [(0.05, "below"), (10, "above")])
def test_a_day_far_outside_its_usual_total(base, tmp_path, factor, phrase):
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    on_day = s["date"] == pd.Timestamp(RUN_DATE)
    s.loc[on_day, "units"] = (s.loc[on_day, "units"] * factor).round().astype(np.int16)
    result = expect_only(check(tmp_path, f), "daily_total_outlier", "total units on 2016-05-22 (Sunday) are ",
                         "the same weekday's median over the previous 8 weeks is ", "(MAD ", "outside median ± 6·MAD",
                         phrase, "2016-05-15=")
    row = result.offending.iloc[0]
    assert row["date"] == D and row["total_units"] == s.loc[on_day, "units"].sum()
    # the thresholds are knobs
    relaxed = quality.run_checks(tmp_path / "snap-0", RUN_DATE,
                                 thresholds=quality.Thresholds(outlier_k=1000.0))
    assert relaxed.passed


def low_run_date(base, factor=0.25) -> dict:
    """The frames of RUN_DATE with its day's units cut to ``factor``."""
    f = as_of(base[0], RUN_DATE)
    s = f["sales"]
    on_day = (s["date"] == pd.Timestamp(RUN_DATE)).to_numpy()
    units = s["units"].to_numpy().copy()
    units[on_day] = np.round(units[on_day] * factor).astype(units.dtype)
    s["units"] = units
    return f


@pytest.mark.parametrize("knob, value, phrase", [
    ("outlier_min_relative", 0.9, "% from the median (flagged beyond 90%)"),
    ("outlier_weeks", 3, "only 3 usable same-weekday day(s) in the previous 3 weeks (at least 4 needed)"),
    ("outlier_min_reference", 9, "only 8 usable same-weekday day(s) in the previous 8 weeks (at least 9 needed)"),
])
def test_each_knob_of_the_day_total_changes_the_verdict(base, tmp_path, knob, value, phrase):
    report = check(tmp_path, low_run_date(base))
    assert failing(report) == {"daily_total_outlier"}
    relaxed = check(tmp_path, low_run_date(base), thresholds=quality.Thresholds(**{knob: value}))
    assert relaxed.passed and phrase in relaxed.check("daily_total_outlier").message, \
        relaxed.check("daily_total_outlier").message


def test_closed_events_are_a_knob(base, tmp_path):
    christmas = dt.date(2015, 12, 25)
    f = as_of(base[0], christmas)
    assert check(tmp_path, f, christmas).passed  # stores closed: not checked
    result = check(tmp_path, f, christmas, thresholds=quality.Thresholds(closed_events=())).check("daily_total_outlier")
    assert not result.passed and "below the median" in result.message
    # an event of the operator's own calendar closes the stores on the run date
    f = low_run_date(base)
    cal = f["calendar"]
    cal["event_name_1"] = cal["event_name_1"].astype(object)
    cal.loc[cal["date"] == pd.Timestamp(RUN_DATE), "event_name_1"] = "Inventory"
    assert failing(check(tmp_path, f)) == {"daily_total_outlier"}
    closed = check(tmp_path, f, thresholds=quality.Thresholds(closed_events="Christmas, Inventory"))
    assert closed.passed and "a Christmas/Inventory day, stores closed" in closed.check("daily_total_outlier").message
