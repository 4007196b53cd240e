"""Stage 7: an HTML report of a run (forecast vs actuals, metrics, feature importance) and of a backtest.

Plain functions of frames, dicts and paths that return one self-contained HTML
page each (no network, no CDN); the same inputs give the same bytes. Modules:
``inputs`` reads a run's folders, ``panels`` the forecast charts' data,
``tables`` the metrics tables and headline, ``backtest`` the backtest page's
numbers, ``online`` the online model's section (its progressive validation),
``charts`` the matplotlib charts as inline SVG, ``style`` colours,
names and number formats, ``pages`` the Jinja2 templates (``templates/``).
"""
from pipeline.stages.report.charts import Series, bar_chart, line_chart
from pipeline.stages.report.inputs import load_run_inputs
from pipeline.stages.report.pages import (metrics_section, page, render_backtest_report, render_run_report,
                                          write_page)
from pipeline.stages.report.style import COLOURS, LABELS, LEVEL_LABELS
from pipeline.stages.report.tables import verdict

__all__ = ["COLOURS", "LABELS", "LEVEL_LABELS", "Series", "bar_chart", "line_chart", "load_run_inputs",
           "metrics_section", "page", "render_backtest_report", "render_run_report", "verdict", "write_page"]
