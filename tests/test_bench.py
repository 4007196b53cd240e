"""`make bench` end to end on the tiny world: every stage measured, the table's sums, kept stages reused."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["snapshot-fresh", "retrain-snapshot", "retrain-features", "retrain-train", "retrain-compile", "retrain-calibrate",
          "retrain (total)", "online-warmup", "daily", "next-snapshot", "online-update", "online-forecast",
          "score-lightgbm", "score-tl2cgen"]


def run_bench(tmp_path, *extra):
    cmd = [sys.executable, str(ROOT / "bench" / "run.py"), "--scale", "tiny", "--no-lleaves",
           "--data", str(tmp_path / "data"), "--results", str(tmp_path), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads((tmp_path / "results-tiny.json").read_text())


def test_bench_measures_every_stage_and_reuses_kept_ones(chain_env, tiny_world_file, tmp_path):
    # chain_env: the fast training settings reach the bench's luigi processes through LUIGI_CONFIG_PATH
    (tmp_path / "data" / "tiny").mkdir(parents=True)
    shutil.copy(tiny_world_file, tmp_path / "data" / "tiny" / "world.sqlite")
    done, report = run_bench(tmp_path)
    stages = {s["stage"]: s for s in report["stages"]}
    assert [s["stage"] for s in report["stages"]] == STAGES
    parts = [stages[n] for n in STAGES if n.startswith("retrain-")]
    assert stages["retrain (total)"]["wall_s"] == round(sum(p["wall_s"] for p in parts), 2)
    assert all(stages[n]["wall_s"] > 0 and stages[n]["cpu_s"] > 0 and stages[n]["peak_rss_mb"] > 50
               for n in STAGES if not n.startswith(("score", "retrain (")))
    assert stages["daily"]["rows"] == report["series"] * 28 == report["scoring"]["rows"]
    assert stages["online-update"]["rows"] == report["series"]
    # the bench starts the online model on its training date: the daily run updates it once, the next day again
    online = sorted(p.parent.parent.name for p in (tmp_path / "data" / "tiny" / "data" / "online_model").glob("*/*/state.pkl"))
    assert online == ["2016-05-15", "2016-05-16", "2016-05-17"]
    assert report["scoring"]["tl2cgen_max_abs_diff"] < 1e-6 and report["scoring"]["tl2cgen_speedup"] > 0
    assert "daily" in done.stdout and "TL2cgen" in done.stdout

    # a second run with --reuse reports the kept measurements instead of running the stages again
    _, kept = run_bench(tmp_path, "--reuse")
    by_name = {s["stage"]: s for s in kept["stages"]}
    for name in ("snapshot-fresh", "retrain-train", "daily"):
        assert by_name[name]["kept"] is True and by_name[name]["wall_s"] == stages[name]["wall_s"]
