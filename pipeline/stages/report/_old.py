"""Stage 7: an HTML report of a run (forecast vs actuals, metrics, feature importance) and of a backtest.

Plain functions of frames, dicts and paths that return one self-contained HTML
page each: inline CSS, charts as inline SVG drawn here (no plotting library, no
network, no CDN). The same inputs give the same bytes (no clock, no randomness),
like every other output of the pipeline.

Every page carries two tiny inline scripts that change nothing a reader sees:
one records script errors into ``<html data-errors>``, the other checks at load
that every chart (``svg[data-plot]``) drew its series and sets
``<body data-ok="true|false" data-problems="…">``; the browser test reads them.

Colours are the same on every chart and table: actuals near-black, the model
blue, each baseline its own colour (``COLOURS``).
"""
from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.stages import evaluate
from pipeline.data import storage
from pipeline.data.snapshot import read_snapshot

KEY = ["item_id", "store_id"]
HISTORY_DAYS = 56  # about 8 weeks of actuals before the run date
TOP_SERIES = 4
TOP_FEATURES = 20

#: One colour per role, used by charts, legends and tables alike.
COLOURS = {
    "actual": "#1f2937",
    evaluate.MODEL: "#2563eb",
    "seasonal_naive": "#ea580c",
    "moving_average_28": "#16a34a",
    "zero": "#9ca3af",
    "positive": "#16a34a",
    "negative": "#dc2626",
}
_SPARE_COLOURS = ["#9333ea", "#db2777", "#0891b2", "#ca8a04"]
LABELS = {
    "actual": "actual units",
    evaluate.MODEL: "model",
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


def esc(text) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def colour(name: str) -> str:
    if name in COLOURS:
        return COLOURS[name]
    return _SPARE_COLOURS[sum(map(ord, name)) % len(_SPARE_COLOURS)]


def label(name: str) -> str:
    return LABELS.get(name, name)


def model_order(names) -> list[str]:
    """The model first, then the known baselines in their order, then any other name sorted."""
    names = list(dict.fromkeys(names))
    known = [n for n in (evaluate.MODEL, *evaluate.BASELINES) if n in names]
    return known + sorted(n for n in names if n not in known)


# --------------------------------------------------------------------------- number formatting

def fmt(value: float, digits: int = 3, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    text = f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}"
    return text.replace("-", "−")


def fmt_units(value: float) -> str:
    if abs(value) >= 100:
        return fmt(value, 0)
    return fmt(value, 1)


def fmt_pct(fraction: float, signed: bool = False, digits: int = 1) -> str:
    return fmt(100 * fraction, digits, signed) + "\u00a0%"


def _fmt_tick(value: float, step: float) -> str:
    digits = max(0, -int(math.floor(math.log10(step)))) if step < 1 else 0
    return fmt(value, digits)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 × a power of ten apart)."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    k = 0
    while True:
        value = first + k * step
        ticks.append(round(value, 10))
        if value >= hi - 1e-9:
            break
        k += 1
    return ticks


def _day(d) -> str:
    d = pd.Timestamp(d)
    return f"{d:%b} {d.day}"


# --------------------------------------------------------------------------- SVG charts

@dataclass
class Series:
    """One line of a chart: ``role`` picks its colour (``COLOURS``), ``x`` are timestamps."""

    role: str
    x: pd.DatetimeIndex
    y: np.ndarray
    label: str = ""
    dashed: bool = False
    width: float = 2.0
    markers: bool = False
    bars: bool = False  # columns from 0 instead of a line: green above 0, red below


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    parts, pen_down = [], False
    for x, y in zip(xs, ys):
        if not np.isfinite(y):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return "".join(parts)


def line_chart(series: list[Series], *, plot_id: str, title: str, width: int = 1160, height: int = 320,
               x_range: tuple | None = None, shade: tuple | None = None, marker: tuple | None = None,
               y_label: str = "units per day", x_label: str = "date", tick_every: int = 7,
               tick_anchor=None, compact: bool = False, y_digits: int | None = None) -> str:
    """An SVG line chart of ``series`` over dates, with axes, grid, labelled axes and an optional shaded span.

    ``shade``: (start, end) timestamps of the forecast period; ``marker``: (timestamp, text)
    for a vertical line (the run date); ticks every ``tick_every`` days from ``tick_anchor``.
    """
    font = 11 if compact else 12
    left, right, top, bottom = (46 if compact else 64), 12, (10 if compact else 14), (40 if compact else 46)
    pw, ph = width - left - right, height - top - bottom
    drawn = [s for s in series if len(s.y) and np.isfinite(np.asarray(s.y, dtype=float)).any()]
    if x_range is None:
        xs = [pd.Timestamp(x) for s in series for x in s.x]
        x_range = (min(xs), max(xs)) if xs else (pd.Timestamp("2000-01-01"), pd.Timestamp("2000-01-02"))
    x0, x1 = (pd.Timestamp(x) for x in x_range)
    span = max((x1 - x0) / pd.Timedelta(days=1), 1e-9)

    def sx(t) -> np.ndarray:
        days = (pd.DatetimeIndex(np.atleast_1d(t)) - x0) / pd.Timedelta(days=1)
        return left + np.asarray(days, dtype=float) / span * pw

    values = np.concatenate([np.asarray(s.y, dtype=float) for s in drawn]) if drawn else np.array([0.0])
    values = values[np.isfinite(values)]
    lo = min(0.0, float(values.min())) if values.size else 0.0
    hi = max(0.0, float(values.max())) if values.size else 1.0
    ticks = nice_ticks(lo, hi if hi > lo else lo + 1, 4 if compact else 5)
    y0, y1 = ticks[0], ticks[-1]

    def sy(v) -> np.ndarray:
        return top + ph - (np.asarray(v, dtype=float) - y0) / (y1 - y0) * ph

    out = [f'<svg class="chart" data-plot="{esc(plot_id)}" data-series="{len(series)}" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}" style="font-size:{font}px">',
           f"<title>{esc(title)}</title>"]
    if shade is not None:
        a, b = sx(shade[0])[0], sx(shade[1])[0]
        out.append(f'<rect class="shade" x="{a:.1f}" y="{top}" width="{max(b - a, 0):.1f}" height="{ph}"/>')
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1
    for t in ticks:
        y = sy(t)
        out.append(f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}"/>')
        text = fmt(t, y_digits) if y_digits is not None else _fmt_tick(t, step)
        out.append(f'<text class="tick" x="{left - 6}" y="{y:.1f}" dy="0.32em" text-anchor="end">{esc(text)}</text>')
    anchor = pd.Timestamp(tick_anchor) if tick_anchor is not None else x0
    first = anchor - pd.Timedelta(days=tick_every * math.floor((anchor - x0) / pd.Timedelta(days=tick_every)))
    tick_day = first
    while tick_day <= x1 + pd.Timedelta(hours=1):
        x = sx(tick_day)[0]
        out.append(f'<line class="xtick" x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{top + ph + 6 + font}" text-anchor="middle">{esc(_day(tick_day))}</text>')
        tick_day += pd.Timedelta(days=tick_every)
    out.append(f'<line class="axis" x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}"/>')
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}"/>')
    if y0 < 0:
        out.append(f'<line class="axis zero" x1="{left}" x2="{left + pw}" y1="{sy(0.0):.1f}" y2="{sy(0.0):.1f}"/>')
    if marker is not None:
        x = sx(marker[0])[0]
        out.append(f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}"/>')
        if marker[1]:
            out.append(f'<text class="marker-label" x="{x + 4:.1f}" y="{top + font}">{esc(marker[1])}</text>')
    out.append(f'<text class="axis-label" x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle">{esc(x_label)}</text>')
    out.append(f'<text class="axis-label" transform="translate({font + 1},{top + ph / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle">{esc(y_label)}</text>')
    for s in series:
        px, py = sx(s.x), sy(np.asarray(s.y, dtype=float))
        if s.bars:
            bw = min(36.0, 0.7 * pw / max(len(px), 1))
            base = float(sy(0.0))
            for x, y, v, d in zip(px, py, s.y, s.x):
                if np.isfinite(y):
                    fill = COLOURS["positive"] if v >= 0 else COLOURS["negative"]
                    out.append(f'<rect class="mark bar" data-role="{esc(s.role)}" x="{x - bw / 2:.1f}" '
                               f'y="{min(y, base):.1f}" width="{bw:.1f}" height="{max(abs(base - y), 0.5):.1f}" '
                               f'fill="{fill}"><title>{esc(pd.Timestamp(d).date())}: '
                               f"{esc(fmt(float(v), 1, signed=True))}</title></rect>")
            continue
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        tip = f"<title>{esc(s.label or label(s.role))}</title>"
        out.append(f'<path class="mark line" data-role="{esc(s.role)}" d="{_path(px, py)}" stroke="{colour(s.role)}" '
                   f'stroke-width="{s.width}"{dash}>{tip}</path>')
        if s.markers:
            for x, y, v, d in zip(px, py, s.y, s.x):
                if np.isfinite(y):
                    out.append(f'<circle class="mark dot" data-role="{esc(s.role)}" cx="{x:.1f}" cy="{y:.1f}" r="3.5" '
                               f'fill="{colour(s.role)}"><title>{esc(s.label or label(s.role))} '
                               f'{esc(pd.Timestamp(d).date())}: {esc(fmt(float(v)))}</title></circle>')
    if not drawn:
        out.append(f'<text class="empty" x="{left + pw / 2:.1f}" y="{top + ph / 2:.1f}" text-anchor="middle">no data</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(items: list[tuple[str, float]], *, plot_id: str, title: str, x_label: str, width: int = 1160,
              bar_height: int = 22, label_width: int = 170, role: str = evaluate.MODEL, unit: str = "") -> str:
    """A horizontal SVG bar chart, one labelled bar per (name, value), largest first as given."""
    top, bottom, right = 8, 44, 70
    ph = bar_height * max(len(items), 1)
    height = top + ph + bottom
    pw = width - label_width - right
    hi = max([v for _, v in items if np.isfinite(v)], default=0.0)
    ticks = nice_ticks(0.0, hi if hi > 0 else 1.0, 6)
    x_max = ticks[-1]
    step = ticks[1] - ticks[0]
    out = [f'<svg class="chart" data-plot="{esc(plot_id)}" data-series="{1 if items else 1}" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}" style="font-size:12px">',
           f"<title>{esc(title)}</title>"]
    for t in ticks:
        x = label_width + t / x_max * pw
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}"/>')
        out.append(f'<text class="tick" x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{esc(_fmt_tick(t, step))}</text>')
    for k, (name, value) in enumerate(items):
        y = top + k * bar_height
        w = max(value, 0) / x_max * pw if np.isfinite(value) else 0
        out.append(f'<text class="bar-label" x="{label_width - 8}" y="{y + bar_height / 2:.1f}" dy="0.32em" '
                   f'text-anchor="end">{esc(name)}</text>')
        out.append(f'<rect class="mark bar" data-role="{esc(role)}" x="{label_width}" y="{y + 3}" width="{w:.1f}" '
                   f'height="{bar_height - 6}" fill="{colour(role)}" rx="2"><title>{esc(name)}: {esc(fmt(value, 1))}'
                   f"</title></rect>")
        out.append(f'<text class="bar-value" x="{label_width + w + 6:.1f}" y="{y + bar_height / 2:.1f}" dy="0.32em">'
                   f"{esc(fmt(value, 1) + unit)}</text>")
    out.append(f'<line class="axis" x1="{label_width}" x2="{label_width}" y1="{top}" y2="{top + ph}"/>')
    out.append(f'<line class="axis" x1="{label_width}" x2="{label_width + pw}" y1="{top + ph}" y2="{top + ph}"/>')
    out.append(f'<text class="axis-label" x="{label_width + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">'
               f"{esc(x_label)}</text>")
    if not items:
        out.append(f'<text class="empty" x="{label_width + pw / 2:.1f}" y="{top + ph / 2:.1f}" text-anchor="middle">'
                   "no data</text>")
    out.append("</svg>")
    return "".join(out)


def legend(roles: list[tuple[str, str]], shade: str | None = None) -> str:
    """A legend of (role, style) pairs, style ``solid`` or ``dashed``; ``shade``: the shaded span's meaning."""
    items = []
    for role, style in roles:
        dash = ' stroke-dasharray="5 4"' if style == "dashed" else ""
        items.append(f'<span class="key"><svg width="26" height="10" aria-hidden="true"><line x1="1" x2="25" y1="5" y2="5" '
                     f'stroke="{colour(role)}" stroke-width="{2.5 if role != "actual" else 2}"{dash}/></svg>'
                     f"{esc(label(role))}</span>")
    if shade:
        items.append(f'<span class="key"><span class="swatch shade-swatch"></span>{esc(shade)}</span>')
    return f'<div class="legend">{"".join(items)}</div>'


# --------------------------------------------------------------------------- page frame

CSS = """
:root { --ink:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#f8fafc; --card:#ffffff; --good:#15803d;
        --good-bg:#dcfce7; --bad:#b91c1c; --model:#2563eb; --shade:#eff6ff; }
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
       "DejaVu Sans", Arial, sans-serif; font-variant-numeric: tabular-nums; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 48px; }
header { margin-bottom: 18px; }
h1 { font-size: 26px; line-height: 1.2; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 18px; margin: 0 0 4px; }
h3 { font-size: 14px; margin: 18px 0 8px; color: #374151; text-transform: uppercase; letter-spacing: .06em; }
.sub { color: var(--muted); margin: 0; }
.summary { font-size: 18px; margin: 14px 0 0; padding: 12px 16px; background: var(--card); border-left: 5px solid var(--model);
           border-radius: 6px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.summary.worse { border-left-color: var(--bad); }
.summary b { font-weight: 650; }
.better { color: var(--good); font-weight: 650; }
.worse-text { color: var(--bad); font-weight: 650; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 14px 0 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.card .v { font-size: 24px; font-weight: 650; margin: 2px 0 0; }
.card .n { color: var(--muted); font-size: 12.5px; }
nav { margin: 14px 0 0; color: var(--muted); font-size: 13px; }
nav a { color: var(--model); text-decoration: none; margin-right: 14px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px 14px; margin: 18px 0 0; }
section > p.note { color: var(--muted); margin: 0 0 8px; font-size: 13px; }
figure { margin: 0; }
figcaption { font-size: 13px; margin: 0 0 2px; display: flex; justify-content: space-between; gap: 8px;
             align-items: baseline; flex-wrap: wrap; }
figcaption b { font-weight: 650; white-space: nowrap; }
figcaption .fc { color: var(--muted); font-size: 12px; white-space: nowrap; }
figcaption.stacked { display: block; }
figcaption.stacked b, figcaption.stacked .fc { display: block; overflow: hidden; text-overflow: ellipsis; }
.grid-3 { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 16px 22px; }
.grid-4 { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 16px 22px; }
.grid-3 > figure, .grid-4 > figure { min-width: 0; }
svg.chart { width: 100%; height: auto; display: block; overflow: visible; }
svg.chart .grid { stroke: #eef0f3; stroke-width: 1; }
svg.chart .axis { stroke: #9ca3af; stroke-width: 1; }
svg.chart .axis.zero { stroke: #4b5563; }
svg.chart .xtick { stroke: #9ca3af; }
svg.chart .tick { fill: #6b7280; }
svg.chart .axis-label { fill: #4b5563; font-weight: 600; }
svg.chart .shade { fill: var(--shade); }
svg.chart .marker { stroke: #94a3b8; stroke-dasharray: 3 3; }
svg.chart .marker-label { fill: #64748b; font-size: 0.92em; }
svg.chart path.line { fill: none; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .bar-label { fill: #374151; font-family: ui-monospace, "SFMono-Regular", Menlo, "DejaVu Sans Mono", monospace; font-size: 12px; }
svg.chart .bar-value { fill: #4b5563; font-size: 11.5px; }
svg.chart .empty { fill: var(--bad); font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0 10px; font-size: 13px; color: #374151; }
.legend .key { display: inline-flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; vertical-align: -1px; margin-right: 6px; }
.shade-swatch { width: 22px; background: var(--shade); border: 1px solid #bfdbfe; margin-right: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; table-layout: fixed; }
thead th:first-child { width: 28%; }
thead th:last-child { width: 19%; }
th, td { padding: 7px 12px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { font-weight: 600; color: #374151; border-bottom: 2px solid #d1d5db; background: #fafafa; }
tbody tr:hover { background: #f9fafb; }
.hint { display: block; color: var(--muted); font-size: 11.5px; font-weight: 400; }
td.best { font-weight: 700; color: var(--good); background: var(--good-bg); }
td.model-col { background: #f5f8ff; }
td.best.model-col { background: var(--good-bg); }
td.delta { color: var(--muted); }
td.delta.better { color: var(--good); font-weight: 600; }
td.delta.worse-text { color: var(--bad); font-weight: 600; }
tfoot td { font-weight: 600; border-top: 2px solid #d1d5db; }
details { margin: 12px 0 0; }
summary { cursor: pointer; color: var(--model); font-weight: 600; }
.meta { color: var(--muted); font-size: 12.5px; margin: 10px 0 0; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, "DejaVu Sans Mono", monospace; font-size: 0.92em; }
footer { color: var(--muted); font-size: 12px; margin: 22px 0 0; }
@media (max-width: 900px) { .grid-3, .grid-4, .cards { grid-template-columns: repeat(2, 1fr); } }
@media print { html { background: #fff; } section { break-inside: avoid; } }
"""

# Records script errors (and failed resources) on <html data-errors>; runs first.
ERROR_TRAP = """<script>
(function () {
  var errors = [];
  function record(text) { errors.push(String(text)); document.documentElement.setAttribute("data-errors", errors.join(" | ")); }
  window.onerror = function (message, source, line) { record(message + " (" + (source || "inline") + ":" + line + ")"); };
  window.addEventListener("error", function (e) {
    if (e.target && e.target !== window) { record("failed to load " + (e.target.src || e.target.href || e.target.tagName)); }
  }, true);
  window.addEventListener("unhandledrejection", function (e) { record("unhandled rejection: " + e.reason); });
})();
</script>"""

# Checks that every chart drew its series (a mark with a non-empty bounding box) and that no script failed.
SELF_CHECK = """<script>
(function () {
  var problems = [], plots = document.querySelectorAll("svg[data-plot]");
  if (!plots.length) { problems.push("no charts"); }
  plots.forEach(function (svg) {
    var drawn = 0, want = parseInt(svg.getAttribute("data-series") || "1", 10);
    svg.querySelectorAll(".mark").forEach(function (m) { var b = m.getBBox(); if (b.width > 0 || b.height > 0) { drawn++; } });
    if (drawn < want) { problems.push(svg.getAttribute("data-plot") + ": " + drawn + " of " + want + " series drawn"); }
  });
  var errors = document.documentElement.getAttribute("data-errors");
  if (errors) { problems.push("script errors: " + errors); }
  document.body.setAttribute("data-plots", String(plots.length));
  document.body.setAttribute("data-problems", problems.join("; "));
  document.body.setAttribute("data-ok", problems.length ? "false" : "true");
})();
</script>"""


def page(title: str, body: str) -> str:
    """A whole self-contained HTML document."""
    return ("<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n{ERROR_TRAP}\n<style>{CSS}</style>\n</head>\n"
            f"<body>\n<main>\n{body}\n</main>\n{SELF_CHECK}\n</body>\n</html>\n")


# --------------------------------------------------------------------------- metrics tables

def _best(values: dict[str, float], metric: str) -> set[str]:
    """The names with the best value: the lowest, or for bias the closest to zero."""
    score = {m: (abs(v) if metric == "bias" else v) for m, v in values.items() if v is not None and np.isfinite(v)}
    if not score:
        return set()
    low = min(score.values())
    return {m for m, v in score.items() if math.isclose(v, low, rel_tol=1e-12, abs_tol=1e-12)}


def _relative(model: float, baseline: float) -> float:
    """How much lower the model is than the baseline, as a fraction of the baseline (positive: better)."""
    if not (np.isfinite(model) and np.isfinite(baseline)) or baseline == 0:
        return float("nan")
    return (baseline - model) / abs(baseline)


def _delta_cell(model: float, baselines: dict[str, float], metric: str) -> str:
    """The model against the best baseline: relative for errors, closer to or further from 0 for a bias."""
    vals = {m: (abs(v) if metric == "bias" else v) for m, v in baselines.items() if np.isfinite(v)}
    if not vals or not np.isfinite(model):
        return '<td class="delta">–</td>'
    best = min(vals, key=lambda m: (vals[m], m))
    if metric == "bias":
        gap = abs(model) - vals[best]
        cls, word = ("better", "closer to 0") if gap <= 0 else ("worse-text", "further from 0")
        return (f'<td class="delta {cls}" title="|bias| of the model against {esc(label(best))}">'
                f"{esc(fmt(abs(gap), 3))} {word}</td>")
    rel = _relative(model, vals[best])
    if not np.isfinite(rel):
        return '<td class="delta">–</td>'
    cls = "better" if rel > 0 else ("worse-text" if rel < 0 else "")
    word = "better" if rel >= 0 else "worse"
    return (f'<td class="delta {cls}" title="model against {esc(label(best))}">'
            f"{esc(fmt_pct(abs(rel)))} {word}</td>")


def _table(rows: list[tuple[str, str, dict[str, float], str]], models: list[str], digits: int = 3,
           caption_col: str = "metric") -> str:
    """rows: (row label html, metric kind, {model: value}, hint)."""
    head = "".join(f'<th scope="col" title="{esc(m)}"><span class="swatch" style="background:{colour(m)}"></span>'
                   f"{esc(label(m))}</th>" for m in models)
    out = [f'<table><thead><tr><th scope="col">{esc(caption_col)}</th>{head}'
           '<th scope="col">model vs best baseline</th></tr></thead><tbody>']
    for row_label, metric, values, hint in rows:
        best = _best(values, metric)
        cells = []
        for m in models:
            v = values.get(m, float("nan"))
            cls = " ".join(c for c in ("best" if m in best else "", "model-col" if m == evaluate.MODEL else "") if c)
            cells.append(f'<td class="{cls}" data-model="{esc(m)}">{esc(fmt(v, digits, signed=metric == "bias"))}</td>')
        baselines = {m: values.get(m, float("nan")) for m in models if m != evaluate.MODEL}
        delta = _delta_cell(values.get(evaluate.MODEL, float("nan")), baselines, metric)
        hint_html = f'<span class="hint">{esc(hint)}</span>' if hint else ""
        out.append(f'<tr data-metric="{esc(metric)}"><th scope="row" style="font-weight:600">{row_label}{hint_html}</th>'
                   f"{''.join(cells)}{delta}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def metrics_section(metrics_table: pd.DataFrame) -> str:
    """The metrics table (WRMSSE over all levels, MAE, RMSE, bias per model) and WRMSSE per level, collapsed."""
    t = metrics_table
    models = model_order(t["model"].astype(str))
    rows = []
    for metric in ("wrmsse", "mae", "rmse", "bias"):
        level = "all" if metric == "wrmsse" else None
        sub = t[(t["metric"] == metric) & ((t["level"] == level) if level else True)]
        if sub.empty:
            continue
        name, hint = METRIC_LABELS[metric]
        rows.append((esc(name), metric, dict(zip(sub["model"].astype(str), sub["value"].astype(float))), hint))
    per_level = t[(t["metric"] == "wrmsse") & (t["level"] != "all")]
    level_rows = []
    for lvl in dict.fromkeys(per_level["level"].astype(str)):
        sub = per_level[per_level["level"] == lvl]
        level_rows.append((esc(LEVEL_LABELS.get(lvl, lvl)), "wrmsse",
                           dict(zip(sub["model"].astype(str), sub["value"].astype(float))), ""))
    out = ['<section id="metrics"><h2>Accuracy against the baselines</h2>',
           '<p class="note">Lower is better (bias: closer to zero). The best value of each row is highlighted; '
           "the baselines are scored on the same series and days as the model.</p>",
           _table(rows, models)]
    if level_rows:
        out.append("<details><summary>WRMSSE per aggregation level (12 levels)</summary>")
        out.append(_table(level_rows, models, caption_col="level"))
        out.append("</details>")
    out.append("</section>")
    return "".join(out)


def wrmsse_summary(metrics_table: pd.DataFrame) -> tuple[str, bool]:
    """The one-line verdict (HTML) and whether the model beats the best baseline."""
    t = metrics_table[(metrics_table["metric"] == "wrmsse") & (metrics_table["level"] == "all")]
    values = dict(zip(t["model"].astype(str), t["value"].astype(float)))
    model = values.get(evaluate.MODEL, float("nan"))
    baselines = {m: v for m, v in values.items() if m != evaluate.MODEL and np.isfinite(v)}
    if not baselines or not np.isfinite(model):
        return f"<b>model WRMSSE {esc(fmt(model))}</b>", True
    best = min(baselines, key=lambda m: (baselines[m], m))
    rel = _relative(model, baselines[best])
    better = rel >= 0
    verdict = (f'<span class="better">{esc(fmt_pct(rel))} better</span>' if better
               else f'<span class="worse-text">{esc(fmt_pct(-rel))} worse</span>')
    return (f"<b>model WRMSSE {esc(fmt(model))}</b> — {verdict} than the best baseline "
            f"({esc(label(best))}, {esc(fmt(baselines[best]))})", better)


# --------------------------------------------------------------------------- run report

def _daily(frame: pd.DataFrame, by: list[str], days: pd.DatetimeIndex) -> pd.DataFrame:
    """Units per day (columns ``days``) for each group of ``by`` (rows); a missing day is 0 units."""
    f = frame[frame["date"].isin(days)]
    if not by:
        return pd.DataFrame([f.groupby("date")["units"].sum().reindex(days, fill_value=0.0).to_numpy(dtype=float)],
                            index=["total"], columns=days)
    keys = [f[c].astype(str) for c in by]
    wide = f.groupby(keys + [f["date"]], observed=True)["units"].sum().unstack("date")
    return wide.reindex(columns=days).fillna(0.0).astype(float)


def _with_state(frame: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
    state = dict(zip(stores["store_id"].astype(str), stores["state_id"].astype(str)))
    store = frame["store_id"].astype(str)
    return frame.assign(store_id=store, item_id=frame["item_id"].astype(str),
                        state_id=store.map(state).fillna(store.str.split("_").str[0]))


@dataclass
class _Panel:
    key: str
    title: str
    actual: np.ndarray  # history + forecast days
    forecast: np.ndarray  # forecast days
    baselines: dict = field(default_factory=dict)


def _panel_caption(p: _Panel, n_history: int, compact: bool = True) -> str:
    """The panel's title and its units over the forecast days: forecast, actual, and the difference."""
    f, a = float(np.nansum(p.forecast)), float(np.nansum(p.actual[n_history:]))
    rel = (f - a) / a if a else float("nan")
    rel_text = f" ({fmt_pct(rel, signed=True, digits=0 if compact else 1)})" if np.isfinite(rel) else ""
    days = len(p.forecast)
    what = "" if compact else f"{days}-day units: "
    return (f'<figcaption class="{"stacked" if compact else ""}"><b title="{esc(p.title)}">{esc(p.title)}</b>'
            f'<span class="fc" title="units over the {days} forecast days">{what}forecast '
            f"{esc(fmt_units(f))} · actual {esc(fmt_units(a))}{esc(rel_text)}</span></figcaption>")


def _panel_chart(p: _Panel, days: pd.DatetimeIndex, fdays: pd.DatetimeIndex, run: pd.Timestamp, plot_id: str,
                 compact: bool, size: tuple[int, int] = (380, 220), tick_every: int = 14) -> str:
    series = [Series("actual", days, p.actual, width=1.6 if compact else 1.8)]
    for name, values in p.baselines.items():
        series.append(Series(name, fdays, values, dashed=True, width=1.5))
    series.append(Series(evaluate.MODEL, fdays, p.forecast, width=2.2 if compact else 2.6))
    size = dict(width=size[0], height=size[1]) if compact else dict(width=1160, height=330)
    return line_chart(series, plot_id=plot_id, title=f"{p.title}: forecast vs actual units per day",
                      x_range=(days[0], days[-1]), shade=(run + pd.Timedelta(hours=12), days[-1]),
                      marker=(run + pd.Timedelta(hours=12), "" if compact else "run date"),
                      tick_every=tick_every if compact else 7, tick_anchor=run + pd.Timedelta(days=1), compact=compact,
                      x_label="date", y_label="units per day", **size)


def _panels(by: list[str], hist: pd.DataFrame, fc: pd.DataFrame, act: pd.DataFrame, hdays, fdays, titles=None,
            keys=None, baselines: dict | None = None) -> list[_Panel]:
    h, f, a = _daily(hist, by, hdays), _daily(fc, by, fdays), _daily(act, by, fdays)
    b = {name: _daily(frame, by, fdays) for name, frame in (baselines or {}).items()}
    order = keys if keys is not None else sorted(set(f.index) | set(h.index))
    panels = []
    for k in order:
        def row(frame, cols):
            return frame.loc[k].to_numpy(dtype=float) if k in frame.index else np.zeros(len(cols))
        title = titles(k) if titles else (" · ".join(k) if isinstance(k, tuple) else str(k))
        panels.append(_Panel(str(k), title, np.concatenate([row(h, hdays), row(a, fdays)]), row(f, fdays),
                             {name: row(frame, fdays) for name, frame in b.items()}))
    return panels


def forecast_section(forecast: pd.DataFrame, history: pd.DataFrame, actuals: pd.DataFrame, run_date: dt.date,
                     stores: pd.DataFrame | None = None, baselines: dict[str, pd.DataFrame] | None = None,
                     history_days: int = HISTORY_DAYS, top: int = TOP_SERIES) -> str:
    """Charts of actual units (history and forecast days) and the forecast: total, states, stores, top series."""
    run = pd.Timestamp(run_date)
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
    hist, fc, act = (_with_state(x, stores) for x in (hist, forecast, actuals))
    bl = {n: _with_state(f, stores) for n, f in (baselines or {}).items()}
    n_series = len(series)
    out = ['<section id="forecast"><h2>Forecast vs actuals</h2>',
           f'<p class="note">Daily units summed over the series; the last {history_days // 7} weeks before the run date, '
           f"then the {len(fdays)} forecast days (shaded) with the actual sales over them. {n_series:,} series in "
           f"all. Over each chart: the units forecast and sold over the {len(fdays)} days.</p>"]
    roles = [("actual", "solid"), (evaluate.MODEL, "solid")] + [(n, "dashed") for n in bl]
    total = _panels([], hist, fc, act, hdays, fdays, titles=lambda k: "All series", baselines=bl)[0]
    out.append(legend(roles, shade="forecast period"))
    out.append(f'<figure class="wide">{_panel_caption(total, len(hdays), compact=False)}'
               f"{_panel_chart(total, days, fdays, run, 'total', compact=False)}</figure>")
    if bl:
        out.append('<p class="note" style="margin-top:6px">Dashed: the baselines\' forecasts of the total, '
                   "for comparison (the charts below show the model only).</p>")
    grids = {"grid-3": dict(size=(370, 210), tick_every=14), "grid-4": dict(size=(275, 200), tick_every=28)}
    groups = [("By state", ["state_id"], "grid-3", lambda k: f"State {k}"),
              ("By store", ["store_id"], "grid-4", lambda k: f"Store {k}")]
    for heading, by, grid, titles in groups:
        out.append(f'<h3>{esc(heading)}</h3><div class="{grid}">')
        for p in _panels(by, hist, fc, act, hdays, fdays, titles=titles):
            out.append(f"<figure>{_panel_caption(p, len(hdays))}"
                       f"{_panel_chart(p, days, fdays, run, f'{by[0]}:{p.key}', True, **grids[grid])}</figure>")
        out.append("</div>")
    # the highest-selling series over the history window (known at the run date), ties by id
    sold = hist.groupby(KEY, observed=True)["units"].sum().reset_index()
    sold = sold[sold["units"] > 0]
    sold = sold.sort_values(["units", "item_id", "store_id"], ascending=[False, True, True]).head(top)
    keys = list(zip(sold["item_id"], sold["store_id"]))
    if keys:
        out.append(f'<h3>Top {len(keys)} series by units sold in the last {history_days // 7} weeks</h3>'
                   '<div class="grid-4">')
        for p in _panels(KEY, hist, fc, act, hdays, fdays, keys=keys, titles=lambda k: f"{k[0]} · {k[1]}"):
            out.append(f"<figure>{_panel_caption(p, len(hdays))}"
                       f"{_panel_chart(p, days, fdays, run, 'series:' + p.title, True, **grids['grid-4'])}</figure>")
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def importance_section(importances: dict[str, float], top: int = TOP_FEATURES) -> str:
    """The ``top`` features by total gain, as a share of the model's total gain."""
    items = sorted(((str(k), float(v)) for k, v in (importances or {}).items()), key=lambda kv: (-kv[1], kv[0]))
    total = sum(v for _, v in items if np.isfinite(v) and v > 0)
    shown = [(k, 100 * v / total if total else 0.0) for k, v in items[:top]]
    zero = sum(1 for _, v in items if v <= 0)
    note = (f"The {len(shown)} features with the highest total gain (of {len(items)}); the share of the model's "
            "total split gain. ")
    if zero:
        note += f"{zero} feature{'s' if zero != 1 else ''} never used by a split."
    return ('<section id="importance"><h2>What the model looks at</h2>'
            f'<p class="note">{esc(note)}</p>'
            + bar_chart(shown, plot_id="feature-importance", title="Feature importance (share of total gain, %)",
                        x_label="share of total gain (%)", width=1160, unit="\u00a0%")
            + "</section>")


def _kpi(key: str, value: str, note: str) -> str:
    return f'<div class="card"><div class="k">{key}</div><div class="v">{value}</div><div class="n">{note}</div></div>'


def _cards(metrics_table: pd.DataFrame, forecast: pd.DataFrame, actuals: pd.DataFrame) -> str:
    t = metrics_table
    def values(metric, level):
        sub = t[(t["metric"] == metric) & (t["level"] == level)]
        return dict(zip(sub["model"].astype(str), sub["value"].astype(float)))
    cards = []
    for metric, level in (("wrmsse", "all"), ("mae", "item_store"), ("bias", "item_store")):
        v = values(metric, level)
        if evaluate.MODEL not in v:
            continue
        base = {m: x for m, x in v.items() if m != evaluate.MODEL}
        name, hint = METRIC_LABELS[metric]
        if base:
            key = (lambda m: (abs(base[m]), m)) if metric == "bias" else (lambda m: (base[m], m))
            best = min(base, key=key)
            note = f"best baseline: {esc(label(best))} {esc(fmt(base[best], 3, metric == 'bias'))}"
        else:
            note = esc(hint)
        cards.append(_kpi(esc(name), esc(fmt(v[evaluate.MODEL], 3, metric == "bias")), note))
    f, a = float(forecast["units"].sum()), float(actuals["units"].sum())
    rel = f"{fmt_pct((f - a) / a, signed=True)} vs actual" if a else ""
    cards.append(_kpi("units, 28 days", esc(fmt(f, 0)), f"actual {esc(fmt(a, 0))} · {esc(rel)}"))
    return f'<div class="cards">{"".join(cards)}</div>'


def render_run_report(forecast: pd.DataFrame, history: pd.DataFrame, actuals: pd.DataFrame,
                      metrics_table: pd.DataFrame, importances: dict[str, float], run_date: dt.date,
                      model_date: dt.date, *, stores: pd.DataFrame | None = None,
                      baselines: dict[str, pd.DataFrame] | None = None, model_info: dict | None = None,
                      history_days: int = HISTORY_DAYS) -> str:
    """The report of one run date as a self-contained HTML page.

    ``forecast``, ``actuals``: long (item_id, store_id, date, units) over the forecast days;
    ``history``: the same over (at least) the ``history_days`` up to ``run_date``;
    ``metrics_table``: as written by ``pipeline.stages.evaluate`` (as_of, model, metric, level, value);
    ``importances``: feature → gain; ``stores``: store_id → state_id (default: the store id's prefix);
    ``baselines``: name → long forecast frame, drawn dashed on the total chart;
    ``model_info``: the model's ``metadata.json`` (training window, iterations), for a footnote.
    """
    run = pd.Timestamp(run_date).date()
    fdays = pd.to_datetime(forecast["date"])
    period = f"{fdays.min().date()} → {fdays.max().date()}" if len(fdays) else "no forecast days"
    verdict, better = wrmsse_summary(metrics_table)
    n_series = forecast[KEY].drop_duplicates().shape[0]
    info = model_info or {}
    about = [f"model of {esc(pd.Timestamp(model_date).date())}"]
    if info.get("training_window"):
        about.append(f"trained on {esc(' → '.join(map(str, info['training_window'])))}")
    if info.get("validation_window"):
        about.append(f"early-stopped on {esc(' → '.join(map(str, info['validation_window'])))}")
    if info.get("metrics", {}).get("best_iteration"):
        about.append(f"{esc(info['metrics']['best_iteration'])} trees")
    if info.get("features"):
        about.append(f"{len(info['features'])} features")
    if info.get("code_commit"):
        about.append(f"code <code>{esc(str(info['code_commit'])[:12])}</code>")
    body = [
        "<header>",
        f"<h1>Forecast report — run of {esc(run)}</h1>",
        f'<p class="sub">Model trained {esc(pd.Timestamp(model_date).date())} · forecast {esc(period)} · '
        f"{n_series:,} series · actuals as known at the end of the last forecast day</p>",
        f'<p class="summary{"" if better else " worse"}">{verdict}</p>',
        _cards(metrics_table, forecast, actuals),
        '<nav><a href="#forecast">Forecast vs actuals</a><a href="#metrics">Accuracy</a>'
        '<a href="#importance">Feature importance</a></nav>',
        "</header>",
        forecast_section(forecast, history, actuals, run, stores=stores, baselines=baselines, history_days=history_days),
        metrics_section(metrics_table),
        importance_section(importances),
        f'<footer>{" · ".join(about)}. Generated by <code>pipeline.stages.report</code> from the run\'s forecast, metrics '
        "and model metadata; a self-contained page (no network).</footer>",
    ]
    return page(f"Forecast report {run}", "\n".join(body))


# --------------------------------------------------------------------------- backtest report

def render_backtest_report(wrmsse_table: pd.DataFrame, start: dt.date, stop: dt.date) -> str:
    """WRMSSE over the run dates of a backtest, model and every baseline; ``stop`` is exclusive.

    ``wrmsse_table``: one row per run date, ``date`` and one column per model (``Backtest``'s ``wrmsse.csv``).
    """
    t = wrmsse_table.copy()
    t["date"] = pd.to_datetime(t["date"])
    t = t.sort_values("date").reset_index(drop=True)
    models = model_order([c for c in t.columns if c != "date"])
    baselines = [m for m in models if m != evaluate.MODEL]
    n = len(t)
    last = pd.Timestamp(stop) - pd.Timedelta(days=1)
    means = {m: float(t[m].mean()) for m in models}
    if evaluate.MODEL in t and baselines:
        best_each = t[baselines].min(axis=1)
        wins = int((t[evaluate.MODEL] < best_each).sum())
        best_mean = min(baselines, key=lambda m: (means[m], m))
        rel = _relative(means[evaluate.MODEL], means[best_mean])
        verdict = (f'<span class="better">{esc(fmt_pct(rel))} better</span>' if rel >= 0
                   else f'<span class="worse-text">{esc(fmt_pct(-rel))} worse</span>')
        summary = (f"<b>model mean WRMSSE {esc(fmt(means[evaluate.MODEL]))}</b> — {verdict} than the best baseline "
                   f"on average ({esc(label(best_mean))}, {esc(fmt(means[best_mean]))}); the model beats every "
                   f"baseline on <b>{wins} of {n}</b> run dates")
        better = rel >= 0
    else:
        summary, better = f"{n} run dates", True
    # the chart: one line (with dots) per model
    pad = pd.Timedelta(hours=12)
    x_range = (t["date"].min() - pad, t["date"].max() + pad) if n else (pd.Timestamp(start), pd.Timestamp(stop))
    every = max(1, math.ceil(max(n, 1) / 10))
    if every > 1:
        every = next(s for s in (7, 14, 28, 56, 91, 182, 364) if s >= every) if every <= 364 else every
    series = [Series(m, pd.DatetimeIndex(t["date"]), t[m].to_numpy(dtype=float), markers=n <= 62,
                     width=2.6 if m == evaluate.MODEL else 1.8, dashed=m == "zero") for m in reversed(models)]
    chart = line_chart(series, plot_id="backtest-wrmsse", title="WRMSSE per run date", x_range=x_range,
                       y_label="WRMSSE", x_label="run date", tick_every=every, tick_anchor=t["date"].min() if n else None,
                       width=1160, height=360, y_digits=2)
    gain_chart = ""
    if evaluate.MODEL in t and baselines:
        gain = 100 * (best_each - t[evaluate.MODEL]) / best_each
        gain_chart = line_chart([Series("gain", pd.DatetimeIndex(t["date"]), gain.to_numpy(dtype=float), bars=True,
                                        label="model vs best baseline")],
                                plot_id="backtest-gain", title="Model's WRMSSE against the best baseline of each date",
                                x_range=x_range, y_label="% better", x_label="run date", tick_every=every,
                                tick_anchor=t["date"].min() if n else None, width=1160, height=240)
    rows = [(esc(pd.Timestamp(d).date()), "wrmsse", {m: float(r[m]) for m in models}, "")
            for d, (_, r) in zip(t["date"], t.iterrows())]
    table = _table(rows, models, caption_col="run date")
    mean_row = _table([("mean", "wrmsse", means, "")], models, caption_col="")
    mean_body = mean_row[mean_row.index("<tbody>") + len("<tbody>"):mean_row.index("</tbody>")]
    table = table.replace("</tbody></table>", f"</tbody><tfoot>{mean_body}</tfoot></table>")
    body = [
        "<header>",
        f"<h1>Backtest — run dates {esc(pd.Timestamp(start).date())} → {esc(last.date())}</h1>",
        f'<p class="sub">{n} run date{"s" if n != 1 else ""} (stop {esc(pd.Timestamp(stop).date())} exclusive) · '
        "WRMSSE over all 12 levels, each run scored on its own 28 forecast days</p>",
        f'<p class="summary{"" if better else " worse"}">{summary}</p>',
        "</header>",
        '<section id="wrmsse"><h2>WRMSSE over time</h2>',
        legend([(m, "dashed" if m == "zero" else "solid") for m in models]),
        chart,
        "</section>",
        *(['<section id="gain"><h2>How much better than the best baseline</h2>',
           '<p class="note">Per run date: (best baseline − model) / best baseline of the WRMSSE, in %. '
           "Green: the model wins; red: a baseline does better.</p>", gain_chart, "</section>"] if gain_chart else []),
        '<section id="table"><h2>Per run date</h2>',
        '<p class="note">Lower is better; the best value of each run date is highlighted. Each date\'s full report: '
        "<code>data/reports/&lt;date&gt;/index.html</code>.</p>",
        table,
        "</section>",
        "<footer>Generated by <code>pipeline.stages.report</code> from the backtest's <code>wrmsse.csv</code>; "
        "a self-contained page (no network).</footer>",
    ]
    return page(f"Backtest {pd.Timestamp(start).date()} – {last.date()}", "\n".join(body))


# --------------------------------------------------------------------------- reading a run's files

def load_run_inputs(forecast_dir: Path, snapshot_dir: Path, later_snapshot_dir: Path, metrics_dir: Path,
                    model_dir: Path, run_date: dt.date, history_days: int = HISTORY_DAYS) -> dict:
    """The keyword arguments of ``render_run_report`` from a run's folders."""
    forecast = pd.read_parquet(Path(forecast_dir) / "forecast.parquet")
    forecast = forecast.astype({"item_id": str, "store_id": str, "units": np.float64})
    run = pd.Timestamp(run_date)
    first = run - pd.Timedelta(days=history_days - 1)
    history = read_snapshot(snapshot_dir, "sales", filters=[("date", ">=", first.to_pydatetime())])
    history = history[history["date"].between(first, run)]
    history = history.astype({"item_id": str, "store_id": str, "units": np.float64})
    later = read_snapshot(later_snapshot_dir, "sales", filters=[("date", ">", run.to_pydatetime())])
    actuals = evaluate.actuals_for(forecast, later)
    series = forecast[KEY].drop_duplicates()
    horizon = int(forecast["horizon"].max()) if "horizon" in forecast else 28
    metadata = storage.read_json(Path(model_dir) / "metadata.json")
    return {
        "forecast": forecast,
        "history": history,
        "actuals": actuals,
        "metrics_table": pd.read_parquet(Path(metrics_dir) / "metrics.parquet"),
        "importances": metadata.get("feature_importance_gain", {}),
        "run_date": run.date(),
        "model_date": dt.date.fromisoformat(str(metadata["date"])),
        "stores": read_snapshot(snapshot_dir, "stores"),
        "baselines": evaluate.baselines(history, series, run.date(), horizon=horizon),
        "model_info": metadata,
        "history_days": history_days,
    }


def write_page(path: Path, text: str) -> None:
    """Write a page as UTF-8 (inside a task's ``storage.atomic_dir``)."""
    Path(path).write_text(text, encoding="utf-8")
