"""The online model (the challenger) in the reports: its daily progressive-validation error over time.

The online model learns one day at a time: each day's rows are first predicted by the state of the
day before, then learnt, so every day's error (progressive validation) is scored on rows the state
had not seen. A state's ``progressive.parquet`` carries these errors over its recent days; a
backtest's ``progressive.csv`` one row per run date. Its 28-day forecast is scored beside the model
by Evaluate (the metrics table's ``online`` rows), so the section only adds what that table cannot
show: how the error moved day after day. The online model is a contender, not a baseline.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup

from pipeline.core.days import as_day
from pipeline.data import storage
from pipeline.stages import evaluate
from pipeline.stages.report.charts import Series, line_chart
from pipeline.stages.report.style import fmt

WINDOW_DAYS = 91  # the run report's chart: about a quarter up to the run date
MAE_LABEL = "MAE, units per series-day"


@dataclass(frozen=True)
class OnlineModel:
    """What the run report shows of the online model; ``progressive`` is None when it does not cover the run date.

    ``progressive``: date, series, mae, rmse, bias, predicted, actual per day learnt (the state's file);
    ``manifest``: the state's ``manifest.json``; ``total``: its forecast's units per day over every series
    (item_id, store_id, date, units: Evaluate's ``daily_totals.parquet``), drawn on the total chart.
    """

    start_date: dt.date
    progressive: pd.DataFrame | None = None
    manifest: dict | None = None
    total: pd.DataFrame | None = None

    @property
    def covered(self) -> bool:
        return self.progressive is not None


def read_online(state_dir: Path | None, start_date: dt.date, total: pd.DataFrame | None = None) -> OnlineModel:
    """The online model of a run date from its ``UpdateOnlineModel`` folder (None: the date is before its start)."""
    if state_dir is None:
        return OnlineModel(start_date)
    progressive = pd.read_parquet(Path(state_dir) / "progressive.parquet")
    return OnlineModel(start_date, progressive.assign(date=pd.to_datetime(progressive["date"])),
                       storage.read_json(Path(state_dir) / "manifest.json"), total)


def progressive_chart(frame: pd.DataFrame, *, plot_id: str, title: str, **axis) -> str:
    """One line: the online model's MAE per day (``frame``: ``date`` and ``mae``), in its own colour."""
    frame = frame.assign(date=pd.to_datetime(frame["date"])).sort_values("date")
    dates = pd.DatetimeIndex(frame["date"])
    axis = {"height": 260, "y_label": MAE_LABEL, **axis}
    return line_chart([Series(evaluate.ONLINE, dates, frame["mae"].to_numpy(dtype=float), width=2.2,
                              markers=len(frame) <= 62, label="online model: progressive MAE")],
                      plot_id=plot_id, title=title, **axis)


def _value(metrics_table: pd.DataFrame, model: str, metric: str, level: str) -> float:
    t = metrics_table
    v = t[(t["model"] == model) & (t["metric"] == metric) & (t["level"] == level)]["value"]
    return float(v.iloc[0]) if len(v) else float("nan")


def run_section(online: OnlineModel | None, run_date, metrics_table: pd.DataFrame,
                window_days: int = WINDOW_DAYS) -> dict | None:
    """The run report's "Online model" section: its progressive MAE over the ``window_days`` up to the run date,
    and its 28-day forecast's scores next to the model's; before its start date, only when it starts."""
    if online is None:
        return None
    start = pd.Timestamp(online.start_date).date()
    if not online.covered:
        return {"covered": False, "start": start}
    run = as_day(run_date)
    first = run - pd.Timedelta(days=window_days - 1)
    p = online.progressive
    p = p[(p["date"] >= first) & (p["date"] <= run)].sort_values("date")
    pad = pd.Timedelta(hours=12)
    start_ts = pd.Timestamp(start)
    svg = progressive_chart(p, plot_id="online-progressive",
                            title="Online model: progressive-validation MAE per day",
                            x_range=(first - pad, run + 4 * pad), tick_every=14, tick_anchor=run,
                            marker=(start_ts, "start date") if first <= start_ts <= run else None)
    mae = p["mae"].to_numpy(dtype=float)
    facts = []
    if len(p) and p["date"].iloc[-1] == run:
        facts.append(f"MAE on the run date {fmt(float(mae[-1]))} over {int(p['series'].iloc[-1]):,} series")
    if np.isfinite(mae).any():
        facts.append(f"mean over the {len(p)} days shown {fmt(float(np.nanmean(mae)))}")
    info = online.manifest or {}
    if info.get("days_learnt"):
        facts.append(f"{int(info['days_learnt']):,} days learnt, its warm-up included "
                     f"(learner: {info.get('learner', '?')})")
    scores = {m: _value(metrics_table, m, "wrmsse", "all") for m in (evaluate.ONLINE, evaluate.MODEL)}
    return {"covered": True, "start": start, "chart": Markup(svg), "facts": facts, "days": len(p),
            "wrmsse": scores[evaluate.ONLINE], "model_wrmsse": scores[evaluate.MODEL],
            "scored": bool(np.isfinite(scores[evaluate.ONLINE]))}
