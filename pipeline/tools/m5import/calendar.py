"""``calendar.csv``: read and checked (header, bytes, values, and that its ``d_N`` labels agree with its dates)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.data import db
from pipeline.tools.m5import.layout import (
    CALENDAR_COLUMNS, CSV_OPTIONS, DAY_COLUMN, check_lengths, error_at, raise_first, shown,
)
from pipeline.tools.m5import.scan import check_header, read_header, scan_csv


def int_column(path: Path, raw: pd.Series, first_line: int, what: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """Parse a column of raw strings as integers in [lo, hi]; the first bad field is a DataError."""
    text = raw.astype(object)
    ok = raw.notna().to_numpy() & raw.astype(str).str.fullmatch(r"-?[0-9]{1,18}").fillna(False).to_numpy(dtype=bool)
    rng = f" in {lo}..{hi}" if lo is not None and hi is not None else ""
    raise_first(path, ~ok, first_line, raw.name, lambda i: f"{what} must be an integer{rng}, got {shown(text.iloc[i])}")
    values = raw.astype(str).astype(np.int64).to_numpy()
    out = np.zeros(len(values), dtype=bool)
    if lo is not None:
        out |= values < lo
    if hi is not None:
        out |= values > hi
    raise_first(path, out, first_line, raw.name, lambda i: f"{what} must be an integer{rng}, got {shown(text.iloc[i])}")
    return values



def read_calendar(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Read and check ``calendar.csv`` (header, bytes and values).

    Returns ``(calendar, day_dates)``: ``calendar`` has the columns of ``db.calendar``
    (``date`` datetime64, events as object with None where empty); ``day_dates`` maps each
    ``d_N`` label to its date (datetime64). Raises DataError naming file, line and column.
    """
    header = read_header(path)
    check_header(path, header, CALENDAR_COLUMNS)
    scan_csv(path, header)
    raw = pd.read_csv(path, dtype=str, **CSV_OPTIONS)
    if raw.empty:
        raise DataError(f"{path.name}: the calendar has no rows")
    first = 2
    for col in ("date", "wm_yr_wk", "weekday", "wday", "month", "year", "d", "snap_CA", "snap_TX", "snap_WI"):
        raise_first(path, raw[col].isna().to_numpy(), first, col, lambda i: "missing value")
    date = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    raise_first(path, date.isna().to_numpy(), first, "date",
                lambda i: f"date must be a date YYYY-MM-DD, got {shown(raw['date'].iloc[i])}")
    raise_first(path, date.duplicated().to_numpy(), first, "date",
                lambda i: f"date {raw['date'].iloc[i]} appears twice (first on line {first + int(np.flatnonzero((date == date.iloc[i]).to_numpy())[0])})")
    ints = {
        "wm_yr_wk": int_column(path, raw["wm_yr_wk"], first, "wm_yr_wk", 10000, 99999),
        "wday": int_column(path, raw["wday"], first, "wday", 1, 7),
        "month": int_column(path, raw["month"], first, "month", 1, 12),
        "year": int_column(path, raw["year"], first, "year", 1900, 2999),
        **{c: int_column(path, raw[c], first, c, 0, 1) for c in ("snap_CA", "snap_TX", "snap_WI")},
    }
    # the derived columns must agree with the date: a shifted row would silently move events
    expect = {
        "weekday": date.dt.day_name().to_numpy(dtype=object),
        "wday": ((date.dt.day_of_week.to_numpy() - 5) % 7 + 1),
        "month": date.dt.month.to_numpy(),
        "year": date.dt.year.to_numpy(),
    }
    for col, want in expect.items():
        got = raw[col].to_numpy(dtype=object) if col == "weekday" else ints[col]
        raise_first(path, got != want, first, col,
                    lambda i, col=col, want=want: f"{col} of {raw['date'].iloc[i]} is {want[i]}, got {shown(raw[col].iloc[i])}")
    d = raw["d"].astype(str)
    raise_first(path, ~d.str.fullmatch(DAY_COLUMN.pattern).to_numpy(dtype=bool), first, "d",
                lambda i: f"d must look like d_1, d_2, ..., got {shown(raw['d'].iloc[i])}")
    raise_first(path, d.duplicated().to_numpy(), first, "d", lambda i: f"{d.iloc[i]} appears twice "
                f"(first on line {first + int(np.flatnonzero((d == d.iloc[i]).to_numpy())[0])})")
    # d_N is the day N - 1 days after d_1: the sales file's day columns are mapped to dates by it
    n = d.str.slice(2).astype(np.int64).to_numpy()
    day = date.to_numpy().astype("datetime64[D]")
    origin = day - (n - 1).astype("timedelta64[D]")
    raise_first(path, origin != origin[0], first, "d", lambda i: f"{d.iloc[i]} is dated {raw['date'].iloc[i]}, but "
                f"line {first} has {d.iloc[0]} = {raw['date'].iloc[0]}, which puts {d.iloc[i]} on "
                f"{origin[0] + np.timedelta64(int(n[i]) - 1, 'D')}: the d labels and the dates disagree")
    order = np.argsort(n, kind="stable")
    gap = np.flatnonzero(np.diff(n[order]) > 1)
    if len(gap):
        a, b = int(order[gap[0]]), int(order[gap[0] + 1])
        raise error_at(path, first + b, "d", f"no d_{n[a] + 1} ({day[a] + np.timedelta64(1, 'D')}) between {d.iloc[a]} "
                       f"(line {first + a}) and {d.iloc[b]}: the calendar must list every day")
    # a week is seven consecutive days: one wm_yr_wk spread over far-apart dates is a typo
    by_week = date.groupby(ints["wm_yr_wk"])
    span = (by_week.transform("max") - by_week.transform("min")).dt.days
    raise_first(path, (span > 6).to_numpy(), first, "wm_yr_wk",
                lambda i: f"week {ints['wm_yr_wk'][i]} spans more than 7 days")
    events = ["event_name_1", "event_type_1", "event_name_2", "event_type_2"]
    check_lengths(path, raw[events], first, db.calendar)

    calendar = pd.DataFrame({
        "date": date.astype("datetime64[s]"),
        "wm_yr_wk": ints["wm_yr_wk"],
        "weekday": raw["weekday"].to_numpy(dtype=object),
        "wday": ints["wday"],
        "month": ints["month"],
        "year": ints["year"],
    })
    for col in events:
        # object with None: SQL NULL where there is no event (not NaN, not the string 'nan')
        calendar[col] = pd.Series(np.where(raw[col].isna(), None, raw[col].to_numpy(dtype=object)), dtype=object)
    for col in ("snap_CA", "snap_TX", "snap_WI"):
        calendar[col] = ints[col]
    calendar = calendar[[c.name for c in db.calendar.columns]]
    day_dates = pd.Series(calendar["date"].to_numpy(), index=pd.Index(d.to_numpy(dtype=object), name="d"))
    return calendar, day_dates

