"""Training on a Dask cluster through LightGBM's Dask interface (``lightgbm.DaskLGBMRegressor``).

Each worker reads and encodes its own stores' parts of the training feature set;
nothing but small summaries and the finished model comes back to the client.
The parameters, features, vocabulary and validation window are those of
:func:`pipeline.stages.train.train_model`, and the model is an ordinary LightGBM
text model, so compile and score do not know where it was trained.

Early stopping: LightGBM's Dask interface hands every worker only some of the
validation rows, so each worker would stop at its own round and the others
would wait for it forever (LightGBM issues 3712, 6351). Here every worker
instead adds the *whole* validation window (the last 28 days, a small share of
the window) as its validation set: the trees are the same on every worker, so
every worker computes the same validation scores and stops at the same round,
the one the single-machine rule would pick for this model.

Determinism: on one worker the trees are byte for byte the in-process ones. On
n workers it is one of at most n! models: LightGBM finds each feature's bins
from the rows of the machine of one rank, and ``lightgbm.dask`` ranks the
workers in the order of a Python set of task keys, which no caller fixes. Each
worker holds one block of rows (parts ``j, j + n, ...`` of the store order, on
worker ``j`` of the workers sorted by address), so the model is fixed once the
ranks are. The network parameters (ports) are not written into the model.
"""
from __future__ import annotations

import operator
import re
import warnings
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.core import features as F
from pipeline.core.errors import DataError
from pipeline.data import storage
from pipeline.stages import features as feature_sets
from pipeline.stages import parallel
from pipeline.stages.train import VALID_DAYS, _ValidationErrors, encode

# lgb_params' names that LightGBM's scikit-learn estimator spells its own way; passing both spellings
# would leave LightGBM to choose between them
SKLEARN_NAMES = {"objective": "objective", "learning_rate": "learning_rate", "num_leaves": "num_leaves",
                 "min_data_in_leaf": "min_child_samples", "feature_fraction": "colsample_bytree",
                 "bagging_fraction": "subsample", "bagging_freq": "subsample_freq", "lambda_l2": "reg_lambda",
                 "seed": "random_state"}
# the Dask interface sets each worker's thread count from the worker itself
WORKER_SET = ("num_threads",)
# the ports the workers happened to listen on are written into the model's parameters: the written
# model keeps LightGBM's defaults there instead, so that its bytes do not depend on them
NETWORK_LINES = {"machines": "", "local_listen_port": "12400"}


def part_paths(train_dir) -> list[Path]:
    """The parts of a feature set, in store order (the order ``read_feature_set`` concatenates them)."""
    train_dir = Path(train_dir)
    return [train_dir / f"part-{s}.parquet" for s in storage.read_json(train_dir / "features.json")["parts"]]


def part_summary(path: str, valid_start: pd.Timestamp) -> dict:
    """Distinct categorical values, first day and training/validation row counts of one part (on a worker)."""
    frame = pd.read_parquet(path, columns=[*F.CATEGORICAL, "date"])
    is_valid = frame["date"] >= valid_start
    return {"values": {c: set(frame[c].dropna().astype(str).unique().tolist()) for c in F.CATEGORICAL},
            "first": frame["date"].min(), "train_rows": int((~is_valid).sum()), "valid_rows": int(is_valid.sum())}


def load_parts(paths: list[str], valid_start: pd.Timestamp, vocab: dict, feature_names: list[str]) -> tuple:
    """The encoded training rows (before ``valid_start``) of some parts, in their order, and their target."""
    frame = pd.concat([pd.read_parquet(p, filters=[("date", "<", valid_start)]) for p in paths], ignore_index=True)
    return encode(frame, vocab, feature_names), frame[F.TARGET].to_numpy(dtype=np.float32)


def load_validation(paths: list[str], valid_start: pd.Timestamp, vocab: dict, feature_names: list[str]) -> tuple:
    """The encoded validation rows of every part, in store order, and their target."""
    frame = pd.concat([pd.read_parquet(p, filters=[("date", ">=", valid_start)]) for p in paths], ignore_index=True)
    return encode(frame, vocab, feature_names), frame[F.TARGET].to_numpy(dtype=np.float32)


class WholeValidation:
    """Before the first round on a worker: add the whole validation window as the booster's validation set."""

    before_iteration = True
    order = 0

    def __init__(self, paths: list[str], valid_start: pd.Timestamp, vocab: dict, feature_names: list[str]):
        self.args = (paths, valid_start, vocab, feature_names)

    def __call__(self, env) -> None:
        if env.iteration == env.begin_iteration:
            X, y = load_validation(*self.args)
            train_set = env.model.train_set
            env.model.add_valid(lgb.Dataset(X, y, reference=train_set, params=train_set.params), "valid")


class WorkerValidationErrors:
    """After every round on a worker: rmse, mae and bias of the validation rows, as ``train._ValidationErrors``.

    The list is kept on the booster (``validation_errors``), which the Dask
    interface sends back to the client with the model.
    """

    order = 25  # after LightGBM's record_evaluation, before its early stopping

    def __call__(self, env) -> None:
        errors = getattr(env.model, "validation_errors", None)
        if errors is None:
            errors = _ValidationErrors(env.model.valid_sets[0].get_label())
            env.model.validation_errors = errors
        errors(env)


def fit_on_cluster(client, train_dir, valid_start: pd.Timestamp, params: dict, num_boost_round: int,
                   early_stopping_rounds: int, progress=None) -> dict:
    """Train on ``client``'s workers; what ``train_model`` needs to write the model and its metadata.

    Returns ``booster``, ``best_iteration``, ``errors`` (the validation metrics
    of the best round), ``vocab``, ``first_day``, ``train_rows``, ``valid_rows`` and
    ``workers`` (how many LightGBM machines trained).
    """
    import dask
    import dask.array as da

    paths = [str(p) for p in part_paths(train_dir)]
    summaries = parallel.map_partitions(part_summary, [(p,) for p in paths], client=client, valid_start=valid_start)
    train_rows, valid_rows = sum(s["train_rows"] for s in summaries), sum(s["valid_rows"] for s in summaries)
    if not train_rows or not valid_rows:
        raise DataError(f"training set in {train_dir} has {train_rows} training and {valid_rows} validation rows: "
                        f"the window must be longer than {VALID_DAYS} days")
    vocab = {c: sorted(set().union(*(s["values"][c] for s in summaries))) for c in F.CATEGORICAL}
    feature_names = feature_sets.feature_list(train_dir)
    # one block of rows per worker: the Dask interface concatenates a worker's blocks in no fixed order
    workers = sorted(client.ncores())
    xs, ys = [], []
    for j, worker in enumerate(workers):
        mine = [i for i in range(j, len(paths), len(workers)) if summaries[i]["train_rows"]]
        if not mine:
            continue
        where = {"workers": [worker], "allow_other_workers": False, "pure": False}
        block = client.submit(load_parts, [paths[i] for i in mine], valid_start, vocab, feature_names, **where)
        n = sum(summaries[i]["train_rows"] for i in mine)
        xs.append(da.from_delayed(dask.delayed(client.submit(operator.getitem, block, 0, **where)),
                                  shape=(n, len(feature_names)), dtype=np.float32))
        ys.append(da.from_delayed(dask.delayed(client.submit(operator.getitem, block, 1, **where)),
                                  shape=(n,), dtype=np.float32))
    if progress:
        progress(0.05, f"training on {len(xs)} Dask workers, {train_rows:,} rows")
    # a categorical column without any value (no second event in the window) is left undeclared: LightGBM
    # ignores an all-missing column either way, but its distributed bin finding crashes on a categorical one
    model = lgb.DaskLGBMRegressor(
        client=client, n_estimators=num_boost_round, tree_learner="data",
        **{SKLEARN_NAMES.get(k, k): v for k, v in params.items() if k not in WORKER_SET},
    )
    # lightgbm.dask waits through Dask's current client: this one, not whichever was made first in the process
    with client.as_current(), warnings.catch_warnings():
        # the estimator always carries n_jobs, which the Dask interface replaces by each worker's threads
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(
            da.concatenate(xs), da.concatenate(ys), feature_name=feature_names,
            categorical_feature=[feature_names.index(c) for c in F.CATEGORICAL if vocab[c]],
            callbacks=[WholeValidation(paths, valid_start, vocab, feature_names), WorkerValidationErrors(),
                       lgb.early_stopping(early_stopping_rounds, verbose=False)],
        )
    best = model.booster_.best_iteration or num_boost_round
    errors = model.booster_.validation_errors.at(best)
    booster = lgb.Booster(model_str=without_network(model.booster_.model_to_string()))
    return {"booster": booster, "best_iteration": best, "errors": errors,
            "vocab": vocab, "first_day": min(s["first"] for s in summaries), "train_rows": train_rows,
            "valid_rows": valid_rows, "workers": len(xs)}


def without_network(model_text: str) -> str:
    """``model_text`` with the run's network parameters replaced by LightGBM's defaults (``NETWORK_LINES``)."""
    for name, value in NETWORK_LINES.items():
        model_text = re.sub(rf"^\[{name}: [^\]\n]*\]$", f"[{name}: {value}]", model_text, count=1, flags=re.M)
    return model_text
