"""The backtest page's numbers and charts: WRMSSE per run date and model, the model against the best baseline."""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
from markupsafe import Markup

from pipeline.stages import evaluate
from pipeline.stages.report import tables
from pipeline.stages.report.charts import Series, line_chart
from pipeline.stages.report.style import model_order, relative

_TICK_DAYS = (7, 14, 28, 56, 91, 182, 364)  # date tick spacings for long backtests: weeks, months, quarters, years


def _tick_every(n: int) -> int:
    """Days between date ticks: every date up to 10 dates, else a round number of days giving about 10 ticks."""
    every = max(1, math.ceil(max(n, 1) / 10))
    if every == 1:
        return 1
    return next((s for s in _TICK_DAYS if s >= every), every)


def context(wrmsse_table: pd.DataFrame, start: dt.date, stop: dt.date) -> dict:
    """The backtest template's variables; ``wrmsse_table``: ``date`` and one column per model."""
    t = wrmsse_table.copy()
    t["date"] = pd.to_datetime(t["date"])
    t = t.sort_values("date").reset_index(drop=True)
    models = model_order([c for c in t.columns if c != "date"])
    baselines = [m for m in models if m != evaluate.MODEL]
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
    series = [Series(m, dates, t[m].to_numpy(dtype=float), markers=n <= 62, width=2.6 if m == evaluate.MODEL else 1.8,
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
    )
