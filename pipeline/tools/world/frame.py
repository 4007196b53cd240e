"""The world's fixed frame: the day and week axes of a scale, event multipliers and the item table."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from pipeline.tools.world.model import EVENT_EFFECTS
from pipeline.tools.world.scales import CATEGORIES, DEPARTMENTS, STATES, Scale


@dataclasses.dataclass
class Frame:
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


def make_frame(scale: Scale, calendar: pd.DataFrame) -> Frame:
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
            for offset, mults in EVENT_EFFECTS.get(cal[col].iat[i], ()):
                if 0 <= i + offset < len(days):
                    event_mult[:, i + offset] *= mults
    rows = [(f"{d}_{k:03d}", d, d.rsplit("_", 1)[0]) for d in DEPARTMENTS for k in range(1, scale.items_per_dept[d] + 1)]
    items = pd.DataFrame(rows, columns=["item_id", "dept_id", "cat_id"]).sort_values("item_id", ignore_index=True)
    dates = pd.DatetimeIndex(days)
    return Frame(
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

