"""The online model's features: every series' feature row of a target day t, from sales up to t − 28 only.

The online model (:mod:`pipeline.core.online_model.learner`) learns each day's sales as they are
recorded. Like the batch model it is direct: the row of target day t uses sales up to
``a = t − 28`` (the anchor), so one state of the model forecasts all 28 days after a run date.

Levels are scale-free: each series' sales features are divided by its level ``L`` (its mean units
per recorded day over the 91 days up to the anchor, at least ``LEVEL_FLOOR``), the target is
``units / L`` and a prediction is multiplied back by ``L``. One linear model then serves fast and
slow movers alike, and a weekday effect is a share of the level, not a number of units.

A row is *active* when its series sold something in the 91 days up to the anchor; the others
(not launched yet, or dormant) are forecast 0 and not learnt from. Vectorised over series and
target days (numpy); no I/O.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.core.features import _cumsum0  # the batch engine's window sums: one definition
from pipeline.core.spec import MIN_LAG
SAME_WEEKDAY_LAGS = (28, 35, 42, 49)
MEAN_WINDOWS = (7, 28, 91)
WEEKDAY_WEEKS = (4, 13)
HISTORY_DAYS = 91  # the longest window: the days up to the anchor a row needs
LEVEL_FLOOR = 0.1  # units per day: a level below it is this (no division by ~0)
EVENT_TYPES = ("Cultural", "National", "Religious", "Sporting")  # M5's event types
LEVEL_FEATURES = ([f"lag_{lag}" for lag in SAME_WEEKDAY_LAGS] + [f"wday_mean_{w}" for w in WEEKDAY_WEEKS]
                  + [f"rmean_{w}" for w in MEAN_WINDOWS])
BASE_FEATURES = (LEVEL_FEATURES + ["log_level", "rzero_28"] + [f"wday_{d}" for d in range(1, 8)]
                 + ["event"] + [f"event_{t}" for t in EVENT_TYPES] + ["snap", "price_change", "price_norm"])


@dataclasses.dataclass(frozen=True)
class Panel:
    """What the features of a set of target days are computed from, for ``n`` series.

    ``units``: (n × days) float64 sales, NaN where the series has no row, column 0 = day ``first_day``
    (a day number, see :func:`pipeline.core.days`); ``prices``: (n × weeks) weekly prices carried
    forward past the last recorded week (NaN before the first), column k = ``weeks[k]``;
    ``calendar``: per day from ``first_day`` (same columns as ``units`` and beyond, up to the last
    target day): ``wday`` (1..7), ``week`` (index into ``weeks``), ``event`` type names ("" = none,
    two per day), and ``snap`` per state; ``state``, ``dept``, ``store``: per series labels.
    """

    units: np.ndarray
    first_day: int
    prices: np.ndarray
    wday: np.ndarray
    week: np.ndarray
    events: np.ndarray  # (days × 2) str
    snap: dict[str, np.ndarray]
    state: np.ndarray
    dept: np.ndarray
    store: np.ndarray

    def __post_init__(self):
        n = self.units.shape[0]
        for name in ("prices", "state", "dept", "store"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"online model panel: {name} has {len(getattr(self, name))} series, units has {n}")


def feature_names(depts: list[str], stores: list[str]) -> list[str]:
    """The feature columns in order: ``BASE_FEATURES``, then one indicator per department and store."""
    return BASE_FEATURES + [f"dept={d}" for d in depts] + [f"store={s}" for s in stores]


@dataclasses.dataclass(frozen=True)
class Rows:
    """Feature rows of target days: series-major (row = series × len(days) + k), like the forecast."""

    names: list[str]
    x: np.ndarray  # (rows × features) float64
    level: np.ndarray  # (rows,) the series' level L at the row's anchor
    active: np.ndarray  # (rows,) bool


def features(panel: Panel, days: np.ndarray, depts: list[str], stores: list[str]) -> Rows:
    """The feature rows of every series for the target day numbers ``days``.

    Raises ValueError when a day's anchor lies outside the sales panel or needs history
    before it (the caller reads ``HISTORY_DAYS`` days up to the anchor).
    """
    days = np.asarray(days, dtype=np.int64)
    anchor = days - MIN_LAG - panel.first_day  # panel column of each target day's anchor
    n, width = panel.units.shape
    if len(days) and (anchor.min() - (HISTORY_DAYS - 1) < 0 or anchor.max() >= width):
        raise ValueError(f"online model features: target days {days.min()}..{days.max()} need sales from day "
                         f"{days.min() - MIN_LAG - HISTORY_DAYS + 1} to {days.max() - MIN_LAG}; the panel holds "
                         f"days {panel.first_day}..{panel.first_day + width - 1}")
    present = ~np.isnan(panel.units)
    filled = np.where(present, panel.units, 0.0)
    csum = _cumsum0(filled)
    ccount = _cumsum0(present.astype(np.float64))
    czero = _cumsum0((present & (filled == 0)).astype(np.float64))
    end = anchor + 1  # exclusive end of every window

    def window(c: np.ndarray, w: int) -> np.ndarray:
        return c[:, end] - c[:, end - w]

    out: dict[str, np.ndarray] = {}
    means, counts = {}, {}
    for w in MEAN_WINDOWS:
        counts[w] = window(ccount, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[w] = np.where(counts[w] > 0, window(csum, w) / counts[w], 0.0)
    level = np.maximum(means[HISTORY_DAYS], LEVEL_FLOOR)
    active = window(csum, HISTORY_DAYS) > 0
    for lag in SAME_WEEKDAY_LAGS:
        out[f"lag_{lag}"] = filled[:, anchor - (lag - MIN_LAG)] / level
    for weeks in WEEKDAY_WEEKS:
        cols = anchor[None, :] - 7 * np.arange(weeks)[:, None]  # (weeks × days)
        got, cnt = filled[:, cols].sum(axis=1), present[:, cols].sum(axis=1)
        out[f"wday_mean_{weeks}"] = np.where(cnt > 0, got / np.maximum(cnt, 1), 0.0) / level
    for w in MEAN_WINDOWS:
        out[f"rmean_{w}"] = means[w] / level
    out["log_level"] = np.log1p(level)
    out["rzero_28"] = np.where(counts[28] > 0, window(czero, 28) / np.maximum(counts[28], 1), 1.0)

    col = days - panel.first_day  # calendar column of each target day
    if len(days) and col.max() >= len(panel.wday):
        raise ValueError(f"online model features: the calendar has no row for day {days.max()}")
    wday = panel.wday[col]
    for d in range(1, 8):
        out[f"wday_{d}"] = np.broadcast_to((wday == d).astype(np.float64), (n, len(days)))
    ev = panel.events[col]
    out["event"] = np.broadcast_to((ev != "").any(axis=1).astype(np.float64), (n, len(days)))
    for t in EVENT_TYPES:
        out[f"event_{t}"] = np.broadcast_to((ev == t).any(axis=1).astype(np.float64), (n, len(days)))
    snap = np.zeros((n, len(days)))
    for st, flags in panel.snap.items():
        snap[panel.state == st] = flags[col]
    out["snap"] = snap

    week_t, week_a = panel.week[col], panel.week[anchor]
    price_t, price_a = panel.prices[:, week_t], panel.prices[:, week_a]
    top = np.fmax.accumulate(panel.prices, axis=1)[:, week_t]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["price_change"] = np.nan_to_num(price_t / price_a - 1.0, nan=0.0, posinf=0.0, neginf=0.0)
        out["price_norm"] = np.nan_to_num(price_t / top, nan=1.0, posinf=1.0, neginf=1.0)

    names = feature_names(depts, stores)
    x = np.zeros((n, len(days), len(names)))
    for j, name in enumerate(BASE_FEATURES):
        x[:, :, j] = out[name]
    base = len(BASE_FEATURES)
    for j, d in enumerate(depts):
        x[panel.dept == d, :, base + j] = 1.0
    for j, s in enumerate(stores):
        x[panel.store == s, :, base + len(depts) + j] = 1.0
    return Rows(names=names, x=x.reshape(n * len(days), len(names)), level=level.ravel(), active=active.ravel())
