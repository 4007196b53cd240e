"""The reports' pages: Jinja2 templates (``templates/``, package data) filled with the tables and charts.

Autoescaping is on, so every id, feature name or label from the data is escaped;
only the charts' SVG (made by ``charts``) goes in as markup. Each page is one
self-contained HTML document (style sheet and scripts inlined, nothing fetched)
with two tiny scripts that change nothing a reader sees: one records script
errors into ``<html data-errors>``, the other checks at load that every chart
drew its series and sets ``<body data-ok data-problems data-plots>``.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from pipeline.core.days import as_day
from pipeline.stages import evaluate
from pipeline.stages.monitoring import status_line
from pipeline.stages.report import backtest, tables
from pipeline.stages.report.charts import bar_chart
from pipeline.stages.report.fans import fan_charts
from pipeline.stages.report.online import OnlineModel, run_section
from pipeline.stages.report.panels import HISTORY_DAYS, forecast_charts
from pipeline.stages.report.style import colour, fmt, fmt_pct, label

TOP_FEATURES = 20

ENV = Environment(loader=PackageLoader("pipeline.stages.report", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
ENV.globals.update(colour=colour, label=label, fmt=fmt, fmt_pct=fmt_pct)


def page(title: str, body: str) -> str:
    """A whole self-contained HTML document around ``body`` (HTML, not escaped)."""
    return ENV.get_template("base.html.j2").render(title=title, body=Markup(body))


def metrics_section(metrics_table: pd.DataFrame) -> str:
    """The metrics table (WRMSSE over all levels, MAE, RMSE, bias per model) and WRMSSE per level, collapsed."""
    models, rows, levels = tables.metric_rows(metrics_table)
    return ENV.get_template("metrics.html.j2").render(models=models, rows=rows, levels=levels)


def importance(importances: dict[str, float], top: int = TOP_FEATURES) -> dict:
    """The ``top`` features by total gain, as a share of the model's total gain: a note and a bar chart."""
    items = sorted(((str(k), float(v)) for k, v in (importances or {}).items()), key=lambda kv: (-kv[1], kv[0]))
    total = sum(v for _, v in items if np.isfinite(v) and v > 0)
    shown = [(k, 100 * v / total if total else 0.0) for k, v in items[:top]]
    zero = sum(1 for _, v in items if v <= 0)
    note = (f"The {len(shown)} features with the highest total gain (of {len(items)}); the share of the model's "
            "total split gain. ")
    if zero:
        note += f"{zero} feature{'s' if zero != 1 else ''} never used by a split."
    svg = bar_chart(shown, plot_id="feature-importance", title="Feature importance (share of total gain, %)",
                    x_label="share of total gain (%)", width=1160, unit="\u00a0%")
    return {"note": note, "svg": Markup(svg)}


def _about(model_date: dt.date, info: dict) -> list[str]:
    """The footnote on the model: its date, training and validation windows, trees, features."""
    about = [f"model of {pd.Timestamp(model_date).date()}"]
    if info.get("training_window"):
        about.append(f"trained on {' → '.join(map(str, info['training_window']))}")
    if info.get("validation_window"):
        about.append(f"early-stopped on {' → '.join(map(str, info['validation_window']))}")
    if info.get("metrics", {}).get("best_iteration"):
        about.append(f"{info['metrics']['best_iteration']} trees")
    if info.get("features"):
        about.append(f"{len(info['features'])} features")
    return about


def render_run_report(forecast: pd.DataFrame, history: pd.DataFrame, actuals: pd.DataFrame,
                      metrics_table: pd.DataFrame, importances: dict[str, float], run_date: dt.date,
                      model_date: dt.date, *, stores: pd.DataFrame | None = None,
                      baselines: dict[str, pd.DataFrame] | None = None, model_info: dict | None = None,
                      history_days: int = HISTORY_DAYS, monitoring: dict | None = None,
                      quantiles: pd.DataFrame | None = None, online: OnlineModel | None = None) -> str:
    """The report of one run date as a self-contained HTML page.

    ``forecast``, ``actuals``: long (item_id, store_id, date, units) over the forecast days;
    ``history``: the same over (at least) the ``history_days`` up to ``run_date``;
    ``metrics_table``: as written by ``pipeline.stages.evaluate`` (as_of, model, metric, level, value);
    ``importances``: feature → gain; ``stores``: store_id → state_id (default: the store id's prefix);
    ``baselines``: name → long forecast frame, drawn dashed on the total chart;
    ``model_info``: the model's ``metadata.json`` (training window, iterations), for a footnote;
    ``monitoring``: the run date's ``monitoring.json`` (``pipeline.stages.monitoring``), its checks
    listed red / green in a Monitoring section; none when None. ``quantiles``: the run's quantile
    table (``pipeline.stages.quantiles``), drawn as fan charts of the total and each state.
    ``online``: the online model (``report.online``): its progressive-validation MAE in a section of its
    own and its forecast on the total chart; before its start date the section says when it starts; no
    section when None. Its scores are the metrics table's ``online`` rows.
    """
    run = as_day(run_date).date()
    fdays = pd.to_datetime(forecast["date"])
    charts = forecast_charts(forecast, history, actuals, run, stores=stores, baselines=baselines,
                             history_days=history_days, online=online.total if online is not None else None)
    models, rows, levels = tables.metric_rows(metrics_table)
    info = model_info or {}
    fans = [] if quantiles is None else fan_charts(
        quantiles, history, actuals, run, stores if stores is not None else pd.DataFrame(
            {"store_id": sorted(set(forecast["store_id"].astype(str)))}).assign(
            state_id=lambda d: d["store_id"].str.split("_").str[0]))
    return ENV.get_template("run.html.j2").render(
        title=f"Forecast report {run}", run=run, model_date=pd.Timestamp(model_date).date(),
        period=f"{fdays.min().date()} → {fdays.max().date()}" if len(fdays) else "no forecast days",
        verdict=tables.verdict(metrics_table), cards=tables.cards(metrics_table, forecast, actuals),
        charts=charts, legend_roles=[("actual", "solid"), (evaluate.MODEL, "solid")]
        + ([(evaluate.ONLINE, "solid")] if charts.online else []) + [(n, "dashed") for n in charts.baselines],
        models=models, rows=rows, levels=levels, importance=importance(importances),
        about=_about(model_date, info), commit=str(info["code_commit"])[:12] if info.get("code_commit") else None,
        monitoring=monitoring, fans=fans, online=run_section(online, run, metrics_table),
        monitoring_line=status_line(monitoring).removeprefix("monitoring: ") if monitoring else None)


def render_backtest_report(wrmsse_table: pd.DataFrame, start: dt.date, stop: dt.date,
                           progressive: pd.DataFrame | None = None, online_start: dt.date | None = None) -> str:
    """WRMSSE over the run dates of a backtest, model, online model and every baseline; ``stop`` is exclusive.

    ``wrmsse_table``: one row per run date, ``date`` and one column per model (``Backtest``'s ``wrmsse.csv``);
    ``progressive``: the online model's progressive validation per run date it covers (``progressive.csv``:
    date, mae, …), charted when given; ``online_start``: its start date, said when it covers no date.
    """
    values = backtest.context(wrmsse_table, start, stop, progressive, online_start)
    return ENV.get_template("backtest.html.j2").render(title=f"Backtest {values['start']} – {values['last']}",
                                                       **values)


def write_page(path: Path, text: str) -> None:
    """Write a page as UTF-8 (inside a task's ``storage.atomic_dir``)."""
    Path(path).write_text(text, encoding="utf-8")
