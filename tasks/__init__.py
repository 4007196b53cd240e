"""The Luigi layer: the tasks of the daily chain (thin: parameters, requires, output, a run of a few lines).

``snapshot`` (ExtractSnapshot, CheckSnapshot) → ``features`` (BuildFeatures, BuildTrainingFeatures)
→ ``model`` (TrainModel, CompileModel, PromoteModel) → ``forecast`` (ScoreForecast, DailyForecast)
→ ``quantiles`` (CalibrateQuantiles, ForecastQuantiles) → ``monitoring`` (Monitor); beside them the
challenger ``online_model`` (UpdateOnlineModel, ForecastOnline)
→ ``evaluate`` (Evaluate, Backtest) → ``report`` (Report, BacktestReport). Where outputs live and
what makes them complete: ``outputs``. Configuration: ``config``.
"""
from tasks.evaluate import ActualsRecorded, Backtest, Evaluate
from tasks.features import BuildFeatures, BuildTrainingFeatures
from tasks.forecast import DailyForecast, RunRefused, ScoreForecast
from tasks.model import CompileModel, PromoteModel, TrainModel
from tasks.monitoring import Monitor
from tasks.online_model import ForecastOnline, UpdateOnlineModel
from tasks.quantiles import CalibrateQuantiles, ForecastQuantiles
from tasks.report import BacktestReport, Report
from tasks.snapshot import CheckSnapshot, ExtractSnapshot

__all__ = [
    "ActualsRecorded", "Backtest", "BacktestReport", "BuildFeatures", "BuildTrainingFeatures", "CalibrateQuantiles",
    "CheckSnapshot", "ForecastOnline", "ForecastQuantiles", "UpdateOnlineModel",
    "CompileModel", "DailyForecast", "Evaluate", "ExtractSnapshot", "Monitor", "PromoteModel", "Report", "RunRefused",
    "ScoreForecast", "TrainModel",
]
