"""The accuracy panel (bench/accuracy): its cases as the issue asks, the origin's pin, the real M5 folder, and one
case at one origin end to end, whose table must hold exactly Evaluate's numbers."""
from __future__ import annotations

import configparser
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.accuracy import cases, m5real, pipeline_run, scores  # noqa: E402
from pipeline.tools.world import SCALES  # noqa: E402

# a small model, so that the chain trains in seconds
FAST = ("[training]\nwindow_days = 120\nnum_boost_round = 40\nearly_stopping_rounds = 10\nnum_leaves = 15\n"
        "min_data_in_leaf = 20\n")


def test_the_panel_has_what_the_issue_asks():
    generated = [c for c in cases.CASES if c.source in ("world", "kaggle")]
    assert len(cases.CASES) >= 6
    assert len({c.seed for c in generated}) >= 3 and len({c.dynamics for c in generated}) >= 2
    assert len({c.scale for c in generated}) >= 2 and all(c.scale in SCALES for c in generated)
    assert {c.source for c in cases.CASES} == {"world", "kaggle", "m5"}
    assert {c.role for c in cases.CASES} == {"tune", "confirm"}
    assert len({c.name for c in cases.CASES}) == len(cases.CASES)
    for c in generated:
        assert len(c.origins) >= 3, c.name
        assert all((b - a).days == 28 for a, b in zip(c.origins, c.origins[1:])), c.name
        # the 28 days after the last origin are in the world: the generated calendar ends on 2016-06-19,
        # the Kaggle files' sales on d_1941 = 2016-05-22
        last_day = dt.date(2016, 6, 19) if c.source == "world" else dt.date(2016, 5, 22)
        assert c.origins[-1] + dt.timedelta(days=28) <= last_day, c.name


def test_select_names_cases_and_quick_takes_one_origin():
    assert [c.name for c in cases.select("tiny-3-reshaped,m5-real10")] == ["tiny-3-reshaped", "m5-real10"]
    quick = cases.select(quick=True)
    assert [c.name for c in quick] == list(cases.QUICK) and quick[0].origins == (cases.QUICK_ORIGIN,)
    with pytest.raises(SystemExit, match="no case 'nope'"):
        cases.select("nope")


def test_origin_config_pins_the_origin_on_top_of_the_config(tmp_path):
    cfg = tmp_path / "exp.cfg"
    cfg.write_text("[training]\nlearning_rate = 0.1\nserve_model = 2016-01-03\n[dask]\nn_workers = 1\n")
    out = pipeline_run.origin_config(cfg, dt.date(2016, 4, 24), tmp_path / "o" / "2016-04-24.cfg")
    parsed = configparser.ConfigParser()
    parsed.read(out)
    assert dict(parsed["training"]) == {"learning_rate": "0.1", "serve_model": "2016-04-24",
                                        "anchor_date": "2016-04-24"}
    assert dict(parsed["dask"]) == {"n_workers": "1"}
    assert not parsed.has_section("online_model")
    # with the case's first origin: the online model starts there, the outlier check accepted, unless set
    cfg.write_text("[quality]\naccept = price_jump\n")
    out = pipeline_run.origin_config(cfg, dt.date(2016, 4, 24), tmp_path / "o" / "x.cfg", dt.date(2016, 3, 27))
    parsed = configparser.ConfigParser()
    parsed.read(out)
    assert dict(parsed["online_model"]) == {"start_date": "2016-03-27"}
    assert dict(parsed["quality"]) == {"accept": "price_jump"}


@pytest.mark.skipif(bool(m5real.missing_files()), reason="../shared/data/m5 is not here")
def test_real_m5_folder_joins_the_actuals_and_borrows_ca1_prices(tmp_path):
    summary = m5real.build_folder(tmp_path / "m5")
    assert summary["series"] == 10 and summary["days"] == 1941
    assert summary["prices_borrowed_from_CA_1_for"] == ["CA_2", "CA_3", "TX_1", "WI_1"]
    sales = pd.read_csv(tmp_path / "m5" / "sales_train_evaluation.csv")
    test = pd.read_parquet(m5real.M5_DIR / "sales_test_validation.parquet")
    row = test[(test["item_id"] == "FOODS_2_323") & (test["store_id"] == "WI_1")].iloc[0]
    mine = sales[sales["id"] == "FOODS_2_323_WI_1_evaluation"].iloc[0]
    assert [mine[f"d_{d}"] for d in (1914, 1941)] == [row["d_1914"], row["d_1941"]]
    prices = pd.read_csv(tmp_path / "m5" / "sell_prices.csv")
    ca1 = prices[(prices["store_id"] == "CA_1") & (prices["item_id"] == "HOBBIES_1_001")]
    assert ca1.iloc[0].tolist() == ["CA_1", "HOBBIES_1_001", 11325, 9.58]  # M5's first sell_prices.csv line
    tx = prices[prices["store_id"] == "TX_1"]
    assert set(tx["item_id"]) == {"FOODS_2_033", "FOODS_2_034"} and len(tx) > 0


@pytest.mark.slow
def test_one_case_one_origin_reports_evaluates_numbers(tmp_path):
    cfg = tmp_path / "fast.cfg"
    cfg.write_text(FAST)
    results, docs = tmp_path / "panel.json", tmp_path / "panel.md"
    cmd = [sys.executable, "-m", "bench.accuracy", "--quick", "--no-peer", "--config", str(cfg),
           "--data", str(tmp_path / "data"), "--results", str(results), "--docs", str(docs)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "left out (--no-peer)" in done.stderr
    report = json.loads(results.read_text())
    assert report["config"] == "fast" and report["reference"] == "left out (--no-peer)"
    (case,) = report["cases"]
    (origin,) = case["origins"]
    assert case["name"] == cases.QUICK[0] and origin["origin"] == cases.QUICK_ORIGIN.isoformat()
    # the numbers are Evaluate's own, for every level, side and the bias of the 28-day total
    folders = {k: Path(v) for k, v in origin["pipeline"]["folders"].items()}
    evaluate_dir = folders["evaluate"]
    assert evaluate_dir.parts[-3:-1] == ("metrics", origin["origin"])
    metrics = pd.read_parquet(evaluate_dir / "metrics.parquet")
    wrmsse = metrics[metrics["metric"] == "wrmsse"].pivot(index="level", columns="model", values="value")
    for side, model in (("pipeline", "model"), ("seasonal_naive", "seasonal_naive"),
                        ("moving_average_28", "moving_average_28")):
        assert origin["wrmsse"][side] == {lv: float(wrmsse.loc[lv, model]) for lv in scores.LEVEL_NAMES}
    assert "mlforecast" not in origin["wrmsse"] and origin["mlforecast"] is None
    totals = pd.read_parquet(evaluate_dir / "daily_totals.parquet").groupby("model")["units"].sum()
    assert origin["bias"]["pipeline"] == pytest.approx(totals["model"] / totals["actual"] - 1, abs=1e-15)
    assert case["mean"]["wrmsse"]["pipeline"]["all"] == report["panel"]["all"]["wrmsse"]["pipeline"]["all"]
    # the pipeline served the model trained on the origin (the pin), and the table shows its figures
    served = json.loads((folders["forecast"] / "manifest.json").read_text())
    assert served["model_date"] == origin["origin"]
    text = docs.read_text()
    assert f"| {case['name']} | tune |" in text and f"{wrmsse.loc['all', 'model']:.4f}" in text
    assert f"{wrmsse.loc['all', 'seasonal_naive']:.4f}" in text

    # a second run keeps what the first made
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    kept = json.loads(results.read_text())["cases"][0]["origins"][0]
    assert kept["pipeline"]["kept"] is True and kept["wrmsse"] == origin["wrmsse"]
