"""The world's fixed extent: calendar span, departments, states, stores, and the scales (how many items, from when)."""
from __future__ import annotations

import dataclasses
import datetime as dt

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
