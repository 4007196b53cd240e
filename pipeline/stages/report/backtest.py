"""The backtest page's numbers and charts: WRMSSE per run date and model, the model against the best baseline.

The online model (the challenger) is a column and a line of its own, never a baseline: the verdict
stays the model against the best baseline. It is scored only from its start date on, so its mean is
set beside the model's over the same dates; its progressive-validation MAE per date has its own chart.
"""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
from markupsafe import Markup

from pipeline.stages import evaluate
from pipeline.stages.report import tables
from pipeline.stages.report.charts import Series, line_chart
from pipeline.stages.report.online import progressive_chart
from pipeline.stages.report.style import is_baseline, model_order, relative

_TICK_DAYS = (7, 14, 28, 56, 91, 182, 364)  # date tick spacings for long backtests: weeks, months, quarters, years


def _tick_every(n: int) -> int:
    """Days between date ticks: every date up to 10 dates, else a round number of days giving about 10 ticks."""
    every = max(1, math.ceil(max(n, 1) / 10))
    if every == 1:
        return 1
    return next((s for s in _TICK_DAYS if s >= every), every)


def _online(t: pd.DataFrame, progressive: pd.DataFrame | None, online_start: dt.date | None, axis: dict) -> dict | None:
    """The online model's part of the page: the dates it was scored on, its mean WRMSSE against the model's over
    those same dates, its progressive-validation MAE per date; None when the backtest knows nothing of it."""
    if evaluate.ONLINE not in t and progressive is None:
        return None
    scored = t[t[evaluate.ONLINE].notna()] if evaluate.ONLINE in t else t.iloc[:0]
    both = evaluate.MODEL in t and len(scored)
    chart = None
    if progressive is not None and len(progressive):
        chart = Markup(progressive_chart(progressive, plot_id="backtest-progressive",
                                         title="Online model: progressive-validation MAE per run date", **axis))
    return dict(
        scored=len(scored), first=scored["date"].min().date() if len(scored) else None,
        start=pd.Timestamp(online_start).date() if online_start is not None else None,
        mean=float(scored[evaluate.ONLINE].mean()) if len(scored) else float("nan"),
        model_mean=float(scored[evaluate.MODEL].mean()) if both else float("nan"),
        wins=int((scored[evaluate.ONLINE] < scored[evaluate.MODEL]).sum()) if both else 0,
        chart=chart, days=0 if progressive is None else len(progressive))


def context(wrmsse_table: pd.DataFrame, start: dt.date, stop: dt.date, progressive: pd.DataFrame | None = None,
            online_start: dt.date | None = None) -> dict:
    """The backtest template's variables; ``wrmsse_table``: ``date`` and one column per model; ``progressive``:
    the online model's progressive validation per run date (``date``, ``mae``, …); ``online_start``: its start."""
    t = wrmsse_table.copy()
    t["date"] = pd.to_datetime(t["date"])
    t = t.sort_values("date").reset_index(drop=True)
    models = model_order([c for c in t.columns if c != "date"])
    baselines = [m for m in models if is_baseline(m)]
    n = len(t)
    means = {m: float(t[m].mean()) for m in models}
    summary, wins, gain_chart = tables.Verdict(means.get(evaluate.MODEL, float("nan"))), 0, None
    pad = pd.Timedelta(hours=12)
    x_range = (t["date"].min() - pad, t["date"].max() + pad) if n else (pd.Timestamp(start), pd.Timestamp(stop))
    axis = dict(x_range=x_range, x_label="run date", tick_every=_tick_every(n),
                tick_anchor=t["date"].min() if n else None, width=1160)
    dates = pd.DatetimeIndex(t["date"])
    if evaluate.MODEL in t and baselines:
        best_each = t[baselines].min(axis=1)
        wins = int((t[evaluate.MODEL] < best_each).sum())
        best_mean = min(baselines, key=lambda m: (means[m], m))
        summary = tables.Verdict(means[evaluate.MODEL], best_mean, means[best_mean],
                                 relative(means[evaluate.MODEL], means[best_mean]))
        gain = 100 * (best_each - t[evaluate.MODEL]) / best_each
        gain_chart = Markup(line_chart(
            [Series("gain", dates, gain.to_numpy(dtype=float), bars=True, label="model vs best baseline")],
            plot_id="backtest-gain", title="Model's WRMSSE against the best baseline of each date",
            y_label="% better", height=240, **axis))
    widths = {evaluate.MODEL: 2.6, evaluate.ONLINE: 2.2}
    series = [Series(m, dates, t[m].to_numpy(dtype=float), markers=n <= 62, width=widths.get(m, 1.8),
                     dashed=m == "zero") for m in reversed(models)]
    chart = line_chart(series, plot_id="backtest-wrmsse", title="WRMSSE per run date", y_label="WRMSSE",
                       height=360, y_digits=2, **axis)
    rows = [tables.row(str(d.date()), "wrmsse", {m: float(r[m]) for m in models}, models)
            for d, (_, r) in zip(t["date"], t.iterrows())]
    return dict(
        start=pd.Timestamp(start).date(), stop=pd.Timestamp(stop).date(),
        last=(pd.Timestamp(stop) - pd.Timedelta(days=1)).date(), n=n, summary=summary, wins=wins,
        legend_roles=[(m, "dashed" if m == "zero" else "solid") for m in models], chart=Markup(chart),
        gain_chart=gain_chart, models=models, rows=rows, mean=tables.row("mean", "wrmsse", means, models),
        online=_online(t, progressive, online_start, axis),
    )
