"""Stage 6: score a run's forecast against actuals, next to the classic baselines.

The actuals of run date D are the sales of D+1..D+28 as known at the end of
D+28 (the snapshot of D+28), so an evaluation is as reproducible as a forecast.
Weights and scales of the WRMSSE come from the snapshot of D (what was known at
the forecast origin). The baselines are computed in the same run on the same
series: seasonal naive (the same weekday of the last week), the 28-day moving
average, and zero.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.data import db
from pipeline.core import metrics
from pipeline.data import storage
from pipeline.core.errors import DataError
from pipeline.data.snapshot import read_snapshot

MODEL = "model"
BASELINES = ("seasonal_naive", "moving_average_28", "zero")
KEY = ["item_id", "store_id"]



def baselines(history: pd.DataFrame, series: pd.DataFrame, run_date: dt.date, horizon: int = 28) -> dict[str, pd.DataFrame]:
    """Baseline forecasts (long: item_id, store_id, date, units) of ``series`` from ``history`` up to ``run_date``.

    seasonal_naive: day D+h gets the units of the same weekday in the last week
    (D−6..D); moving_average_28: the mean of D−27..D; zero: 0. A day missing
    from the history counts as 0 units (a series not sold yet).
    """
    run = pd.Timestamp(run_date)
    last = pd.date_range(end=run, periods=28)
    recent = history[history["date"].between(last[0], run)]
    wide = (recent.assign(**{c: recent[c].astype(str) for c in KEY})
            .pivot_table(index=KEY, columns="date", values="units", aggfunc="sum", observed=True)
            .reindex(columns=last))
    keys = series[KEY].astype(str).drop_duplicates().sort_values(KEY)
    wide = wide.reindex(pd.MultiIndex.from_frame(keys)).fillna(0.0).to_numpy(dtype=np.float64)
    days = pd.date_range(start=run + pd.Timedelta(days=1), periods=horizon)
    h = np.arange(1, horizon + 1)
    # the same weekday in D-6..D: column 27 is D, so D+h maps to D - 7 + ((h-1) % 7) + 1
    seasonal = wide[:, 27 - 7 + ((h - 1) % 7) + 1]
    values = {
        "seasonal_naive": seasonal,
        "moving_average_28": np.repeat(wide.mean(axis=1, keepdims=True), horizon, axis=1),
        "zero": np.zeros((len(keys), horizon)),
    }

    def long(v):
        return pd.DataFrame({"item_id": np.repeat(keys["item_id"].to_numpy(), horizon),
                             "store_id": np.repeat(keys["store_id"].to_numpy(), horizon),
                             "date": np.tile(days.to_numpy(), len(keys)), "units": v.ravel()})

    return {name: long(v) for name, v in values.items()}


def actuals_for(forecast: pd.DataFrame, later_sales: pd.DataFrame) -> pd.DataFrame:
    """The actual units of every (series, day) of ``forecast``, from a later snapshot's sales.

    Raises DataError naming a missing (series, day) when the actuals are incomplete.
    """
    want = forecast[KEY + ["date"]].astype({"item_id": str, "store_id": str})
    have = later_sales.astype({"item_id": str, "store_id": str})
    have = have[have["date"].between(want["date"].min(), want["date"].max())]
    merged = want.merge(have[KEY + ["date", "units"]], on=KEY + ["date"], how="left")
    missing = merged["units"].isna()
    if missing.any():
        first = merged[missing].iloc[0]
        raise DataError(f"actuals are incomplete: {int(missing.sum())} (series, day) pairs of the forecast have no "
                        f"sales row, e.g. item_id={first['item_id']} store_id={first['store_id']} date={first['date'].date()}")
    return merged.astype({"units": np.float64})


def evaluate(forecast: pd.DataFrame, snapshot_dir: Path, later_snapshot_dir: Path, run_date: dt.date,
             others: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Metrics of the model and of every baseline: as_of, model, metric, level, value.

    ``metric`` is wrmsse (level ``all`` and each of the 12 levels), mae, rmse
    and bias (level ``item_store``). ``others``: further forecasts of the same
    (series, day) pairs by name, scored in the same pass, so that the weights,
    scales, actuals and baselines are computed once (comparisons of several
    models); a name may not be ``model`` or a baseline's.
    """
    others = others or {}
    taken = sorted(set(others) & {MODEL, *BASELINES})
    if taken:
        raise ValueError(f"evaluate: forecast names {taken} are taken by the model and the baselines")
    history = read_snapshot(snapshot_dir, "sales")
    hierarchy = (forecast[KEY].astype(str).drop_duplicates()
                 .merge(read_snapshot(snapshot_dir, "items").astype(str), on="item_id")
                 .merge(read_snapshot(snapshot_dir, "stores").astype(str), on="store_id"))
    history = history[history["item_id"].astype(str).isin(set(hierarchy["item_id"]))]
    setup = metrics.wrmsse_weights_scales(
        history.astype({"item_id": str, "store_id": str}), read_snapshot(snapshot_dir, "prices").astype({"item_id": str, "store_id": str}),
        read_snapshot(snapshot_dir, "calendar")[["date", "wm_yr_wk"]], hierarchy, pd.Timestamp(run_date))
    actual = actuals_for(forecast, read_snapshot(later_snapshot_dir, "sales"))
    candidates = {name: f[KEY + ["date", "units"]].astype({"item_id": str, "store_id": str, "units": np.float64})
                  for name, f in {MODEL: forecast, **others}.items()}
    candidates.update(baselines(history, hierarchy, run_date, horizon=forecast["horizon"].max()))
    rows = []
    for name, f in candidates.items():
        result = metrics.wrmsse(f, actual, setup)
        rows.append((name, "wrmsse", "all", result.total))
        rows += [(name, "wrmsse", level, value) for level, value in result.per_level.items()]
        rows += [(name, metric, "item_store", value) for metric, value in metrics.point_metrics(f, actual).items()]
    table = pd.DataFrame(rows, columns=["model", "metric", "level", "value"])
    table.insert(0, "as_of", pd.Timestamp(run_date))
    return table


def write_metrics(table: pd.DataFrame, out_dir: Path) -> dict:
    """``metrics.parquet`` (the whole table) and ``metrics.json`` (WRMSSE and point metrics per model)."""
    storage.write_parquet(table, Path(out_dir) / "metrics.parquet")
    # WRMSSE over all levels; the point metrics are on the bottom level (item_store)
    top = table[(table["level"] == "all") | (table["metric"] != "wrmsse")]
    summary = {
        "as_of": table["as_of"].iloc[0].date().isoformat(),
        "models": {m: {r.metric: round(float(r.value), 6) for r in g.itertuples()} for m, g in top.groupby("model")},
    }
    storage.write_json(Path(out_dir) / "metrics.json", summary)
    return summary


def publish_metrics(engine: sa.Engine, table: pd.DataFrame) -> int:
    """Replace the run date's rows of ``forecast_metrics`` with ``table``, in one transaction."""
    db.forecast_metrics.create(engine, checkfirst=True)
    as_of = table["as_of"].iloc[0].date()
    with engine.begin() as conn:
        conn.execute(sa.delete(db.forecast_metrics).where(db.forecast_metrics.c.as_of == as_of))
        db.bulk_insert(conn, db.forecast_metrics, table)
    return len(table)


def actuals_recorded(engine: sa.Engine, run_date: dt.date, horizon: int = 28) -> bool:
    """Whether the source holds sales of the last forecast day (the actuals can be scored)."""
    last = run_date + dt.timedelta(days=horizon)
    with engine.connect() as conn:
        found = conn.execute(sa.select(db.sales.c.date).where(db.sales.c.date == last).limit(1)).first()
    return found is not None


def backtest_table(metric_files: dict[dt.date, Path]) -> pd.DataFrame:
    """WRMSSE per run date (rows) and model (columns) from each date's ``metrics.parquet``."""
    frames = [pd.read_parquet(p) for _, p in sorted(metric_files.items())]
    table = pd.concat(frames, ignore_index=True)
    wide = table[(table["metric"] == "wrmsse") & (table["level"] == "all")].pivot(index="as_of", columns="model", values="value")
    return wide[[MODEL, *BASELINES]].rename_axis(None, axis=1).reset_index().rename(columns={"as_of": "date"})
