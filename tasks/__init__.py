"""Luigi tasks of the daily forecast chain (thin wrappers over ``pipeline``)."""
from tasks.chain import (
    BuildFeatures,
    BuildTrainingFeatures,
    CheckSnapshot,
    CompileModel,
    DailyForecast,
    ExtractSnapshot,
    PromoteModel,
    ScoreForecast,
    TrainModel,
)
from tasks.evaluate import ActualsRecorded, Backtest, Evaluate
from tasks.report import BacktestReport, Report

# only the task classes: `from tasks import *` in pipeline/__init__ must not shadow pipeline's own modules
__all__ = [
    "ActualsRecorded", "Backtest", "BacktestReport", "Report", "BuildFeatures", "BuildTrainingFeatures", "CheckSnapshot", "CompileModel", "DailyForecast",
    "Evaluate", "ExtractSnapshot", "PromoteModel", "ScoreForecast", "TrainModel",
]
