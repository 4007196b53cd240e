"""Stage 5: Dask-parallel batch scoring with the compiled model, and publishing.

Each partition (one store's feature file) is scored on a worker, which loads the
compiled library once and keeps it for later partitions. The forecast is
written as ``forecast.parquet`` (as_of, item_id, store_id, date, horizon,
units), as the M5 submission layout (``id, F1..F28``) and upserted into the
``forecasts`` table keyed by the run date, so a rerun replaces, never duplicates.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.core.days import as_day
from pipeline.data import db
from pipeline.stages import parallel
from pipeline.data import storage
from pipeline.stages.compile import MANIFEST, CompiledModel
from pipeline.core.errors import ModelCheckError

_models: dict = {}
_models_lock = threading.Lock()


def _compiled_model(compiled_dir: str, nthread: int) -> CompiledModel:
    """The worker's cached compiled model; a model rebuilt in the same folder is loaded afresh."""
    st = os.stat(Path(compiled_dir) / MANIFEST)
    key = (compiled_dir, st.st_mtime_ns, st.st_size, nthread)
    with _models_lock:
        if key not in _models:
            _models[key] = CompiledModel(Path(compiled_dir), nthread=nthread)
        return _models[key]


def score_partition(features_path: str, *, compiled_dir: str, vocab: dict, feature_names: list,
                    nthread: int = 1) -> pd.DataFrame:
    """Forecast rows (item_id, store_id, date, units) of one feature file with the compiled model."""
    from pipeline.stages.train import encode

    frame = pd.read_parquet(features_path)
    X = encode(frame, vocab, feature_names)
    pred = _compiled_model(compiled_dir, nthread).predict(X)
    return pd.DataFrame({
        "item_id": frame["item_id"].astype(str).to_numpy(),
        "store_id": frame["store_id"].astype(str).to_numpy(),
        "date": frame["date"].to_numpy(),
        # counts are never negative; a tweedie model never predicts below 0, this only guards float noise
        "units": np.clip(pred, 0.0, None).astype(np.float32),
    })


def score_forecast(features_dir: Path, model_metadata: dict, compiled_dir: Path, run_date: dt.date,
                   dask_options: dict | None = None) -> pd.DataFrame:
    """The forecast of every series in ``features_dir``: as_of, item_id, store_id, date, horizon, units.

    Raises ModelCheckError if the features were built with another feature list
    than the model was trained on.
    """
    meta = storage.read_json(Path(features_dir) / "features.json")
    if meta["features"] != model_metadata["features"]:
        raise ModelCheckError(
            f"features of {run_date} ({len(meta['features'])} columns) differ from those of the model trained "
            f"{model_metadata['date']} ({len(model_metadata['features'])}): first difference at "
            f"{next((a, b) for a, b in zip(meta['features'] + [None] * 99, model_metadata['features'] + [None] * 99) if a != b)}")
    parts = [(str(Path(features_dir) / f"part-{s}.parquet"),) for s in meta["parts"]]
    frames = parallel.map_partitions(
        score_partition, parts, **(dask_options or {"address": parallel.SYNCHRONOUS}),
        compiled_dir=str(compiled_dir), vocab=model_metadata["vocab"], feature_names=model_metadata["features"],
    )
    forecast = pd.concat(frames, ignore_index=True)
    forecast.insert(0, "as_of", as_day(run_date))
    forecast["horizon"] = ((forecast["date"] - as_day(run_date)).dt.days).astype(np.int16)
    forecast = forecast.sort_values(["item_id", "store_id", "date"], ignore_index=True)
    return forecast[["as_of", "item_id", "store_id", "date", "horizon", "units"]]


# Kaggle's M5 submission holds two halves: rows ``..._validation`` forecast d_1914..d_1941
# (2016-04-25..2016-05-22, the public leaderboard) and rows ``..._evaluation`` forecast d_1942..d_1969.
M5_VALIDATION_FIRST_DAY = dt.date(2016, 4, 25)  # d_1914


def submission_suffix(first_day: dt.date) -> str:
    """``_validation`` for a forecast starting on d_1914 (origin 2016-04-24), else ``_evaluation``.

    The forecast of origin 2016-05-22 (d_1942..d_1969) is the evaluation half Kaggle scores;
    any other origin has no Kaggle half of its own and carries ``_evaluation`` too.
    """
    return "_validation" if first_day == M5_VALIDATION_FIRST_DAY else "_evaluation"


def submission(forecast: pd.DataFrame) -> pd.DataFrame:
    """The M5 submission layout: ``id`` = ``{item_id}_{store_id}`` + ``submission_suffix``, ``F1..F{horizon}``."""
    wide = forecast.pivot(index=["item_id", "store_id"], columns="horizon", values="units")
    wide.columns = [f"F{h}" for h in wide.columns]
    wide = wide.reset_index()
    suffix = submission_suffix(forecast["date"].min().date())
    wide.insert(0, "id", wide["item_id"] + "_" + wide["store_id"] + suffix)
    return wide.drop(columns=["item_id", "store_id"])


def write_forecast(forecast: pd.DataFrame, out_dir: Path, model_date: str, serving: dict | None = None,
                   components: pd.DataFrame | None = None, blend_weight: float = 0.0) -> dict:
    """Write ``forecast.parquet``, ``submission.csv`` and ``manifest.json`` into ``out_dir``.

    ``serving``: which model served and why (``pipeline.core.serving.ServingChoice.as_dict``);
    ``components``: for a blended forecast, the batch and online units of every row
    (``components.parquet``), and ``blend_weight`` the online model's share.
    """
    out_dir = Path(out_dir)
    storage.write_parquet(forecast, out_dir / "forecast.parquet")
    if components is not None:
        storage.write_parquet(components, out_dir / "components.parquet")
    storage.atomic_file(out_dir / "submission.csv", submission(forecast).to_csv(index=False, float_format="%.6g").encode())
    manifest = {
        "as_of": forecast["as_of"].iloc[0].date().isoformat(),
        "model_date": model_date,
        "rows": len(forecast),
        "series": int(forecast.groupby(["item_id", "store_id"]).ngroups),
        "first_date": forecast["date"].min().date().isoformat(),
        "last_date": forecast["date"].max().date().isoformat(),
        "total_units": float(forecast["units"].astype(np.float64).sum()),
        "content_hash": storage.frame_hash(forecast),
        "serving": serving,
    }
    if components is not None:
        manifest["blend"] = {"weight": blend_weight,
                             "batch_total_units": float(components["batch"].astype(np.float64).sum()),
                             "online_total_units": float(components["online"].astype(np.float64).sum())}
    storage.write_json(out_dir / "manifest.json", manifest)
    return manifest


def publish_forecast(engine: sa.Engine, forecast: pd.DataFrame) -> int:
    """Replace the run date's rows of the ``forecasts`` table with ``forecast``, in one transaction."""
    db.forecasts.create(engine, checkfirst=True)
    as_of = forecast["as_of"].iloc[0].date()
    rows = forecast.assign(units=forecast["units"].astype(np.float64))
    with engine.begin() as conn:
        conn.execute(sa.delete(db.forecasts).where(db.forecasts.c.as_of == as_of))
        db.bulk_insert(conn, db.forecasts, rows)
    return len(rows)
