"""Feature sets of a run date: the scoring rows of the horizon, and the training rows of the window."""
from __future__ import annotations

from pathlib import Path

from pipeline.core import features
from pipeline.data import storage
from pipeline.stages import features as feature_sets
from tasks import config
from tasks.outputs import SETTINGS_FILE, DatedTask, FolderTarget
from tasks.snapshot import CheckSnapshot, ExtractSnapshot


class FeatureSetTarget(FolderTarget):
    """A feature set: ``features.json`` and every per-store part it lists."""

    def __init__(self, path: Path):
        super().__init__(path, ("features.json", SETTINGS_FILE))

    def expected_files(self) -> list[str]:
        listing = self.path / "features.json"
        if not listing.exists():
            return list(self.files)
        return [*self.files, *(f"part-{s}.parquet" for s in storage.read_json(listing)["parts"])]


class BuildFeatures(DatedTask):
    """Feature rows of the ``[pipeline] horizon`` days after ``date``, for scoring."""

    stage = "features"
    kind = "score"

    def requires(self):
        return {"snapshot": ExtractSnapshot(self.date), "quality": CheckSnapshot(self.date)}

    def home(self) -> Path:
        return super().home() / self.kind

    def output(self) -> FeatureSetTarget:
        return FeatureSetTarget(self.folder())

    def settings(self) -> dict:
        return {"features": features.feature_names(config.features().pooled), "min_lag": features.MIN_LAG,
                "target_days": self.target_days()}

    def target_days(self) -> int:
        return config.forecast_spec().horizon

    def target_dates(self):
        return config.forecast_spec().target_dates(self.date)

    def run(self):
        self.report_progress(0.0, f"building {self.kind} features on Dask")
        with self.writing() as tmp:
            summary = feature_sets.build_feature_set(self.input()["snapshot"].path, self.date, self.target_dates(),
                                                     with_target=self.kind == "train", out_dir=tmp,
                                                     dask_options=self.dask_options(), pooled=config.features().pooled)
        self.report_progress(1.0, f"{summary['rows']:,} rows of {summary['series']:,} series")


class BuildTrainingFeatures(BuildFeatures):
    """Feature rows with their actual units over the training window ending at ``date``."""

    kind = "train"

    def target_days(self) -> int:
        return config.training().window_days

    def target_dates(self):
        return features.training_dates(self.date, self.target_days())
