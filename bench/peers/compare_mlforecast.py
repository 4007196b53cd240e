"""The pipeline against mlforecast on the same world: time, memory and WRMSSE of one training date.

    python bench/peers/compare_mlforecast.py --scale full10 [--date 2016-05-22] [--seeds 20160522,20160523]

Both learn from the snapshot of DATE, with the same training window, the same
LightGBM parameters and number of trees (the pipeline's early-stopped model's),
and forecast the 28 days after DATE, which the world holds as actuals. The
LightGBM seed can move a side's WRMSSE by as much as the difference between
them (full world: mlforecast 0.469-0.474 over three seeds), so the comparison is
made for several seeds (default: luigi.cfg's and the next two), each side with
the same seed and tree count, and judged on the mean. Timed, each as its own
process under ``/usr/bin/time -v``:

* the pipeline: training features once (they do not depend on the seed), then
  per seed LightGBM training, TL2cgen compilation, and scoring features +
  compiled scoring + writes (Luigi tasks, as a deployment runs them);
* mlforecast (bench/.venv-mlforecast): loading and feature building once, then
  per seed training and prediction (one process).

A seed's end-to-end time is the shared part plus that seed's stages, on both
sides; the speed ratio is of the medians over the seeds. Snapshot extraction
and data checks are done first and not timed (both read the same snapshot).
Every forecast is scored with the pipeline's WRMSSE against the snapshot of
DATE + 28. Writes bench/peers-mlforecast-<scale>.json and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from run import LUIGI, PY, measured  # noqa: E402

from tasks import config  # noqa: E402
from pipeline.data import storage
from pipeline.tools.world import SCALES  # noqa: E402

MLF_PY = ROOT / "bench" / ".venv-mlforecast" / "bin" / "python"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full10", choices=sorted(SCALES))
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2016, 5, 22))
    parser.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")],
                        help="LightGBM seeds, comma-separated (default: luigi.cfg's seed and the next two)")
    parser.add_argument("--data", default=str(ROOT / "bench" / "data"), help="home of the worlds (as bench/run.py's)")
    parser.add_argument("--results", default=str(ROOT / "bench"), help="folder of peers-mlforecast-<scale>.json")
    args = parser.parse_args(argv)
    seeds = args.seeds or [config.training().seed + k for k in range(3)]
    home = Path(args.data) / args.scale
    world, data = home / "world.sqlite", home / "data"
    if not world.exists():
        raise SystemExit(f"no world at {world}: run `make bench SCALE={args.scale}` first")
    if not MLF_PY.exists():
        raise SystemExit(f"no mlforecast environment at {MLF_PY.parent.parent}: `make bench-mlforecast` creates it")
    d, later = args.date, args.date + dt.timedelta(days=28)
    day = d.isoformat()
    cfg = Path(tempfile.mkdtemp(prefix="bench-cfg-")) / "luigi.cfg"
    env = {**os.environ, "PIPELINE_DATABASE_URL": f"sqlite:///{world}", "PIPELINE_DATA_DIR": str(data),
           "LUIGI_CONFIG_PATH": str(cfg)}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    luigi = [LUIGI, "--module", "pipeline", "--local-scheduler", "--no-lock", "--log-level", "WARNING"]

    def folder(task: str, date: str = day) -> Path:
        """Where ``task`` of ``date`` writes under the current bench configuration (its fingerprint folder)."""
        done = subprocess.run([sys.executable, "-m", "tasks.show", "--date", date, "--path", task],
                              env=env, capture_output=True, text=True, check=True)
        return Path(done.stdout.strip().splitlines()[-1])

    def configure(seed: int) -> None:
        # the pipeline's model of DATE serves DATE (no promotion gate: that is not part of the comparison)
        cfg.write_text(f"[training]\nserve_model = {day}\nseed = {seed}\n")

    print(f"compare {args.scale} {d}, seeds {seeds}: preparing snapshots (not timed)", file=sys.stderr)
    configure(seeds[0])
    for task in (["CheckSnapshot", "--date", day], ["ExtractSnapshot", "--date", later.isoformat()]):
        subprocess.run(luigi + task, env=env, check=True, capture_output=True)
    shutil.rmtree(data / "features" / day, ignore_errors=True)  # the compared stages run from scratch
    features = measured("ours-features", luigi + ["BuildTrainingFeatures", "--date", day], env)
    runs_dir = home / "compare" / day
    shutil.rmtree(runs_dir, ignore_errors=True)
    ours = []
    for seed in seeds:
        configure(seed)
        for stage in ("models", "compiled", "promotions", "forecasts"):
            shutil.rmtree(data / stage / day, ignore_errors=True)
        shutil.rmtree(data / "features" / day / "score", ignore_errors=True)
        stages = [measured(f"ours-train-{seed}", luigi + ["TrainModel", "--date", day], env),
                  measured(f"ours-compile-{seed}", luigi + ["CompileModel", "--date", day], env),
                  measured(f"ours-predict-{seed}", luigi + ["DailyForecast", "--date", day], env)]
        meta = storage.read_json(folder("TrainModel") / "metadata.json")
        (runs_dir / f"seed-{seed}").mkdir(parents=True)
        shutil.copy(folder("ScoreForecast") / "forecast.parquet", runs_dir / f"seed-{seed}" / "pipeline.parquet")
        ours.append({"seed": seed, "trees": meta["metrics"]["best_iteration"], "stages": stages,
                     "total_s": round(features["wall_s"] + sum(s["wall_s"] for s in stages), 1)})
    spec = {"window_days": config.training().window_days, "valid_days": 28, "params": meta["params"],
            "runs": [{"seed": o["seed"], "num_trees": o["trees"]} for o in ours]}
    peer_dir = home / "mlforecast" / day
    shutil.rmtree(peer_dir, ignore_errors=True)
    peer_dir.mkdir(parents=True)
    spec_path = peer_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    peer = measured("mlforecast", [str(MLF_PY), str(ROOT / "bench" / "peers" / "mlforecast_run.py"),
                                   str(folder("ExtractSnapshot")), day, str(spec_path), str(peer_dir)], env)
    peer_timings = json.loads((peer_dir / "timings.json").read_text())

    import pandas as pd

    from pipeline.stages import evaluate
    snap, later_snap = folder("ExtractSnapshot"), folder("ExtractSnapshot", later.isoformat())

    forecasts = {}
    for o in ours:
        mine = pd.read_parquet(runs_dir / f"seed-{o['seed']}" / "pipeline.parquet")
        theirs = pd.read_parquet(peer_dir / f"seed-{o['seed']}" / "forecast.parquet")
        theirs = theirs.merge(mine[["item_id", "store_id", "date"]].astype({"item_id": str, "store_id": str}),
                              on=["item_id", "store_id", "date"], how="right")  # the same (series, day) pairs
        if theirs["units"].isna().any():
            raise SystemExit(f"mlforecast forecast lacks {int(theirs['units'].isna().sum())} of the pipeline's rows")
        forecasts[f"ours-{o['seed']}"], forecasts[f"mlforecast-{o['seed']}"] = mine, theirs
    # every forecast in one evaluation: the weights, scales, actuals and baselines are computed once
    table = evaluate.evaluate(mine, snap, later_snap, d, others=forecasts)
    pick = table[(table["metric"] == "wrmsse") & (table["level"] == "all")].set_index("model")["value"]
    scores = {m: round(float(v), 4) for m, v in pick.items()}
    baselines = {m: scores[m] for m in evaluate.BASELINES}
    runs = []
    for o, p in zip(ours, peer_timings["runs"]):
        runs.append({"seed": o["seed"], "trees": o["trees"],
                     "ours": {"total_s": o["total_s"], "wrmsse": scores[f"ours-{o['seed']}"],
                              **{s["stage"].split("-")[1] + "_s": s["wall_s"] for s in o["stages"]}},
                     "mlforecast": {"total_s": round(p["total_s"], 1), "train_s": round(p["train_s"], 1),
                                    "predict_s": round(p["predict_s"], 1), "wrmsse": scores[f"mlforecast-{o['seed']}"]}})
    median = lambda side: round(statistics.median(r[side]["total_s"] for r in runs), 1)  # noqa: E731
    mean = lambda side: round(statistics.fmean(r[side]["wrmsse"] for r in runs), 4)  # noqa: E731
    ours_peak = max(s["peak_tree_rss_mb"] for s in [features, *(st for o in ours for st in o["stages"])])
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "scale": args.scale,
        "run_date": day, "series": int(mine.groupby(["item_id", "store_id"]).ngroups), "cpus": os.cpu_count(),
        "seeds": seeds, "runs": runs,
        "ours": {"features_s": features["wall_s"], "median_total_s": median("ours"), "peak_rss_mb": ours_peak,
                 "mean_wrmsse": mean("ours"), "stages": [features, *(st for o in ours for st in o["stages"])]},
        "mlforecast": {"load_s": round(peer_timings["load_s"], 1), "features_s": round(peer_timings["features_s"], 1),
                       "median_total_s": median("mlforecast"), "process_wall_s": peer["wall_s"],
                       "peak_rss_mb": peer["peak_tree_rss_mb"], "mean_wrmsse": mean("mlforecast"),
                       "train_rows": peer_timings["train_rows"], "features": peer_timings["features"]},
        "baselines_wrmsse": baselines,
        "speedup": round(median("mlforecast") / median("ours"), 2),
    }
    out = Path(args.results) / f"peers-mlforecast-{args.scale}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{args.scale}: {report['series']:,} series, run date {d}, same LightGBM parameters and tree count per seed")
    print(f"shared parts: pipeline training features {features['wall_s']:.0f} s; mlforecast loading "
          f"{peer_timings['load_s']:.0f} s + features {peer_timings['features_s']:.0f} s")
    print(f"{'seed':>9} {'trees':>6} | {'pipeline s':>10} {'(train':>7} {'compile':>8} {'predict)':>9} {'WRMSSE':>7} | "
          f"{'mlforecast s':>12} {'(train':>7} {'predict)':>9} {'WRMSSE':>7}")
    for r in runs:
        o, m = r["ours"], r["mlforecast"]
        print(f"{r['seed']:>9} {r['trees']:>6} | {o['total_s']:>10.1f} {o['train_s']:>7.0f} {o['compile_s']:>8.0f} "
              f"{o['predict_s']:>9.0f} {o['wrmsse']:>7.4f} | {m['total_s']:>12.1f} {m['train_s']:>7.0f} "
              f"{m['predict_s']:>9.0f} {m['wrmsse']:>7.4f}")
    print(f"median end to end: pipeline {median('ours')} s, mlforecast {median('mlforecast')} s "
          f"(mlforecast / pipeline = {report['speedup']}); mean WRMSSE: pipeline {mean('ours')}, "
          f"mlforecast {mean('mlforecast')}; peak memory: pipeline {ours_peak:.0f} MB, mlforecast "
          f"{peer['peak_tree_rss_mb']:.0f} MB; baselines {baselines}; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
