"""The Luigi tasks of the daily chain: parameters, requires, output, and a run of a few lines.

Every task takes the run date ``date`` and writes one folder
``<data_dir>/<stage>/<date>/`` atomically (see ``pipeline.data.storage.atomic_dir``);
a task is complete exactly when every file of its folder exists.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import luigi

from pipeline.data.snapshot import SNAPSHOT_FILES, read_snapshot
from pipeline.stages import compile as compile_
from tasks import config
from pipeline.data import db
from pipeline.stages import extract
from pipeline.core import features
from pipeline.stages import features as feature_sets
from tasks import logs
from pipeline.stages import promote
from pipeline.stages import quality
from pipeline.stages import score
from pipeline.data import storage
from pipeline.stages import train
from tasks.dates import RunDateParameter
from pipeline.core.errors import DataError, PipelineError
from pipeline.core.schedule import model_date
from tasks.base import PipelineTask

log = logging.getLogger("pipeline")


@luigi.Task.event_handler(luigi.Event.START)
def _log_start(task):
    logs.install_file_log()
    log.info("start %s", task)


@luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)
def _log_time(task, seconds):
    log.info("timing %s: %.1f s", task, seconds)


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _log_success(task):
    log.info("outcome %s: DONE", task)


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _log_failure(task, exception):
    log.error("outcome %s: FAILED: %s: %s", task, type(exception).__name__, exception)


class FolderTarget(luigi.Target):
    """A dated output folder; it exists when every listed file in it exists."""

    def __init__(self, path: Path, files: tuple[str, ...]):
        self.path = Path(path)
        self.files = files

    def exists(self) -> bool:
        return all((self.path / f).exists() for f in self.expected_files())

    def expected_files(self) -> list[str]:
        return list(self.files)

    def file(self, name: str) -> Path:
        return self.path / name


class FeatureSetTarget(FolderTarget):
    """A feature set: ``features.json`` and every per-store part it lists."""

    def __init__(self, path: Path):
        super().__init__(path, ("features.json",))

    def expected_files(self) -> list[str]:
        listing = self.path / "features.json"
        if not listing.exists():
            return ["features.json"]
        return ["features.json", *(f"part-{s}.parquet" for s in storage.read_json(listing)["parts"])]


class DatedTask(PipelineTask):
    """A task of one run date writing the folder ``<data_dir>/<stage>/<date>/``."""

    date = RunDateParameter()
    stage: str = ""
    files: tuple[str, ...] = ()

    def output(self) -> FolderTarget:
        return FolderTarget(config.data_dir() / self.stage / self.date.isoformat(), self.files)

    def report_progress(self, fraction: float, message: str) -> None:
        """Show progress in the visualiser (percentage bar and status message)."""
        self.set_progress_percentage(int(100 * min(max(fraction, 0.0), 1.0)))
        self.set_status_message(message)

    def dask_options(self) -> dict:
        opts = config.dask()
        return {"address": config.scheduler_address(), "n_workers": opts.n_workers,
                "threads_per_worker": opts.threads_per_worker}


class ExtractSnapshot(DatedTask):
    """The source database as known at the end of ``date``."""

    stage = "snapshots"
    files = tuple(f"{name}.parquet" for name in SNAPSHOT_FILES) + ("manifest.json",)

    def run(self):
        engine = db.engine_for(config.database_url())
        # yesterday's snapshot, when it exists, is the base: only the rows recorded today are read.
        # It is not a requirement (that would recurse to the first day); the result is the same bytes.
        previous = ExtractSnapshot(self.date - dt.timedelta(days=1)).output()
        with storage.atomic_dir(self.output().path) as tmp:
            manifest = extract.extract_snapshot(engine, self.date, tmp,
                                                previous_dir=previous.path if previous.exists() else None)
        log.info("snapshot %s: rows %s, max recorded_at %s, hash %s", self.date, manifest["rows"],
                 manifest["max_recorded_at"]["sales"], manifest["content_hash"]["all"])
        self.set_status_message(f"{manifest['rows']['sales']:,} sales rows, hash {manifest['content_hash']['all'][:12]}")


class CheckSnapshot(DatedTask):
    """Data-quality checks of the snapshot of ``date``; a failure stops the date's chain.

    A failed check writes its report to ``data/quality/<date>/failed/`` (not an
    output: the task stays incomplete, nothing downstream runs) and raises.
    """

    stage = "quality"
    files = quality.REPORT_FILES

    def requires(self):
        req = {"snapshot": ExtractSnapshot(self.date)}
        if config.quality().compare_previous:
            req["previous"] = ExtractSnapshot(self.date - dt.timedelta(days=1))
        return req

    def run(self):
        cfg = config.quality()
        previous = self.input().get("previous")
        report = quality.run_checks(
            self.input()["snapshot"].path, self.date, previous_snapshot_dir=previous.path if previous else None,
            accepted=quality.parse_accepted(cfg.accept),
            thresholds=quality.Thresholds(
                outlier_k=cfg.outlier_k, price_jump_factor=cfg.price_jump_factor,
                price_jump_weeks=cfg.price_jump_weeks, history_days=cfg.history_days,
                history_quantile=cfg.history_quantile, history_factor=cfg.history_factor,
                history_min_units=cfg.history_min_units,
                history_run_date_min_units=cfg.history_run_date_min_units,
                history_max_changed_days=cfg.history_max_changed_days))
        if not report.passed:
            failed_dir = self.output().path / "failed"
            with storage.atomic_dir(failed_dir) as tmp:
                report.write(tmp)
            self.set_status_message(f"data-quality checks failed: {', '.join(c.name for c in report.failed)}")
            report.raise_if_failed(report_path=failed_dir / "quality.md")
        with storage.atomic_dir(self.output().path) as tmp:  # replaces a stale failed/ report too
            report.write(tmp)
        log.info("quality %s: passed%s", self.date,
                 f" (accepted: {[c.name for c in report.accepted]})" if report.accepted else "")


class BuildFeatures(DatedTask):
    """Feature rows of the 28 days after ``date``, for scoring."""

    stage = "features"
    kind = "score"

    def requires(self):
        return {"snapshot": ExtractSnapshot(self.date), "quality": CheckSnapshot(self.date)}

    def output(self) -> FeatureSetTarget:
        return FeatureSetTarget(config.data_dir() / self.stage / self.date.isoformat() / self.kind)

    def target_dates(self):
        return features.scoring_dates(self.date, config.pipeline().horizon)

    def run(self):
        self.report_progress(0.0, f"building {self.kind} features on Dask")
        with storage.atomic_dir(self.output().path) as tmp:
            summary = feature_sets.build_feature_set(self.input()["snapshot"].path, self.date, self.target_dates(),
                                                 with_target=self.kind == "train", out_dir=tmp,
                                                 dask_options=self.dask_options())
        self.report_progress(1.0, f"{summary['rows']:,} rows of {summary['series']:,} series")


class BuildTrainingFeatures(BuildFeatures):
    """Feature rows with their actual units over the training window ending at ``date``."""

    kind = "train"

    def target_dates(self):
        return features.training_dates(self.date, config.training().window_days)


class TrainModel(DatedTask):
    """A LightGBM model trained on the window ending at ``date`` (a training date)."""

    stage = "models"
    files = ("model.txt", "model.joblib", "metadata.json")

    def requires(self):
        return {"features": BuildTrainingFeatures(self.date), "snapshot": ExtractSnapshot(self.date)}

    def run(self):
        cfg = config.training()
        manifest = storage.read_json(self.input()["snapshot"].file("manifest.json"))
        with storage.atomic_dir(self.output().path) as tmp:
            meta = train.train_model(self.input()["features"].path, self.date, train.lgb_params(cfg),
                                     cfg.num_boost_round, cfg.early_stopping_rounds, tmp, manifest,
                                     progress=self.report_progress)
        log.info("model %s: %s", self.date, meta["metrics"])


class CompiledTarget(FolderTarget):
    """A compiled model: ``compiled.json``, every library it lists, and ``check.json``."""

    def __init__(self, path: Path):
        super().__init__(path, ("check.json",))

    def expected_files(self) -> list[str]:
        return [*compile_.library_files(self.path), *self.files]


class CompileModel(DatedTask):
    """The model of ``date`` compiled by TL2cgen, checked equal to LightGBM on real rows."""

    stage = "compiled"

    def output(self) -> CompiledTarget:
        return CompiledTarget(config.data_dir() / self.stage / self.date.isoformat())

    def requires(self):
        return {"model": TrainModel(self.date), "features": BuildTrainingFeatures(self.date)}

    def run(self):
        _, metadata = train.load_model(self.input()["model"].path)
        sample = compile_.check_sample(feature_sets.read_feature_set(self.input()["features"].path), metadata)
        with storage.atomic_dir(self.output().path) as tmp:
            report = compile_.compile_and_check(self.input()["model"].path, sample, tmp, config.compile_options())
        log.info("compiled model %s: %s", self.date, report)
        self.set_status_message(f"{report['blocks']} libraries compiled in {report['compile_seconds']} s; "
                                f"max |compiled - LightGBM| "
                                f"{report['max_abs_diff']:.1e} on {report['rows']:,} rows")


class PromoteModel(PipelineTask):
    """Whether the model trained on ``date`` serves, or the best of the previous few keeps serving.

    Writes ``data/models/<date>/promotion.json`` (every validation WRMSSE, the
    margin, the decision, the serving model). The models compared are those of
    the ``[training] promotion_lookback`` previous training dates on or after
    ``promotion_start`` (see ``pipeline.stages.promote``): at most lookback + 1 trainings,
    whatever the date. ``[training] serve_model`` pins a model for every date (roll back).
    """

    date = RunDateParameter()

    def previous_models(self) -> list[dt.date]:
        cfg = config.training()
        dates = (self.date - dt.timedelta(days=k * cfg.every_days) for k in range(1, cfg.promotion_lookback + 1))
        return [d for d in dates if d >= cfg.promotion_start]

    def requires(self):
        return {"model": TrainModel(self.date), "features": BuildTrainingFeatures(self.date),
                "snapshot": ExtractSnapshot(self.date), "previous": [TrainModel(d) for d in self.previous_models()]}

    def output(self):
        return luigi.LocalTarget(str(config.data_dir() / "models" / self.date.isoformat() / "promotion.json"))

    def run(self):
        models = {self.date: self.input()["model"].path,
                  **{d: t.path for d, t in zip(self.previous_models(), self.input()["previous"])}}
        scores = ({} if len(models) == 1 else promote.validation_wrmsse(
            models, self.input()["features"].path, self.input()["snapshot"].path, self.date))
        decision = promote.decide(self.date, scores, config.training().promotion_margin)
        storage.atomic_file(self.output().path, (json.dumps(decision, indent=2, sort_keys=True) + "\n").encode())
        self.set_status_message(decision["reason"])
        log.info("promotion %s: %s", self.date, decision)


class ScoreForecast(DatedTask):
    """The forecast of the 28 days after ``date``, from the model serving then.

    That is the newest model trained on or before ``date`` if it was promoted,
    else the model it was compared with (see PromoteModel).
    """

    stage = "forecasts"
    files = ("forecast.parquet", "submission.csv", "manifest.json")

    def model_date(self) -> dt.date:
        cfg = config.training()
        return model_date(self.date, cfg.anchor_date, cfg.every_days)

    def requires(self):
        req = {"features": BuildFeatures(self.date), "snapshot": ExtractSnapshot(self.date)}
        if config.training().pinned_model() is None:
            req["promotion"] = PromoteModel(self.model_date())
        return req

    def serving_model(self) -> dt.date:
        pinned = config.training().pinned_model()
        if pinned is not None:
            return pinned
        return dt.date.fromisoformat(storage.read_json(self.input()["promotion"].path)["serving_model"])

    def run(self):
        serving = self.serving_model()
        model_dir, compiled = yield [TrainModel(serving), CompileModel(serving)]
        _, metadata = train.load_model(model_dir.path)
        forecast = score.score_forecast(self.input()["features"].path, metadata,
                                        compiled.path, self.date, self.dask_options())
        with storage.atomic_dir(self.output().path) as tmp:
            manifest = score.write_forecast(forecast, tmp, metadata["date"])
            # published before the folder appears: a crash in between makes a rerun publish again (idempotent)
            score.publish_forecast(db.engine_for(config.database_url()), forecast)
        snapshot = storage.read_json(self.input()["snapshot"].file("manifest.json"))
        log.info("forecast %s: model %s, snapshot hash %s, %s", self.date, metadata["date"],
                 snapshot["content_hash"]["all"], manifest)
        self.set_status_message(f"model {metadata['date']}: {manifest['rows']:,} rows, {manifest['total_units']:,.0f} units")


def _yesterday() -> dt.date:
    return dt.date.today() - dt.timedelta(days=1)


class RunDateHasNoData(PipelineTask):
    """Stands in for a run date's whole chain when the database shows no sales recorded on it: fails at once."""

    date = RunDateParameter()
    reason = luigi.Parameter(significant=False)

    def complete(self) -> bool:
        return False

    def run(self):
        self.set_status_message(self.reason)
        raise DataError(self.reason)


class DailyForecast(luigi.WrapperTask):
    """The cron entry point: the forecast of ``date`` (default: yesterday, the last complete day).

    A date whose sales were never recorded (after the data's end, a clock far ahead of the
    data) schedules one failing task with the reason, not a chain of trainings; a database
    that cannot be asked right now leaves that to the chain's own tasks (they retry).
    """

    date = RunDateParameter(default=_yesterday())

    def requires(self):
        # Luigi asks several times (complete, then the graph): the database is asked once per task
        if not hasattr(self, "_missing"):
            self._missing = None
            if not ScoreForecast(self.date).complete():
                try:
                    engine = db.engine_for(config.database_url())
                except PipelineError:
                    engine = None
                if engine is not None:
                    try:
                        self._missing = extract.missing_run_date(engine, self.date)
                    finally:
                        engine.dispose()
        return RunDateHasNoData(self.date, self._missing) if self._missing else ScoreForecast(self.date)
