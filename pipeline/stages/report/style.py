"""Colours, names and number formats shared by every chart and table of the reports.

Colours are the same everywhere: actuals near-black, the model (the published forecast) blue, the
online model (the challenger) purple, the batch model alone (where the published forecast blends
the two) teal, each baseline its own colour (``COLOURS``); any
other forecast name gets a spare colour picked from its name, so it is stable
from page to page.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.stages import evaluate

#: One colour per role, used by charts, legends and tables alike.
COLOURS = {
    "actual": "#1f2937",
    evaluate.MODEL: "#2563eb",
    evaluate.ONLINE: "#9333ea",
    evaluate.BATCH: "#0e7490",
    "seasonal_naive": "#ea580c",
    "moving_average_28": "#16a34a",
    "zero": "#9ca3af",
    "positive": "#16a34a",
    "negative": "#dc2626",
}
_SPARE_COLOURS = ["#db2777", "#ca8a04", "#7c2d12"]  # not the online model's purple nor the batch model's teal
LABELS = {
    "actual": "actual units",
    evaluate.MODEL: "model",
    evaluate.ONLINE: "online model (River)",
    evaluate.BATCH: "batch model alone",
    "seasonal_naive": "seasonal naive",
    "moving_average_28": "28-day average",
    "zero": "zero",
}
METRIC_LABELS = {
    "wrmsse": ("WRMSSE", "all 12 levels, weighted by dollar sales"),
    "mae": ("MAE", "units per series-day"),
    "rmse": ("RMSE", "units per series-day"),
    "bias": ("bias", "mean(forecast − actual), units per series-day"),
}
LEVEL_LABELS = {
    "total": "total", "state": "state", "store": "store", "category": "category", "department": "department",
    "state_category": "state × category", "state_department": "state × department",
    "store_category": "store × category", "store_department": "store × department",
    "item": "item", "item_state": "item × state", "item_store": "item × store",
}


def colour(name: str) -> str:
    if name in COLOURS:
        return COLOURS[name]
    return _SPARE_COLOURS[sum(map(ord, name)) % len(_SPARE_COLOURS)]


def label(name: str) -> str:
    return LABELS.get(name, name)


#: The forecasts that compete with the baselines: never "the best baseline" of a verdict or a delta.
CONTENDERS = (evaluate.MODEL, evaluate.BATCH, evaluate.ONLINE)


def is_baseline(name: str) -> bool:
    """Whether ``name`` is a forecast the model is judged against (anything but the model and its two parts)."""
    return name not in CONTENDERS


def model_order(names) -> list[str]:
    """The model first, the batch model alone, the online model, then the known baselines in their order, then
    any other name sorted."""
    names = list(dict.fromkeys(names))
    known = [n for n in (*CONTENDERS, *evaluate.BASELINES) if n in names]
    return known + sorted(n for n in names if n not in known)


def fmt(value: float | None, digits: int = 3, signed: bool = False) -> str:
    """``value`` with thousands separators and a true minus sign; an en dash when it is missing or not finite."""
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"
    return text.replace("-", "−")


def fmt_units(value: float) -> str:
    return fmt(value, 0) if abs(value) >= 100 else fmt(value, 1)


def fmt_pct(fraction: float, signed: bool = False, digits: int = 1) -> str:
    return fmt(100 * fraction, digits, signed) + "\u00a0%"


def day(d) -> str:
    """A short date for axes: ``May 2``."""
    d = pd.Timestamp(d)
    return f"{d:%b} {d.day}"


def relative(model: float, baseline: float) -> float:
    """How much lower the model is than the baseline, as a fraction of the baseline (positive: better)."""
    if not (np.isfinite(model) and np.isfinite(baseline)) or baseline == 0:
        return float("nan")
    return (baseline - model) / abs(baseline)
