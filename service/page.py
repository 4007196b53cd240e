"""``GET /version`` and the status page ``GET /``: which model serves, trained on what, and how it has done."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import math
from pathlib import Path

import pandas as pd
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from pipeline.stages import evaluate
from pipeline.stages.report import pages
from pipeline.stages.report.charts import Series, line_chart
from pipeline.stages.report.style import colour, label, model_order
from service import backend as be

# the report's templates too: the page shares their macros (legend), style sheet and self-check script
ENV = Environment(loader=ChoiceLoader([PackageLoader("service", "templates"),
                                       PackageLoader("pipeline.stages.report", "templates")]),
                  autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.globals.update(colour=colour, label=label)
LIBRARIES = ("fastapi", "uvicorn", "pydantic", "lightgbm", "tl2cgen", "treelite", "numpy", "pandas", "sqlalchemy", "luigi")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_info(backend: be.Backend, as_of: dt.date | None) -> dict:
    """The model serving ``as_of`` (default: the newest run): dates, features, parameters, metrics, decision; and
    the online model (the challenger): its settings and its newest state on or before ``as_of``."""
    as_of = as_of or backend.newest_run()
    if as_of is None:
        raise be.NotFound("no forecast has been published yet, so no model serves: run `make run` first")
    model = backend.model_for(as_of)
    meta = model.metadata
    return {
        "as_of": as_of.isoformat(),
        "model": {
            "training_date": meta["date"], "training_window": meta.get("training_window"),
            "validation_window": meta.get("validation_window"), "refit": meta.get("refit"),
            "features": meta["features"], "parameters": meta["params"],
            "num_boost_round": meta.get("num_boost_round"), "validation_metrics": meta.get("metrics"),
            "snapshot_hash": meta.get("snapshot_hash"), "code_commit": meta.get("code_commit"),
            "configuration_fingerprint": model.model_dir.name, "compiled": str(model.compiled_dir.name),
        },
        "serving": model.choice,
        "promotion_decision": _decision(model.choice),
        "libraries": {"trained_with": meta.get("versions"), "service": {n: _version(n) for n in LIBRARIES}},
        "online_model": backend.online.summary(as_of),
    }


def _decision(choice: dict) -> dict | None:
    """The recorded promotion decision of the run date's training date (None when the model is pinned)."""
    if choice["how"] == "pinned":
        return None
    from tasks.model import PromoteModel, read_decision

    return read_decision(PromoteModel(dt.date.fromisoformat(choice["training_date"])))


def _chart(history: pd.DataFrame) -> Markup | None:
    if history.empty:
        return None
    wide = history.pivot(index="as_of", columns="model", values="value").sort_index()
    dates = pd.DatetimeIndex(pd.to_datetime(wide.index))
    models = model_order(list(wide.columns))
    series = [Series(m, dates, wide[m].to_numpy(dtype=float), markers=len(dates) <= 62,
                     width=2.6 if m == evaluate.MODEL else 1.8, dashed=m == "zero") for m in reversed(models)]
    pad = pd.Timedelta(hours=12)
    return Markup(line_chart(series, plot_id="status-wrmsse", title="WRMSSE per run date: model and baselines",
                             y_label="WRMSSE", height=300, y_digits=2, x_label="run date",
                             x_range=(dates.min() - pad, dates.max() + pad), tick_every=7, tick_anchor=dates.min()))


def _report_link(backend: be.Backend, as_of: dt.date) -> str | None:
    """The report of a run under this configuration (``Report``'s folder), relative to ``/``, if it exists."""
    from tasks.report import Report

    page = Report(as_of).folder() / "index.html"
    return page.relative_to(Path(backend.data_dir)).as_posix() if page.exists() else None


def _online(backend: be.Backend, newest: dt.date | None) -> dict:
    """The online model's lines of the status page: settings, and its newest state's date and MAE."""
    summary = backend.online.summary(newest)
    state = summary["state"] or {}
    mae = state.get("mae")
    return {**summary, "state_date": state.get("date"), "mae": "—" if mae is None else f"{mae:.4f}",
            "days_learnt": state.get("days_learnt")}


def status_page(backend: be.Backend, recent: int) -> str:
    """The whole page (self-contained HTML, checked in headless Chromium by the tests)."""
    newest, model, problem = backend.newest_run(), None, "no forecast has been published yet (run `make run`)"
    if newest is not None:
        try:
            model = backend.model_for(newest)
        except be.NotFound as exc:
            problem = str(exc)
    history = backend.accuracy_history(recent)
    wrmsse = {(r.as_of, r.model): r.value for r in history.itertuples()}
    runs = []
    for run in backend.recent_runs(recent):
        value = wrmsse.get((run["as_of"], evaluate.MODEL))
        runs.append({**run, "wrmsse": "—" if value is None or not math.isfinite(value) else f"{value:.4f}",
                     "report": _report_link(backend, run["as_of"])})
    about = None
    if model is not None:
        meta = model.metadata
        window = meta.get("training_window") or ["?", "?"]
        metrics = meta.get("metrics") or {}
        about = {"date": model.date, "how": model.choice["how"], "reason": model.choice["reason"],
                 "window": f"{window[0]} to {window[1]}", "trees": metrics.get("best_iteration", "?"),
                 "validation": ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)) or "—",
                 "commit": meta.get("code_commit") or "unknown", "fingerprint": model.model_dir.name}
    models = model_order(sorted(set(history["model"]))) if not history.empty else []
    body = ENV.get_template("status.html.j2").render(
        model=about, online=_online(backend, newest), newest=newest, problem=problem, chart=_chart(history), runs=runs,
        legend_roles=[(m, "dashed" if m == "zero" else "solid") for m in models])
    return pages.page("Daily forecast service", body)
