"""The ``daily_total_outlier`` check, and the weekday band it shares with ``history_change``.

``daily_total_outlier``  the run date's total units against the same weekday's totals over the
                         previous ``outlier_weeks`` weeks: outside median +- ``outlier_k`` x MAD
                         *and* more than ``outlier_min_relative`` away from the median. Days of a
                         ``closed_events`` calendar event (stores closed) are never checked nor used
                         as reference; with fewer than ``outlier_min_reference`` reference days the
                         check passes, saying so. A day's total can be right (a holiday, a storm): it
                         can be accepted.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.core.checks.frame import Snap
from pipeline.core.checks.report import CheckResult
from pipeline.core.checks.text import day, num


def weekday_band(values: np.ndarray, k: float) -> tuple:
    """``(median, MAD, median - k MAD, median + k MAD)`` along the last axis (NaN: not a reference day)."""
    values = np.asarray(values, dtype=np.float64)
    med = np.nanmedian(values, axis=-1)
    mad = np.nanmedian(np.abs(values - np.expand_dims(med, -1)), axis=-1)
    return med, mad, med - k * mad, med + k * mad


def relative_deviation(total, med):
    """``|total - median| / median`` (infinite for a positive total against a zero median)."""
    total, med = np.asarray(total, dtype=np.float64), np.asarray(med, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(total - med) / med
    return np.where(med > 0, rel, np.where(total > 0, math.inf, 0.0))


def is_outlier(total, med, lo, hi, min_relative: float):
    """The rule of daily_total_outlier: outside [lo, hi] and more than ``min_relative`` from the median."""
    total = np.asarray(total, dtype=np.float64)
    return ((total < lo) | (total > hi)) & (relative_deviation(total, med) > min_relative)


def daily_total_outlier(s: Snap) -> CheckResult:
    t, run = s.t, s.run_day
    d = s.run_date.isoformat()
    weekday = pd.Timestamp(s.run_date).day_name()
    closed = s.closed_days()
    if run in closed:
        return s.result("daily_total_outlier", 0,
                        f"not checked on {d} ({weekday}): a {'/'.join(t.closed_events)} day, stores closed")
    first = run - 7 * t.outlier_weeks
    idx = s.between(first, run)
    off = (s.days(idx) - first).astype(np.int64)
    totals = np.bincount(off, weights=s.units[idx].astype(np.float64), minlength=run - first + 1)
    nrows = np.bincount(off, minlength=run - first + 1)
    ref_days = [run - 7 * w for w in range(1, t.outlier_weeks + 1)]
    ref = [(x, totals[x - first]) for x in ref_days if nrows[x - first] > 0 and x not in closed]
    total = float(totals[run - first])
    if len(ref) < t.outlier_min_reference:
        return s.result("daily_total_outlier", 0,
                        f"not checked on {d} ({weekday}): only {len(ref)} usable same-weekday day(s) in the previous "
                        f"{t.outlier_weeks} weeks (at least {t.outlier_min_reference} needed)")
    med, mad, lo, hi = (float(x) for x in weekday_band(np.array([v for _, v in ref]), t.outlier_k))
    rel = float(relative_deviation(total, med))
    head = (f"total units on {d} ({weekday}) are {num(total)}, the same weekday's median over the previous "
            f"{t.outlier_weeks} weeks is {num(med)} (MAD {num(mad)})")
    band = f"median ± {num(t.outlier_k)}·MAD [{num(lo)}, {num(hi)}]"
    if lo <= total <= hi:
        return s.result("daily_total_outlier", 0, f"{head}: inside {band}")
    if rel <= t.outlier_min_relative:
        return s.result("daily_total_outlier", 0,
                        f"{head}: outside {band} but only {num(100 * rel, 0)}% from the median "
                        f"(flagged beyond {num(100 * t.outlier_min_relative)}%)")
    reference = ", ".join(f"{day(x)}={num(v)}" for x, v in ref)
    rows = pd.DataFrame([{"date": d, "weekday": weekday, "total_units": int(total), "median": med, "mad": mad,
                          "low": lo, "high": hi, "relative_deviation": round(rel, 4) if math.isfinite(rel) else None,
                          "reference": reference}])
    direction = "below" if total < med else "above"
    pct = f"{num(100 * rel, 0)}%" if math.isfinite(rel) else "infinitely"
    return s.result("daily_total_outlier", 1, f"{head}: outside {band} and {pct} {direction} "
                                              f"the median (reference days: {reference})", rows)
