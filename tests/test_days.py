"""Tests of pipeline.core.days: one conversion of a run date to a day, and day numbers."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.core.days import as_day, day_number, day_numbers


def test_as_day_of_every_kind_of_date_is_the_same_midnight():
    day = pd.Timestamp("2016-05-22")
    for value in (dt.date(2016, 5, 22), "2016-05-22", dt.datetime(2016, 5, 22, 17, 30), pd.Timestamp("2016-05-22 23:59"),
                  pd.Timestamp("2016-05-22 08:00", tz="America/Los_Angeles")):
        got = as_day(value)
        assert got == day and got.tz is None, value
    assert as_day(dt.date(2016, 5, 22)) == pd.Timestamp(dt.date(2016, 5, 22))  # what the stages compared before


@pytest.mark.parametrize("bad", [None, "not a date", float("nan")])
def test_as_day_names_what_is_not_a_date(bad):
    with pytest.raises(ValueError, match="origin must be a date"):
        as_day(bad, "origin")


def test_day_numbers():
    assert day_number(pd.Timestamp("1970-01-02")) == 1
    dates = pd.Series([pd.Timestamp("2016-01-01 10:00"), pd.Timestamp("2016-01-03")])
    np.testing.assert_array_equal(day_numbers(dates, "x"), [16801, 16803])
    np.testing.assert_array_equal(day_numbers(pd.Series(["2016-01-01", "2016-01-03"]), "x"), [16801, 16803])
    with pytest.raises(ValueError, match="calendar has missing dates"):
        day_numbers(pd.Series([pd.Timestamp("2016-01-01"), pd.NaT]), "calendar")
