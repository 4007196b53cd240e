"""Calendar days: a run date or origin as a pandas day, and dates as whole day numbers.

A run date arrives as a ``datetime.date``, a string or a Timestamp; frames compare
it with ``date`` columns of naive midnight timestamps. :func:`as_day` is the one
conversion (time of day and time zone dropped), so every module compares the same day.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def as_day(value: Any, what: str = "run date") -> pd.Timestamp:
    """``value`` (date, datetime, string, Timestamp) as a naive midnight Timestamp.

    A time zone is dropped (the wall-clock day is kept). Raises ``ValueError``
    naming ``what`` when ``value`` is missing or not a date.
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a date, got {value!r}") from exc
    if ts is pd.NaT:
        raise ValueError(f"{what} must be a date, got {value!r}")
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def day_number(day: pd.Timestamp) -> int:
    """The day as a whole number of days since 1970-01-01 (time of day dropped)."""
    return int(np.datetime64(day.date(), "D").astype(np.int64))


def day_numbers(dates: pd.Series | np.ndarray, what: str) -> np.ndarray:
    """Calendar days as int64 days since 1970-01-01 (time of day dropped).

    Raises ``ValueError`` naming ``what`` when a date is missing.
    """
    values = np.asarray(dates)
    if values.dtype.kind != "M":
        # Strings, date objects or tz-aware values: let pandas parse (slower, but general).
        parsed = pd.to_datetime(pd.Series(dates))
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        values = parsed.to_numpy()
    days = values.astype("datetime64[D]")
    if np.isnat(days).any():
        raise ValueError(f"{what} has missing dates")
    return days.view(np.int64)
