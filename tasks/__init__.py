"""Luigi tasks of the daily forecast chain (thin wrappers over ``pipeline``)."""
from tasks.chain import (  # noqa: F401
    BuildFeatures,
    BuildTrainingFeatures,
    CompileModel,
    DailyForecast,
    ExtractSnapshot,
    ScoreForecast,
    TrainModel,
)
