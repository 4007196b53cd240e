"""A seeded, deterministic synthetic retail world in M5's shape, written into the source database.

``generate_world(url, scale, seed)`` fills an empty database (schema from
:mod:`pipeline.data.db`) with ``calendar``, ``items``, ``stores``, ``sell_prices`` and
``sales``: every (store, item, day) from the scale's ``history_start`` to
``CALENDAR_END`` has one original sales row recorded at 23:00 that day, a few
rows are corrected later by an appended row, and prices are recorded at the start
of their Walmart week. The same empty database, scale and seed give identical
table contents.

Demand model, per series (item x store) and day, on the log scale::

    log rate = item base rate + store size + item/store affinity
             + category growth + item and series trends + slow AR(1) level drifts
             + weekday profile + yearly seasonality + SNAP uplift (FOODS)
             + event effects + price response (promotions, regular price moves)
             + store shocks (level shift, disruption) + store-day noise

then ``units ~ Poisson(rate x Gamma(k, 1/k))`` (over-dispersed), forced to 0
before the item's launch, during stock-outs and on Christmas (stores closed).

Everything is vectorised over a (series x days) array per store; each store draws
from its own ``SeedSequence([seed, STORE_STREAM, store_index])`` stream (items and
states likewise), so no result depends on how the rows are chunked for writing.

Command line: ``python -m pipeline.tools.world --scale demo [--url URL] [--seed 42]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.data import db
CALENDAR_START = dt.date(2011, 1, 29)
CALENDAR_END = dt.date(2016, 6, 19)
DEFAULT_RUN_DATE = dt.date(2016, 5, 22)

DEPARTMENTS = ("FOODS_1", "FOODS_2", "FOODS_3", "HOBBIES_1", "HOBBIES_2", "HOUSEHOLD_1", "HOUSEHOLD_2")
CATEGORIES = ("FOODS", "HOBBIES", "HOUSEHOLD")
STATES = ("CA", "TX", "WI")
STORES = ("CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3")


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big a world is: items per department (x all 10 stores) and the first day of sales."""

    name: str
    items_per_dept: dict[str, int]
    history_start: dt.date

    @property
    def n_items(self) -> int:
        return sum(self.items_per_dept.values())

    @property
    def n_series(self) -> int:
        return self.n_items * len(STORES)

    @property
    def n_days(self) -> int:
        return (CALENDAR_END - self.history_start).days + 1


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", {d: 2 for d in DEPARTMENTS}, dt.date(2014, 6, 1)),
    # 90 items in M5's department proportions (3,049 items scaled by 90/3049)
    "demo": Scale(
        "demo",
        {"FOODS_1": 6, "FOODS_2": 12, "FOODS_3": 24, "HOBBIES_1": 12, "HOBBIES_2": 5, "HOUSEHOLD_1": 16, "HOUSEHOLD_2": 15},
        CALENDAR_START,
    ),
    "full": Scale(
        "full",
        {"FOODS_1": 216, "FOODS_2": 398, "FOODS_3": 823, "HOBBIES_1": 416, "HOBBIES_2": 149, "HOUSEHOLD_1": 532, "HOUSEHOLD_2": 515},
        CALENDAR_START,
    ),
}
# 10 % and 30 % of the full world's items (every department, every store, the whole history): the
# scaling benchmark's worlds (bench/run.py), which show how the cost grows with the number of series
for _pct in (10, 30):
    SCALES[f"full{_pct}"] = Scale(f"full{_pct}", {d: round(n * _pct / 100) for d, n in SCALES["full"].items_per_dept.items()},
                                  CALENDAR_START)

# ----------------------------------------------------------------------------------------------
# Calendar
# ----------------------------------------------------------------------------------------------

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


def _easter(year: int) -> dt.date:
    """Western (Gregorian) Easter Sunday, anonymous Gregorian computus."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month = (h + l_ - 7 * m + 90) // 25
    return dt.date(year, month, (h + l_ - 7 * m + 33 * month + 19) % 32)


def _orthodox_easter(year: int) -> dt.date:
    """Orthodox Easter Sunday (Meeus' Julian computus, +13 days: valid 1900-2099)."""
    a, b, c = year % 4, year % 7, year % 19
    d = (19 * c + 15) % 30
    e = (2 * a + 4 * b - d + 34) % 7
    month, day = divmod(d + e + 114, 31)
    return dt.date(year, month, day + 1) + dt.timedelta(days=13)


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
        out.append((_orthodox_easter(y), "OrthodoxEaster", "Religious"))
    for y in years:
        easter = _easter(y)
        out += [
            (easter - dt.timedelta(days=46), "LentStart", "Religious"),
            (easter - dt.timedelta(days=39), "LentWeek2", "Religious"),
            (easter, "Easter", "Cultural"),
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


# ----------------------------------------------------------------------------------------------
# Model constants (why these values: they reproduce M5's orders of magnitude)
# ----------------------------------------------------------------------------------------------

# median daily units of an item in an average store at _TREND_ORIGIN, tuned so that the median
# series in 2016 sells about what M5's does (FOODS ~1, HOBBIES_2 ~0.2) and ~55 % of item-days are 0
_DEPT_RATE = {"FOODS_1": 1.2, "FOODS_2": 1.1, "FOODS_3": 1.5, "HOBBIES_1": 0.5,
              "HOBBIES_2": 0.3, "HOUSEHOLD_1": 1.1, "HOUSEHOLD_2": 0.4}
_RATE_SIGMA = 1.05  # log-normal spread of item rates: many slow movers, a few fast ones
# median regular price in dollars per department (M5 CA_1: FOODS ~2-3, HOBBIES_1 ~7, HOUSEHOLD ~5)
_DEPT_PRICE = {"FOODS_1": 2.9, "FOODS_2": 3.3, "FOODS_3": 2.4, "HOBBIES_1": 6.5,
               "HOBBIES_2": 2.2, "HOUSEHOLD_1": 4.2, "HOUSEHOLD_2": 5.8}
# relative store volumes, after M5's 2016 store totals
_STORE_SIZE = {"CA_1": 1.09, "CA_2": 1.08, "CA_3": 1.42, "CA_4": 0.64, "TX_1": 0.79,
               "TX_2": 0.94, "TX_3": 0.95, "WI_1": 0.92, "WI_2": 1.25, "WI_3": 0.93}
# weekday profile per category, wday 1=Saturday .. 7=Friday (M5: weekends ~+30 %, Tue-Thu lowest)
_WEEKLY = {
    "FOODS": (1.30, 1.34, 1.00, 0.89, 0.86, 0.86, 0.97),
    "HOBBIES": (1.25, 1.22, 0.98, 0.91, 0.90, 0.90, 1.00),
    "HOUSEHOLD": (1.33, 1.31, 0.99, 0.88, 0.86, 0.86, 0.95),
}
# yearly seasonality per category: (amplitude on log scale, day of year of the peak)
_YEARLY = {"FOODS": (0.04, 200), "HOBBIES": (0.12, 340), "HOUSEHOLD": (0.08, 190)}
_GROWTH = {"FOODS": 0.03, "HOBBIES": 0.04, "HOUSEHOLD": 0.08}  # per year, log scale
# SNAP uplift range per category on the store's state's SNAP days (multiplier 1 + u)
_SNAP_UPLIFT = {"FOODS": (0.08, 0.35), "HOBBIES": (0.0, 0.0), "HOUSEHOLD": (0.0, 0.05)}
# event effects: name -> ((day offset, (FOODS, HOBBIES, HOUSEHOLD) multipliers), ...)
_EVENT_EFFECTS = {
    "SuperBowl": ((-1, (1.18, 1.0, 1.03)), (0, (1.10, 0.95, 0.97))),
    "ValentinesDay": ((-1, (1.05, 1.15, 1.0)), (0, (1.03, 1.10, 1.0))),
    "Easter": ((-2, (1.08, 1.10, 1.03)), (-1, (1.15, 1.12, 1.05)), (0, (0.80, 0.75, 0.75))),
    "Mother's day": ((-1, (1.06, 1.10, 1.05)),),
    "MemorialDay": ((-2, (1.10, 1.0, 1.05)), (-1, (1.12, 1.0, 1.05))),
    "IndependenceDay": ((-2, (1.10, 1.05, 1.05)), (-1, (1.18, 1.08, 1.08)), (0, (0.85, 0.85, 0.85))),
    "LaborDay": ((-2, (1.08, 1.0, 1.04)), (-1, (1.10, 1.0, 1.04))),
    "Halloween": tuple((o, (1.06, 1.25, 1.04)) for o in range(-6, 0)) + ((0, (1.05, 1.10, 1.0)),),
    "Thanksgiving": ((-3, (1.15, 1.0, 1.05)), (-2, (1.25, 1.0, 1.05)), (-1, (1.30, 1.0, 1.05)),
                     (0, (0.55, 0.60, 0.60)), (1, (1.0, 1.35, 1.25))),
    "Christmas": tuple((o, (1.06, 1.22, 1.08)) for o in range(-10, -2))
                 + ((-2, (1.15, 1.20, 1.05)), (-1, (1.10, 0.95, 0.85)), (1, (0.95, 1.10, 1.05))),
    "NewYear": ((-1, (1.15, 1.0, 1.0)), (0, (0.80, 0.70, 0.75))),
    "Ramadan starts": ((0, (1.04, 1.0, 1.0)),),
    "Cinco De Mayo": ((0, (1.06, 1.0, 1.0)),),
}
# endings of regular prices and their weights (M5: .98 and .97 dominate, then .88/.48/.47/.50)
_PRICE_ENDINGS = np.array([0.98, 0.97, 0.88, 0.48, 0.47, 0.50, 0.00, 0.94, 0.68, 0.28, 0.78])
_PRICE_ENDING_WEIGHTS = np.array([0.24, 0.23, 0.09, 0.09, 0.06, 0.06, 0.05, 0.05, 0.05, 0.04, 0.04])
_PROMO_ENDINGS = np.array([0.00, 0.50, 0.88, 0.97, 0.48, 0.98])

_LATE_LAUNCH_SHARE = 0.25  # items first sold after history_start (leading zeros, no prices before)
_CORRECTION_SHARE = 0.003  # sales rows later corrected by an appended row
_ROWS_PER_WRITE = 500_000  # bounds memory: bulk_insert holds ~300 bytes a row as Python objects

# stream tags for SeedSequence([seed, tag, index]); fixed forever, or old seeds change meaning
_ITEM_STREAM, _STATE_STREAM, _STORE_STREAM = 0, 1, 2
# reference day of the trends, so a series' level does not depend on the scale's start
_TREND_ORIGIN = np.datetime64("2014-01-01")


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, index]))


# ----------------------------------------------------------------------------------------------
# The world's fixed frame: days, weeks, items
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Frame:
    """Day/week axes of a scale and the item table.

    ``days`` are datetime64[D] history_start..CALENDAR_END; ``week`` maps each day to
    its week index 0..W-1; ``week_start`` is each week's Saturday (the first may be
    before history_start); ``wm_yr_wk`` the week labels.
    """

    days: np.ndarray
    wday: np.ndarray  # 1=Saturday .. 7=Friday
    doy: np.ndarray
    week: np.ndarray
    week_start: np.ndarray
    wm_yr_wk: np.ndarray
    snap: dict[str, np.ndarray]  # state -> bool per day
    christmas: np.ndarray  # bool per day
    event_mult: np.ndarray  # (3 categories, days) multiplier
    items: pd.DataFrame  # item_id, dept_id, cat_id sorted by item_id
    cat: np.ndarray  # category index per item


def _make_frame(scale: Scale, calendar: pd.DataFrame) -> _Frame:
    """Day/week axes of ``scale`` cut from ``calendar`` and the sorted item table."""
    cal = calendar[calendar["date"] >= pd.Timestamp(scale.history_start)].reset_index(drop=True)
    days = cal["date"].to_numpy().astype("datetime64[D]")
    wm = cal["wm_yr_wk"].to_numpy()
    week_change = np.r_[True, wm[1:] != wm[:-1]]
    week = np.cumsum(week_change) - 1
    wday = cal["wday"].to_numpy()
    saturdays = days - (wday - 1).astype("timedelta64[D]")
    event_mult = np.ones((len(CATEGORIES), len(days)))
    for col in ("event_name_1", "event_name_2"):
        for i in np.flatnonzero(cal[col].notna().to_numpy()):
            for offset, mults in _EVENT_EFFECTS.get(cal[col].iat[i], ()):
                if 0 <= i + offset < len(days):
                    event_mult[:, i + offset] *= mults
    rows = [(f"{d}_{k:03d}", d, d.rsplit("_", 1)[0]) for d in DEPARTMENTS for k in range(1, scale.items_per_dept[d] + 1)]
    items = pd.DataFrame(rows, columns=["item_id", "dept_id", "cat_id"]).sort_values("item_id", ignore_index=True)
    dates = pd.DatetimeIndex(days)
    return _Frame(
        days=days,
        wday=wday,
        doy=dates.day_of_year.to_numpy(),
        week=week,
        week_start=saturdays[week_change],
        wm_yr_wk=wm[week_change],
        snap={s: cal[f"snap_{s}"].to_numpy() == 1 for s in STATES},
        christmas=(dates.month == 12) & (dates.day == 25),
        event_mult=event_mult,
        items=items,
        cat=items["cat_id"].map(CATEGORIES.index).to_numpy(),
    )


# ----------------------------------------------------------------------------------------------
# Random parameters: items (shared by stores), states (shared by their stores), stores
# ----------------------------------------------------------------------------------------------


def _ar1(rng: np.random.Generator, n: int, w: int, phi: float, sigma: float) -> np.ndarray:
    """(n, w) stationary AR(1) paths: slow drifts of a level (loop over weeks, vectorised over n)."""
    eps = rng.normal(0.0, sigma, size=(n, w))
    out = np.empty((n, w))
    out[:, 0] = eps[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, w):
        out[:, t] = phi * out[:, t - 1] + eps[:, t]
    return out


def _round_price(raw: np.ndarray, ending: np.ndarray) -> np.ndarray:
    """Prices with the given cents ending (e.g. 3.41 with ending .98 -> 2.98 or 3.98, the nearer)."""
    raw = np.clip(raw, 0.45, 30.5)
    dollars = np.maximum(np.floor(raw - ending + 0.5), 0.0)
    price = dollars + ending
    return np.round(np.where(price < 0.2, 1.0, price), 2)


def _promo_weeks(rng: np.random.Generator, n: int, w: int, p_start: float) -> np.ndarray:
    """(n, w) promotion depth (0 = none): starts with probability p_start a week, lasts 1-3 weeks.

    The depth (10-40 % off) is that of the promotion's first week, carried over its run.
    """
    start = rng.random((n, w)) < p_start
    length = rng.integers(1, 4, size=(n, w))
    depth = rng.uniform(0.10, 0.40, size=(n, w))
    rows, cols = np.nonzero(start)
    diff = np.zeros((n, w + 1), dtype=np.int32)
    np.add.at(diff, (rows, cols), 1)
    np.add.at(diff, (rows, np.minimum(cols + length[rows, cols], w)), -1)
    active = np.cumsum(diff[:, :w], axis=1) > 0
    last_start = np.maximum.accumulate(np.where(start, np.arange(w), 0), axis=1)
    return np.where(active, np.take_along_axis(depth, last_start, axis=1), 0.0)


@dataclasses.dataclass
class _Items:
    log_rate: np.ndarray  # (n,) log of median daily units in an average store
    base_price: np.ndarray  # (n,) unrounded launch list price
    log_price_path: np.ndarray  # (n, W) regular price drift (inflation steps), log scale
    ending: np.ndarray  # (n,) cents ending of regular prices
    elasticity: np.ndarray  # (n,) promotion price elasticity (-3 .. -1.5)
    dispersion: np.ndarray  # (n,) gamma shape k: variance = mean + mean^2 / k
    log_weekly: np.ndarray  # (n, 7) weekday profile by wday-1
    yearly_cos: np.ndarray  # (n,) coefficients of cos / sin of the day of year
    yearly_sin: np.ndarray
    trend: np.ndarray  # (n,) log change per year
    level: np.ndarray  # (n, W) slow AR(1) level drift
    launch: np.ndarray  # (n,) day index of first sale (0: before history_start)
    ramp_days: np.ndarray  # (n,) time constant of the post-launch ramp-up
    snap_uplift: np.ndarray  # (n,)


def _item_params(frame: _Frame, seed: int) -> _Items:
    """Item-level parameters, the same for every store; one stream for all items."""
    rng = _rng(seed, _ITEM_STREAM)
    n, w, d = len(frame.items), len(frame.week_start), len(frame.days)
    depts = frame.items["dept_id"].to_numpy()
    cats = frame.items["cat_id"].to_numpy()
    med_rate = np.array([_DEPT_RATE[x] for x in depts])
    med_price = np.array([_DEPT_PRICE[x] for x in depts])
    log_price = np.log(med_price) + rng.normal(0.0, 0.6, n)
    # dearer items of a department sell slower
    log_rate = np.log(med_rate) + _RATE_SIGMA * rng.standard_normal(n).clip(-3, 3) - 0.35 * (log_price - np.log(med_price))
    # regular price moves: ~0.6 a year, mostly increases of a few percent
    n_changes = rng.poisson(0.6 * w / 52, n)
    rows = np.repeat(np.arange(n), n_changes)
    steps = np.zeros((n, w + 1))
    np.add.at(steps, (rows, rng.integers(1, w + 1, rows.size)), rng.normal(0.04, 0.07, rows.size))
    log_price_path = np.cumsum(steps[:, :w], axis=1)

    weekly = np.array([_WEEKLY[c] for c in cats])
    log_weekly = np.log(weekly / weekly.mean(axis=1, keepdims=True)) + rng.normal(0.0, 0.05, (n, 7))
    # yearly: the category's wave plus an item wave; ~8 % of items strongly seasonal
    cat_amp = np.array([_YEARLY[c][0] for c in cats])
    cat_peak = np.array([_YEARLY[c][1] for c in cats])
    item_amp = np.abs(rng.normal(0.0, 0.08, n))
    strong = rng.random(n) < 0.08
    item_amp[strong] = rng.uniform(0.5, 1.1, strong.sum())
    item_peak = rng.uniform(0, 365.25, n)
    phase_c, phase_i = 2 * np.pi * cat_peak / 365.25, 2 * np.pi * item_peak / 365.25
    yearly_cos = cat_amp * np.cos(phase_c) + item_amp * np.cos(phase_i)
    yearly_sin = cat_amp * np.sin(phase_c) + item_amp * np.sin(phase_i)

    # launches: a fixed share of items (at least one) starts after history_start
    late = np.zeros(n, dtype=bool)
    late[rng.permutation(n)[: max(1, round(_LATE_LAUNCH_SHARE * n))]] = True
    launch_week = rng.integers(2, max(3, w - 12), n)  # not in the last quarter: they need some history
    launch = np.where(late, (frame.week_start[launch_week] - frame.days[0]).astype(np.int64) + rng.integers(0, 7, n), 0)
    snap_lo = np.array([_SNAP_UPLIFT[c][0] for c in cats])
    snap_hi = np.array([_SNAP_UPLIFT[c][1] for c in cats])
    return _Items(
        log_rate=log_rate,
        base_price=np.exp(log_price),
        log_price_path=log_price_path,
        ending=rng.choice(_PRICE_ENDINGS, size=n, p=_PRICE_ENDING_WEIGHTS / _PRICE_ENDING_WEIGHTS.sum()),
        elasticity=rng.uniform(-3.0, -1.5, n),
        dispersion=np.exp(rng.normal(np.log(5.0), 0.6, n)).clip(0.8, 40.0),
        log_weekly=log_weekly,
        yearly_cos=yearly_cos,
        yearly_sin=yearly_sin,
        trend=rng.normal(0.0, 0.10, n),
        level=_ar1(rng, n, w, 0.98, 0.03),
        launch=np.clip(launch, 0, d - 1),
        ramp_days=rng.uniform(7, 45, n),
        snap_uplift=rng.uniform(snap_lo, snap_hi),
    )


@dataclasses.dataclass
class _State:
    log_price: np.ndarray  # (n,) state price level of the item
    promo: np.ndarray  # (n, W) state-wide promotion depth
    affinity: np.ndarray  # (n,) regional taste for the item


def _state_params(frame: _Frame, seed: int, state: str) -> _State:
    """Parameters shared by the stores of ``state`` (regional prices, promotions, tastes)."""
    rng = _rng(seed, _STATE_STREAM, STATES.index(state))
    n, w = len(frame.items), len(frame.week_start)
    return _State(
        log_price=rng.normal(0.0, 0.03, n),
        promo=_promo_weeks(rng, n, w, 0.010),
        affinity=rng.normal(0.0, 0.25, n),
    )


@dataclasses.dataclass
class _StoreWorld:
    """One store's generated data: units (n, D) int16, weekly prices (n, W), first priced week."""

    units: np.ndarray
    price: np.ndarray
    first_week: np.ndarray
    corrections: pd.DataFrame  # item (index), day (index), units, recorded_at (datetime64[s])


def _mask_runs(rng: np.random.Generator, n: int, d: int, per_year: float, mean_len: float, max_len: int) -> np.ndarray:
    """(n, d) bool: random runs of days (e.g. stock-outs), ``per_year`` runs a year per row."""
    counts = rng.poisson(per_year * d / 365.25, n)
    rows = np.repeat(np.arange(n), counts)
    starts = rng.integers(0, d, rows.size)
    lengths = np.minimum(2 + rng.geometric(1.0 / (mean_len - 1), rows.size), max_len)
    diff = np.zeros((n, d + 1), dtype=np.int32)
    np.add.at(diff, (rows, starts), 1)
    np.add.at(diff, (rows, np.minimum(starts + lengths, d)), -1)
    return np.cumsum(diff[:, :d], axis=1) > 0


def _store_shock(rng: np.random.Generator, d: int) -> np.ndarray:
    """(d,) log multiplier of store-wide events: a lasting level shift and a few-week disruption."""
    shock = np.zeros(d)
    if rng.random() < 0.7:  # competitor opening / remodel: lasting shift, phased in over 4 weeks
        at = int(rng.integers(d // 10, d - d // 10))
        size = rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.30)
        shock += size * np.clip((np.arange(d) - at) / 28.0, 0.0, 1.0)
    if rng.random() < 0.6:  # construction, flooding, system outage: a dip of 1-6 weeks
        at = int(rng.integers(0, d))
        shock[at : at + int(rng.integers(7, 43))] += np.log(rng.uniform(0.3, 0.75))
    return shock


def _generate_store(frame: _Frame, items: _Items, state: _State, seed: int, store: str) -> _StoreWorld:
    """Draw one store's daily units, weekly prices and corrections from its own stream."""
    rng = _rng(seed, _STORE_STREAM, STORES.index(store))
    n, d, w = len(frame.items), len(frame.days), len(frame.week_start)
    week = frame.week

    # launch: some stores list a late item a few weeks after the others
    lag = np.where((items.launch > 0) & (rng.random(n) < 0.35), rng.integers(7, 57, n), 0)
    launch = np.minimum(items.launch + lag, d - 1)
    first_week = week[launch]

    # prices: item path x state and store levels, rounded to the item's ending; promotions on top
    store_log_price = rng.normal(0.0, 0.01, n)
    ref_price = items.base_price * np.exp(state.log_price + store_log_price)
    regular = _round_price(ref_price[:, None] * np.exp(items.log_price_path), items.ending[:, None])
    depth = np.maximum(state.promo, _promo_weeks(rng, n, w, 0.008))
    promo_ending = rng.choice(_PROMO_ENDINGS, size=(n, w))
    promo_price = _round_price(regular * (1 - depth), promo_ending)
    promo_price = np.where(promo_price < regular, promo_price, np.round(regular * (1 - depth), 2))
    price = np.where(depth > 0, np.maximum(promo_price, 0.01), regular)

    # log demand, built in place to bound memory at full scale
    t = (frame.days - _TREND_ORIGIN).astype(np.float64) / 365.25
    growth = np.array([_GROWTH[c] for c in CATEGORIES])[frame.cat]
    log_lam = np.empty((n, d))
    log_lam[:] = (items.log_rate + np.log(_STORE_SIZE[store]) + state.affinity + rng.normal(0.0, 0.4, n))[:, None]
    log_lam += (growth + items.trend + rng.normal(0.0, 0.08, n))[:, None] * t
    log_lam += (items.level + _ar1(rng, n, w, 0.9, 0.05))[:, week]
    log_lam += (items.log_weekly + rng.normal(0.0, 0.03, 7))[:, frame.wday - 1]
    omega = 2 * np.pi * frame.doy / 365.25
    log_lam += items.yearly_cos[:, None] * np.cos(omega) + items.yearly_sin[:, None] * np.sin(omega)
    log_lam += np.log1p(items.snap_uplift)[:, None] * frame.snap[store[:2]]
    log_lam += np.log(frame.event_mult)[frame.cat]
    # promotions move demand by the full elasticity, regular price changes by half of it
    log_lam += (items.elasticity[:, None] * np.log(price / regular))[:, week]
    log_lam += (0.5 * items.elasticity[:, None] * np.log(regular / ref_price[:, None]))[:, week]
    log_lam += (_store_shock(rng, d) + rng.normal(0.0, 0.06, d))[None, :]
    lam = np.exp(log_lam, out=log_lam)
    # a new item's demand builds up over its first weeks
    since = np.arange(d)[None, :] - launch[:, None]
    lam *= np.where(launch[:, None] > 0, -np.expm1(-np.maximum(since + 1, 0) / items.ramp_days[:, None]), 1.0)
    # rare bulk purchases: a heavy right tail
    n_spikes = rng.binomial(n * d, 0.0005)
    flat = lam.reshape(-1)
    flat[rng.integers(0, n * d, n_spikes)] *= rng.uniform(2, 5, n_spikes)

    # over-dispersed counts: gamma-Poisson (negative binomial) with item-specific shape
    k = items.dispersion[:, None]
    lam *= rng.standard_gamma(np.broadcast_to(k, (n, d))) / k
    units = np.minimum(rng.poisson(lam), np.iinfo(np.int16).max).astype(np.int16)
    del lam, log_lam
    prelaunch = since < 0
    closed = prelaunch | frame.christmas[None, :] | _mask_runs(rng, n, d, per_year=0.7, mean_len=10.0, max_len=60)
    units[closed] = 0  # not yet listed, store closed, or out of stock

    return _StoreWorld(units, price, first_week, _corrections(rng, frame, units, prelaunch))


def _corrections(rng: np.random.Generator, frame: _Frame, units: np.ndarray, prelaunch: np.ndarray) -> pd.DataFrame:
    """Later corrections of ~0.3 % of the store's sales rows (not before launch, not on Christmas).

    Each is recorded 1-5 days after its date at a random time of day, never after
    CALENDAR_END, and changes the units by a small non-zero amount (never below 0).
    """
    n, d = units.shape
    pick = np.unique(rng.choice(n * d, size=rng.binomial(n * d, _CORRECTION_SHARE), replace=False))
    item, day = np.divmod(pick, d)
    delay = rng.integers(1, 6, pick.size)
    seconds = rng.integers(0, 24 * 3600 // 60, pick.size) * 60
    delta = rng.choice(np.array([-3, -2, -1, -1, 1, 1, 2, 3, 5]), size=pick.size)
    last_day = (np.datetime64(CALENDAR_END) - frame.days[0]).astype(np.int64)
    keep = (day + delay <= last_day) & ~prelaunch[item, day] & ~frame.christmas[day]
    item, day, delay, seconds, delta = item[keep], day[keep], delay[keep], seconds[keep], delta[keep]
    old = units[item, day].astype(np.int64)
    new = np.where(old + delta >= 0, old + delta, old - delta)  # stays non-negative and != old
    recorded = (frame.days[day] + delay.astype("timedelta64[D]")).astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    return pd.DataFrame({"item": item, "day": day, "units": new, "recorded_at": recorded})


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _sales_frames(frame: _Frame, stores: list[_StoreWorld], chunk_days: int):
    """Yield sales DataFrames of up to ``chunk_days`` days each, in (date, store, item, recorded_at) order.

    Days first keeps recorded_at almost monotone (the index on it only appends) and
    the rows of each store ordered by date then item; a correction follows its original.
    """
    n, d = len(frame.items), len(frame.days)
    s = len(stores)
    units = np.stack([w.units for w in stores])  # (stores, items, days) int16
    corr = pd.concat([w.corrections.assign(store=i) for i, w in enumerate(stores)], ignore_index=True)
    corr["key"] = (corr["day"] * s + corr["store"]) * n + corr["item"]
    corr = corr.sort_values("key", ignore_index=True)
    item_ids = frame.items["item_id"].to_numpy()
    for d0 in range(0, d, chunk_days):
        d1 = min(d, d0 + chunk_days)
        block = units[:, :, d0:d1].transpose(2, 0, 1).reshape(-1)
        key = np.arange(block.size)
        store = key // n % s
        item = key % n
        day = d0 + key // (n * s)
        c = corr[(corr["day"] >= d0) & (corr["day"] < d1)]
        pos = (c["key"].to_numpy() - d0 * s * n) + 1  # insert right after the original row
        date = frame.days[day].astype("datetime64[s]")
        recorded = date + np.timedelta64(23 * 3600, "s")

        def ins(a: np.ndarray, v: np.ndarray) -> np.ndarray:
            return np.insert(a, pos, v)

        yield pd.DataFrame(
            {
                "store_id": pd.Categorical.from_codes(ins(store, c["store"].to_numpy()), categories=list(STORES)),
                "item_id": pd.Categorical.from_codes(ins(item, c["item"].to_numpy()), categories=item_ids),
                "date": ins(date, frame.days[c["day"].to_numpy()].astype("datetime64[s]")),
                "units": ins(block.astype(np.int64), c["units"].to_numpy()),
                "recorded_at": ins(recorded, c["recorded_at"].to_numpy().astype("datetime64[s]")),
            }
        )


def _price_frames(frame: _Frame, stores: list[_StoreWorld], chunk_weeks: int):
    """Yield sell_prices DataFrames in (week, store, item) order, each priced week from launch on."""
    n, w, s = len(frame.items), len(frame.week_start), len(stores)
    price = np.stack([x.price for x in stores])  # (stores, items, weeks)
    first = np.stack([x.first_week for x in stores])  # (stores, items)
    item_ids = frame.items["item_id"].to_numpy()
    for w0 in range(0, w, chunk_weeks):
        w1 = min(w, w0 + chunk_weeks)
        wk = np.arange(w0, w1)[:, None, None]
        valid = (wk >= first[None, :, :]).reshape(-1)
        key = np.flatnonzero(valid)
        week = w0 + key // (n * s)
        yield pd.DataFrame(
            {
                "store_id": pd.Categorical.from_codes(key // n % s, categories=list(STORES)),
                "item_id": pd.Categorical.from_codes(key % n, categories=item_ids),
                "wm_yr_wk": frame.wm_yr_wk[week].astype(np.int64),
                "sell_price": price[:, :, w0:w1].transpose(2, 0, 1).reshape(-1)[key],
                "recorded_at": frame.week_start[week].astype("datetime64[s]"),
            }
        )


def _engine(url: str) -> sa.Engine:
    """An engine for ``url``; a SQLite file (and its folder) is created when missing."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return engine


def _refuse_existing(engine: sa.Engine) -> None:
    """Raise ValueError if any source table already holds rows: source data is never modified."""
    with engine.connect() as conn:
        for table in (db.sales, db.sell_prices, db.calendar, db.items, db.stores):
            if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None:
                what = "sales" if table is db.sales else f"source data (table {table.name})"
                raise ValueError(
                    f"database {db.redact(str(engine.url))} already holds {what}; "
                    "the synthetic world is only written into an empty database"
                )


def generate_world(
    url: str,
    scale: str = "demo",
    seed: int = 42,
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Write a synthetic world of ``scale`` (a key of SCALES) drawn with ``seed`` into the database at ``url``.

    Creates the schema, refuses (ValueError) a database whose source tables already
    hold rows, and writes calendar, items, stores, sell_prices and sales.
    ``progress(done_fraction, message)`` is called now and then if given.

    Returns ``{"scale", "seed", "rows": {table: rows written}, "series", "items",
    "stores", "corrections", "first_date", "last_date", "seconds"}`` (dates as
    ``datetime.date``: the first and last day of sales).
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    report = progress or (lambda fraction, message: None)
    began = time.perf_counter()
    sc = SCALES[scale]
    engine = _engine(url)
    try:
        db.create_schema(engine)
        _refuse_existing(engine)
        calendar = build_calendar()
        frame = _make_frame(sc, calendar)
        rows = {
            "calendar": db.bulk_insert(engine, db.calendar, calendar),
            "items": db.bulk_insert(engine, db.items, frame.items),
            "stores": db.bulk_insert(engine, db.stores, pd.DataFrame({"store_id": STORES, "state_id": [s[:2] for s in STORES]})),
        }
        report(0.01, "calendar, items, stores written")

        items = _item_params(frame, seed)
        states = {s: _state_params(frame, seed, s) for s in STATES}
        worlds = []
        for i, store in enumerate(STORES):
            worlds.append(_generate_store(frame, items, states[store[:2]], seed, store))
            report(0.01 + 0.29 * (i + 1) / len(STORES), f"generated store {store}")

        n_series = sc.n_series
        rows["sell_prices"] = 0
        chunk_weeks = max(1, _ROWS_PER_WRITE // n_series)
        for chunk in _price_frames(frame, worlds, chunk_weeks):
            rows["sell_prices"] += db.bulk_insert(engine, db.sell_prices, chunk)
        report(0.35, "sell_prices written")

        rows["sales"] = 0
        n_days = len(frame.days)
        chunk_days = max(1, _ROWS_PER_WRITE // n_series)
        for j, chunk in enumerate(_sales_frames(frame, worlds, chunk_days)):
            rows["sales"] += db.bulk_insert(engine, db.sales, chunk)
            done = min(n_days, (j + 1) * chunk_days)
            report(0.35 + 0.65 * done / n_days, f"sales written through {frame.days[done - 1]}")
    finally:
        engine.dispose()
    return {
        "scale": scale,
        "seed": seed,
        "rows": rows,
        "series": n_series,
        "items": len(frame.items),
        "stores": len(STORES),
        "corrections": rows["sales"] - n_series * n_days,
        "first_date": sc.history_start,
        "last_date": CALENDAR_END,
        "seconds": round(time.perf_counter() - began, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: generate a world into ``--url`` (default: the configured source database)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.world", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: tasks.config.database_url())")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.url is None:
        from tasks import config
        args.url = config.database_url()

    from pipeline.tools.progress import ProgressBar

    show = ProgressBar(f"world {args.scale}")

    try:
        summary = generate_world(args.url, scale=args.scale, seed=args.seed, progress=show)
    except (ValueError, ImportError, sa.exc.SQLAlchemyError) as exc:  # bad input or unreachable database
        # one line, without the SQL statement SQLAlchemy appends to its messages
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        show.close()
        from pipeline.data import masking
        print(f"pipeline.tools.world: {masking.mask(reason)}", file=sys.stderr)
        return 1
    show.close()
    print(json.dumps({"url": db.redact(args.url), **summary}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
