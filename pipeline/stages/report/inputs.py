"""Reading what a run left behind into the arguments of ``render_run_report``.

The metrics and the baselines' daily totals (drawn dashed on the total chart; the
online model's solid) are Evaluate's own outputs (``metrics.parquet``,
``daily_totals.parquet``), never recomputed here: the lines and the scores come
from the same forecasts.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.days import as_day
from pipeline.data import storage
from pipeline.data.snapshot import read_snapshot
from pipeline.stages import evaluate
from pipeline.stages.monitoring import read_monitoring
from pipeline.stages.report.online import read_online
from pipeline.stages.report.panels import HISTORY_DAYS

ALL = "all"  # the item and store of a total over every series


def load_run_inputs(forecast_dir: Path, snapshot_dir: Path, later_snapshot_dir: Path, metrics_dir: Path,
                    model_dir: Path, run_date: dt.date, history_days: int = HISTORY_DAYS,
                    monitoring_dir: Path | None = None, quantiles_dir: Path | None = None,
                    online_start: dt.date | None = None, online_dir: Path | None = None) -> dict:
    """The keyword arguments of ``render_run_report`` from a run's folders.

    ``later_snapshot_dir``: the snapshot of the last forecast day (the actuals, as Evaluate took them);
    ``monitoring_dir``: the run date's Monitor folder (its section is left out when there is none);
    ``quantiles_dir``: the run's ForecastQuantiles folder (the fan charts of the total and each state);
    ``online_start``: the online model's start date (its section is left out when None), ``online_dir``: the
    run date's UpdateOnlineModel folder (None before the start date: the section says when it starts).
    """
    forecast = pd.read_parquet(Path(forecast_dir) / "forecast.parquet")
    forecast = forecast.astype({"item_id": str, "store_id": str, "units": np.float64})
    run = as_day(run_date)
    first = run - pd.Timedelta(days=history_days - 1)
    history = read_snapshot(snapshot_dir, "sales", filters=[("date", ">=", first.to_pydatetime())])
    history = history[history["date"].between(first, run)]
    history = history.astype({"item_id": str, "store_id": str, "units": np.float64})
    later = read_snapshot(later_snapshot_dir, "sales", filters=[("date", ">", run.to_pydatetime())])
    totals = pd.read_parquet(Path(metrics_dir) / "daily_totals.parquet")
    metadata = storage.read_json(Path(model_dir) / "metadata.json")

    def total(name: str) -> pd.DataFrame:  # a model's total per day, as one series (the total chart sums series)
        return totals[totals["model"] == name].drop(columns="model").assign(item_id=ALL, store_id=ALL)

    return {
        "forecast": forecast,
        "history": history,
        "actuals": evaluate.actuals_for(forecast, later),
        "metrics_table": pd.read_parquet(Path(metrics_dir) / "metrics.parquet"),
        "importances": metadata.get("feature_importance_gain", {}),
        "run_date": run.date(),
        "model_date": dt.date.fromisoformat(str(metadata["date"])),
        "stores": read_snapshot(snapshot_dir, "stores"),
        "baselines": {name: total(name) for name in evaluate.BASELINES if (totals["model"] == name).any()},
        "model_info": metadata,
        "history_days": history_days,
        "monitoring": read_monitoring(monitoring_dir),
        "quantiles": None if quantiles_dir is None else pd.read_parquet(
            Path(quantiles_dir) / "quantiles.parquet", filters=[("level", "in", ["total", "state"])]),
        "online": None if online_start is None else read_online(
            online_dir, online_start, total(evaluate.ONLINE) if (totals["model"] == evaluate.ONLINE).any() else None),
    }
