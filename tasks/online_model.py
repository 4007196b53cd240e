"""The online model (the challenger): its state updated day by day, and its forecast of a run date."""
from __future__ import annotations

import datetime as dt
import logging

from pipeline.core.errors import PipelineError
from pipeline.stages import online_model
from tasks import config
from tasks.outputs import DatedTask
from tasks.snapshot import CheckSnapshot, ExtractSnapshot

log = logging.getLogger("pipeline")


class UpdateOnlineModel(DatedTask):
    """The online model's state as of the end of ``date``.

    On ``[online_model] start_date`` it is warmed up over the ``warmup_days`` days up to it; on a later
    date it is the state of the day before, which first predicts, then learns, the rows in force for
    ``date`` (its checked snapshot). Before the start date there is no state: refused.
    """

    stage = "online_model"
    files = online_model.STATE_FILES

    def settings(self) -> dict:
        return config.online_model().settings()

    def requires(self):
        req = {"snapshot": ExtractSnapshot(self.date), "quality": CheckSnapshot(self.date)}
        if self.date > config.online_model().start_date:
            req["previous"] = UpdateOnlineModel(self.date - dt.timedelta(days=1))
        return req

    # The previous state is shaped by the same settings and its own date's snapshot: its fingerprint is
    # not hashed (that would walk back to the start date, one level of recursion per day).
    unhashed_inputs = ("previous",)

    def run(self):
        cfg = config.online_model()
        if self.date < cfg.start_date:
            raise PipelineError(f"the online model starts on {cfg.start_date} ([online_model] start_date): "
                                f"it has no state for {self.date}")
        snapshot = self.input()["snapshot"].path
        if self.date == cfg.start_date:
            state, progress, predictions = online_model.warm_up(
                snapshot, self.date, cfg.warmup_days, cfg.learner, cfg.learning_rate,
                progress=lambda f: self.report_progress(f, f"warm-up over {cfg.warmup_days} days"))
        else:
            previous = self.input()["previous"].path
            state, progress, predictions = online_model.update(online_model.read_state(previous), snapshot, self.date,
                                                               online_model.read_progressive(previous))
        with self.writing() as tmp:
            manifest = online_model.write_state(state, progress, predictions, tmp, self.date)
        log.info("online model %s: %s", self.date, manifest)
        self.set_status_message(f"learnt {manifest['series']:,} series; progressive MAE {manifest['mae']}")


class ForecastOnline(DatedTask):
    """The online model's forecast of the ``[pipeline] horizon`` days after ``date``, by the state of ``date``."""

    stage = "online_forecasts"
    files = online_model.FORECAST_FILES

    def requires(self):
        return {"state": UpdateOnlineModel(self.date), "snapshot": ExtractSnapshot(self.date)}

    def run(self):
        state_dir = self.input()["state"]
        frame = online_model.forecast(online_model.read_state(state_dir.path), self.input()["snapshot"].path,
                                      self.date, config.forecast_spec().horizon)
        with self.writing() as tmp:
            manifest = online_model.write_forecast(frame, tmp, online_model.read_manifest(state_dir.path))
        self.set_status_message(f"{manifest['rows']:,} rows, {manifest['total_units']:,.0f} units")
