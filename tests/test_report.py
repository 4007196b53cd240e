"""The HTML reports: render functions on hand-made frames, and the real pages in headless Chromium.

The pages are Jinja2 templates with matplotlib charts inlined as SVG; a page is
the same bytes for the same inputs, in one process or in another.

The browser tests build the reports on the tiny world, open each page in headless
Chromium (``scripts/install-browser.sh`` installs it; a test skips, saying why, when
it is missing and cannot be installed), read the page's own check from the dumped
DOM (``<body data-ok>``: every chart drew its series, no script error) and take a
screenshot that must not be blank.
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import luigi
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.data import db
from pipeline.stages import evaluate
from pipeline.stages import report
from tasks.report import BacktestReport, Report
from tests import browser
from tests.browser import png_rows, require_chromium
from tests.outputs import out
from tests.conftest import RUN_DATE
from pipeline.stages.report.charts import value_ticks

OK = luigi.execution_summary.LuigiStatusCode.SUCCESS
MODELS = ["model", "seasonal_naive", "moving_average_28", "zero"]
WRMSSE = {"model": 0.61234, "seasonal_naive": 0.90012, "moving_average_28": 0.74561, "zero": 1.70001}


# --------------------------------------------------------------------------- hand-made inputs

def metrics_frame(run=RUN_DATE, wrmsse=WRMSSE) -> pd.DataFrame:
    rows = []
    for k, m in enumerate(MODELS):
        rows.append((m, "wrmsse", "all", wrmsse[m]))
        rows += [(m, "wrmsse", lvl, wrmsse[m] * (1 + j / 20)) for j, lvl in enumerate(report.LEVEL_LABELS)]
        rows += [(m, "mae", "item_store", 1.0 + k / 10), (m, "rmse", "item_store", 2.0 + k / 10),
                 (m, "bias", "item_store", -0.05 * (k + 1) if m != "seasonal_naive" else 0.01)]
    table = pd.DataFrame(rows, columns=["model", "metric", "level", "value"])
    table.insert(0, "as_of", pd.Timestamp(run))
    return table


def long_frame(series, days, value) -> pd.DataFrame:
    rows = [(i, s, d, float(value(i, s, d))) for i, s in series for d in days]
    return pd.DataFrame(rows, columns=["item_id", "store_id", "date", "units"])


def run_inputs(series=(("FOODS_1_001", "CA_1"), ("FOODS_1_002", "TX_1"), ("HOBBIES_1_001", "CA_2"))):
    run = pd.Timestamp(RUN_DATE)
    fdays = pd.date_range(run + pd.Timedelta(days=1), periods=28)
    hdays = pd.date_range(end=run, periods=70)
    return dict(
        forecast=long_frame(series, fdays, lambda i, s, d: 2 + d.day % 3),
        history=long_frame(series, hdays, lambda i, s, d: 1 + d.day % 4),
        actuals=long_frame(series, fdays, lambda i, s, d: 2 + d.day % 5),
        metrics_table=metrics_frame(),
        importances={"rmean_28": 120.5, "lag_28": 80.0, "item_id": 10.0, "snap": 0.0},
        run_date=RUN_DATE, model_date=RUN_DATE - dt.timedelta(days=7),
    )


def chart(html: str, plot_id: str) -> str:
    """The ``<svg>`` of one chart of a page."""
    svg = html[html.index(f'data-plot="{plot_id}"'):]
    return svg[:svg.index("</svg>")]


def marks(svg: str, role: str | None = None) -> int:
    """How many drawn series (bars: one mark each) a chart has, of ``role`` or of any."""
    return len(re.findall(r'class="mark" data-role="%s"' % (re.escape(role) if role else r"[^\"]+"), svg))


def body_attrs(dom: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", dom).group(1)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


# --------------------------------------------------------------------------- render functions

def test_metrics_table_shows_every_model_and_highlights_the_best():
    html = report.metrics_section(metrics_frame())
    row = re.search(r'<tr data-metric="wrmsse">(.*?)</tr>', html).group(1)
    for model, value in WRMSSE.items():
        assert re.search(rf'data-model="{model}">{value:.3f}<', row), model
    best = re.findall(r'<td class="best[^"]*" data-model="([\w]+)"', row)
    assert best == ["model"]
    # bias: the best is the one closest to zero, not the lowest
    bias = re.search(r'<tr data-metric="bias">(.*?)</tr>', html).group(1)
    assert re.findall(r'<td class="best[^"]*" data-model="([\w]+)"', bias) == ["seasonal_naive"]
    assert "+0.010" in bias and "−0.050" in bias
    # the 12 levels, collapsed
    assert "<details>" in html and html.count('<tr data-metric="wrmsse">') == 1 + 12
    assert "item × store" in html


def test_summary_line_says_better_or_worse_than_the_best_baseline():
    verdict = report.verdict(metrics_frame())
    assert verdict.better and verdict.best == "moving_average_28" and verdict.best_value == WRMSSE["moving_average_28"]
    assert round(verdict.rel, 4) == 0.1787
    html = report.render_run_report(**run_inputs())
    summary = re.search(r'<p class="summary">(.*?)</p>', html).group(1)
    assert "model WRMSSE 0.612" in summary and "17.9\u00a0% better" in summary and "(28-day average, 0.746)" in summary
    worse = dict(WRMSSE, model=0.8)
    assert not report.verdict(metrics_frame(wrmsse=worse)).better
    html = report.render_run_report(**dict(run_inputs(), metrics_table=metrics_frame(wrmsse=worse)))
    summary = re.search(r'<p class="summary worse">(.*?)</p>', html).group(1)
    assert "7.3\u00a0% worse" in summary


def test_line_chart_draws_one_path_per_series_with_labelled_axes():
    days = pd.date_range("2016-05-01", periods=10)
    lines = [report.Series(r, days, np.arange(10.0) * k) for k, r in enumerate(["actual", "model", "zero"], 1)]
    svg = report.line_chart(lines, plot_id="p", title="t", y_label="units per day", x_label="date")
    assert svg.startswith('<svg class="chart" data-plot="p" data-series="3" ') and marks(svg) == 3
    # the labels are drawn as glyphs; matplotlib's comment before each says what it reads
    assert "<!-- units per day -->" in svg and "<!-- date -->" in svg and "<!-- May 1 -->" in svg
    assert [t for t in ("0", "10", "20", "30") if f"<!-- {t} -->" in svg] == ["0", "10", "20", "30"]
    for role in ("actual", "model", "zero"):
        group = svg[svg.index(f'data-role="{role}"'):]
        assert re.match(r'[^>]*><title>[^<]+</title><path d="M [\d.]+ [\d.]+ L', group), role
        assert f"stroke: {report.COLOURS[role]}" in group[:group.index("</g>")]
    # ids are scoped to the chart, so two charts on one page never share one
    other = report.line_chart(lines, plot_id="q", title="t")
    ids = re.findall(r'id="([^"]+)"', svg + other)
    assert len(ids) == len(set(ids)) > 20
    # a series with no values at all says so instead of drawing an empty frame silently
    empty = report.line_chart([report.Series("model", days[:0], np.array([]))], plot_id="e", title="e")
    assert "<!-- no data -->" in empty


def test_run_report_has_every_chart_and_the_baselines_on_the_total():
    inputs = run_inputs()
    series = inputs["forecast"][["item_id", "store_id"]].drop_duplicates()
    inputs["baselines"] = evaluate.baselines(inputs["history"], series, RUN_DATE)
    html = report.render_run_report(**inputs)
    plots = re.findall(r'data-plot="([^"]+)" data-series="(\d+)"', html)
    names = [p for p, _ in plots]
    assert names[0] == "total" and dict(plots)["total"] == "5"  # actual, model, 3 baselines
    assert [n for n in names if n.startswith("state_id:")] == ["state_id:CA", "state_id:TX"]
    assert [n for n in names if n.startswith("store_id:")] == ["store_id:CA_1", "store_id:CA_2", "store_id:TX_1"]
    assert len([n for n in names if n.startswith("series:")]) == 3  # only 3 series exist; up to 4 shown
    assert names[-1] == "feature-importance" and marks(chart(html, "feature-importance"), "model") == 4
    total_svg = chart(html, "total")
    assert marks(total_svg) == 5 and [marks(total_svg, b) for b in evaluate.BASELINES] == [1, 1, 1]
    assert marks(chart(html, "store_id:CA_1")) == 2  # actual and model only
    assert "Forecast report — run of 2016-05-22" in html and "Model trained 2016-05-15" in html
    # self-contained: no external resource of any kind (url() only names a clip path of the same chart)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and not re.search(r"url\((?!#c[0-9a-f]{10}-)", html)
    assert "http" not in html and "<img" not in html
    assert html.count("<script>") == 2  # the error trap and the self-check only
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # one page, 19 charts, no id twice
    assert report.render_run_report(**inputs) == html  # same inputs, same bytes


RENDER_IN_A_NEW_PROCESS = """
import sys
from pipeline.stages import evaluate, report
from tests.test_report import run_inputs
inputs = run_inputs()
inputs["baselines"] = evaluate.baselines(inputs["history"], inputs["forecast"][["item_id", "store_id"]], inputs["run_date"])
sys.stdout.buffer.write(report.render_run_report(**inputs).encode())
"""


def test_a_page_is_the_same_bytes_in_another_process():
    """Nothing in a page depends on the process: no clock, no hash seed, no font found by the system's cache."""
    inputs = run_inputs()
    inputs["baselines"] = evaluate.baselines(inputs["history"], inputs["forecast"][["item_id", "store_id"]], RUN_DATE)
    here = report.render_run_report(**inputs).encode()
    root = Path(__file__).resolve().parents[1]
    there = subprocess.run([sys.executable, "-c", RENDER_IN_A_NEW_PROCESS], cwd=root, capture_output=True,
                           timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "12345",
                                             "MPLCONFIGDIR": str(root / ".pytest_cache" / "mpl-other")})
    assert there.returncode == 0, there.stderr.decode()[-2000:]
    assert there.stdout == here


def test_ids_and_names_are_escaped():
    evil_item, evil_store = '<script>alert("x")</script>', 'S&"1'
    inputs = run_inputs(series=((evil_item, evil_store), ("FOODS_1_001", "CA_1")))
    inputs["importances"] = {"<b>feat</b>": 5.0, "ok": 1.0}
    html = report.render_run_report(**inputs)
    assert evil_item not in html and "<b>feat</b>" not in html and "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html and "S&amp;&#34;1" in html
    assert '<b title="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; · S&amp;&#34;1">' in html  # a caption
    assert "&lt;b&gt;feat&lt;/b&gt;" in html  # the bar's label (matplotlib's comment) and tooltip
    assert html.count("<script>") == 2


def test_backtest_report_lists_every_date_and_the_mean():
    table = pd.DataFrame({"date": ["2016-05-21", "2016-05-22", "2016-05-23"], "model": [0.6, 0.7, 0.9],
                          "seasonal_naive": [0.9, 0.9, 0.8], "moving_average_28": [0.7, 0.75, 0.85],
                          "zero": [1.7, 1.7, 1.7]})
    html = report.render_backtest_report(table, dt.date(2016, 5, 21), dt.date(2016, 5, 24))
    assert "Backtest — run dates 2016-05-21 → 2016-05-23" in html
    assert "beats every baseline on <b>2 of 3</b> run dates" in html
    for d in table["date"]:
        assert f">{d}<" in html
    assert "<tfoot>" in html and re.search(r'data-model="model">0\.733<', html)  # the mean
    assert marks(chart(html, "backtest-wrmsse")) == 4
    gain = chart(html, "backtest-gain")
    assert marks(gain) == 3 and f"fill: {report.COLOURS['negative']}" in gain
    assert "<title>2016-05-23: −12.5</title>" in gain  # (0.8 − 0.9) / 0.8: seasonal naive is that day's best


def test_value_ticks_cover_the_values_in_round_steps():
    assert list(value_ticks(0, 97, 4)) == [0, 25, 50, 75, 100]
    assert list(value_ticks(0, 1.7, 4)) == [0, 0.5, 1.0, 1.5, 2.0]
    assert list(value_ticks(0, 0, 4)) == [0, 0.25, 0.5, 0.75, 1.0]
    for lo, hi in [(-12, 23), (0, 0.013), (3, 1234567), (0, 7), (0.2, 0.9)]:
        ticks = value_ticks(lo, hi, 4)
        steps = np.diff(ticks)
        assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) <= 6 and np.allclose(steps, steps[0])
        assert round(steps[0] / 10 ** np.floor(np.log10(steps[0])), 6) in (1, 2, 2.5, 5)
    # a tick label has as many decimals as the ticks need, no more
    svg = report.line_chart([report.Series("model", pd.date_range("2016-05-01", periods=3), np.array([0, 0.6, 1]))],
                            plot_id="d", title="d")
    assert "<!-- 0.25 -->" in svg and "<!-- 1.00 -->" in svg


# --------------------------------------------------------------------------- the browser

@pytest.fixture(scope="session")
def chromium() -> str:
    return require_chromium()


def browse(binary: str, page: Path, work: Path) -> tuple[str, Path]:
    """(the DOM after load, a screenshot) of a report page on disk."""
    return browser.browse(binary, page.resolve().as_uri(), work)


def assert_page_ok(binary: str, page: Path, work: Path, min_plots: int) -> Path:
    dom, png = browse(binary, page, work)
    attrs = body_attrs(dom)
    html_tag = re.search(r"<html([^>]*)>", dom).group(1)
    assert "data-errors" not in html_tag, f"script errors in {page}: {html_tag}"
    assert attrs.get("data-ok") == "true", f"{page}: the page's check failed: {attrs.get('data-problems', attrs)}"
    assert int(attrs["data-plots"]) >= min_plots
    assert png.exists() and png.stat().st_size > 30_000, f"screenshot of {page} is missing or tiny"
    width, height, rows = png_rows(png)
    assert (width, height) == (1280, 2400)
    assert len(rows) > 200, f"screenshot of {page} looks blank ({len(rows)} distinct rows)"
    return png


def test_the_browser_check_catches_a_broken_page(chromium, tmp_path):
    """The page's own check must say false on an empty chart and on a script error (else it proves nothing)."""
    days = pd.date_range("2016-05-01", periods=5)
    good = report.line_chart([report.Series("model", days, np.arange(5.0))], plot_id="good", title="good")
    empty = report.line_chart([report.Series("model", days, np.full(5, np.nan))], plot_id="empty", title="empty")
    broken = tmp_path / "broken.html"
    broken.write_text(report.page("broken", good + empty + "<script>undefinedFunction();</script>"))
    dom, _ = browse(chromium, broken, tmp_path / "broken")
    attrs = body_attrs(dom)
    assert attrs["data-ok"] == "false"
    assert "empty: 0 of 1 series drawn" in attrs["data-problems"] and "good" not in attrs["data-problems"]
    assert "undefinedFunction" in re.search(r"<html([^>]*)>", dom).group(1)
    fine = tmp_path / "fine.html"
    fine.write_text(report.page("fine", good))
    assert body_attrs(browse(chromium, fine, tmp_path / "fine")[0])["data-ok"] == "true"


@pytest.mark.prebuilt_chain
def test_reports_of_the_tiny_world_render_in_a_browser(chain_env, chromium, tmp_path):
    start, stop = RUN_DATE - dt.timedelta(days=1), RUN_DATE + dt.timedelta(days=1)
    assert chain_env.build([Report(date=RUN_DATE), BacktestReport(start=start, stop=stop)]).status == OK
    run_page = out(chain_env.data, "reports", RUN_DATE.isoformat()) / "index.html"
    backtest_page = out(chain_env.data, "reports", f"backtest_{start}_{stop}") / "index.html"
    html = run_page.read_text()
    assert f"run of {RUN_DATE}" in html and "model WRMSSE" in html
    metrics = pd.read_parquet(out(chain_env.data, "metrics", RUN_DATE.isoformat()) / "metrics.parquet")
    for r in metrics[(metrics.metric == "wrmsse") & (metrics.level == "all")].itertuples():
        assert f'data-model="{r.model}">{r.value:.3f}<' in html
    assert 'data-plot="online-progressive"' in html  # the test configuration's online model covers the run date
    # 1 total + 3 states + 10 stores + 4 top series + 4 fan charts + the online model's + feature importance
    assert assert_page_ok(chromium, run_page, tmp_path / "run", min_plots=24)
    # WRMSSE, gain, the online model's progressive validation
    assert assert_page_ok(chromium, backtest_page, tmp_path / "backtest", min_plots=3)
    # a rerun after deleting the page gives the same bytes
    shutil.rmtree(run_page.parent)
    assert chain_env.build([Report(date=RUN_DATE)]).status == OK
    assert run_page.read_text() == html


@pytest.fixture
def no_keep_alive():
    """A worker that stops as soon as nothing is runnable (luigi.cfg keeps it alive 5 minutes for retries)."""
    cfg = luigi.configuration.get_config()
    saved = cfg.get("worker", "keep_alive", None)
    cfg.set("worker", "keep_alive", "false")
    yield
    if saved is None:
        cfg.remove_option("worker", "keep_alive")
    else:
        cfg.set("worker", "keep_alive", saved)


def test_report_waits_for_the_actuals(chain_env, no_keep_alive):
    with chain_env.engine.begin() as conn:  # the 28th forecast day's sales have not arrived yet
        conn.execute(sa.delete(db.sales).where(db.sales.c.date == RUN_DATE + dt.timedelta(days=28)))
    result = chain_env.build([Report(date=RUN_DATE)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.MISSING_EXT
    reports = chain_env.data / "reports"
    assert not reports.exists() or not list(reports.iterdir())  # no page, no temporary left behind
    assert (out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "forecast.parquet").exists()
