"""The peer: the same forecast made with Nixtla's mlforecast, in its own environment.

    bench/.venv-mlforecast/bin/python bench/peers/mlforecast_run.py SNAPSHOT_DIR DATE SPEC_JSON OUT_DIR

Reads the pipeline's snapshot of DATE (parquet: sales, prices, calendar, items,
stores), builds the equivalent features with mlforecast (the pipeline's lags,
rolling means and standard deviations over the lag-28 series, the same date
features; events, SNAP and prices as exogenous columns; item, department,
category, store and state as static categoricals), trains LightGBM with the
pipeline model's parameters and number of trees on the same training window,
and predicts the 28 days after DATE, once per entry of the spec's ``runs``
(a LightGBM seed and the number of trees the pipeline's model of that seed
kept). Loading and feature building are done once and shared by the runs, as
the pipeline's training features are. Writes OUT_DIR/seed-<seed>/forecast.parquet
(item_id, store_id, date, horizon, units) and OUT_DIR/timings.json (the shared
parts, and training and prediction of every run).

It imports nothing from the pipeline, so its environment holds only what a
user of mlforecast would install (bench/requirements-mlforecast.txt).
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMean, RollingStd

LAGS = [28, 29, 30, 35, 42, 49, 56, 364]
STATIC = ["item_id", "dept_id", "cat_id", "store_id", "state_id"]
EVENTS = ["event_name_1", "event_type_1", "event_name_2", "event_type_2"]
HORIZON = 28
# events are missing on most days (as in the pipeline, where LightGBM reads them as missing categories)
warnings.filterwarnings("ignore", message="Found null values")


def read(snapshot: Path, name: str, **kwargs) -> pd.DataFrame:
    """A snapshot table with its id columns as plain strings (the snapshot stores them as categories)."""
    frame = pd.read_parquet(snapshot / f"{name}.parquet", **kwargs)
    for col in ("item_id", "store_id", "dept_id", "cat_id", "state_id"):
        if col in frame:
            frame[col] = frame[col].astype(str)
    return frame


def week(dates):
    return dates.isocalendar().week.to_numpy().astype(np.int16)


def exogenous(snapshot: Path, keys: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    """Events, SNAP of the series' state and price features per (series, day) for ``days``."""
    cal = read(snapshot, "calendar")
    cal = cal[cal["date"].isin(days)]
    prices = read(snapshot, "prices")
    prices = prices.sort_values("wm_yr_wk")
    prices["price_norm"] = prices["sell_price"] / prices.groupby(["item_id", "store_id"])["sell_price"].cummax()
    prices["price_change"] = prices.groupby(["item_id", "store_id"])["sell_price"].pct_change()
    prices["price_rel_stores"] = prices["sell_price"] / prices.groupby(["item_id", "wm_yr_wk"])["sell_price"].transform("mean")
    grid = keys[["item_id", "store_id", "state_id"]].merge(cal[["date", "wm_yr_wk", *EVENTS, "snap_CA", "snap_TX", "snap_WI"]], how="cross")
    grid["snap"] = np.select([grid["state_id"] == s for s in ("CA", "TX", "WI")],
                             [grid[f"snap_{s}"] for s in ("CA", "TX", "WI")], 0).astype(np.int8)
    # a week whose price is not recorded yet keeps the last known price (as the pipeline does)
    grid = grid.sort_values("wm_yr_wk")
    grid = pd.merge_asof(grid, prices[["item_id", "store_id", "wm_yr_wk", "sell_price", "price_norm", "price_change",
                                       "price_rel_stores"]], on="wm_yr_wk", by=["item_id", "store_id"])
    for c in EVENTS:
        grid[c] = grid[c].astype("category")
    return grid.drop(columns=["wm_yr_wk", "snap_CA", "snap_TX", "snap_WI", "state_id"])


def main(snapshot_dir: str, date: str, spec_json: str, out_dir: str) -> int:
    snapshot, out = Path(snapshot_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = json.loads(Path(spec_json).read_text())
    run_date = pd.Timestamp(date)
    window_start = run_date - pd.Timedelta(days=spec["window_days"] - 1)
    train_end = run_date - pd.Timedelta(days=spec["valid_days"])  # the pipeline's training rows end here
    timings = {}

    t = time.perf_counter()
    sales = read(snapshot, "sales", columns=["item_id", "store_id", "date", "units"])
    # history the features need: the longest lag plus the longest window before the first training day
    first_needed = window_start - pd.Timedelta(days=max(LAGS) + 112)
    sales = sales[(sales["date"] >= first_needed) & (sales["date"] <= run_date)]
    keys = (read(snapshot, "items")
            .merge(sales[["item_id", "store_id"]].drop_duplicates(), on="item_id")
            .merge(read(snapshot, "stores"), on="store_id"))
    history_days = pd.date_range(first_needed, run_date)
    future_days = pd.date_range(run_date + pd.Timedelta(days=1), periods=HORIZON)
    exog = exogenous(snapshot, keys, history_days.append(future_days))
    df = keys.merge(sales, on=["item_id", "store_id"])
    df = df.merge(exog, on=["item_id", "store_id", "date"], how="left")
    df["unique_id"] = df["item_id"].astype(str) + "|" + df["store_id"].astype(str)
    df = df.rename(columns={"date": "ds", "units": "y"})
    for c in STATIC:
        df[c] = df[c].astype("category")
    df["y"] = df["y"].astype(np.float32)
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    params = {k: v for k, v in spec["params"].items() if k != "metric"}
    fcst = MLForecast(
        models={"lgb": lgb.LGBMRegressor()},  # replaced by each run's model below
        freq="D",
        lags=LAGS,
        lag_transforms={28: [RollingMean(w) for w in (7, 14, 28, 56, 112)] + [RollingStd(w) for w in (7, 28)]},
        date_features=["dayofweek", "month", "day", week],
        num_threads=2,
    )
    feats = fcst.preprocess(df, id_col="unique_id", time_col="ds", target_col="y",
                            static_features=STATIC, dropna=False)
    train = feats[(feats["ds"] >= window_start) & (feats["ds"] <= train_end)]
    X, y = train.drop(columns=["unique_id", "ds", "y"]), train["y"]
    timings["features_s"] = time.perf_counter() - t
    timings["train_rows"] = len(X)
    timings["features"] = list(X.columns)
    future = exog[exog["date"].isin(future_days)].copy()
    future["unique_id"] = future["item_id"].astype(str) + "|" + future["store_id"].astype(str)
    future = future.rename(columns={"date": "ds"}).drop(columns=["item_id", "store_id"])

    timings["runs"] = []
    for run in spec["runs"]:
        fcst.models = {"lgb": lgb.LGBMRegressor(n_estimators=run["num_trees"], **{**params, "seed": run["seed"]})}
        t = time.perf_counter()
        fcst.fit_models(X, y)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        pred = fcst.predict(h=HORIZON, X_df=future)
        predict_s = time.perf_counter() - t
        ids = pred["unique_id"].str.split("|", expand=True)
        forecast = pd.DataFrame({"item_id": ids[0], "store_id": ids[1], "date": pred["ds"],
                                 "units": np.clip(pred["lgb"].to_numpy(), 0, None)})
        forecast["horizon"] = (forecast["date"] - run_date).dt.days.astype(np.int16)
        (out / f"seed-{run['seed']}").mkdir(exist_ok=True)
        forecast.to_parquet(out / f"seed-{run['seed']}" / "forecast.parquet", index=False)
        timings["runs"].append({**run, "train_s": train_s, "predict_s": predict_s,
                                # this run end to end: the shared loading and features, its training and prediction
                                "total_s": timings["load_s"] + timings["features_s"] + train_s + predict_s})
        print(json.dumps(timings["runs"][-1]), flush=True)
    (out / "timings.json").write_text(json.dumps(timings, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
