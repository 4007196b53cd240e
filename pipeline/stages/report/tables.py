"""The numbers of the reports' tables and headline: metrics per model, the best of each row, the verdict.

Plain data (dataclasses) for the templates, which do all the HTML: a row's
best value is the lowest, or for a bias the closest to zero; the model is
compared with the best baseline of the row. The online model is a column of its
own: it can hold a row's best value, but it is never "the best baseline".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.stages import evaluate
from pipeline.stages.report.style import (METRIC_LABELS, LEVEL_LABELS, fmt, fmt_pct, is_baseline, label, model_order,
                                          relative)


@dataclass(frozen=True)
class Cell:
    model: str
    text: str
    best: bool

    @property
    def css(self) -> str:
        col = {evaluate.MODEL: "model-col", evaluate.ONLINE: "online-col"}.get(self.model, "")
        return " ".join(c for c in ("best" if self.best else "", col) if c)


@dataclass(frozen=True)
class Delta:
    """The model against the best baseline of a row: ``css`` is better, worse-text or empty."""

    text: str
    css: str = ""
    title: str = ""


@dataclass(frozen=True)
class Row:
    label: str
    metric: str
    cells: list[Cell]
    delta: Delta
    hint: str = ""


@dataclass(frozen=True)
class Verdict:
    """The model's WRMSSE over all levels against the best baseline (``best`` is None without baselines)."""

    model: float
    best: str | None = None
    best_value: float = float("nan")
    rel: float = float("nan")

    @property
    def better(self) -> bool:
        return not np.isfinite(self.rel) or self.rel >= 0


@dataclass(frozen=True)
class Card:
    key: str
    value: str
    note: str


def best(values: dict[str, float], metric: str) -> set[str]:
    """The names with the best value: the lowest, or for bias the closest to zero."""
    score = {m: (abs(v) if metric == "bias" else v) for m, v in values.items() if v is not None and np.isfinite(v)}
    if not score:
        return set()
    low = min(score.values())
    return {m for m, v in score.items() if math.isclose(v, low, rel_tol=1e-12, abs_tol=1e-12)}


def delta(model: float, baselines: dict[str, float], metric: str) -> Delta:
    """Relative for errors; for a bias, how much closer to (or further from) 0 than the best baseline."""
    vals = {m: (abs(v) if metric == "bias" else v) for m, v in baselines.items() if np.isfinite(v)}
    if not vals or not np.isfinite(model):
        return Delta("–")
    top = min(vals, key=lambda m: (vals[m], m))
    if metric == "bias":
        gap = abs(model) - vals[top]
        css, word = ("better", "closer to 0") if gap <= 0 else ("worse-text", "further from 0")
        return Delta(f"{fmt(abs(gap), 3)} {word}", css, f"|bias| of the model against {label(top)}")
    rel = relative(model, vals[top])
    if not np.isfinite(rel):
        return Delta("–")
    css = "better" if rel > 0 else ("worse-text" if rel < 0 else "")
    return Delta(f"{fmt_pct(abs(rel))} {'better' if rel >= 0 else 'worse'}", css, f"model against {label(top)}")


def row(row_label: str, metric: str, values: dict[str, float], models: list[str], hint: str = "",
        digits: int = 3) -> Row:
    """One table row: every model's value (the best flagged) and the model against the best baseline."""
    top = best(values, metric)
    cells = [Cell(m, fmt(values.get(m, float("nan")), digits, signed=metric == "bias"), m in top) for m in models]
    baselines = {m: values.get(m, float("nan")) for m in models if is_baseline(m)}
    return Row(row_label, metric, cells, delta(values.get(evaluate.MODEL, float("nan")), baselines, metric), hint)


def _values(frame: pd.DataFrame) -> dict[str, float]:
    return dict(zip(frame["model"].astype(str), frame["value"].astype(float)))


def metric_rows(metrics_table: pd.DataFrame) -> tuple[list[str], list[Row], list[Row]]:
    """(models in order, WRMSSE/MAE/RMSE/bias rows, WRMSSE rows per aggregation level) of Evaluate's table."""
    t = metrics_table
    models = model_order(t["model"].astype(str))
    rows = []
    for metric in ("wrmsse", "mae", "rmse", "bias"):
        sub = t[(t["metric"] == metric) & ((t["level"] == "all") if metric == "wrmsse" else True)]
        if not sub.empty:
            name, hint = METRIC_LABELS[metric]
            rows.append(row(name, metric, _values(sub), models, hint))
    per_level = t[(t["metric"] == "wrmsse") & (t["level"] != "all")]
    levels = [row(LEVEL_LABELS.get(lvl, lvl), "wrmsse", _values(per_level[per_level["level"] == lvl]), models)
              for lvl in dict.fromkeys(per_level["level"].astype(str))]
    return models, rows, levels


def verdict(metrics_table: pd.DataFrame) -> Verdict:
    """The model's WRMSSE over all levels and how much lower it is than the best baseline's."""
    t = metrics_table[(metrics_table["metric"] == "wrmsse") & (metrics_table["level"] == "all")]
    values = _values(t)
    model = values.get(evaluate.MODEL, float("nan"))
    baselines = {m: v for m, v in values.items() if is_baseline(m) and np.isfinite(v)}
    if not baselines or not np.isfinite(model):
        return Verdict(model)
    top = min(baselines, key=lambda m: (baselines[m], m))
    return Verdict(model, top, baselines[top], relative(model, baselines[top]))


def cards(metrics_table: pd.DataFrame, forecast: pd.DataFrame, actuals: pd.DataFrame) -> list[Card]:
    """Headline numbers: WRMSSE, MAE and bias of the model (with the best baseline's and the online model's),
    units forecast vs sold."""
    t = metrics_table
    out = []
    for metric, level in (("wrmsse", "all"), ("mae", "item_store"), ("bias", "item_store")):
        v = _values(t[(t["metric"] == metric) & (t["level"] == level)])
        if evaluate.MODEL not in v:
            continue
        base = {m: x for m, x in v.items() if is_baseline(m)}
        name, hint = METRIC_LABELS[metric]
        signed = metric == "bias"
        if base:
            key = (lambda m: (abs(base[m]), m)) if signed else (lambda m: (base[m], m))
            top = min(base, key=key)
            hint = f"best baseline: {label(top)} {fmt(base[top], 3, signed)}"
        if evaluate.ONLINE in v:
            hint += f" · online model {fmt(v[evaluate.ONLINE], 3, signed)}"
        out.append(Card(name, fmt(v[evaluate.MODEL], 3, signed), hint))
    f, a = float(forecast["units"].sum()), float(actuals["units"].sum())
    rel = f" · {fmt_pct((f - a) / a, signed=True)} vs actual" if a else ""
    out.append(Card("units, 28 days", fmt(f, 0), f"actual {fmt(a, 0)}{rel}"))
    return out
