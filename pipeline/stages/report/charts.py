"""The reports' charts: matplotlib figures written as SVG to inline into the page.

Byte-deterministic: the Agg canvas, a fixed ``svg.hashsalt``, no date in the
SVG metadata, and every text drawn as paths of the DejaVu fonts that ship inside
matplotlib (named by file, so a system copy of another version is never picked);
no clock, no randomness. Each chart is a root ``<svg class="chart"
data-plot=… data-series=…>`` whose drawn series are groups of class ``mark``
(the page's self-check counts them); its ids carry a prefix made from the plot
id, so several charts on one page never share an id.

One unit of the SVG is one CSS pixel (the figure is sized in points at 72 dpi),
so ``width``/``height`` are the chart's size in pixels before the page scales it.
"""
from __future__ import annotations

import functools
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from markupsafe import escape
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

from pipeline.stages import evaluate
from pipeline.stages.report.style import COLOURS, colour, day, fmt, label

_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_FONT_FILES = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf"}
RC = {
    "svg.hashsalt": "pipeline-report",
    "svg.fonttype": "path",  # glyphs as paths: the chart looks the same with or without the font installed
    "text.parse_math": False,  # an id with a "$" is text, not TeX
    "axes.unicode_minus": True,
    "lines.scale_dashes": False,
}
_STEPS = [1, 2, 2.5, 5, 10]  # tick spacing: 1, 2, 2.5 or 5 × a power of ten
INK = {"grid": "#eef0f3", "axis": "#9ca3af", "zero": "#4b5563", "tick": "#6b7280", "axis_label": "#4b5563",
       "shade": "#eff6ff", "marker": "#94a3b8", "marker_label": "#64748b", "bar_label": "#374151",
       "bar_value": "#4b5563", "empty": "#b91c1c"}


def font(size: float, kind: str = "regular") -> FontProperties:
    return FontProperties(fname=str(_FONT_DIR / _FONT_FILES[kind]), size=size)


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


def _dates(x) -> np.ndarray:
    return mdates.date2num(np.asarray(pd.DatetimeIndex(np.atleast_1d(x)), dtype="datetime64[ns]"))


def _digits(ticks) -> int:
    """The fewest decimals that write every tick exactly."""
    return next((d for d in range(7) if np.allclose(np.round(ticks, d), ticks, rtol=0, atol=1e-9)), 6)


def value_ticks(lo: float, hi: float, intervals: int) -> np.ndarray:
    """Round ticks (matplotlib's MaxNLocator) from the last one at or below ``lo`` to the first at or above ``hi``."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    ticks = MaxNLocator(nbins=intervals, steps=_STEPS).tick_values(lo, hi)
    eps = 1e-9 * (hi - lo)
    first = ticks[ticks <= lo + eps].max()
    last = ticks[ticks >= hi - eps].min()
    return ticks[(ticks >= first - eps) & (ticks <= last + eps)]


def _figure(width: int, height: int, left: float, right: float, top: float, bottom: float):
    fig = Figure(figsize=(width / 72, height / 72), dpi=72)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (top + bottom) / height))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(INK["axis"])
        ax.spines[side].set_linewidth(1)
    ax.set_axisbelow(True)
    return fig, ax


def _axis_labels(ax, x_label: str, y_label: str, size: float) -> None:
    ax.set_xlabel(x_label, fontproperties=font(size, "bold"), color=INK["axis_label"], labelpad=4)
    ax.set_ylabel(y_label, fontproperties=font(size, "bold"), color=INK["axis_label"], labelpad=6)


def _no_data(ax, size: float) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color=INK["empty"],
            fontproperties=font(size, "bold"))


def _with_rc(draw):
    """Run a chart function inside ``RC`` (some settings are read when an artist is made, not when saved)."""
    @functools.wraps(draw)
    def wrapped(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return draw(*args, **kwargs)
    return wrapped


@_with_rc
def line_chart(series: list[Series], *, plot_id: str, title: str, width: int = 1160, height: int = 320,
               x_range: tuple | None = None, shade: tuple | None = None, marker: tuple | None = None,
               y_label: str = "units per day", x_label: str = "date", tick_every: int = 7,
               tick_anchor=None, compact: bool = False, y_digits: int | None = None, bands: tuple = ()) -> str:
    """An SVG line chart of ``series`` over dates, with axes, grid, labelled axes and an optional shaded span.

    ``shade``: (start, end) timestamps of the forecast period; ``marker``: (timestamp, text)
    for a vertical line (the run date); date ticks every ``tick_every`` days from ``tick_anchor``;
    ``bands``: ``(x, low, high, role, opacity)`` areas under the lines (a fan chart's intervals).
    """
    size = 11 if compact else 12
    left, right = (46 if compact else 64), 12
    fig, ax = _figure(width, height, left=left, right=right, top=10 if compact else 14, bottom=40 if compact else 46)
    drawn = [s for s in series if len(s.y) and np.isfinite(np.asarray(s.y, dtype=float)).any()]
    if x_range is None:
        xs = [pd.Timestamp(x) for s in series for x in s.x]
        x_range = (min(xs), max(xs)) if xs else (pd.Timestamp("2000-01-01"), pd.Timestamp("2000-01-02"))
    x0, x1 = (pd.Timestamp(x) for x in x_range)
    values = np.concatenate([np.asarray(s.y, dtype=float) for s in drawn] + [np.asarray(b[2], dtype=float) for b in bands]
                            ) if drawn else np.array([0.0])
    values = values[np.isfinite(values)]
    lo = min(0.0, float(values.min())) if values.size else 0.0
    hi = max(0.0, float(values.max())) if values.size else 1.0
    ticks = value_ticks(lo, hi, 3 if compact else 4)
    digits = y_digits if y_digits is not None else _digits(ticks)
    ax.set_yticks(ticks, [fmt(t, digits) for t in ticks], fontproperties=font(size), color=INK["tick"])
    ax.set_ylim(ticks[0], ticks[-1])
    ax.tick_params(axis="y", length=0, pad=6)
    ax.grid(axis="y", color=INK["grid"], linewidth=1)
    # date ticks every tick_every days, through the anchor (the first forecast day)
    anchor = pd.Timestamp(tick_anchor) if tick_anchor is not None else x0
    first = anchor - pd.Timedelta(days=tick_every * ((anchor - x0) // pd.Timedelta(days=tick_every)))
    days = pd.date_range(first, x1 + pd.Timedelta(hours=1), freq=pd.Timedelta(days=tick_every))
    ax.set_xticks(_dates(days), [day(d) for d in days], fontproperties=font(size), color=INK["tick"])
    ax.tick_params(axis="x", length=4, color=INK["axis"], pad=3)
    ax.set_xlim(_dates(x0)[0], _dates(x1)[0])
    if shade is not None:
        ax.axvspan(_dates(shade[0])[0], _dates(shade[1])[0], color=INK["shade"], linewidth=0, zorder=0)
    if ticks[0] < 0:
        ax.axhline(0.0, color=INK["zero"], linewidth=1, zorder=1.5)
    if marker is not None:
        mx = _dates(marker[0])[0]
        ax.axvline(mx, color=INK["marker"], linewidth=1, linestyle=(0, (3, 3)), zorder=1.5)
        if marker[1]:
            ax.annotate(marker[1], xy=(mx, 1), xycoords=("data", "axes fraction"), xytext=(4, -size),
                        textcoords="offset points", color=INK["marker_label"], fontproperties=font(size * 0.92))
    _axis_labels(ax, x_label, y_label, size)
    for x, low, high, role, opacity in bands:
        ax.fill_between(_dates(x), np.asarray(low, dtype=float), np.asarray(high, dtype=float), color=colour(role),
                        alpha=opacity, linewidth=0, zorder=1.8)
    marks = []
    for k, s in enumerate(series):
        x, y = _dates(s.x) if len(s.x) else np.array([]), np.asarray(s.y, dtype=float)
        if s.bars:
            _bars(ax, marks, k, s, x, y, x1=_dates(x1)[0], x0=_dates(x0)[0], plot_width=width - left - right)
            continue
        gid = f"mark-{k}"
        ax.plot(x, y, color=colour(s.role), linewidth=s.width, linestyle=(0, (5, 4)) if s.dashed else "-",
                solid_joinstyle="round", solid_capstyle="round", dash_capstyle="butt", gid=gid,
                marker="o" if s.markers else None, markersize=7, markeredgewidth=0, zorder=2)
        marks.append((gid, s.role, s.label or label(s.role)))
    if not drawn:
        _no_data(ax, size)
    return _to_svg(fig, plot_id=plot_id, title=title, n_series=len(series), marks=marks)


def _bars(ax, marks: list, k: int, s: Series, x: np.ndarray, y: np.ndarray, x0: float, x1: float,
          plot_width: float) -> None:
    """Columns from 0 (green above, red below), each a mark with its date and value as a tooltip."""
    span = max(x1 - x0, 1e-9)
    bar_px = min(36.0, 0.7 * plot_width / max(len(x), 1))
    for j, (xj, yj, d) in enumerate(zip(x, y, s.x)):
        if not np.isfinite(yj):
            continue
        gid = f"mark-{k}-{j}"
        ax.bar(xj, yj, width=bar_px / plot_width * span, color=COLOURS["positive" if yj >= 0 else "negative"],
               gid=gid, zorder=2)
        marks.append((gid, s.role, f"{pd.Timestamp(d).date()}: {fmt(float(yj), 1, signed=True)}"))


@_with_rc
def bar_chart(items: list[tuple[str, float]], *, plot_id: str, title: str, x_label: str, width: int = 1160,
              bar_height: int = 22, label_width: int = 170, role: str = evaluate.MODEL, unit: str = "") -> str:
    """A horizontal SVG bar chart, one labelled bar per (name, value), the first on top."""
    top, bottom, right = 8, 44, 70
    height = top + bar_height * max(len(items), 1) + bottom
    fig, ax = _figure(width, height, left=label_width, right=right, top=top, bottom=bottom)
    values = [v if np.isfinite(v) else 0.0 for _, v in items]
    ticks = value_ticks(0.0, max([*values, 0.0]) or 1.0, 5)
    ax.set_xticks(ticks, [fmt(t, _digits(ticks)) for t in ticks], fontproperties=font(12), color=INK["tick"])
    ax.set_xlim(0, ticks[-1])
    ax.set_ylim(max(len(items), 1) - 0.5, -0.5)
    ax.tick_params(axis="x", length=0, pad=6)
    ax.grid(axis="x", color=INK["grid"], linewidth=1)
    ax.set_yticks(range(len(items)), [name for name, _ in items], fontproperties=font(12, "mono"),
                  color=INK["bar_label"])
    ax.tick_params(axis="y", length=0, pad=8)
    ax.set_xlabel(x_label, fontproperties=font(12, "bold"), color=INK["axis_label"], labelpad=6)
    marks = []
    for k, ((name, value), width_value) in enumerate(zip(items, values)):
        gid = f"mark-{k}"
        ax.barh(k, max(width_value, 0.0), height=(bar_height - 6) / bar_height, color=colour(role), gid=gid,
                zorder=2)
        ax.annotate(fmt(value, 1) + unit, xy=(max(width_value, 0.0), k), xytext=(6, 0), textcoords="offset points",
                    va="center", color=INK["bar_value"], fontproperties=font(11.5))
        marks.append((gid, role, f"{name}: {fmt(value, 1)}"))
    if not items:
        _no_data(ax, 12)
    return _to_svg(fig, plot_id=plot_id, title=title, n_series=1, marks=marks)


# --------------------------------------------------------------------------- SVG text for the page

_ROOT = re.compile(r'<svg [^>]*width="([\d.]+)pt" height="([\d.]+)pt" viewBox="([^"]+)"[^>]*>')


def _to_svg(fig: Figure, *, plot_id: str, title: str, n_series: int, marks: list[tuple[str, str, str]]) -> str:
    """The figure as an ``<svg>`` element for an HTML page: ids scoped to the chart, marks classed and titled.

    ``marks``: (gid, role, tooltip) of each artist that draws a series.
    """
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", transparent=True, metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buffer.getvalue()
    text = text[text.index("<svg "):]
    # no indentation or line breaks (they are most of the bytes of small paths); matplotlib's comments, which
    # say what each run of glyphs reads, stay
    text = re.sub(r">\s+<", "><", text)
    text = re.sub(r"\s*\n\s*", " ", text)
    # matplotlib's default joins and caps, as a page-wide rule; report.css carries them for svg.chart only
    text = _replace_once(text, '<style type="text/css">*{stroke-linejoin: round; stroke-linecap: butt}</style>', "")
    text = text.replace("<defs></defs>", "")
    scope = "c" + hashlib.sha256(plot_id.encode()).hexdigest()[:10]
    text = re.sub(r'\bid="', f'id="{scope}-', text)
    text = re.sub(r'xlink:href="#', f'xlink:href="#{scope}-', text)
    text = re.sub(r"url\(#", f"url(#{scope}-", text)
    root = _ROOT.match(text)
    if root is None:
        raise ValueError(f"chart {plot_id!r}: matplotlib's SVG does not start with the expected root element")
    width, height, view_box = root.groups()
    text = (f'<svg class="chart" data-plot="{escape(plot_id)}" data-series="{n_series}" '
            f'viewBox="{view_box}" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>" + text[root.end():])
    for gid, role, tip in marks:
        opening = f'<g id="{scope}-{gid}" class="mark" data-role="{escape(role)}"><title>{escape(tip)}</title>'
        if f'<g id="{scope}-{gid}"/>' in text:  # a series without a single point: an empty group
            text = _replace_once(text, f'<g id="{scope}-{gid}"/>', opening + "</g>")
        else:
            text = _replace_once(text, f'<g id="{scope}-{gid}">', opening)
    return text.strip()


def _replace_once(text: str, old: str, new: str) -> str:
    count = text.count(old)
    if count != 1:
        raise ValueError(f"chart SVG: expected {old[:60]!r} once, found it {count} times")
    return text.replace(old, new)
