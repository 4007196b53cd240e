"""The forecast of a run date, and the cron entry point ``DailyForecast``."""
from __future__ import annotations

import datetime as dt
import logging

import luigi
import pandas as pd

from pipeline.core import blend
from pipeline.core.errors import DataError, PipelineError
from pipeline.data import db, storage
from pipeline.stages import extract, score, train
from tasks import config
from tasks.base import PipelineTask
from tasks.dates import RunDateParameter, YesterdayParameter
from tasks.features import BuildFeatures
from tasks.model import CompileModel, PromoteModel, TrainModel, read_decision, serving_choice
from tasks.online_model import ForecastOnline
from tasks.outputs import DatedTask
from tasks.snapshot import ExtractSnapshot

log = logging.getLogger("pipeline")


class ScoreForecast(DatedTask):
    """The forecast of the ``[pipeline] horizon`` days after ``date``, from the model serving then.

    Which model serves is ``pipeline.core.serving.serving_model``'s answer: the pinned
    model, or the one the promotion decision of the date's training date names. From the online
    model's start date on, the published forecast is the average of that model's forecast and the
    online model's, weighing ``[online_model] blend_weight`` (``pipeline.core.blend``); the two
    are kept in ``components.parquet``.
    """

    stage = "forecasts"
    FILES = ("forecast.parquet", "submission.csv", "manifest.json")

    @property
    def files(self) -> tuple[str, ...]:
        return self.FILES + (("components.parquet",) if self.blend_weight() else ())

    def blend_weight(self) -> float:
        return config.online_model().blend_weight_for(self.date)

    def settings(self) -> dict:
        weight = self.blend_weight()
        return {"blend_weight": weight} if weight else {}  # no blend: the batch model's identity as before

    def requires(self):
        req = {"features": BuildFeatures(self.date), "snapshot": ExtractSnapshot(self.date)}
        if self.blend_weight():
            req["online"] = ForecastOnline(self.date)
        cfg = config.training()
        pinned = cfg.pinned_model()
        if pinned is None:
            req["promotion"] = PromoteModel(cfg.schedule().training_date(self.date))
        else:  # the pinned model's identity is part of the forecast's
            req["model"] = TrainModel(pinned)
        return req

    def serving(self):
        try:
            return serving_choice(self.date, lambda _: read_decision(self.requires()["promotion"]))
        except ValueError as exc:
            raise PipelineError(str(exc)) from None

    def run(self):
        choice = self.serving()
        model_dir, compiled = yield [TrainModel(choice.model_date), CompileModel(choice.model_date)]
        _, metadata = train.load_model(model_dir.path)
        forecast = score.score_forecast(self.input()["features"].path, metadata,
                                        compiled.path, self.date, self.dask_options())
        components = None
        if "online" in self.input():
            online = pd.read_parquet(self.input()["online"].file("forecast.parquet"))
            forecast, components = blend.blend(forecast, online, self.blend_weight())
        with self.writing() as tmp:
            manifest = score.write_forecast(forecast, tmp, metadata["date"], serving=choice.as_dict(),
                                            components=components, blend_weight=self.blend_weight())
            # published before the folder appears: a crash in between makes a rerun publish again (idempotent)
            score.publish_forecast(db.engine_for(config.database_url()), forecast)
        snapshot = storage.read_json(self.input()["snapshot"].file("manifest.json"))
        log.info("forecast %s: model %s (%s), snapshot hash %s, %s", self.date, metadata["date"], choice.how,
                 snapshot["content_hash"]["all"], manifest)
        self.set_status_message(f"model {metadata['date']} ({choice.how}): {manifest['rows']:,} rows, "
                                f"{manifest['total_units']:,.0f} units")


class RunRefused(PipelineTask):
    """Stands in for a run date's whole chain when it cannot run (no sales recorded on the date, a
    setting out of range): fails at once, saying why, instead of scheduling work that would fail."""

    date = RunDateParameter()
    reason = luigi.Parameter(significant=False)

    def complete(self) -> bool:
        return False

    def run(self):
        self.set_status_message(self.reason)
        raise DataError(self.reason)


class DailyForecast(luigi.WrapperTask):
    """The cron entry point: the forecast of ``date`` (default: yesterday when the task is built): point,
    quantiles, the day's monitoring and the online model's forecast (from ``[online_model] start_date`` on).

    A date whose sales were never recorded (after the data's end, a clock far ahead of the
    data), or a configuration out of range, schedules one failing task with the reason, not a
    chain of trainings; a database that cannot be asked right now leaves that to the chain's
    own tasks (they retry).
    """

    date = YesterdayParameter()

    def requires(self):
        # Luigi asks several times (complete, then the graph): the database is asked once per task
        if not hasattr(self, "_missing"):
            self._missing = None
            try:  # the settings every task's identity is made of: out of range, nothing can run
                config.check_settings()
            except ValueError as exc:
                self._missing = f"configuration: {exc}"
                return RunRefused(self.date, self._missing)
            if not ScoreForecast(self.date).complete():  # (a date with a point forecast has its data)
                try:
                    engine = db.engine_for(config.database_url())
                except PipelineError:
                    engine = None
                if engine is not None:
                    try:
                        self._missing = extract.missing_run_date(engine, self.date)
                    finally:
                        engine.dispose()
        if self._missing:
            return RunRefused(self.date, self._missing)
        # the tasks that build on the point forecast (imported here: their modules import this one)
        from tasks.monitoring import Monitor
        from tasks.quantiles import ForecastQuantiles

        tasks = [ScoreForecast(self.date), ForecastQuantiles(self.date), Monitor(self.date)]
        if config.online_model().covers(self.date):  # the challenger, from its start date on
            tasks.append(ForecastOnline(self.date))
        return tasks
