"""The daily monitoring of a run date: drift of its inputs and of its forecast, realised accuracy, coverage.

``Monitor(date)`` needs the run date's snapshot and forecast; the earlier runs it looks back on
(yesterday's forecast, the forecasts and quantiles of the 28 run dates before) are read where their
folders exist for the current configuration, and never scheduled. Thresholds: the optional
``[monitoring]`` section of ``luigi.cfg``, any field of ``pipeline.core.monitoring.MonitorThresholds``
by name (the rest keep their defaults); they are settings of the output's identity.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from pipeline.core.monitoring import MATURED_RUNS
from pipeline.stages import monitoring
from tasks import config
from tasks.forecast import ScoreForecast
from tasks.outputs import DatedTask
from tasks.quantiles import ForecastQuantiles
from tasks.snapshot import ExtractSnapshot

log = logging.getLogger("pipeline")


class Monitor(DatedTask):
    """``data/monitoring/<date>/<fingerprint>/``: monitoring.json and monitoring.md, each check ok, red or no data."""

    stage = "monitoring"
    files = monitoring.FILES

    def settings(self) -> dict:
        return {"thresholds": dataclasses.asdict(config.monitoring_thresholds())}

    def requires(self):
        return {"forecast": ScoreForecast(self.date), "snapshot": ExtractSnapshot(self.date)}

    def earlier(self, task) -> dict:
        """The output folders of ``task`` (ScoreForecast, ForecastQuantiles) of the 28 run dates before that exist."""
        days = (self.date - dt.timedelta(days=k) for k in range(1, MATURED_RUNS + 1))
        return {d: out.path for d in days if (out := task(d).output()).exists()}

    def run(self):
        result = monitoring.monitor(self.input()["snapshot"].path, self.input()["forecast"].path, self.date,
                                    forecasts=self.earlier(ScoreForecast), quantiles=self.earlier(ForecastQuantiles),
                                    thresholds=config.monitoring_thresholds())
        with self.writing() as tmp:
            monitoring.write_monitoring(result, tmp)
        line = monitoring.status_line(result)
        log.info("monitoring %s: %s", self.date, line)
        self.set_status_message(line)
