"""Which model serves a run date: a rule of the run date alone.

Models are trained on the dates ``anchor ± k × every_days``. A run date uses the
newest training date on or before it, so a rerun of an old date picks the model
it picked the first time, whatever has been trained since.
"""
from __future__ import annotations

import datetime as dt


def model_date(date: dt.date, anchor: dt.date, every_days: int) -> dt.date:
    """The newest training date ≤ ``date`` on the grid ``anchor + k·every_days`` (k may be negative)."""
    if every_days < 1:
        raise ValueError(f"[training] every_days must be at least 1, not {every_days}")
    return anchor + dt.timedelta(days=((date - anchor).days // every_days) * every_days)


def is_training_date(date: dt.date, anchor: dt.date, every_days: int) -> bool:
    return model_date(date, anchor, every_days) == date
