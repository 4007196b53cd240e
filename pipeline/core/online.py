"""Online features: the feature rows of ONE series, in plain code, for the prediction service.

This is deliberately not the vectorised batch engine (:mod:`pipeline.core.features`): it walks one
series' days and weeks with Python lists, so a bug in either path shows up as a difference between
them (``tests/test_online_features.py`` proves them equal, value for value, on whole worlds). It
follows the batch engine's definitions exactly, down to the order of float operations where the
result could depend on it (window sums of whole units are exact; a mean is sum / count; a standard
deviation is ``sqrt((Σx² − n·mean²) / (n − 1))``; the item's mean price sums the stores in
``store_id`` order, as :func:`pipeline.core.features.item_mean_prices` does).

What-if prices (``price_overrides``) replace the series' price of whole Walmart weeks of the
forecast: that week's price features (price, against the item's own history, week over week,
against the item in other stores) are computed with the new price; every other week's features are
the ones without the override.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Mapping, Sequence

from pipeline.core.errors import DataError
from pipeline.core.features import (AGE_CAP, FEATURES, ID_COLUMNS, LAGS, MEAN_WINDOWS, STD_WINDOWS, ZERO_WINDOW)
from pipeline.core.spec import MIN_LAG, ForecastSpec

NAN = math.nan
EVENT_COLUMNS = ("event_name_1", "event_type_1", "event_name_2", "event_type_2")
# the batch engine's column order (without the pooled features, which need the whole store)
COLUMNS = ID_COLUMNS + [c for c in FEATURES if c not in ID_COLUMNS]


def _div(a: float, b: float) -> float:
    """``a / b`` as numpy divides floats: NaN in, NaN out; ±inf (or NaN for 0/0) on a zero divisor."""
    if a != a or b != b:
        return NAN
    if b == 0:
        return NAN if a == 0 else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


@dataclasses.dataclass(frozen=True)
class CalendarDay:
    """One row of the calendar table, as the features read it."""

    date: dt.date
    wm_yr_wk: int
    wday: int
    month: int
    events: tuple  # event_name_1, event_type_1, event_name_2, event_type_2 (None when absent)
    snap: Mapping[str, int]  # state_id -> SNAP flag


@dataclasses.dataclass(frozen=True)
class Calendar:
    """The calendar in date order, with the lookups the single-series path needs."""

    days: tuple[CalendarDay, ...]

    def __post_init__(self):
        dates = [d.date for d in self.days]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise ValueError("calendar days must be unique and in date order")
        object.__setattr__(self, "_index", {d: i for i, d in enumerate(dates)})
        weeks: list[int] = []
        for d in self.days:
            if not weeks or weeks[-1] != d.wm_yr_wk:
                if d.wm_yr_wk in weeks:
                    raise ValueError(f"Walmart week {d.wm_yr_wk} is not one run of days in the calendar")
                weeks.append(d.wm_yr_wk)
        object.__setattr__(self, "weeks", tuple(weeks))
        object.__setattr__(self, "_week_index", {w: i for i, w in enumerate(weeks)})

    @property
    def start(self) -> dt.date:
        return self.days[0].date

    def day(self, date: dt.date) -> CalendarDay:
        i = self._index.get(date)
        if i is None:
            raise DataError(f"the calendar table has no row for {date}: forecast days need their calendar "
                            "(events, SNAP, Walmart week)")
        return self.days[i]

    def week_index(self, week: int) -> int | None:
        return self._week_index.get(week)


@dataclasses.dataclass(frozen=True)
class SeriesHistory:
    """What is known about one series at the end of a run date (the snapshot's point-in-time rule).

    ``sales``: units by day, the rows in force (latest recorded) for days up to the run date;
    ``prices``: for every store selling the item (a store with a sales row of it in force), its
    prices in force by Walmart week — the series' own store among them when it has prices.
    """

    item_id: str
    store_id: str
    dept_id: str
    cat_id: str
    state_id: str
    sales: Mapping[dt.date, int]
    prices: Mapping[str, Mapping[int, float]]


def target_dates(run_date: dt.date, horizon: int) -> list[dt.date]:
    """The forecast's days as dates (:meth:`pipeline.core.spec.ForecastSpec.target_dates`)."""
    return [d.date() for d in ForecastSpec(horizon=horizon).target_dates(run_date)]


def series_features(history: SeriesHistory, calendar: Calendar, run_date: dt.date, horizon: int = 28,
                    price_overrides: Mapping[int, float] | None = None) -> list[dict]:
    """One feature row per day after ``run_date`` (``horizon`` of them, ≤ 28), as dicts.

    Each row holds ``item_id, store_id, date`` and every name of ``FEATURES``: categoricals as
    strings (None when absent), numerics as floats (NaN when undefined), in float64 — the batch
    engine stores them as float32, which the model's encoding does to these too.
    ``price_overrides``: Walmart week → the series' price in that week (weeks of the forecast).
    """
    days = target_dates(run_date, horizon)  # ValueError for a horizon outside 1..MIN_LAG (ForecastSpec)
    start = calendar.start
    n_days = (run_date - start).days + 1
    values: list[float] = [NAN] * max(n_days, 0)
    for day, units in history.sales.items():
        i = (day - start).days
        if 0 <= i < n_days:
            values[i] = float(units)
    sums, squares, counts, zeros = _prefix_sums(values)
    sold = [i for i, v in enumerate(values) if v == v and v > 0]
    first_sale = sold[0] if sold else None

    prices = _price_features(history, calendar, days, price_overrides or {})
    rows = []
    for h, target in enumerate(days):
        t = (target - start).days
        cal = calendar.day(target)
        row: dict = {"item_id": history.item_id, "store_id": history.store_id, "date": target}
        for lag in LAGS:
            j = t - lag
            row[f"lag_{lag}"] = values[j] if 0 <= j < n_days else NAN
        end = t - MIN_LAG + 1  # exclusive: the last day a window sees is t − 28
        for w in sorted(set(MEAN_WINDOWS) | set(STD_WINDOWS) | {ZERO_WINDOW}):
            lo = end - w
            n = counts[end] - counts[lo] if lo >= 0 else NAN
            mean = (sums[end] - sums[lo]) / n if lo >= 0 and n > 0 else NAN
            if w in MEAN_WINDOWS:
                row[f"rmean_{w}"] = mean
            if w in STD_WINDOWS:
                if lo >= 0 and n > 1:
                    var = ((squares[end] - squares[lo]) - n * (mean * mean)) / (n - 1)
                    row[f"rstd_{w}"] = math.sqrt(max(var, 0.0))
                else:
                    row[f"rstd_{w}"] = NAN
            if w == ZERO_WINDOW:
                row[f"rzero_{w}"] = (zeros[end] - zeros[lo]) / n if lo >= 0 and n > 0 else NAN
        seen = first_sale is not None and first_sale <= t - MIN_LAG
        row["age"] = float(min(t - first_sale, AGE_CAP)) if seen else NAN
        row["wday"], row["month"] = float(cal.wday), float(cal.month)
        row["mday"], row["week"] = float(target.day), float(target.isocalendar()[1])
        row["snap"] = float(cal.snap[history.state_id]) if history.state_id in cal.snap else NAN
        row.update(prices[h])
        row.update({"dept_id": history.dept_id, "cat_id": history.cat_id, "state_id": history.state_id})
        row.update(zip(EVENT_COLUMNS, cal.events))
        rows.append({k: row[k] for k in COLUMNS})
    return rows


def _prefix_sums(values: Sequence[float]) -> tuple[list[float], list[float], list[float], list[float]]:
    """Running sums (with a leading 0) of units, squared units, days with a row, days with 0 units."""
    sums, squares, counts, zeros = [0.0], [0.0], [0.0], [0.0]
    for v in values:
        present = v == v
        sums.append(sums[-1] + (v if present else 0.0))
        squares.append(squares[-1] + (v * v if present else 0.0))
        counts.append(counts[-1] + (1.0 if present else 0.0))
        zeros.append(zeros[-1] + (1.0 if present and v == 0 else 0.0))
    return sums, squares, counts, zeros


def _filled(recorded: list[float]) -> list[float]:
    """Each week's value, or the last recorded one before it (NaN before the first)."""
    out, last = [], NAN
    for v in recorded:
        if v == v:
            last = v
        out.append(last)
    return out


def _store_panel(weekly: Mapping[int, float], calendar: Calendar) -> list[float]:
    recorded = [NAN] * len(calendar.weeks)
    for week, price in weekly.items():
        i = calendar.week_index(week)
        if i is not None:
            recorded[i] = float(price)
    return recorded


def _price_features(history: SeriesHistory, calendar: Calendar, days: list[dt.date],
                    overrides: Mapping[int, float]) -> list[dict]:
    """sell_price, price_norm, price_change and price_rel_stores of each target day."""
    target_weeks = [calendar.day(d).wm_yr_wk for d in days]
    unknown = sorted(set(overrides) - set(target_weeks))
    if unknown:
        raise ValueError(f"price override for Walmart week {unknown[0]}, which holds none of the forecast's days "
                         f"({days[0]}..{days[-1]}: weeks "
                         f"{', '.join(str(w) for w in dict.fromkeys(target_weeks))})")
    own_recorded = _store_panel(history.prices.get(history.store_id, {}), calendar)
    own = _filled(own_recorded)
    prev = [NAN] + own[:-1]
    change = _filled([NAN if r != r else _div(p, q) - 1.0 for r, p, q in zip(own_recorded, own, prev)])
    running_max, top = [], NAN
    for p in own:  # np.fmax.accumulate: NaN only until the first price
        top = p if top != top else (top if p != p else max(top, p))
        running_max.append(top)
    panels = {store: _filled(_store_panel(weekly, calendar)) for store, weekly in history.prices.items()}
    if history.store_id not in panels:
        panels[history.store_id] = own

    def item_mean(wi: int, own_price: float) -> float:
        total, count = 0.0, 0.0
        for store in sorted(panels):
            p = own_price if store == history.store_id else panels[store][wi]
            if p == p:
                total += p
                count += 1.0
        return _div(total, count) if count > 0 else NAN

    rows = []
    for week in target_weeks:
        wi = calendar.week_index(week)
        price, norm_base, chg = own[wi], running_max[wi], change[wi]
        if week in overrides:  # only this week's price features change (module docstring)
            price = float(overrides[week])
            norm_base = price if norm_base != norm_base else max(norm_base, price)
            chg = _div(price, prev[wi]) - 1.0
        rel_base = item_mean(wi, price)
        rows.append({"sell_price": price, "price_norm": _div(price, norm_base), "price_change": chg,
                     "price_rel_stores": _div(price, rel_base)})
    return rows
