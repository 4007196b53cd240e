"""A snapshot's frames as the integer columns every check shares, computed once (:class:`Snap`).

Ids become categorical codes (a missing id the extra category ``<null>``), dates epoch days or raw
datetime ticks, a series the code of :func:`pipeline.core.series.series_codes`: vectorised over
whole columns, a 60 M-row snapshot is checked in seconds.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Mapping

import numpy as np
import pandas as pd

from pipeline.core.checks.report import CheckResult
from pipeline.core.checks.text import NAT_DAY, NULL_ID, day
from pipeline.core.checks.thresholds import Thresholds
from pipeline.core.series import series_codes


@dataclasses.dataclass(frozen=True)
class PreviousSnapshot:
    """What the checks need of the previous snapshot: its date, the ids that had sales rows, its sales.

    ``sales`` (item_id, store_id, date, units) is what ``history_change`` compares with; without
    it that check passes, saying it could not compare.
    """

    date: dt.date
    store_ids: frozenset[str]
    item_ids: frozenset[str]
    sales: pd.DataFrame | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass
class Ids:
    """An id column as codes: ``codes`` every row >= 0 (a missing id is the category ``<null>``), ``names`` by code."""

    codes: np.ndarray
    names: np.ndarray  # object array of str

    def name(self, codes) -> np.ndarray:
        return self.names[np.asarray(codes)]

    def used(self) -> np.ndarray:
        """Which codes have at least one row."""
        return np.bincount(self.codes, minlength=len(self.names)) > 0


def ids(col: pd.Series) -> Ids:
    """The codes of an id column (a categorical's own: no copy of a 60 M-row column)."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype("category")
    codes = col.cat.codes.to_numpy()
    names = np.asarray([str(x) for x in col.cat.categories], dtype=object)
    if len(codes) and codes.min() < 0:
        codes = np.where(codes < 0, len(names), codes).astype(np.int32)
        names = np.append(names, NULL_ID).astype(object)
    return Ids(codes, names)


def names_with_rows(col: pd.Series) -> frozenset[str]:
    """The distinct non-null values of an id column (a categorical's by counting its codes)."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype("category")
    codes = col.cat.codes.to_numpy()
    used = np.flatnonzero(np.bincount(codes + 1, minlength=len(col.cat.categories) + 1)[1:])  # code -1: missing
    return frozenset(str(x) for x in col.cat.categories[used])


def epoch_days(values) -> np.ndarray:
    """Dates as int32 days since 1970-01-01 (NaT: the smallest int32)."""
    days = np.asarray(values).astype("datetime64[D]").view(np.int64)
    return np.maximum(days, NAT_DAY).astype(np.int32)


def date_ticks(col: pd.Series) -> tuple[np.ndarray, int]:
    """(int64 datetime ticks of a date column, a view where it already is datetime; ticks per day)."""
    dates = col.to_numpy()
    if dates.dtype.kind != "M":
        dates = pd.to_datetime(col).to_numpy()
    unit, count = np.datetime_data(dates.dtype)
    return dates.view(np.int64), int(np.timedelta64(1, "D") // np.timedelta64(count, unit))


class Snap:
    """The snapshot's frames plus the integer columns every check shares.

    Sales dates stay raw datetime ticks (``ticks``, a view of the column, no copy): whole-column
    work is comparisons against day boundaries; ticks become days only on the few rows of a window.
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame], run_date: dt.date, previous: PreviousSnapshot | None,
                 t: Thresholds):
        self.run_date, self.previous, self.t = run_date, previous, t
        self.run_day = int(np.datetime64(run_date, "D").astype(np.int64))
        self.calendar, self.items, self.stores = frames["calendar"], frames["items"], frames["stores"]
        self.prices = frames["prices"]
        sales = frames["sales"]
        self.n_rows = len(sales)
        self.store, self.item = ids(sales["store_id"]), ids(sales["item_id"])
        self.n_stores, self.n_items = len(self.store.names), len(self.item.names)
        self.ticks, self.ticks_per_day = date_ticks(sales["date"])  # NaT is the smallest int64: before every day
        self.units = sales["units"].to_numpy()
        # int32: a chain's series (30,490 in M5) are far fewer than 2**31
        self.series = series_codes(self.store.codes, self.item.codes, self.n_items, np.int32)

    @functools.cached_property
    def price_ids(self) -> tuple[Ids, Ids]:
        """(store, item) codes of the price rows, computed once for the checks that need them."""
        return ids(self.prices["store_id"]), ids(self.prices["item_id"])

    def start_of(self, d: int) -> int:
        """The first tick of epoch day ``d``."""
        return d * self.ticks_per_day

    def between(self, first_day: int, last_day: int) -> np.ndarray:
        """Positions of the rows dated ``first_day`` .. ``last_day`` (epoch days, inclusive)."""
        return np.flatnonzero((self.ticks >= self.start_of(first_day)) & (self.ticks < self.start_of(last_day + 1)))

    def days(self, idx: np.ndarray) -> np.ndarray:
        """Epoch days of the rows ``idx``."""
        t = self.ticks[idx]
        return np.where(t == np.iinfo(np.int64).min, NAT_DAY, t // self.ticks_per_day)

    def sales_rows(self, idx: np.ndarray) -> pd.DataFrame:
        """The sales rows ``idx`` as (store_id, item_id, date, units), as a message names them."""
        return pd.DataFrame({
            "store_id": self.store.name(self.store.codes[idx]),
            "item_id": self.item.name(self.item.codes[idx]),
            "date": [day(d) for d in self.days(idx)],
            "units": self.units[idx].astype(np.int64),
        })

    def closed_days(self) -> set[int]:
        """Epoch days of a ``closed_events`` calendar event (stores closed)."""
        cal = self.calendar
        events = [c for c in ("event_name_1", "event_name_2") if c in cal]
        if not events or not len(cal):
            return set()
        closed = np.zeros(len(cal), dtype=bool)
        for c in events:
            closed |= cal[c].isin(self.t.closed_events).to_numpy()
        return set(epoch_days(cal["date"].to_numpy()[closed]).tolist())

    def result(self, name: str, count: int, message: str, offending: pd.DataFrame | None = None) -> CheckResult:
        """The CheckResult of check ``name``: passed when ``count`` is 0; the first ``max_offending`` rows kept."""
        offending = pd.DataFrame() if offending is None else offending.head(self.t.max_offending).reset_index(drop=True)
        return CheckResult(name, count == 0, f"{name}: {message}", offending, False, int(count))
