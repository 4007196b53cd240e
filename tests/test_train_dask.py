"""Training on a Dask cluster (LightGBM's Dask interface): the same model on one worker, a forecast as good on two."""
from __future__ import annotations

import contextlib
import datetime as dt
import re
import types

import luigi
import numpy as np
import pandas as pd
import pytest

import pipeline  # noqa: F401  (registers the tasks)
from pipeline.core import features as F
from pipeline.data import storage
from pipeline.stages import features as feature_sets
from pipeline.stages import parallel, train
from tasks import DailyForecast, Evaluate, TrainModel
from tests.conftest import RUN_DATE

RUN = dt.date(2016, 3, 31)
STORES = ("CA_1", "TX_1", "WI_1")
CFG = types.SimpleNamespace(tweedie_variance_power=1.2, learning_rate=0.1, num_leaves=15, min_data_in_leaf=20,
                            feature_fraction=0.8, num_threads=1, seed=1)


@contextlib.contextmanager
def local_cluster(n_workers: int):
    """A client of a new LocalCluster of ``n_workers`` single-threaded worker processes.

    Not Dask's default client, as the pipeline's are not (``pipeline.stages.parallel``): training must
    not depend on one.
    """
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture
def feature_set(tmp_path):
    """A feature folder as BuildTrainingFeatures writes it: 3 stores x 40 series x 120 days, units from features."""
    rng = np.random.default_rng(7)
    days = pd.date_range(end=pd.Timestamp(RUN), periods=120)
    folder = tmp_path / "train"
    folder.mkdir()
    parts = {}
    for store in STORES:
        n = 40 * len(days)
        frame = pd.DataFrame({"item_id": np.repeat([f"FOODS_1_{i:03d}" for i in range(40)], len(days)),
                              "store_id": store, "date": np.tile(days, 40)})
        for col in F.CATEGORICAL:
            if col not in frame:
                frame[col] = pd.Series(rng.choice(["a", "b", None], n), dtype="string")
        for col in F.NUMERIC:
            frame[col] = rng.gamma(2.0, 1.0, n).astype(np.float32)
        frame["units"] = rng.poisson(frame["lag_28"] + 0.5 * frame["wday"]).astype(np.float32)
        storage.write_parquet(frame[F.ID_COLUMNS + [c for c in F.FEATURES if c not in F.ID_COLUMNS] + ["units"]],
                              folder / f"part-{store}.parquet")
        parts[store] = n
    storage.write_json(folder / "features.json", {"parts": parts, "features": F.FEATURES, "categorical": F.CATEGORICAL,
                                                  "numeric": F.NUMERIC, "target": F.TARGET})
    return folder


def trained(feature_set, out, client=None) -> dict:
    out.mkdir()
    return train.train_model(feature_set, RUN, train.lgb_params(CFG), 300, 5, out, {"content_hash": {"all": "x"}},
                             client=client)


def parameters(model_txt) -> dict[str, str]:
    """The ``[name: value]`` lines of a LightGBM text model."""
    return dict(re.findall(r"^\[(\w+): ([^\]\n]*)\]$", model_txt.read_text(), flags=re.M))


@pytest.mark.slow
def test_one_worker_trains_the_in_process_model_byte_for_byte(feature_set, tmp_path):
    """Same rows, same parameters, same early stopping: only the place differs (one LightGBM machine)."""
    local = trained(feature_set, tmp_path / "local")
    with local_cluster(1) as client:
        remote = trained(feature_set, tmp_path / "cluster", client)
    assert (tmp_path / "cluster" / "model.txt").read_bytes() == (tmp_path / "local" / "model.txt").read_bytes()
    assert remote["metrics"] == local["metrics"] and remote["vocab"] == local["vocab"]
    assert remote["training_window"] == local["training_window"]
    assert remote["distributed"] == {"workers": 1, "tree_learner": "data"} and "distributed" not in local


@pytest.mark.slow
def test_two_workers_stop_early_on_the_whole_validation_window(feature_set, tmp_path):
    with local_cluster(2) as client:
        meta = trained(feature_set, tmp_path / "cluster", client)
    booster, _ = train.load_model(tmp_path / "cluster")
    m = meta["metrics"]
    assert meta["distributed"]["workers"] == 2
    assert booster.num_trees() == m["best_iteration"] < 300  # early stopping chose the round, on every worker
    frame = feature_sets.read_feature_set(feature_set)
    valid = frame[frame["date"] > pd.Timestamp(RUN) - pd.Timedelta(days=train.VALID_DAYS)]
    err = booster.predict(train.encode(valid, meta["vocab"], meta["features"])) - valid["units"].to_numpy(np.float64)
    assert m["valid_rows"] == len(valid) == len(STORES) * 40 * train.VALID_DAYS
    assert m["train_rows"] == len(frame) - len(valid)
    assert m["valid_rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-9)
    assert m["valid_mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
    assert m["valid_bias"] == pytest.approx(np.mean(err), rel=1e-9, abs=1e-12)
    # LightGBM's parameters are the in-process ones, but for the parallel learner; no port is written
    trained(feature_set, tmp_path / "local")
    local = parameters(tmp_path / "local" / "model.txt")
    remote = parameters(tmp_path / "cluster" / "model.txt")
    differ = {k for k in local if local[k] != remote[k]}
    assert differ == {"tree_learner", "num_machines"}, differ
    assert (remote["tree_learner"], remote["num_machines"]) == ("data", "2")


def wrmsse_of(task: Evaluate) -> float:
    table = pd.read_parquet(task.output().file("metrics.parquet"))
    return float(table.query("model == 'model' and metric == 'wrmsse' and level == 'all'")["value"].iloc[0])


@pytest.mark.slow
@pytest.mark.prebuilt_chain
def test_a_scheduler_address_trains_on_its_cluster_and_the_forecast_is_as_good(chain_env, monkeypatch):
    cfg = luigi.configuration.get_config()
    refit = cfg.get("training", "refit", None)
    cfg.set("training", "refit", "false")  # a cluster trains without a refit: compared with the same in-process
    try:
        _cluster_against_in_process(chain_env, monkeypatch, cfg)
    finally:
        cfg.set("training", "refit", refit) if refit is not None else cfg.remove_option("training", "refit")


def _cluster_against_in_process(chain_env, monkeypatch, cfg):
    assert chain_env.build([Evaluate(date=RUN_DATE)]).status == luigi.execution_summary.LuigiStatusCode.SUCCESS
    single = wrmsse_of(Evaluate(date=RUN_DATE))
    single_model = TrainModel(date=RUN_DATE).output().path
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    with local_cluster(2) as client:
        cfg.set("dask", "scheduler_address", client.scheduler.address)
        try:
            model = TrainModel(date=RUN_DATE)
            assert model.settings()["distributed"] is True and model.output().path != single_model
            result = chain_env.build([DailyForecast(date=RUN_DATE), Evaluate(date=RUN_DATE)])
            assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
            meta = storage.read_json(model.output().file("metadata.json"))
            on_cluster = wrmsse_of(Evaluate(date=RUN_DATE))
        finally:
            cfg.remove_option("dask", "scheduler_address")
            parallel.close_clients()
    assert meta["distributed"]["workers"] == 2
    assert (single_model / "model.txt").exists()  # the in-process model stays where it was
    assert on_cluster == pytest.approx(single, rel=0.01), (on_cluster, single)
