"""The online model (the challenger) in the HTML reports: a column and a line of its own beside the model and
the baselines, never "the best baseline"; its progressive-validation MAE charted on the run and backtest pages;
before its start date the run page says when it starts."""
from __future__ import annotations

import datetime as dt
import re

import luigi
import numpy as np
import pandas as pd
import pytest

from pipeline.stages import evaluate
from pipeline.stages import report
from pipeline.stages.report.online import WINDOW_DAYS, OnlineModel
from tests.conftest import RUN_DATE
from tests.outputs import out
from tests.test_report import MODELS, WRMSSE, chart, marks, metrics_frame, run_inputs

OK = luigi.execution_summary.LuigiStatusCode.SUCCESS
ONLINE = evaluate.ONLINE


def with_online(table: pd.DataFrame, wrmsse: float) -> pd.DataFrame:
    """``table`` plus the online model's rows: every metric of the model's, the WRMSSE scaled to ``wrmsse``."""
    mine = table[table["model"] == evaluate.MODEL].copy()
    mine["model"] = ONLINE
    is_wrmsse = mine["metric"] == "wrmsse"
    mine.loc[is_wrmsse, "value"] *= wrmsse / WRMSSE["model"]
    mine.loc[~is_wrmsse, "value"] += 0.123
    return pd.concat([table, mine], ignore_index=True)


def progressive_frame(start: pd.Timestamp, stop: pd.Timestamp) -> pd.DataFrame:
    """One row per day from ``start`` to ``stop``: an MAE that moves from day to day, a few hundred series."""
    days = pd.date_range(start, stop)
    k = np.arange(len(days))
    return pd.DataFrame({"date": days, "series": 300 + k % 5, "mae": 1.0 + 0.3 * np.sin(k / 5) + k / 1000,
                         "rmse": 2.0 + k / 1000, "bias": -0.1 + k / 5000, "predicted": 800.0 + k, "actual": 810.0 + k})


def online_total(forecast: pd.DataFrame) -> pd.DataFrame:
    """The online model's total per day, as ``load_run_inputs`` gives it: one series of all items and stores."""
    total = forecast.groupby("date", as_index=False)["units"].sum()
    return total.assign(units=total["units"] * 0.9, item_id="all", store_id="all")


def row_of(html: str, metric: str) -> str:
    return re.search(rf'<tr data-metric="{metric}">(.*?)</tr>', html).group(1)


# --------------------------------------------------------------------------- the run report

def test_run_report_shows_the_online_model_beside_the_model_but_not_as_a_baseline():
    run = pd.Timestamp(RUN_DATE)
    start = run - pd.Timedelta(days=30)  # inside the chart's window: marked on it
    # the online model beats the model and every baseline, and still is not "the best baseline"
    online_wrmsse = 0.5
    metrics = with_online(metrics_frame(), online_wrmsse)
    # a state of the run date carries 200 days up to it; rows after the run date must not be drawn
    progressive = progressive_frame(run - pd.Timedelta(days=199), run)
    later = progressive_frame(run + pd.Timedelta(days=1), run + pd.Timedelta(days=3)).assign(mae=99.0)
    inputs = dict(run_inputs(), metrics_table=metrics)
    online = OnlineModel(start.date(), pd.concat([progressive, later], ignore_index=True),
                         {"days_learnt": 200, "learner": "linear"}, online_total(inputs["forecast"]))
    html = report.render_run_report(**inputs, online=online)

    # its section: one line, the window up to the run date only
    assert 'id="online"' in html and 'href="#online"' in html
    svg = chart(html, "online-progressive")
    assert marks(svg) == 1 and marks(svg, ONLINE) == 1 and f"stroke: {report.COLOURS[ONLINE]}" in svg
    assert "<!-- start date -->" in svg
    shown = progressive[progressive["date"] > run - pd.Timedelta(days=WINDOW_DAYS)]
    facts = re.search(r'<p class="note online-facts">(.*?)</p>', html).group(1)
    assert f"MAE on the run date {progressive['mae'].iloc[-1]:.3f} over {progressive['series'].iloc[-1]:,} series" in facts
    assert f"mean over the {len(shown)} days shown {shown['mae'].mean():.3f}" in facts
    assert "99.000" not in html and "200 days learnt" in facts
    section = html[html.index('<section id="online">'):]
    assert f"WRMSSE of <b>{online_wrmsse:.3f}</b> against the model's {WRMSSE['model']:.3f}" in section

    # its column in the metrics table: best of the row, yet the delta is the model against a baseline
    wrmsse_row = row_of(html, "wrmsse")
    assert re.search(rf'<td class="best online-col" data-model="online">{online_wrmsse:.3f}<', wrmsse_row)
    best_baseline = min((m for m in MODELS if m != "model"), key=WRMSSE.get)
    assert f'title="model against {report.LABELS[best_baseline]}"' in wrmsse_row
    assert html.count('data-model="online"') == 4 + 12  # WRMSSE, MAE, RMSE, bias and the 12 levels
    header = html[html.index("<thead>"):html.index("</thead>")]
    assert [m for m in re.findall(r'<th scope="col" title="([^"]+)"', header)] == ["model", ONLINE, *MODELS[1:]]

    # the headline stays the model against the best baseline
    summary = re.search(r'<p class="summary">(.*?)</p>', html).group(1)
    assert f"({report.LABELS[best_baseline]}, {WRMSSE[best_baseline]:.3f})" in summary
    assert report.LABELS[ONLINE] not in summary
    verdict = report.verdict(metrics)
    assert verdict.best == best_baseline and verdict.better

    # the total chart: its forecast as a solid line of its own, in the legend too
    total = chart(html, "total")
    assert marks(total, ONLINE) == 1 and marks(total) == 3  # actual, online, model
    legend = html[html.index('<div class="legend">'):]
    assert report.LABELS[ONLINE] in legend[:legend.index("</div>")]
    online_mark = total[total.index(f'data-role="{ONLINE}"'):]
    assert "stroke-dasharray" not in online_mark[:online_mark.index("</g>")]
    assert report.render_run_report(**inputs, online=online) == html  # same inputs, same bytes


def test_run_report_before_the_online_models_start_says_when_it_starts():
    start = RUN_DATE + dt.timedelta(days=10)
    html = report.render_run_report(**run_inputs(), online=OnlineModel(start))
    assert 'id="online"' in html
    note = re.search(r'<p class="note online-start">(.*?)</p>', html).group(1)
    assert f"starts on {start}" in note
    assert 'data-plot="online-progressive"' not in html and 'data-model="online"' not in html
    # without any online model (a caller that knows none), no section at all
    assert 'id="online"' not in report.render_run_report(**run_inputs())


# --------------------------------------------------------------------------- the backtest report

def backtest_table() -> pd.DataFrame:
    """Four run dates; the online model starts on the second, and beats every baseline on the third."""
    return pd.DataFrame({"date": ["2016-05-21", "2016-05-22", "2016-05-23", "2016-05-24"],
                         "model": [0.6, 0.7, 0.9, 0.8], "online": [np.nan, 0.75, 0.5, 0.95],
                         "seasonal_naive": [0.9, 0.9, 0.8, 0.85], "moving_average_28": [0.7, 0.75, 0.85, 0.82],
                         "zero": [1.7, 1.7, 1.7, 1.7]})


def test_backtest_report_draws_the_online_model_and_its_progressive_validation():
    table = backtest_table()
    progressive = progressive_frame(pd.Timestamp("2016-05-22"), pd.Timestamp("2016-05-24"))
    progressive["date"] = progressive["date"].dt.strftime("%Y-%m-%d")  # as read from progressive.csv
    html = report.render_backtest_report(table, dt.date(2016, 5, 21), dt.date(2016, 5, 25), progressive=progressive)

    # a line of its own on the WRMSSE chart, and its progressive MAE chart
    wrmsse = chart(html, "backtest-wrmsse")
    assert marks(wrmsse) == 5 and marks(wrmsse, ONLINE) == 1
    prog = chart(html, "backtest-progressive")
    assert marks(prog) == 1 and marks(prog, ONLINE) == 1 and "<!-- May 22 -->" in prog
    assert f"({len(progressive)} dates)" in html

    # a column of the table: a dash before its start, its mean over the dates it covers
    rows = {d: re.search(rf"<tr data-metric=\"wrmsse\"><th scope=\"row\">{d}(.*?)</tr>", html).group(1)
            for d in table["date"]}
    assert 'data-model="online">–<' in rows["2016-05-21"]
    assert re.search(r'<td class="best online-col" data-model="online">0\.500<', rows["2016-05-23"])
    foot = html[html.index("<tfoot>"):]
    assert f'data-model="online">{table["online"].mean():.3f}<' in foot

    # the verdict and the wins are the model against the baselines only
    baselines = table[["seasonal_naive", "moving_average_28", "zero"]]
    wins = int((table["model"] < baselines.min(axis=1)).sum())
    best = baselines.mean().idxmin()
    assert f"beats every baseline on <b>{wins} of 4</b> run dates" in html
    summary = re.search(r'<p class="summary[^"]*">(.*?)</p>', html).group(1)
    assert f"({report.LABELS[best]}, {baselines[best].mean():.3f})" in summary and report.LABELS[ONLINE] not in summary
    # the gain on 2016-05-23 is against that day's best baseline (0.8), not the online model (0.5)
    gain = 100 * (0.8 - 0.9) / 0.8
    assert f"<title>2016-05-23: {gain:+.1f}</title>".replace(": -", ": −") in chart(html, "backtest-gain")

    # its summary: its mean against the model's over the same dates
    scored = table.dropna(subset=["online"])
    line = re.search(r'<p class="sub online-summary">(.*?)</p>', html).group(1)
    assert f"<b>{scored['online'].mean():.3f}</b> over the {len(scored)} run dates it covers (from 2016-05-22)" in line
    assert f"the model's {scored['model'].mean():.3f} over the same dates" in line
    assert f"lower than the model's on {int((scored['online'] < scored['model']).sum())} of {len(scored)}" in line


def test_backtest_report_without_the_online_model_says_it_covers_no_date():
    table = backtest_table().drop(columns="online")
    empty = pd.DataFrame(columns=["date", "series", "mae", "rmse", "bias", "predicted", "actual"])
    html = report.render_backtest_report(table, dt.date(2016, 5, 21), dt.date(2016, 5, 25), progressive=empty,
                                         online_start=dt.date(2016, 6, 1))
    assert "covers none of these run dates (it starts on 2016-06-01)" in html
    assert 'data-plot="backtest-progressive"' not in html and 'data-model="online"' not in html
    assert marks(chart(html, "backtest-wrmsse")) == 4
    # without the argument (older callers), no online section
    assert 'id="online"' not in report.render_backtest_report(table, dt.date(2016, 5, 21), dt.date(2016, 5, 25))


# --------------------------------------------------------------------------- the tasks, on the tiny world

def set_online_start(day: dt.date) -> None:
    luigi.configuration.get_config().set("online_model", "start_date", day.isoformat())


@pytest.mark.prebuilt_chain
def test_the_reports_of_the_tiny_world_show_the_online_model(chain_env):
    from tasks.report import BacktestReport, Report

    stop = RUN_DATE + dt.timedelta(days=1)
    assert chain_env.build([Report(date=RUN_DATE), BacktestReport(start=RUN_DATE, stop=stop)]).status == OK
    html = (out(chain_env.data, "reports", RUN_DATE.isoformat()) / "index.html").read_text()
    metrics = pd.read_parquet(out(chain_env.data, "metrics", RUN_DATE.isoformat()) / "metrics.parquet")
    mine = metrics[(metrics["model"] == ONLINE) & (metrics["metric"] == "wrmsse") & (metrics["level"] == "all")]
    assert len(mine) == 1
    assert re.search(rf'data-model="online">{mine["value"].iloc[0]:.3f}<', row_of(html, "wrmsse"))
    state = pd.read_parquet(out(chain_env.data, "online_model", RUN_DATE.isoformat()) / "progressive.parquet")
    assert f"MAE on the run date {state['mae'].iloc[-1]:.3f}" in html
    assert marks(chart(html, "online-progressive"), ONLINE) == 1 and marks(chart(html, "total"), ONLINE) == 1
    # 1 total + 3 states + 10 stores + 4 top series + 4 fan charts + the online model's + feature importance
    assert html.count('<svg class="chart"') == 24

    backtest = (out(chain_env.data, "reports", f"backtest_{RUN_DATE}_{stop}") / "index.html").read_text()
    assert marks(chart(backtest, "backtest-wrmsse"), ONLINE) == 1
    assert marks(chart(backtest, "backtest-progressive"), ONLINE) == 1
    assert f'data-model="online">{mine["value"].iloc[0]:.3f}<' in backtest

    # with the start after the run date: no online input, and the page says when it starts
    later = RUN_DATE + dt.timedelta(days=5)
    set_online_start(later)
    assert "online" not in Report(date=RUN_DATE).requires()
    assert Report(date=RUN_DATE).settings() == {"online_model_start": later.isoformat()}
    assert chain_env.build([Report(date=RUN_DATE)]).status == OK
    page = Report(date=RUN_DATE).output().file("index.html").read_text()
    assert f"The online model starts on {later}" in page and 'data-model="online"' not in page
