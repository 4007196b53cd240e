"""The mlforecast REFERENCE: what a forecaster would write with Nixtla's mlforecast in an afternoon (issue 16).

    bench/.venv-mlforecast/bin/python bench/peers/mlforecast_reference.py SNAPSHOT_DIR ORIGIN OUT_DIR

Unlike ``mlforecast_run.py`` (the pipeline's own features and tree count, for an equal-settings
comparison), this is the set-up the accuracy panel (``bench/accuracy``) holds the pipeline
against, exactly as the issue states it:

* lags 28, 35, 42, 49, 56; on lag 28, rolling means over 7, 28 and 90 days and a rolling
  standard deviation over 28 days; date features day of week, month, day;
* exogenous: the sell price (a week not recorded yet at the origin repeats the series' last
  recorded price), the SNAP flag of the series' state, an event flag (any event that day);
* item, department, category, store and state as static categoricals;
* rows from 2013-01-01 (mlforecast drops the rows whose lags are not filled yet);
* ``LGBMRegressor(objective='tweedie', n_estimators=400, learning_rate=0.05, num_leaves=127,
  min_child_samples=100, subsample=0.7, subsample_freq=1, colsample_bytree=0.8)``.

It reads the pipeline's snapshot of ORIGIN (what was known at the end of that day: sales,
prices, calendar, items, stores), predicts the 28 days after it, and writes
OUT_DIR/forecast.parquet (item_id, store_id, date, horizon, units; negative predictions
clipped to 0) and OUT_DIR/timings.json (loading, features, training, prediction, rows).
It imports nothing from the pipeline: its environment holds only what a user of mlforecast
installs (bench/requirements-mlforecast.txt).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from mlforecast import MLForecast
from mlforecast.lag_transforms import RollingMean, RollingStd
from mlforecast_run import read  # the peer scripts read the snapshot alike (run as scripts, from bench/peers)

HORIZON = 28
FIRST_ROW = pd.Timestamp("2013-01-01")
LAGS = [28, 35, 42, 49, 56]
LAG_TRANSFORMS = {28: [RollingMean(7), RollingMean(28), RollingMean(90), RollingStd(28)]}
DATE_FEATURES = ["dayofweek", "month", "day"]
STATIC = ["item_id", "dept_id", "cat_id", "store_id", "state_id"]
PARAMS = dict(objective="tweedie", n_estimators=400, learning_rate=0.05, num_leaves=127, min_child_samples=100,
              subsample=0.7, subsample_freq=1, colsample_bytree=0.8)
THREADS = 2  # this machine's cores; not a model setting


def exogenous(snapshot: Path, keys: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    """sell_price, snap (the series' state's) and event (0/1) per (series, day) of ``days``."""
    cal = read(snapshot, "calendar")
    cal = cal[cal["date"].isin(days)].copy()
    cal["date"] = cal["date"].astype("datetime64[ns]")
    cal["event"] = (cal["event_name_1"].notna() | cal["event_name_2"].notna()).astype(np.int8)
    grid = keys[["item_id", "store_id", "state_id"]].merge(
        cal[["date", "wm_yr_wk", "event", "snap_CA", "snap_TX", "snap_WI"]], how="cross")
    grid["snap"] = np.select([grid["state_id"] == s for s in ("CA", "TX", "WI")],
                             [grid[f"snap_{s}"] for s in ("CA", "TX", "WI")], 0).astype(np.int8)
    prices = read(snapshot, "prices").sort_values("wm_yr_wk")
    grid = grid.sort_values("wm_yr_wk")
    # the last recorded price of the series carries forward into weeks not recorded yet (pandas' ffill)
    grid = pd.merge_asof(grid, prices[["item_id", "store_id", "wm_yr_wk", "sell_price"]],
                         on="wm_yr_wk", by=["item_id", "store_id"])
    return grid[["item_id", "store_id", "date", "sell_price", "snap", "event"]]


def main(snapshot_dir: str, origin: str, out_dir: str) -> int:
    snapshot, out = Path(snapshot_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_date = pd.Timestamp(origin)
    timings = {}

    t = time.perf_counter()
    sales = read(snapshot, "sales", columns=["item_id", "store_id", "date", "units"])
    sales["date"] = sales["date"].astype("datetime64[ns]")
    sales = sales[(sales["date"] >= FIRST_ROW) & (sales["date"] <= run_date)]
    keys = (read(snapshot, "items").merge(sales[["item_id", "store_id"]].drop_duplicates(), on="item_id")
            .merge(read(snapshot, "stores"), on="store_id"))
    future_days = pd.date_range(run_date + pd.Timedelta(days=1), periods=HORIZON)
    exog = exogenous(snapshot, keys, pd.date_range(sales["date"].min(), future_days[-1]))
    df = keys.merge(sales, on=["item_id", "store_id"]).merge(exog, on=["item_id", "store_id", "date"], how="left")
    df["unique_id"] = df["item_id"] + "|" + df["store_id"]
    df = df.rename(columns={"date": "ds", "units": "y"})
    for c in STATIC:
        df[c] = df[c].astype("category")
    df["y"] = df["y"].astype(np.float32)
    df = df[["unique_id", "ds", "y", *STATIC, "sell_price", "snap", "event"]].sort_values(["unique_id", "ds"])
    timings["load_s"] = time.perf_counter() - t

    fcst = MLForecast(models={"lgb": lgb.LGBMRegressor(**PARAMS, n_jobs=THREADS, verbose=-1)}, freq="D", lags=LAGS,
                      lag_transforms=LAG_TRANSFORMS, date_features=DATE_FEATURES, num_threads=THREADS)
    t = time.perf_counter()
    features = fcst.preprocess(df, id_col="unique_id", time_col="ds", target_col="y", static_features=STATIC)
    timings["features_s"] = time.perf_counter() - t
    timings["train_rows"] = len(features)
    timings["features"] = [c for c in features.columns if c not in ("unique_id", "ds", "y")]
    t = time.perf_counter()
    fcst.fit_models(features.drop(columns=["unique_id", "ds", "y"]), features["y"])
    timings["train_s"] = time.perf_counter() - t

    future = exog[exog["date"].isin(future_days)].copy()
    future["unique_id"] = future["item_id"] + "|" + future["store_id"]
    future = future.rename(columns={"date": "ds"})[["unique_id", "ds", "sell_price", "snap", "event"]]
    t = time.perf_counter()
    pred = fcst.predict(h=HORIZON, X_df=future)
    timings["predict_s"] = time.perf_counter() - t
    ids = pred["unique_id"].str.split("|", expand=True)
    forecast = pd.DataFrame({"item_id": ids[0], "store_id": ids[1], "date": pred["ds"].astype("datetime64[ns]"),
                             "units": np.clip(pred["lgb"].to_numpy(dtype=np.float64), 0, None)})
    forecast["horizon"] = (forecast["date"] - run_date).dt.days.astype(np.int16)
    forecast = forecast.sort_values(["item_id", "store_id", "date"]).reset_index(drop=True)
    forecast.to_parquet(out / "forecast.parquet", index=False)
    timings["total_s"] = timings["load_s"] + timings["features_s"] + timings["train_s"] + timings["predict_s"]
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(json.dumps({k: v for k, v in timings.items() if k != "features"}), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.split("\n\n")[1])
    sys.exit(main(*sys.argv[1:4]))
