"""Feature sets: the core feature engine mapped over a snapshot's stores with Dask, one parquet part per store."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from pipeline.core.features import (CATEGORICAL, NUMERIC, POOLED, TARGET, build_features, feature_names,
                                    item_mean_prices, weeks_of)
from pipeline.core.series import series_keys
from pipeline.data import storage
from pipeline.stages import parallel
from pipeline.data.snapshot import read_snapshot, read_snapshot_store


def feature_partition(snapshot_dir: str, store_id: str, out_path: str, *, item_prices: pd.DataFrame,
                      target_dates: pd.DatetimeIndex, run_date: dt.date, with_target: bool,
                      pooled: bool = False) -> int:
    """Build the feature rows of one store from a snapshot folder and write them to ``out_path``.

    Runs on a Dask worker: it reads only its own store's rows. Returns the row count.
    """

    frame = build_features(
        sales=read_snapshot_store(snapshot_dir, "sales", store_id),
        prices=read_snapshot_store(snapshot_dir, "prices", store_id),
        calendar=read_snapshot(snapshot_dir, "calendar"),
        items=read_snapshot(snapshot_dir, "items"),
        stores=read_snapshot(snapshot_dir, "stores"),
        item_prices=item_prices,
        target_dates=target_dates,
        run_date=run_date,
        with_target=with_target,
        pooled=pooled,
    )
    storage.write_parquet(frame, out_path)
    return len(frame)


def build_feature_set(snapshot_dir, run_date: dt.date, target_dates: pd.DatetimeIndex, with_target: bool,
                      out_dir, dask_options: dict | None = None, pooled: bool = False) -> dict:
    """Feature rows of every series of a snapshot, one parquet file per store, plus ``features.json``.

    ``out_dir`` receives ``part-<store_id>.parquet`` files and ``features.json``
    (feature list and order, categorical and numeric columns, row counts).
    ``dask_options``: ``address``, ``n_workers``, ``threads_per_worker`` for
    :func:`pipeline.stages.parallel.map_partitions`. ``pooled``: add the store's and the
    store × department's levels (``pipeline.core.features.POOLED``); a partition is one store.
    """

    snapshot_dir, out_dir = Path(snapshot_dir), Path(out_dir)
    calendar = read_snapshot(snapshot_dir, "calendar")
    stores = read_snapshot(snapshot_dir, "stores")["store_id"].astype(str).tolist()
    series = series_keys(read_snapshot(snapshot_dir, "sales", columns=["item_id", "store_id"]))
    item_prices = item_mean_prices(read_snapshot(snapshot_dir, "prices"), series, weeks_of(calendar))
    present = [s for s in stores if (series["store_id"] == s).any()]
    parts = [(str(snapshot_dir), s, str(out_dir / f"part-{s}.parquet")) for s in present]
    rows = parallel.map_partitions(
        feature_partition, parts, **(dask_options or {"address": parallel.SYNCHRONOUS}),
        item_prices=item_prices, target_dates=target_dates, run_date=run_date, with_target=with_target,
        pooled=pooled,
    )
    summary = {
        "date": run_date.isoformat(),
        "kind": "train" if with_target else "score",
        "features": feature_names(pooled),
        "categorical": CATEGORICAL,
        "numeric": NUMERIC + (POOLED if pooled else []),
        "target": TARGET if with_target else None,
        "target_dates": [target_dates.min().date().isoformat(), target_dates.max().date().isoformat()],
        "parts": {s: n for (_, s, _), n in zip(parts, rows)},
        "rows": int(sum(rows)),
        "series": len(series),
    }
    storage.write_json(out_dir / "features.json", summary)
    return summary


def feature_list(folder) -> list[str]:
    """The features of a feature set, in the model's order (its ``features.json``)."""
    return list(storage.read_json(Path(folder) / "features.json")["features"])


def read_feature_set(folder) -> pd.DataFrame:
    """All parts of a feature set, in store order (the order they were built in)."""

    folder = Path(folder)
    meta = storage.read_json(folder / "features.json")
    frames = [pd.read_parquet(folder / f"part-{s}.parquet") for s in meta["parts"]]
    return pd.concat(frames, ignore_index=True)
