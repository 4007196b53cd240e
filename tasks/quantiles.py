"""Quantile forecasts of a run date: coefficients per training date, quantiles of every level per run date."""
from __future__ import annotations

import logging

import pandas as pd

from pipeline.data import storage
from pipeline.stages import quantiles
from tasks import config
from tasks.features import BuildTrainingFeatures
from tasks.forecast import ScoreForecast
from tasks.model import TrainModel
from tasks.outputs import DatedTask
from tasks.snapshot import ExtractSnapshot

log = logging.getLogger("pipeline")


class CalibrateQuantiles(DatedTask):
    """The quantile coefficients of the model trained on ``date``, fitted on its validation window."""

    stage = "calibration"
    files = ("calibration.json",)

    def settings(self) -> dict:
        return config.quantiles().settings()

    def requires(self):
        return {"model": TrainModel(self.date), "features": BuildTrainingFeatures(self.date),
                "snapshot": ExtractSnapshot(self.date)}

    def run(self):
        inputs = self.input()
        calibration = quantiles.calibrate(inputs["model"].path, inputs["features"].path, inputs["snapshot"].path,
                                          self.date, bins=config.quantiles().bins)
        with self.writing() as tmp:
            storage.write_json(tmp / "calibration.json", calibration)


class ForecastQuantiles(DatedTask):
    """The nine M5 quantiles of every series of every level for the forecast of ``date``.

    Made with the coefficients of the model that made the point forecast (its manifest says which).
    """

    stage = "quantiles"
    files = ("quantiles.parquet", "submission_uncertainty.csv", "manifest.json")

    def settings(self) -> dict:
        # the coefficients are a dynamic input (which model's depends on the serving choice): what shapes
        # them is part of this output's identity
        return config.quantiles().settings()

    def requires(self):
        return {"forecast": ScoreForecast(self.date), "snapshot": ExtractSnapshot(self.date)}

    def run(self):
        forecast_dir = self.input()["forecast"]
        model_date = storage.read_json(forecast_dir.file("manifest.json"))["model_date"]
        calibration = yield CalibrateQuantiles(pd.Timestamp(model_date).date())
        forecast = pd.read_parquet(forecast_dir.file("forecast.parquet"))
        table = quantiles.quantile_forecast(forecast, storage.read_json(calibration.file("calibration.json")),
                                            self.input()["snapshot"].path)
        with self.writing() as tmp:
            manifest = quantiles.write_quantiles(table, tmp, forecast["date"].min().date())
        log.info("quantiles %s: model %s, %s", self.date, model_date, manifest)
