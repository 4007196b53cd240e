"""Stage 3: a deterministic LightGBM model trained on the window before a training date.

The window's last 28 days are the validation set that early stopping watches.
Categorical features are encoded with a vocabulary fixed at training time and
stored in the model's metadata, so scoring (and the compiled model) see the same
codes; an id the model never saw becomes missing, not a wrong code.
"""
from __future__ import annotations

import datetime as dt
import platform
import subprocess
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.core.days import as_day
from pipeline.core import features as F
from pipeline.stages import features as feature_sets
from pipeline.data import storage
from pipeline.core.errors import DataError

VALID_DAYS = 28
VALIDATION_MODEL = "validation_model.txt"  # written by a refit: the early-stopped model, before it saw the validation days


def make_vocab(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Sorted distinct values of every categorical feature (missing values excluded)."""
    return {c: sorted(frame[c].dropna().astype(str).unique().tolist()) for c in F.CATEGORICAL}


def encode(frame: pd.DataFrame, vocab: dict[str, list[str]], feature_names: list[str]) -> np.ndarray:
    """The float32 model matrix of ``frame``, columns in ``feature_names`` order.

    Categoricals become their position in ``vocab`` (NaN when unknown or missing);
    float32 is what the compiled model reads too, so both see identical inputs.
    """
    out = np.empty((len(frame), len(feature_names)), dtype=np.float32)
    for j, name in enumerate(feature_names):
        if name in vocab:
            # map the few distinct values, not every row
            cat = pd.Categorical(frame[name])
            # a trailing -1 makes missing (code -1) map to "unknown" without a special case
            lookup = np.append(pd.Index(vocab[name]).get_indexer(cat.categories.astype(str)), -1)
            codes = lookup[cat.codes]
            out[:, j] = np.where(codes >= 0, codes, np.nan)
        else:
            out[:, j] = frame[name].to_numpy(dtype=np.float32, na_value=np.nan)
    return out


def lgb_params(cfg) -> dict:
    """LightGBM parameters from a ``training`` config; fixed seeds and thread count for determinism."""
    return {
        "objective": "tweedie",
        "tweedie_variance_power": cfg.tweedie_variance_power,
        "metric": ["rmse", "tweedie"],
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 0.1,
        "max_bin": 255,
        "num_threads": cfg.num_threads,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


class _ValidationErrors:
    """A LightGBM callback keeping rmse, mae and bias of the validation rows after every round.

    It reads LightGBM's own running validation scores, so the metrics of the
    best round cost no second prediction pass over the validation rows (at full
    scale such a pass costs as much as many rounds of training).
    """

    def __init__(self, label: np.ndarray):
        self.label = label.astype(np.float64)
        self.rounds: list[dict] = []

    def __call__(self, env) -> None:
        env.model.eval_valid(feval=self._record)

    def _record(self, pred: np.ndarray, _data) -> list:
        err = pred - self.label
        self.rounds.append({"valid_rmse": float(np.sqrt(np.mean(err**2))), "valid_mae": float(np.mean(np.abs(err))),
                            "valid_bias": float(np.mean(err))})
        return []

    def at(self, iteration: int) -> dict:
        """The metrics after ``iteration`` rounds (1-based, as LightGBM's ``best_iteration``)."""
        return self.rounds[iteration - 1]


def train_model(train_dir: Path, run_date: dt.date, params: dict, num_boost_round: int,
                early_stopping_rounds: int, out_dir: Path, snapshot_manifest: dict, progress=None,
                client=None, refit: bool = False) -> dict:
    """Train on the feature set in ``train_dir`` and write the model to ``out_dir``.

    ``progress(fraction, message)``, if given, is told every 10 boosting rounds.
    ``client``: a Dask client whose workers train instead of this process
    (``pipeline.stages.train_dask``); the model written is of the same kind.
    ``refit``: once early stopping on the last ``VALID_DAYS`` has chosen the number of
    rounds, train that many rounds again on the whole window, validation days included,
    so that the model served has seen the most recent weeks (in-process training only).

    Files: ``model.txt`` (LightGBM text model, best iteration only) and
    ``metadata.json``. Returns the metadata.
    """
    valid_start = as_day(run_date) - pd.Timedelta(days=VALID_DAYS - 1)
    if client is None:
        fit = _fit_in_process(train_dir, run_date, valid_start, params, num_boost_round, early_stopping_rounds,
                              progress, refit)
    else:
        if refit:
            raise ValueError("[training] refit is not supported when training on a Dask cluster")
        from pipeline.stages import train_dask

        fit = train_dask.fit_on_cluster(client, train_dir, valid_start, params, num_boost_round,
                                        early_stopping_rounds, progress)
    best = fit["best_iteration"]
    metrics = {
        "best_iteration": int(best),
        **fit["errors"],
        "valid_rows": fit["valid_rows"],
        "train_rows": fit["train_rows"],
    }
    feature_names = feature_sets.feature_list(train_dir)
    fit["booster"].save_model(str(out_dir / "model.txt"), num_iteration=best)
    if fit.get("validation_booster") is not None:
        # what promotion scores: the model that had not seen its validation days (the served one has)
        fit["validation_booster"].save_model(str(out_dir / VALIDATION_MODEL), num_iteration=best)
    final = lgb.Booster(model_file=str(out_dir / "model.txt"))  # what scoring will load: its importances
    metadata = {
        "date": run_date.isoformat(),
        "training_window": [fit["first_day"].date().isoformat(),
                            (run_date if refit else (valid_start - pd.Timedelta(days=1)).date()).isoformat()],
        "refit": refit,
        "validation_window": [valid_start.date().isoformat(), run_date.isoformat()],
        "features": feature_names,
        "categorical": F.CATEGORICAL,
        "vocab": fit["vocab"],
        "params": params,
        "num_boost_round": num_boost_round,
        "early_stopping_rounds": early_stopping_rounds,
        "metrics": metrics,
        "feature_importance_gain": dict(zip(feature_names, final.feature_importance("gain").round(3).tolist())),
        "snapshot_hash": snapshot_manifest["content_hash"]["all"],
        "versions": library_versions(),
        "code_commit": git_commit(),
    }
    if client is not None:
        metadata["distributed"] = {"workers": fit["workers"], "tree_learner": "data"}
    storage.write_json(out_dir / "metadata.json", metadata)
    return metadata


def _fit_in_process(train_dir: Path, run_date: dt.date, valid_start: pd.Timestamp, params: dict,
                    num_boost_round: int, early_stopping_rounds: int, progress, refit: bool = False) -> dict:
    """LightGBM in this process on the whole feature set; what ``train_model`` writes (see ``train_dask``)."""
    frame = feature_sets.read_feature_set(train_dir)
    is_valid = (frame["date"] >= valid_start).to_numpy()
    if is_valid.all() or not is_valid.any():
        raise DataError(f"training set of {run_date} has {int((~is_valid).sum())} training and "
                        f"{int(is_valid.sum())} validation rows: the window must be longer than {VALID_DAYS} days")
    feature_names = feature_sets.feature_list(train_dir)
    vocab = make_vocab(frame)
    X = encode(frame, vocab, feature_names)
    y = frame[F.TARGET].to_numpy(dtype=np.float32)
    cats = [feature_names.index(c) for c in F.CATEGORICAL]
    dtrain = lgb.Dataset(X[~is_valid], y[~is_valid], feature_name=feature_names, categorical_feature=cats, free_raw_data=True)
    dvalid = lgb.Dataset(X[is_valid], y[is_valid], reference=dtrain)
    errors = _ValidationErrors(y[is_valid])

    def report(env):
        if progress and env.iteration % 10 == 0:
            score = env.evaluation_result_list[0][2] if env.evaluation_result_list else float("nan")
            progress((env.iteration + 1) / num_boost_round, f"round {env.iteration + 1}/{num_boost_round}, valid rmse {score:.4f}")

    booster = lgb.train(
        params, dtrain, num_boost_round=num_boost_round, valid_sets=[dvalid], valid_names=["valid"],
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False), errors, report],
    )
    best = booster.best_iteration or num_boost_round
    validation_booster = None
    if refit:  # the chosen number of rounds, on every row of the window
        validation_booster = booster
        booster = lgb.train(params, lgb.Dataset(X, y, feature_name=feature_names, categorical_feature=cats),
                            num_boost_round=best)
    return {"booster": booster, "validation_booster": validation_booster, "best_iteration": best, "errors": errors.at(best), "vocab": vocab,
            "first_day": frame["date"].min(), "train_rows": int((~is_valid).sum()), "valid_rows": int(is_valid.sum())}


def library_versions() -> dict:
    import tl2cgen
    import treelite

    return {"python": platform.python_version(), "lightgbm": lgb.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "treelite": treelite.__version__, "tl2cgen": tl2cgen.__version__}


def git_commit() -> str | None:
    """The code's git commit (with ``-dirty`` if the work tree has changes), or None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def load_model(model_dir: Path, for_validation: bool = False) -> tuple[lgb.Booster, dict]:
    """The LightGBM booster and metadata of a trained model folder.

    ``for_validation``: the model as it was before a refit (``VALIDATION_MODEL``), when there was one:
    scored on the validation days, it is the model that had not seen them.
    """
    model_dir = Path(model_dir)
    name = VALIDATION_MODEL if for_validation and (model_dir / VALIDATION_MODEL).exists() else "model.txt"
    return lgb.Booster(model_file=str(model_dir / name)), storage.read_json(model_dir / "metadata.json")
