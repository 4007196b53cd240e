"""The forecast spec: how far ahead a run date forecasts, and the shortest lag a feature may use.

Every feature of target day t uses sales up to t − ``min_lag`` only, so all
``horizon`` days after a run date are scored in one batch without recursion as
long as ``horizon ≤ min_lag``. The horizon is configured (``[pipeline] horizon``);
the minimum lag is the feature engine's (``pipeline.core.features``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from pipeline.core.days import as_day

MIN_LAG = 28  # days; the shortest lag of any feature


@dataclasses.dataclass(frozen=True)
class ForecastSpec:
    horizon: int = 28
    min_lag: int = MIN_LAG

    def __post_init__(self):
        if not 1 <= self.horizon <= self.min_lag:
            raise ValueError(f"[pipeline] horizon must be between 1 and {self.min_lag} days (the features' shortest "
                             f"lag: every horizon is scored from sales up to the run date), not {self.horizon}")

    def target_dates(self, run_date: dt.date) -> pd.DatetimeIndex:
        """The ``horizon`` days after ``run_date``."""
        return pd.date_range(start=as_day(run_date) + pd.Timedelta(days=1), periods=self.horizon, freq="D")

    def last_target_date(self, run_date: dt.date) -> dt.date:
        """The last day forecast from ``run_date``: its actuals are known at the end of that day."""
        return run_date + dt.timedelta(days=self.horizon)
