"""The run report's fan charts: the model's quantile forecasts of the total and of each state.

Each chart shows the actual units over the history window and the forecast days, the model's
median, and its 50 % (0.25–0.75) and 95 % (0.025–0.975) intervals as bands, from the run's
quantile table (``pipeline.stages.quantiles``): the intervals the run published, not redrawn.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup

from pipeline.stages import evaluate
from pipeline.stages.report.charts import Series, line_chart
from pipeline.stages.report.panels import Figure, daily, with_state
from pipeline.stages.report.style import fmt_units

BANDS = ((0.025, 0.975, 0.16), (0.25, 0.75, 0.30))


def fan_charts(quantiles: pd.DataFrame, history: pd.DataFrame, actuals: pd.DataFrame, run_date,
               stores: pd.DataFrame) -> list[Figure]:
    """The total's fan chart, then each state's; ``quantiles``: the run's table (levels total and state at least)."""
    days_f = [c for c in quantiles.columns if c.startswith("F")]
    run = pd.Timestamp(run_date)
    fdays = pd.date_range(run + pd.Timedelta(days=1), periods=len(days_f))
    hdays = pd.DatetimeIndex(sorted(pd.to_datetime(history["date"]).unique()))
    every = pd.DatetimeIndex(hdays.append(fdays))
    sales = with_state(pd.concat([history, actuals], ignore_index=True), stores)
    panels = [("total", "Total, all series", daily(sales, [], every).iloc[0], quantiles[quantiles["level"] == "total"])]
    by_state = daily(sales, ["state_id"], every)
    for state in sorted(by_state.index):
        part = quantiles[(quantiles["level"] == "state") & (quantiles["state_id"] == state)]
        panels.append((f"state-{state}", f"State {state}", by_state.loc[state], part))
    figures = []
    for key, title, actual, part in panels:
        q = {float(u): part[part["quantile"] == u][days_f].to_numpy(dtype=float)[0] for u in part["quantile"]}
        if 0.5 not in q:
            continue
        bands = tuple((fdays, q[lo], q[hi], evaluate.MODEL, alpha) for lo, hi, alpha in BANDS if lo in q and hi in q)
        svg = line_chart([Series("actual", every, actual.to_numpy(dtype=float), width=1.8),
                          Series(evaluate.MODEL, fdays, q[0.5], width=2.4, label="model median")],
                         plot_id=f"fan-{key}", title=f"{title}: median and intervals", bands=bands,
                         x_range=(every.min(), every.max()), shade=(fdays.min(), fdays.max()),
                         marker=(run, ""), tick_anchor=fdays.min(), compact=key != "total",
                         width=1160 if key == "total" else 370, height=300 if key == "total" else 210,
                         tick_every=7 if key == "total" else 14)
        sold = float(actual.reindex(fdays).fillna(0).sum())
        inside = float(np.mean((actual.reindex(fdays).to_numpy(dtype=float) >= q.get(0.025, q[0.5]))
                               & (actual.reindex(fdays).to_numpy(dtype=float) <= q.get(0.975, q[0.5]))))
        numbers = (f"median {fmt_units(float(q[0.5].sum()))} units, sold {fmt_units(sold)}; "
                   f"{100 * inside:.0f} % of the days inside the 95 % interval")
        figures.append(Figure(title, numbers, Markup(svg), key != "total", len(fdays)))
    return figures
