"""The run report's forecast charts: daily units of the total, each state, each store and the top series.

Each panel is the actual units over the history window and the forecast days,
the model's forecast over the forecast days (and, on the total only, the
baselines' forecasts, dashed, and the online model's, solid in its own colour),
with a caption of the units forecast and sold.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from markupsafe import Markup

from pipeline.core.days import as_day
from pipeline.stages import evaluate
from pipeline.stages.report.charts import Series, line_chart
from pipeline.stages.report.style import fmt_pct, fmt_units

KEY = ["item_id", "store_id"]
HISTORY_DAYS = 56  # about 8 weeks of actuals before the run date
TOP_SERIES = 4
GRIDS = {"grid-3": dict(size=(370, 210), tick_every=14), "grid-4": dict(size=(275, 200), tick_every=28)}


@dataclass
class Panel:
    key: str
    title: str
    actual: np.ndarray  # history + forecast days
    forecast: np.ndarray  # forecast days
    baselines: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    """A chart and its caption: ``numbers`` are the units forecast and sold over the forecast days."""

    title: str
    numbers: str
    svg: Markup
    stacked: bool
    days: int


@dataclass(frozen=True)
class Group:
    heading: str
    grid: str
    figures: list[Figure]


def daily(frame: pd.DataFrame, by: list[str], days: pd.DatetimeIndex) -> pd.DataFrame:
    """Units per day (columns ``days``) for each group of ``by`` (rows); a missing day is 0 units."""
    f = frame[frame["date"].isin(days)]
    if not by:
        return pd.DataFrame([f.groupby("date")["units"].sum().reindex(days, fill_value=0.0).to_numpy(dtype=float)],
                            index=["total"], columns=days)
    keys = [f[c].astype(str) for c in by]
    wide = f.groupby(keys + [f["date"]], observed=True)["units"].sum().unstack("date")
    return wide.reindex(columns=days).fillna(0.0).astype(float)


def with_state(frame: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with string ids and the store's ``state_id`` (the store id's prefix when the store is unknown)."""
    state = dict(zip(stores["store_id"].astype(str), stores["state_id"].astype(str)))
    store = frame["store_id"].astype(str)
    return frame.assign(store_id=store, item_id=frame["item_id"].astype(str),
                        state_id=store.map(state).fillna(store.str.split("_").str[0]))


def panels(by: list[str], hist: pd.DataFrame, fc: pd.DataFrame, act: pd.DataFrame, hdays, fdays, titles,
           keys=None, baselines: dict | None = None) -> list[Panel]:
    """One panel per group of ``by`` (every group, sorted, unless ``keys`` are given)."""
    h, f, a = daily(hist, by, hdays), daily(fc, by, fdays), daily(act, by, fdays)
    b = {name: daily(frame, by, fdays) for name, frame in (baselines or {}).items()}
    order = keys if keys is not None else sorted(set(f.index) | set(h.index))

    def row(frame, k, cols):
        return frame.loc[k].to_numpy(dtype=float) if k in frame.index else np.zeros(len(cols))

    return [Panel(str(k), titles(k), np.concatenate([row(h, k, hdays), row(a, k, fdays)]), row(f, k, fdays),
                  {name: row(frame, k, fdays) for name, frame in b.items()}) for k in order]


def figure(p: Panel, days: pd.DatetimeIndex, fdays: pd.DatetimeIndex, run: pd.Timestamp, plot_id: str,
           compact: bool, size: tuple[int, int] = (380, 220), tick_every: int = 14) -> Figure:
    """The panel's chart (history and forecast days, the forecast period shaded) and its caption."""
    series = [Series("actual", days, p.actual, width=1.6 if compact else 1.8)]
    # the online model is a contender, not a baseline: solid, drawn over the baselines and under the model
    others = sorted(p.baselines.items(), key=lambda kv: kv[0] == evaluate.ONLINE)
    series += [Series(name, fdays, values, dashed=name not in (evaluate.ONLINE, evaluate.BATCH),
                      width=1.9 if name == evaluate.ONLINE else 1.5) for name, values in others]
    series.append(Series(evaluate.MODEL, fdays, p.forecast, width=2.2 if compact else 2.6))
    chart_size = dict(width=size[0], height=size[1]) if compact else dict(width=1160, height=330)
    noon = run + pd.Timedelta(hours=12)
    svg = line_chart(series, plot_id=plot_id, title=f"{p.title}: forecast vs actual units per day",
                     x_range=(days[0], days[-1]), shade=(noon, days[-1]), marker=(noon, "" if compact else "run date"),
                     tick_every=tick_every if compact else 7, tick_anchor=run + pd.Timedelta(days=1), compact=compact,
                     x_label="date", y_label="units per day", **chart_size)
    f, a = float(np.nansum(p.forecast)), float(np.nansum(p.actual[len(days) - len(fdays):]))
    rel = (f - a) / a if a else float("nan")
    rel_text = f" ({fmt_pct(rel, signed=True, digits=0 if compact else 1)})" if np.isfinite(rel) else ""
    what = "" if compact else f"{len(fdays)}-day units: "
    numbers = f"{what}forecast {fmt_units(f)} · actual {fmt_units(a)}{rel_text}"
    return Figure(p.title, numbers, Markup(svg), compact, len(fdays))


@dataclass(frozen=True)
class ForecastCharts:
    total: Figure
    groups: list[Group]
    baselines: list[str]  # drawn dashed on the total
    online: bool  # the online model's forecast drawn on the total
    n_series: int
    history_days: int
    forecast_days: int


def forecast_charts(forecast: pd.DataFrame, history: pd.DataFrame, actuals: pd.DataFrame, run_date,
                    stores: pd.DataFrame | None = None, baselines: dict[str, pd.DataFrame] | None = None,
                    history_days: int = HISTORY_DAYS, top: int = TOP_SERIES,
                    online: pd.DataFrame | None = None) -> ForecastCharts:
    """Every chart of the forecast section: the total, by state, by store, the top-selling series.

    ``baselines`` (dashed) and ``online`` (the online model's forecast, solid) are drawn on the total only.
    """
    run = as_day(run_date)
    fdays = pd.DatetimeIndex(sorted(pd.to_datetime(forecast["date"]).unique()))
    if len(fdays) == 0:
        fdays = pd.date_range(run + pd.Timedelta(days=1), periods=28)
    hdays = pd.date_range(end=run, periods=history_days)
    days = hdays.append(fdays)
    if stores is None:
        ids = forecast["store_id"].astype(str).drop_duplicates()
        stores = pd.DataFrame({"store_id": ids, "state_id": ids.str.split("_").str[0]})
    series = forecast[KEY].astype(str).drop_duplicates()
    hist = history.assign(item_id=history["item_id"].astype(str), store_id=history["store_id"].astype(str))
    hist = hist.merge(series, on=KEY)
    hist, fc, act = (with_state(x, stores) for x in (hist, forecast, actuals))
    bl = {n: with_state(f, stores) for n, f in (baselines or {}).items() if n != evaluate.ONLINE}
    others = dict(bl, **({evaluate.ONLINE: with_state(online, stores)} if online is not None else {}))
    total = panels([], hist, fc, act, hdays, fdays, titles=lambda k: "All series", baselines=others)[0]
    groups = []
    for heading, by, grid, titles in (("By state", ["state_id"], "grid-3", lambda k: f"State {k}"),
                                      ("By store", ["store_id"], "grid-4", lambda k: f"Store {k}")):
        figures = [figure(p, days, fdays, run, f"{by[0]}:{p.key}", True, **GRIDS[grid])
                   for p in panels(by, hist, fc, act, hdays, fdays, titles=titles)]
        groups.append(Group(heading, grid, figures))
    # the highest-selling series over the history window (known at the run date), ties by id
    sold = hist.groupby(KEY, observed=True)["units"].sum().reset_index()
    sold = sold[sold["units"] > 0]
    sold = sold.sort_values(["units", "item_id", "store_id"], ascending=[False, True, True]).head(top)
    keys = list(zip(sold["item_id"], sold["store_id"]))
    if keys:
        figures = [figure(p, days, fdays, run, "series:" + p.title, True, **GRIDS["grid-4"])
                   for p in panels(KEY, hist, fc, act, hdays, fdays, keys=keys, titles=lambda k: f"{k[0]} · {k[1]}")]
        groups.append(Group(f"Top {len(keys)} series by units sold in the last {history_days // 7} weeks", "grid-4",
                            figures))
    return ForecastCharts(figure(total, days, fdays, run, "total", compact=False), groups, list(bl), online is not None,
                          len(series), history_days, len(fdays))
