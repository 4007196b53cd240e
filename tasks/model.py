"""A training date's model: trained, compiled and checked, and its promotion decision."""
from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core import serving
from pipeline.data import storage
from pipeline.stages import compile as compile_
from pipeline.stages import features as feature_sets
from pipeline.stages import parallel, promote, train
from tasks import config
from tasks.features import BuildTrainingFeatures
from tasks.outputs import SETTINGS_FILE, DatedTask, FolderTarget
from tasks.snapshot import ExtractSnapshot

log = logging.getLogger("pipeline")

DECISION = "decision.json"


class TrainModel(DatedTask):
    """A LightGBM model trained on the window ending at ``date`` (a training date)."""

    stage = "models"
    files = ("model.txt", "metadata.json")

    def output(self):
        target = super().output()
        if config.training().refit:  # the early-stopped model too: promotion scores it
            target.files = (*target.files, train.VALIDATION_MODEL)
        return target

    def settings(self) -> dict:
        # a model trained on a cluster's workers has other bytes (pipeline.stages.train_dask)
        on_cluster = parallel.is_cluster(self.dask_options()["address"])
        return {**config.training().model_settings(), **({"distributed": True} if on_cluster else {})}

    def requires(self):
        return {"features": BuildTrainingFeatures(self.date), "snapshot": ExtractSnapshot(self.date)}

    def run(self):
        cfg = config.training()
        manifest = storage.read_json(self.input()["snapshot"].file("manifest.json"))
        opts = self.dask_options()
        client = parallel.get_client(**opts) if parallel.is_cluster(opts["address"]) else None
        with self.writing() as tmp:
            meta = train.train_model(self.input()["features"].path, self.date, train.lgb_params(cfg),
                                     cfg.num_boost_round, cfg.early_stopping_rounds, tmp, manifest,
                                     progress=self.report_progress, client=client, refit=cfg.refit)
        log.info("model %s: %s", self.date, meta["metrics"])


class CompiledTarget(FolderTarget):
    """A compiled model: ``compiled.json``, every library it lists, and ``check.json``."""

    def __init__(self, path: Path):
        super().__init__(path, ("check.json", SETTINGS_FILE))

    def expected_files(self) -> list[str]:
        return [*compile_.library_files(self.path), *self.files]


class CompileModel(DatedTask):
    """The model of ``date`` compiled by TL2cgen, checked equal to LightGBM on real rows.

    Its identity is the model's: the ``[compiler]`` options change speed, not predictions.
    """

    stage = "compiled"

    def output(self) -> CompiledTarget:
        return CompiledTarget(self.folder())

    def requires(self):
        return {"model": TrainModel(self.date), "features": BuildTrainingFeatures(self.date)}

    def run(self):
        _, metadata = train.load_model(self.input()["model"].path)
        sample = compile_.check_sample(feature_sets.read_feature_set(self.input()["features"].path), metadata)
        with self.writing() as tmp:
            report = compile_.compile_and_check(self.input()["model"].path, sample, tmp, config.compile_options())
        log.info("compiled model %s: %s", self.date, report)
        self.set_status_message(f"{report['blocks']} libraries compiled in {report['compile_seconds']} s; "
                                f"max |compiled - LightGBM| "
                                f"{report['max_abs_diff']:.1e} on {report['rows']:,} rows")


class PromoteModel(DatedTask):
    """The promotion decision of the model trained on ``date``: it serves, or the best previous one keeps serving.

    Writes ``decision.json`` (every validation WRMSSE, the margin, the decision, the
    serving model). The models compared are those of the ``[training]
    promotion_lookback`` previous training dates on or after ``promotion_start``
    (``pipeline.core.serving.TrainingSchedule.compared_with``): at most lookback + 1
    trainings, whatever the date.
    """

    stage = "promotions"
    files = (DECISION,)

    def settings(self) -> dict:
        return config.training().promotion_settings()

    def previous_models(self):
        return config.training().schedule().compared_with(self.date)

    def requires(self):
        return {"model": TrainModel(self.date), "features": BuildTrainingFeatures(self.date),
                "snapshot": ExtractSnapshot(self.date), "previous": [TrainModel(d) for d in self.previous_models()]}

    def run(self):
        models = {self.date: self.input()["model"].path,
                  **{d: t.path for d, t in zip(self.previous_models(), self.input()["previous"])}}
        scores = ({} if len(models) == 1 else promote.validation_wrmsse(
            models, self.input()["features"].path, self.input()["snapshot"].path, self.date))
        decision = serving.decide(self.date, scores, config.training().promotion_margin)
        with self.writing() as tmp:
            storage.write_json(tmp / DECISION, decision)
        self.set_status_message(decision["reason"])
        log.info("promotion %s: %s", self.date, decision)


def read_decision(task: PromoteModel) -> dict:
    """A promotion decision as written by ``PromoteModel``."""
    return storage.read_json(task.output().file(DECISION))


def serving_choice(run_date, decision_of) -> serving.ServingChoice:
    """The configured life cycle's answer for ``run_date`` (``pipeline.core.serving.serving_model``)."""
    cfg = config.training()
    return serving.serving_model(run_date, cfg.schedule(), decision_of, cfg.pinned_model())
