"""The Monitor stage: a run date's snapshot, its forecast and what earlier runs left, checked and written.

Reads only what it needs of each file (the sales of the 35 days up to the run date and of the
forecast's days a year earlier, two weeks of prices, the matured days of the earlier runs'
forecasts and of their series-level quantiles), calls the checks of :mod:`pipeline.core.monitoring`
and writes ``monitoring.json`` (every number, its threshold, ok / red / no data) and
``monitoring.md`` (the same as a table). The earlier runs are whatever folders the task found:
nothing here schedules or requires them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipeline.core import monitoring as M
from pipeline.core.days import as_day
from pipeline.data import storage
from pipeline.data.snapshot import read_snapshot

FILES = ("monitoring.json", "monitoring.md")
UNITS = ["item_id", "store_id", "date", "units"]


def _sales(snapshot_dir: Path, first: pd.Timestamp, last: pd.Timestamp, items: list[str] | None = None) -> pd.DataFrame:
    """The snapshot's sales rows dated first..last (of ``items`` only, when given)."""
    filters = [("date", ">=", first.to_pydatetime()), ("date", "<=", last.to_pydatetime())]
    if items is not None:
        filters.append(("item_id", "in", items))
    return read_snapshot(snapshot_dir, "sales", columns=UNITS, filters=filters)


def _forecast(folder: Path, last: pd.Timestamp | None = None) -> pd.DataFrame:
    filters = [("date", "<=", last.to_pydatetime())] if last is not None else None
    return pd.read_parquet(Path(folder) / "forecast.parquet", columns=UNITS, filters=filters)


def _quantiles(folder: Path, origin: dt.date, run: pd.Timestamp) -> pd.DataFrame:
    """The ``item_store`` rows of a run's quantiles, with the day columns that are known at ``run``."""
    path = Path(folder) / "quantiles.parquet"
    matured = (run - as_day(origin)).days
    days = [c for c in pq.read_schema(path).names if c.startswith("F") and c[1:].isdigit() and int(c[1:]) <= matured]
    return pd.read_parquet(path, columns=["item_id", "store_id", "quantile", *days],
                           filters=[("level", "==", "item_store")])


def _prices(snapshot_dir: Path, run: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prices of the run date's week and of the week 4 weeks before, and the calendar."""
    calendar = read_snapshot(snapshot_dir, "calendar", columns=["date", "wm_yr_wk"])
    days = pd.to_datetime(calendar["date"])
    weeks = [int(w) for w in calendar.loc[days.isin([run, run - pd.Timedelta(weeks=M.PRICE_WEEKS_BACK)]), "wm_yr_wk"]]
    prices = read_snapshot(snapshot_dir, "prices", columns=["item_id", "store_id", "wm_yr_wk", "sell_price"],
                           filters=[("wm_yr_wk", "in", weeks or [-1])])
    return prices, calendar


def monitor(snapshot_dir: Path, forecast_dir: Path, run_date: dt.date, *, forecasts: dict[dt.date, Path],
            quantiles: dict[dt.date, Path], thresholds: M.MonitorThresholds) -> dict:
    """Every check of the run of ``run_date``: what ``monitoring.json`` holds.

    ``forecasts`` / ``quantiles``: the output folders of ScoreForecast / ForecastQuantiles of earlier
    run dates that exist (yesterday's forecast among them, when it exists); ``forecast_dir``: the run's.
    """
    run, t = as_day(run_date), thresholds
    first = run - pd.Timedelta(days=M.RECENT_DAYS + M.REGULAR_DAYS - 1)
    window = _sales(snapshot_dir, first, run)
    checks = [M.zero_share(window, run, t), M.price_drift(*_prices(snapshot_dir, run), run, t)]
    candidates = M.new_candidates(window, run)
    seen = pd.MultiIndex.from_arrays([[], []])
    if len(candidates):  # new unless a row before the window says otherwise: those items' older rows only
        items = sorted({str(i) for i in candidates.get_level_values(0)})
        older = _sales(snapshot_dir, pd.Timestamp("1900-01-01"), first - pd.Timedelta(days=1), items)
        seen = M.series_codes(older)[1] if len(older) else seen
    checks += M.presence(window, run, seen, t)
    forecast = _forecast(forecast_dir)
    target = pd.to_datetime(forecast["date"])
    year = pd.Timedelta(days=M.YEAR_DAYS)
    checks.append(M.forecast_vs_last_year(forecast, _sales(snapshot_dir, target.min() - year, target.max() - year), t))
    yesterday = forecasts.get(run.date() - dt.timedelta(days=1))
    checks.append(M.forecast_vs_yesterday(forecast, _forecast(yesterday) if yesterday else None, t))
    actuals = M.Actuals(window[pd.to_datetime(window["date"]) > run - pd.Timedelta(days=M.MATURED_RUNS)])
    checks += M.accuracy({d: _forecast(p, run) for d, p in forecasts.items()}, actuals, run, t)
    checks.append(M.coverage({d: _quantiles(p, d, run) for d, p in quantiles.items()}, actuals, run, t))
    red = [c.name for c in checks if c.status == M.RED]
    inputs = {"yesterday": Path(yesterday).name if yesterday else None,
              "forecasts": {d.isoformat(): Path(p).name for d, p in sorted(forecasts.items())},
              "quantiles": {d.isoformat(): Path(p).name for d, p in sorted(quantiles.items())}}
    return {"run_date": run.date().isoformat(), "status": M.RED if red else M.OK, "red": red,
            "no_data": [c.name for c in checks if c.status == M.NO_DATA], "checks": [c.as_dict() for c in checks],
            "thresholds": dataclasses.asdict(t), "inputs": inputs}


def status_line(result: dict) -> str:
    """One line for the visualiser: which checks are red, or that all are ok."""
    n = len(result["checks"])
    missing = f" ({len(result['no_data'])} without data)" if result["no_data"] else ""
    if result["red"]:
        return f"monitoring: {len(result['red'])} of {n} checks red: {', '.join(result['red'])}{missing}"
    return f"monitoring: all {n - len(result['no_data'])} checks with data ok{missing}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(result: dict) -> str:
    """``monitoring.md``: the checks as a table, the stores that moved most, coverage per quantile, the inputs."""
    lines = [f"# Monitoring of the run of {result['run_date']}", "", status_line(result) + ".", "",
             "A check is red when one of its numbers passes its threshold (`MonitorThresholds`, "
             "pipeline/core/monitoring.py; docs/monitoring.md), `no data` when there is nothing to compare yet.", "",
             "| group | check | status | measured | threshold | what was seen |",
             "| --- | --- | --- | --- | --- | --- |"]
    for c in result["checks"]:
        measured = "; ".join(f"{m['name']} = {'n/a' if m['value'] is None else format(m['value'], '.4g')}"
                             for m in c["measures"])
        bounds = "; ".join(m["threshold"] for m in c["measures"])
        status = f"**{c['status']}**" if c["status"] == M.RED else c["status"]
        lines.append("| " + " | ".join(_cell(x) for x in (c["group"], c["label"], status, measured, bounds, c["note"]))
                     + " |")
    for c in result["checks"]:
        if c["detail"].get("stores_moved_most"):
            lines += ["", f"## Stores that moved most: {c['label']}", "",
                      "| store | forecast | reference | change | relative |", "| --- | ---: | ---: | ---: | ---: |"]
            lines += [f"| {m['store_id']} | {m['forecast']:,.0f} | {m['reference']:,.0f} | {m['change']:+,.0f} | "
                      + ("n/a" if m["relative_change"] is None else f"{m['relative_change']:+.1%}") + " |"
                      for m in c["detail"]["stores_moved_most"]]
        if c["detail"].get("at_or_below"):
            lines += ["", "## Series-level actuals at or below each quantile", "", "| quantile | share |",
                      "| ---: | ---: |"]
            lines += [f"| {u} | {share:.3f} |" for u, share in c["detail"]["at_or_below"].items()]
    read = result["inputs"]
    lines += ["", "## Earlier runs read", "",
              f"- forecasts: {', '.join(read['forecasts']) or 'none'}",
              f"- quantiles: {', '.join(read['quantiles']) or 'none'}", ""]
    return "\n".join(lines)


def write_monitoring(result: dict, out_dir: Path) -> None:
    """``monitoring.json`` and ``monitoring.md`` (inside a task's atomic folder)."""
    storage.write_json(Path(out_dir) / "monitoring.json", result)
    (Path(out_dir) / "monitoring.md").write_text(markdown(result), encoding="utf-8")


def read_monitoring(folder: Path | None) -> dict | None:
    """A run's ``monitoring.json``, or None when there is none."""
    path = Path(folder) / "monitoring.json" if folder is not None else None
    return storage.read_json(path) if path is not None and path.exists() else None
