"""Every check on a snapshot's frames, in catalog order, with the operator's acceptances applied: pure."""
from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable, Mapping

import pandas as pd

from pipeline.core.checks import history, presence, prices, rows, totals
from pipeline.core.checks.accept import how_to_accept, is_accepted, validate_accepted
from pipeline.core.checks.catalog import CHECKS
from pipeline.core.checks.frame import PreviousSnapshot, Snap
from pipeline.core.checks.report import CheckResult, QualityReport
from pipeline.core.checks.thresholds import Thresholds

CHECK_FUNCTIONS: dict[str, Callable[[Snap], CheckResult]] = {
    "unknown_ids": rows.unknown_ids,
    "negative_units": rows.negative_units,
    "duplicate_keys": rows.duplicate_keys,
    "future_dates": rows.future_dates,
    "vanished_series": presence.vanished_series,
    "new_from_nothing": presence.new_from_nothing,
    "daily_total_outlier": totals.daily_total_outlier,
    "history_change": history.history_change,
    "price_not_positive": prices.price_not_positive,
    "price_above_max": prices.price_above_max,
    "price_jump": prices.price_jump,
}
assert tuple(CHECK_FUNCTIONS) == CHECKS


def as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def check_frames(frames: Mapping[str, pd.DataFrame], run_date: dt.date | str, previous: PreviousSnapshot | None = None,
                 accepted: Iterable[str] = (), thresholds: Thresholds | None = None,
                 snapshot_hash: str | None = None) -> QualityReport:
    """Every check on in-memory snapshot frames (``sales, prices, calendar, items, stores``).

    A failed check's message ends saying how to accept it, or that it is a hard stop.
    """
    run_date = as_date(run_date)
    accepted = tuple(str(a).strip() for a in accepted)
    validate_accepted(accepted)
    t = thresholds or Thresholds()
    snap = Snap(frames, run_date, previous, t)
    results = []
    for name in CHECKS:
        result = CHECK_FUNCTIONS[name](snap)
        if not result.passed:
            if is_accepted(name, run_date, accepted):
                result.accepted = True
                result.message += " [accepted by the operator]"
            else:
                result.message += ". " + how_to_accept(name, run_date)
        results.append(result)
    return QualityReport(run_date, results, accepted, t, snapshot_hash, previous.date if previous else None)
