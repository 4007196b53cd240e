"""The daily monitoring: each check on hand-made frames with values worked out by hand, the thresholds that
turn a check red, and Monitor on the tiny world (files, the report's section, a rerun's bytes)."""
from __future__ import annotations

import datetime as dt
import json
import shutil

import luigi
import numpy as np
import pandas as pd
import pytest

from pipeline.core import monitoring as M

D = pd.Timestamp("2016-05-22")  # the run date of the hand-made frames
T = M.MonitorThresholds()


def rows(series: dict[tuple[str, str], dict[pd.Timestamp, float]]) -> pd.DataFrame:
    """Long (item_id, store_id, date, units) rows from {(item, store): {day: units}}."""
    out = [(i, s, d, u) for (i, s), days in series.items() for d, u in days.items()]
    return pd.DataFrame(out, columns=["item_id", "store_id", "date", "units"])


def days_back(*ks: int) -> list[pd.Timestamp]:
    return [D - pd.Timedelta(days=k) for k in ks]


# ------------------------------------------------------------------ thresholds and statuses


def test_a_measure_is_red_only_outside_its_bounds_and_never_without_data():
    assert M.Measure("x", 0.05, high=0.05, absolute=True).status == M.OK  # on the bound: ok
    assert M.Measure("x", -0.0501, high=0.05, absolute=True).status == M.RED
    assert M.Measure("x", -0.0501, high=0.05).status == M.OK  # not absolute: only the top bound
    assert M.Measure("x", 0.89, low=0.9, high=0.99).status == M.RED
    assert M.Measure("x", None, low=0.9, high=0.99).status == M.NO_DATA
    assert M.Measure("x", 0.5, low=0.9, high=0.99).bound() == "0.9 ≤ x ≤ 0.99"
    assert M.Measure("x", 0.5, high=0.05, absolute=True).bound() == "|x| ≤ 0.05"
    ok, red, none = (M.Measure("a", 0.0, high=1.0), M.Measure("b", 2.0, high=1.0), M.Measure("c", None, high=1.0))
    assert M.Check("c", "g", "l", (ok, none), "").status == M.OK
    assert M.Check("c", "g", "l", (ok, red), "").status == M.RED
    assert M.Check("c", "g", "l", (none, none), "").status == M.NO_DATA


def test_thresholds_are_read_from_text_and_checked():
    t = M.MonitorThresholds.from_mapping({"price_ks_max": "0.2", "coverage_95_min": "0.85"})
    assert t.price_ks_max == 0.2 and t.coverage_95_min == 0.85 and t.zero_share_max_change == 0.05
    with pytest.raises(ValueError, match="unknown monitoring thresholds.*price_ks"):
        M.MonitorThresholds.from_mapping({"price_ks": "0.2"})
    with pytest.raises(ValueError, match="coverage_95_max=1.5 must be a number >= 0 and <= 1"):
        M.MonitorThresholds(coverage_95_max=1.5)
    with pytest.raises(ValueError, match="coverage_95_min is above coverage_95_max"):
        M.MonitorThresholds(coverage_95_min=0.99, coverage_95_max=0.9)
    with pytest.raises(ValueError, match="last_year_max_change=-0.1"):
        M.MonitorThresholds(last_year_max_change=-0.1)


# ------------------------------------------------------------------ data drift


def test_zero_share_compares_the_run_date_with_the_same_weekday_of_4_weeks():
    four = [("A", "S1"), ("B", "S1"), ("C", "S1"), ("D", "S1")]
    data = {k: {} for k in four}
    for n, k in enumerate(four):
        data[k][D] = 0 if n < 3 else 5  # 3 of 4 rows zero on the run date
        for d in days_back(7, 14, 21, 28):
            data[k][d] = 0 if n == 0 else 2  # 1 of 4 on each reference day
        data[k][D - pd.Timedelta(days=1)] = 0  # another weekday: ignored
        data[k][D - pd.Timedelta(days=35)] = 0  # a fifth week back: ignored
    exact = M.MonitorThresholds(zero_share_noise_z=0)  # the bound is zero_share_max_change alone
    check = M.zero_share(rows(data), D.date(), exact)
    assert check.detail["run_date_share"] == 0.75 and check.detail["reference_mean"] == 0.25
    assert check.measures[0].value == pytest.approx(0.5) and check.measures[0].high == 0.05 and check.status == M.RED
    assert "75.0%" in check.note and "+50.0 points" in check.note
    assert M.zero_share(rows(data), D.date(), M.MonitorThresholds(zero_share_max_change=0.5,
                                                                  zero_share_noise_z=0)).status == M.OK
    # 4 rows a day: 3 standard errors of a share of 0.25 are 3 * sqrt(0.25 * 0.75 / 4) = 0.6495, more than the change
    noisy = M.zero_share(rows(data), D.date(), T)
    assert noisy.measures[0].high == pytest.approx(0.649519) and noisy.status == M.OK
    assert M.zero_share(rows(data), D.date(), M.MonitorThresholds(zero_share_noise_z=2.5)).status == M.OK  # 0.541
    assert M.zero_share(rows(data), D.date(), M.MonitorThresholds(zero_share_noise_z=2)).status == M.RED  # 0.433
    # the same share as the reference: no change
    for d in days_back(7, 14, 21, 28):
        for n, k in enumerate(four):
            data[k][d] = 0 if n < 3 else 1
    assert M.zero_share(rows(data), D.date(), exact).measures[0].value == 0.0
    assert M.zero_share(rows(data).iloc[:0], D.date(), T).status == M.NO_DATA


def calendar() -> pd.DataFrame:
    days = pd.date_range(D - pd.Timedelta(days=40), D)
    return pd.DataFrame({"date": days, "wm_yr_wk": 11600 + (days - days[0]).days // 7})


def test_price_drift_is_the_ks_statistic_of_the_two_weeks_prices():
    cal = calendar()
    week = int(cal.loc[cal["date"] == D, "wm_yr_wk"].iloc[0])
    before = int(cal.loc[cal["date"] == D - pd.Timedelta(weeks=4), "wm_yr_wk"].iloc[0])
    assert week - before == 4
    items = ["A", "B", "C", "D"]
    prices = pd.DataFrame({"item_id": items * 3, "store_id": "S1",
                           "wm_yr_wk": [before] * 4 + [before + 1] * 4 + [week] * 4,
                           "sell_price": [1.0, 2.0, 3.0, 4.0] + [9.0] * 4 + [1.0, 2.0, 3.0, 5.0]})
    check = M.price_drift(prices, cal, D.date(), T)
    # F_now and F_before differ most on [4, 5): 3/4 against 1 -> 0.25; the 4 -> 5 move costs 1/4 in Wasserstein
    assert check.measures[0].value == pytest.approx(0.25) and check.status == M.RED
    assert check.detail["wasserstein"] == pytest.approx(0.25) and check.detail["changed_share"] == 0.25
    assert (check.detail["week"], check.detail["reference_week"]) == (week, before)
    assert M.price_drift(prices, cal, D.date(), M.MonitorThresholds(price_ks_max=0.25)).status == M.OK
    same = prices.assign(sell_price=[1.0, 2.0, 3.0, 4.0] + [9.0] * 4 + [1.0, 2.0, 3.0, 4.0])
    assert M.price_drift(same, cal, D.date(), T).measures[0].value == 0.0
    missing = M.price_drift(prices[prices["wm_yr_wk"] != week], cal, D.date(), T)
    assert missing.status == M.NO_DATA and f"no prices of week {week}" in missing.note


def test_new_and_vanished_series_by_hand():
    earlier = [D - pd.Timedelta(days=k) for k in range(7, 35)]  # the 28 days before the last 7
    recent = [D - pd.Timedelta(days=k) for k in range(0, 7)]
    data = {
        ("A", "S1"): {d: 1 for d in earlier},  # sold every day, then nothing: vanished
        ("B", "S1"): {d: 1 for d in recent},  # first rows in the last 7 days: new
        ("C", "S1"): {d: 1 for d in earlier + recent},  # regular and present
        ("D", "S1"): {d: 0 for d in recent},  # no row in the window before, but older rows exist: not new
        ("E", "S1"): {d: (1 if k < 13 else 0) for k, d in enumerate(earlier)},  # sold 13 of 28 days: not regular
        ("F", "S2"): {d: (1 if k < 14 else 0) for k, d in enumerate(earlier)},  # sold 14 of 28: regular, vanished
    }
    window = rows(data)
    sold_e = window[(window["item_id"] == "E") & (window["units"] == 1)]
    window = pd.concat([window, sold_e.iloc[:1]])  # a duplicated row counts its day once: E stays at 13 days
    candidates = M.new_candidates(window, D.date())
    assert sorted(candidates) == [("B", "S1"), ("D", "S1")]
    seen = pd.MultiIndex.from_tuples([("D", "S1")])
    new, vanished = M.presence(window, D.date(), seen, T)
    assert new.detail == {"new": 1, "active": 3, "listed": ["B/S1"]}
    assert new.measures[0].value == pytest.approx(1 / 3) and new.status == M.RED
    assert vanished.detail == {"vanished": 2, "regular": 3, "listed": ["A/S1", "F/S2"]}
    assert vanished.measures[0].value == pytest.approx(2 / 3) and vanished.status == M.RED
    loose = M.MonitorThresholds(new_series_max_share=0.5, vanished_series_max_share=0.7)
    assert [c.status for c in M.presence(window, D.date(), seen, loose)] == [M.OK, M.OK]
    # a higher bar for regularity: F (14 of 28 days) is no longer regular
    strict = M.presence(window, D.date(), seen, M.MonitorThresholds(regular_share=0.6))[1]
    assert strict.detail["listed"] == ["A/S1"] and strict.detail["regular"] == 2


# ------------------------------------------------------------------ prediction drift


def forecast_rows(units: dict[tuple[str, str], dict[pd.Timestamp, float]]) -> pd.DataFrame:
    return rows(units).astype({"units": np.float32})


def test_forecast_against_last_year_and_the_stores_that_moved():
    d1, d2 = D + pd.Timedelta(days=1), D + pd.Timedelta(days=2)
    year = pd.Timedelta(days=364)
    forecast = forecast_rows({("A", "S1"): {d1: 10, d2: 10}, ("A", "S2"): {d1: 5, d2: 5}})
    history = rows({("A", "S1"): {d1 - year: 8, d2 - year: 8, d1 - year - pd.Timedelta(days=1): 1000},
                    ("Z", "S2"): {d1 - year: 4, d2 - year: 4}})  # another series counts too: the whole business
    check = M.forecast_vs_last_year(forecast, history, T)
    assert check.detail["forecast_total"] == 30 and check.detail["reference_total"] == 24 and check.detail["days"] == 2
    assert check.measures[0].value == pytest.approx(0.25) and check.status == M.OK  # on the bound
    assert [(m["store_id"], m["change"], m["relative_change"]) for m in check.detail["stores_moved_most"]] == [
        ("S1", 4.0, 0.25), ("S2", 2.0, 0.25)]
    assert M.forecast_vs_last_year(forecast, history, M.MonitorThresholds(last_year_max_change=0.2)).status == M.RED
    # only target days with rows a year before are compared
    half = M.forecast_vs_last_year(forecast, history[pd.to_datetime(history["date"]) != d2 - year], T)
    assert (half.detail["days"], half.detail["forecast_total"], half.detail["reference_total"]) == (1, 15, 12)
    assert M.forecast_vs_last_year(forecast, history.iloc[:0], T).status == M.NO_DATA


def test_forecast_against_yesterday_on_the_days_both_forecast():
    d0, d1, d2 = D, D + pd.Timedelta(days=1), D + pd.Timedelta(days=2)
    today = forecast_rows({("A", "S1"): {d1: 10, d2: 12}, ("A", "S2"): {d1: 1, d2: 1}})
    yesterday = forecast_rows({("A", "S1"): {d0: 99, d1: 10}, ("A", "S2"): {d0: 99, d1: 2}})
    check = M.forecast_vs_yesterday(today, yesterday, T)
    # day d1 only: 11 against 12
    assert (check.detail["days"], check.detail["forecast_total"], check.detail["reference_total"]) == (1, 11, 12)
    assert check.measures[0].value == pytest.approx(-1 / 12) and check.status == M.OK
    assert check.detail["stores_moved_most"][0]["store_id"] == "S2"
    assert M.forecast_vs_yesterday(today, yesterday, M.MonitorThresholds(yesterday_max_change=0.08)).status == M.RED
    none = M.forecast_vs_yesterday(today, None, T)
    assert none.status == M.NO_DATA and none.measures[0].high == T.yesterday_max_change


# ------------------------------------------------------------------ realised accuracy and coverage


def test_accuracy_per_horizon_week_on_the_matured_days_of_the_series_forecast():
    d2, d1 = (D - pd.Timedelta(days=8)).date(), (D - pd.Timedelta(days=1)).date()
    known = pd.date_range(D - pd.Timedelta(days=7), D)  # the days of run d2 known at D: horizons 1..8
    actual = rows({("X", "S1"): {d: 10 for d in known},
                   ("Z", "S1"): {d: 100 for d in known}})  # a series no run forecast: not compared
    late = pd.date_range(D - pd.Timedelta(days=7), periods=28)
    forecasts = {d2: forecast_rows({("X", "S1"): {d: 12 for d in late}, ("Y", "S1"): {d: 1 for d in late}}),
                 d1: forecast_rows({("X", "S1"): {D + pd.Timedelta(days=k): 9 for k in range(28)}})}
    checks = M.accuracy(forecasts, M.Actuals(actual), D.date(), T)
    assert [c.name for c in checks] == ["accuracy_h1_7", "accuracy_h8_14", "accuracy_h15_21", "accuracy_h22_28"]
    week1, week2, week3, _ = checks
    # horizons 1-7: run d2's 7 days (13 forecast, 10 sold: +3; Y has no row, 0 sold) and run d1's day D (9 vs 10: -1)
    assert week1.detail["pairs"] == 8 and week1.detail["runs"] == [d2.isoformat(), d1.isoformat()]
    assert week1.detail["mae"] == pytest.approx(22 / 8) and week1.detail["bias"] == pytest.approx(20 / 8)
    assert week1.measures[0].value == pytest.approx(22 / 8 / 10) and week1.measures[1].value == pytest.approx(20 / 80)
    assert week1.status == M.RED
    assert week2.detail["pairs"] == 1 and week2.detail["mae"] == 3 and week2.measures[1].value == pytest.approx(0.3)
    assert week3.status == M.NO_DATA and week3.detail["pairs"] == 0
    loose = M.MonitorThresholds(accuracy_max_relative_mae=0.3, accuracy_max_relative_bias=0.3)
    assert [c.status for c in M.accuracy(forecasts, M.Actuals(actual), D.date(), loose)][:2] == [M.OK, M.OK]


def test_coverage_of_the_matured_series_days():
    origin = (D - pd.Timedelta(days=2)).date()  # F1 = D-1, F2 = D are known; F3 = D+1 is not
    q = pd.DataFrame({"item_id": ["X"] * 3 + ["Y"] * 3, "store_id": "S1", "quantile": [0.025, 0.5, 0.975] * 2,
                      "F1": [1, 3, 5, 0.5, 1, 2], "F2": [1, 3, 5, 0.5, 1, 2], "F3": [0, 0, 0, 0, 0, 0]},
                     ).astype({"F1": np.float32, "F2": np.float32, "F3": np.float32})
    q = q.iloc[::-1]  # any row order
    actual = rows({("X", "S1"): {D - pd.Timedelta(days=1): 3, D: 6, D + pd.Timedelta(days=1): 0},
                   ("Y", "S1"): {D - pd.Timedelta(days=1): 0}})  # Y has no row on D: 0 sold
    check = M.coverage({origin: q}, M.Actuals(actual), D.date(), T)
    # inside [q0.025, q0.975]: X on D-1 only (X on D above, Y's zeros below) -> 1 of 4
    assert check.detail["pairs"] == 4 and check.measures[0].value == 0.25 and check.status == M.RED
    assert check.detail["at_or_below"] == {"0.025": 0.5, "0.5": 0.75, "0.975": 0.75}
    assert M.coverage({origin: q}, M.Actuals(actual), D.date(),
                      M.MonitorThresholds(coverage_95_min=0.2, coverage_95_max=0.3)).status == M.OK
    nothing = M.coverage({D.date(): q}, M.Actuals(actual), D.date(), T)  # today's run: nothing matured
    assert nothing.status == M.NO_DATA and nothing.detail["pairs"] == 0
    with pytest.raises(ValueError, match="every quantile of every series once"):
        M.coverage({origin: q.iloc[1:]}, M.Actuals(actual), D.date(), T)


def test_the_stage_reads_a_snapshot_and_writes_both_files(tmp_path):
    from pipeline.stages import monitoring as stage

    snap, run_dir = tmp_path / "snapshot", tmp_path / "forecast"
    snap.mkdir()
    run_dir.mkdir()
    days = {"A": pd.date_range(D - pd.Timedelta(days=400), D),  # every day: regular, present
            "B": pd.date_range(D - pd.Timedelta(days=100), D - pd.Timedelta(days=50)).append(
                pd.date_range(D - pd.Timedelta(days=3), D)),  # back after a gap: older rows say it is not new
            "C": pd.date_range(D - pd.Timedelta(days=2), D)}  # first rows ever: new
    sales = pd.DataFrame([(i, "S1", d, 1) for i, ds in days.items() for d in ds],
                         columns=["item_id", "store_id", "date", "units"]).astype({"units": np.int32})
    sales = sales.astype({"item_id": "category", "store_id": "category"})  # as a snapshot holds them
    sales.to_parquet(snap / "sales.parquet", index=False)
    calendar = pd.DataFrame({"date": pd.date_range(D - pd.Timedelta(days=400), D + pd.Timedelta(days=30))})
    calendar["wm_yr_wk"] = 11500 + np.arange(len(calendar)) // 7
    calendar.to_parquet(snap / "calendar.parquet", index=False)
    weeks = calendar.set_index("date")["wm_yr_wk"]
    pd.DataFrame({"item_id": ["A", "B", "C"] * 2, "store_id": "S1",
                  "wm_yr_wk": [weeks[D]] * 3 + [weeks[D - pd.Timedelta(weeks=4)]] * 3,
                  "sell_price": [1.0, 2.0, 3.0] * 2}).to_parquet(snap / "prices.parquet", index=False)
    target = pd.date_range(D + pd.Timedelta(days=1), periods=28)
    pd.DataFrame([(D, i, "S1", d, k + 1, 1.0) for i in "ABC" for k, d in enumerate(target)],
                 columns=["as_of", "item_id", "store_id", "date", "horizon", "units"]
                 ).to_parquet(run_dir / "forecast.parquet", index=False)
    result = stage.monitor(snap, run_dir, D.date(), forecasts={}, quantiles={}, thresholds=T)
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["new_series"]["detail"] == {"new": 1, "active": 3, "listed": ["C/S1"]}
    assert checks["price_drift"]["measures"][0]["value"] == 0.0
    # 84 units forecast, 28 sold by A alone 364 days earlier: +200 %
    assert checks["forecast_vs_last_year"]["measures"][0]["value"] == 2.0 and result["red"][-1] == "forecast_vs_last_year"
    assert checks["forecast_vs_yesterday"]["status"] == "no data" and result["inputs"]["yesterday"] is None
    stage.write_monitoring(result, tmp_path)
    assert json.loads((tmp_path / "monitoring.json").read_text()) == result
    md = (tmp_path / "monitoring.md").read_text()
    assert md.startswith(f"# Monitoring of the run of {D.date()}") and "| **red** |" in md
    assert "\\|relative_change\\| ≤ 0.25" in md  # a bar inside a cell is escaped


# ------------------------------------------------------------------ Monitor on the tiny world


def plant(task, frames: dict[str, pd.DataFrame]) -> None:
    """Write an earlier run's output folder by hand (its parquet files; the other files empty)."""
    folder = task.output().path
    folder.mkdir(parents=True)
    for name in task.output().files:
        (folder / name).write_text("{}")
    for name, frame in frames.items():
        frame.to_parquet(folder / name, index=False)


@pytest.mark.prebuilt_chain
def test_monitor_of_the_tiny_world_writes_its_checks_and_the_report_lists_them(chain_env, monkeypatch):
    from pipeline.data.snapshot import read_snapshot
    from pipeline.stages import report
    from pipeline.stages.monitoring import read_monitoring, status_line
    from tasks import Evaluate, ExtractSnapshot, ForecastQuantiles, Monitor, Report, ScoreForecast, TrainModel
    from tests.conftest import RUN_DATE

    day = dt.timedelta(days=1)
    # DailyForecast made the run date's monitoring with the chain (no earlier runs then): made again here
    shutil.rmtree(Monitor(date=RUN_DATE).output().path)
    forecast = pd.read_parquet(ScoreForecast(date=RUN_DATE).output().path / "forecast.parquet")
    quantiles = pd.read_parquet(ForecastQuantiles(date=RUN_DATE).output().path / "quantiles.parquet")
    # yesterday's run, by hand: today's forecast one day earlier and 10 % higher, today's quantiles one day earlier
    yesterday = forecast.assign(as_of=forecast["as_of"] - day, date=forecast["date"] - day,
                                units=(forecast["units"] * 1.1).astype(forecast["units"].dtype))
    plant(ScoreForecast(date=RUN_DATE - day), {"forecast.parquet": yesterday})
    plant(ForecastQuantiles(date=RUN_DATE - day), {"quantiles.parquet": quantiles})
    messages = []  # what the visualiser is sent (the worker's reporter stands in for the task's set_status_message)
    monkeypatch.setattr(luigi.worker.TaskStatusReporter, "update_status_message",
                        lambda self, message: messages.append((self._task_id, message)))
    assert chain_env.build([Monitor(date=RUN_DATE)]).status.name == "SUCCESS"
    folder = Monitor(date=RUN_DATE).output().path
    assert folder.parent == chain_env.data / "monitoring" / RUN_DATE.isoformat()
    result = json.loads((folder / "monitoring.json").read_text())
    checks = {c["name"]: c for c in result["checks"]}
    assert list(checks) == ["zero_share", "price_drift", "new_series", "vanished_series", "forecast_vs_last_year",
                            "forecast_vs_yesterday", "accuracy_h1_7", "accuracy_h8_14", "accuracy_h15_21",
                            "accuracy_h22_28", "coverage_95"]
    planted = ScoreForecast(date=RUN_DATE - day).fingerprint()
    assert result["inputs"]["forecasts"] == {(RUN_DATE - day).isoformat(): planted}
    assert result["red"] == [n for n, c in checks.items() if c["status"] == "red"]
    assert messages == [(Monitor(date=RUN_DATE).task_id, status_line(result))]
    assert all(m["threshold"] for c in checks.values() for m in c["measures"])

    # every number against an independent computation from the snapshot and the forecasts
    sales = read_snapshot(ExtractSnapshot(date=RUN_DATE).output().path, "sales")
    sales = sales.astype({"item_id": str, "store_id": str})
    run = pd.Timestamp(RUN_DATE)
    share = lambda d: float((sales.loc[sales["date"] == d, "units"] == 0).mean())  # noqa: E731
    refs = [share(run - pd.Timedelta(weeks=k)) for k in range(1, 5)]
    assert checks["zero_share"]["measures"][0]["value"] == pytest.approx(share(run) - np.mean(refs), abs=1e-6)
    last_year = sales[sales["date"].isin(pd.to_datetime(forecast["date"].unique()) - pd.Timedelta(days=364))]
    assert checks["forecast_vs_last_year"]["detail"]["reference_total"] == pytest.approx(last_year["units"].sum())
    assert checks["forecast_vs_last_year"]["detail"]["forecast_total"] == pytest.approx(
        forecast["units"].astype(float).sum(), abs=1e-3)
    overlap = forecast[forecast["date"] < forecast["date"].max()]
    moved = forecast[forecast["date"] > forecast["date"].min()]["units"].astype(float).sum() * 1.1
    assert checks["forecast_vs_yesterday"]["detail"]["days"] == 27
    assert checks["forecast_vs_yesterday"]["measures"][0]["value"] == pytest.approx(
        overlap["units"].astype(float).sum() / moved - 1, abs=1e-5)
    assert checks["forecast_vs_yesterday"]["status"] == "ok"  # about -9 %, inside 10 %
    # horizon 1 of yesterday's run: its forecast of the run date against the run date's sales of those series
    first = yesterday[yesterday["date"] == run].astype({"item_id": str, "store_id": str})
    sold = first.merge(sales[sales["date"] == run], on=["item_id", "store_id", "date"], how="left")["units_y"]
    week1 = checks["accuracy_h1_7"]["detail"]
    assert week1["pairs"] == 1 and week1["mae"] == pytest.approx(abs(first["units"].astype(float).sum() - sold.sum()),
                                                                  abs=1e-3)
    assert [checks[f"accuracy_h{a}_{b}"]["status"] for a, b in ((8, 14), (15, 21), (22, 28))] == ["no data"] * 3
    # coverage: today's quantiles as yesterday's, so F1 is the run date
    q = quantiles[quantiles["level"] == "item_store"].pivot_table(index=["item_id", "store_id"], columns="quantile",
                                                                   values="F1").reset_index()
    q = q.astype({"item_id": str, "store_id": str}).merge(sales[sales["date"] == run], on=["item_id", "store_id"],
                                                           how="left").fillna({"units": 0})
    inside = ((q["units"] >= q[0.025]) & (q["units"] <= q[0.975])).mean()
    assert checks["coverage_95"]["measures"][0]["value"] == pytest.approx(inside, abs=1e-6)
    assert checks["coverage_95"]["detail"]["pairs"] == len(q) == 140
    md = (folder / "monitoring.md").read_text()
    assert "| group | check | status | measured | threshold | what was seen |" in md
    assert all(c["label"] in md for c in checks.values())

    # the report lists every check with its status; without a monitoring output, no section
    assert chain_env.build([Report(date=RUN_DATE)]).status.name == "SUCCESS"
    html = (Report(date=RUN_DATE).output().path / "index.html").read_text()
    assert '<section id="monitoring">' in html
    for name, c in checks.items():
        assert f'data-check="{name}" data-status="{c["status"]}"' in html
    served = json.loads((ScoreForecast(date=RUN_DATE).output().path / "manifest.json").read_text())["model_date"]
    inputs = report.load_run_inputs(
        ScoreForecast(date=RUN_DATE).output().path, ExtractSnapshot(date=RUN_DATE).output().path,
        ExtractSnapshot(date=RUN_DATE + 28 * day).output().path, Evaluate(date=RUN_DATE).output().path,
        TrainModel(date=dt.date.fromisoformat(served)).output().path, RUN_DATE)
    assert inputs["monitoring"] is None and read_monitoring(folder) == result
    assert 'id="monitoring"' not in report.render_run_report(**inputs)
    # a rerun writes the same bytes
    before = {name: (folder / name).read_bytes() for name in ("monitoring.json", "monitoring.md")}
    shutil.rmtree(folder)
    assert chain_env.build([Monitor(date=RUN_DATE)]).status.name == "SUCCESS"
    assert {name: (folder / name).read_bytes() for name in before} == before
