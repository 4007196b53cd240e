"""The calendar table in M5's conventions: Walmart weeks, events (fixed, n-th weekday, Easter-based, tabled), SNAP days."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from dateutil.easter import EASTER_ORTHODOX, easter

from pipeline.data import db
from pipeline.tools.world.scales import CALENDAR_END, CALENDAR_START

_MON, _THU, _SAT, _SUN = 0, 3, 5, 6  # datetime.weekday() numbers

# (month, day, name, type): the same date every year
_FIXED_EVENTS = (
    (1, 1, "NewYear", "National"),
    (1, 7, "OrthodoxChristmas", "Religious"),
    (2, 14, "ValentinesDay", "Cultural"),
    (3, 17, "StPatricksDay", "Cultural"),
    (5, 5, "Cinco De Mayo", "Cultural"),
    (7, 4, "IndependenceDay", "National"),
    (10, 31, "Halloween", "Cultural"),
    (11, 11, "VeteransDay", "National"),
    (12, 25, "Christmas", "National"),
)
# (month, weekday, n, name, type): the n-th (-1: last) such weekday of the month
_NTH_WEEKDAY_EVENTS = (
    (1, _MON, 3, "MartinLutherKingDay", "National"),
    (2, _SUN, 1, "SuperBowl", "Sporting"),  # first Sunday of February held 2011-2016
    (2, _MON, 3, "PresidentsDay", "National"),
    (5, _SUN, 2, "Mother's day", "Cultural"),
    (5, _MON, -1, "MemorialDay", "National"),
    (6, _SUN, 3, "Father's day", "Cultural"),
    (9, _MON, 1, "LaborDay", "National"),
    (10, _MON, 2, "ColumbusDay", "National"),
    (11, _THU, 4, "Thanksgiving", "National"),
)
# Lunar / schedule-driven dates with no simple rule, for the calendar's years.
_TABLE_EVENTS = {
    ("NBAFinalsStart", "Sporting"): ("2011-05-31", "2012-06-12", "2013-06-06", "2014-06-05", "2015-06-04", "2016-06-02"),
    ("NBAFinalsEnd", "Sporting"): ("2011-06-12", "2012-06-21", "2013-06-20", "2014-06-15", "2015-06-16", "2016-06-19"),
    ("Purim End", "Religious"): ("2011-03-20", "2012-03-08", "2013-02-24", "2014-03-16", "2015-03-05", "2016-03-24"),
    ("Pesach End", "Religious"): ("2011-04-26", "2012-04-14", "2013-04-02", "2014-04-22", "2015-04-11", "2016-04-30"),
    ("Ramadan starts", "Religious"): ("2011-08-01", "2012-07-20", "2013-07-09", "2014-06-29", "2015-06-18", "2016-06-07"),
    ("Eid al-Fitr", "Religious"): ("2011-08-31", "2012-08-19", "2013-08-08", "2014-07-29", "2015-07-18", "2016-07-07"),
    ("EidAlAdha", "Religious"): ("2011-11-07", "2012-10-26", "2013-10-15", "2014-10-04", "2015-09-24", "2016-09-12"),
    ("Chanukah End", "Religious"): ("2011-12-28", "2012-12-16", "2013-12-05", "2014-12-24", "2015-12-14", "2017-01-01"),
}


def _fiscal_year_start(year: int) -> dt.date:
    """The Saturday that opens Walmart year ``year``: the day after January's last Friday."""
    jan26 = dt.date(year, 1, 26)
    return jan26 + dt.timedelta(days=(_SAT - jan26.weekday()) % 7)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th ``weekday`` (0=Monday) of the month; n=-1 is the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _event_list(first: dt.date, last: dt.date) -> list[tuple[dt.date, str, str]]:
    """Every (date, event_name, event_type) in [first, last].

    Listed so that, when two events share a day, the first listed becomes
    ``event_name_1`` (sporting and religious movable feasts first, as M5 mostly does).
    """
    out: list[tuple[dt.date, str, str]] = []
    years = range(first.year, last.year + 1)
    for (name, kind), dates in _TABLE_EVENTS.items():
        out += [(dt.date.fromisoformat(s), name, kind) for s in dates]
    for y in years:
        out.append((easter(y, EASTER_ORTHODOX), "OrthodoxEaster", "Religious"))
    for y in years:
        western = easter(y)  # dateutil's default method: Western (Gregorian) Easter Sunday
        out += [
            (western - dt.timedelta(days=46), "LentStart", "Religious"),
            (western - dt.timedelta(days=39), "LentWeek2", "Religious"),
            (western, "Easter", "Cultural"),
        ]
        out += [(dt.date(y, m, d), name, kind) for m, d, name, kind in _FIXED_EVENTS]
        out += [(_nth_weekday(y, m, wd, n), name, kind) for m, wd, n, name, kind in _NTH_WEEKDAY_EVENTS]
    in_range = [e for e in out if first <= e[0] <= last]
    return sorted(in_range, key=lambda e: e[0])  # stable: keeps the listing order within a day


# SNAP benefit days (day of month) per state, as in M5's calendar
SNAP_DAYS = {
    "CA": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    "TX": (1, 3, 5, 6, 7, 9, 11, 12, 13, 15),
    "WI": (2, 3, 5, 6, 8, 9, 11, 12, 14, 15),
}


def build_calendar() -> pd.DataFrame:
    """The calendar, one row per day CALENDAR_START..CALENDAR_END (1,969 rows), M5's conventions.

    Returns the columns of ``db.calendar``: ``date`` (datetime64), ``wm_yr_wk``
    (``1`` + 2-digit Walmart year + 2-digit week; weeks start on Saturday, week 1
    the day after January's last Friday), ``weekday``, ``wday`` (1=Saturday ..
    7=Friday), ``month``, ``year``, two event name/type pairs (None where there is
    none) and the 0/1 SNAP flags ``snap_CA``, ``snap_TX``, ``snap_WI``.
    """
    dates = pd.date_range(CALENDAR_START, CALENDAR_END, freq="D")
    years = dates.year.to_numpy()
    starts = {y: np.datetime64(_fiscal_year_start(int(y)), "D") for y in range(years.min() - 1, years.max() + 1)}
    day = dates.to_numpy().astype("datetime64[D]")
    start_this = np.array([starts[y] for y in years])
    start_prev = np.array([starts[y - 1] for y in years])
    in_this = day >= start_this
    fy = np.where(in_this, years, years - 1)
    week = (day - np.where(in_this, start_this, start_prev)).astype(np.int64) // 7 + 1
    frame = pd.DataFrame(
        {
            "date": dates.astype("datetime64[s]"),
            "wm_yr_wk": 10000 + (fy % 100) * 100 + week,
            "weekday": dates.day_name().to_numpy(dtype=object),
            "wday": (dates.day_of_week.to_numpy() - _SAT) % 7 + 1,
            "month": dates.month.to_numpy(),
            "year": years,
        }
    )
    names = np.full((len(dates), 2), None, dtype=object)
    kinds = np.full((len(dates), 2), None, dtype=object)
    filled = np.zeros(len(dates), dtype=np.int64)
    for date, name, kind in _event_list(CALENDAR_START, CALENDAR_END):
        i = (date - CALENDAR_START).days
        if filled[i] < 2:  # a third event on one day has never happened in range; drop it if it did
            names[i, filled[i]], kinds[i, filled[i]] = name, kind
            filled[i] += 1
    # object columns keep None (SQL NULL); pandas would otherwise infer str with NaN
    for k in (0, 1):
        frame[f"event_name_{k + 1}"] = pd.Series(names[:, k], dtype=object)
        frame[f"event_type_{k + 1}"] = pd.Series(kinds[:, k], dtype=object)
    dom = dates.day.to_numpy()
    for state, days in SNAP_DAYS.items():
        frame[f"snap_{state}"] = np.isin(dom, days).astype(np.int64)
    return frame[[c.name for c in db.calendar.columns]]

