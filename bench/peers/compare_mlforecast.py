"""The pipeline against mlforecast on the same world: time, memory and WRMSSE of one training date.

    python bench/peers/compare_mlforecast.py --scale full10 [--date 2016-05-22]

Both learn from the snapshot of DATE, with the same training window, the same
LightGBM parameters and number of trees (the pipeline's early-stopped model's),
and forecast the 28 days after DATE, which the world holds as actuals. Timed,
each as its own process under ``/usr/bin/time -v``:

* the pipeline: training features, LightGBM training, TL2cgen compilation,
  scoring features and compiled scoring (Luigi tasks, as a deployment runs them);
* mlforecast (bench/.venv-mlforecast): feature building, training, prediction.

Snapshot extraction and data checks are done first and not timed (both read
the same snapshot). Both forecasts are scored with the pipeline's WRMSSE
against the snapshot of DATE + 28. Writes bench/peers-mlforecast-<scale>.json
and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from run import LUIGI, PY, measured  # noqa: E402

from pipeline import storage  # noqa: E402
from pipeline.world import SCALES  # noqa: E402

MLF_PY = ROOT / "bench" / ".venv-mlforecast" / "bin" / "python"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full10", choices=sorted(SCALES))
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2016, 5, 22))
    parser.add_argument("--seed", type=int, help="LightGBM seed for both (default: luigi.cfg's); "
                        "runs with other seeds show how much of a WRMSSE difference is chance")
    parser.add_argument("--data", default=str(ROOT / "bench" / "data"), help="home of the worlds (as bench/run.py's)")
    parser.add_argument("--results", default=str(ROOT / "bench"), help="folder of peers-mlforecast-<scale>.json")
    args = parser.parse_args(argv)
    home = Path(args.data) / args.scale
    world, data = home / "world.sqlite", home / "data"
    if not world.exists():
        raise SystemExit(f"no world at {world}: run `make bench SCALE={args.scale}` first")
    if not MLF_PY.exists():
        raise SystemExit(f"no mlforecast environment at {MLF_PY.parent.parent}: `make bench-mlforecast` creates it")
    d, later = args.date, args.date + dt.timedelta(days=28)
    # the pipeline's model of DATE serves DATE (no promotion gate: that is not part of the comparison)
    cfg = Path(tempfile.mkdtemp(prefix="bench-cfg-")) / "luigi.cfg"
    cfg.write_text(f"[training]\nserve_model = {d.isoformat()}\n" + (f"seed = {args.seed}\n" if args.seed is not None else ""))
    env = {**os.environ, "PIPELINE_DATABASE_URL": f"sqlite:///{world}", "PIPELINE_DATA_DIR": str(data),
           "LUIGI_CONFIG_PATH": str(cfg)}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    luigi = [LUIGI, "--module", "pipeline", "--local-scheduler", "--no-lock", "--log-level", "WARNING"]
    print(f"compare {args.scale} {d}: preparing snapshots (not timed)", file=sys.stderr)
    for task in (["CheckSnapshot", "--date", d.isoformat()], ["ExtractSnapshot", "--date", later.isoformat()]):
        subprocess.run(luigi + task, env=env, check=True, capture_output=True)
    for stage in ("features", "models", "compiled", "forecasts"):  # the compared stages run from scratch
        shutil.rmtree(data / stage / d.isoformat(), ignore_errors=True)

    ours = [measured("ours-features", luigi + ["BuildTrainingFeatures", "--date", d.isoformat()], env),
            measured("ours-train", luigi + ["TrainModel", "--date", d.isoformat()], env),
            measured("ours-compile", luigi + ["CompileModel", "--date", d.isoformat()], env),
            measured("ours-predict", luigi + ["DailyForecast", "--date", d.isoformat()], env)]
    meta = storage.read_json(data / "models" / d.isoformat() / "metadata.json")
    spec = {"window_days": 365, "valid_days": 28, "params": meta["params"],
            "num_trees": meta["metrics"]["best_iteration"]}
    peer_dir = home / "mlforecast" / d.isoformat()
    spec_path = peer_dir.parent / "spec.json"
    peer_dir.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec))
    peer = measured("mlforecast", [str(MLF_PY), str(ROOT / "bench" / "peers" / "mlforecast_run.py"),
                                   str(data / "snapshots" / d.isoformat()), d.isoformat(), str(spec_path), str(peer_dir)],
                    env)
    peer_timings = json.loads((peer_dir / "timings.json").read_text())

    import pandas as pd

    from pipeline import evaluate

    snap, later_snap = data / "snapshots" / d.isoformat(), data / "snapshots" / later.isoformat()
    mine = pd.read_parquet(data / "forecasts" / d.isoformat() / "forecast.parquet")
    theirs = pd.read_parquet(peer_dir / "forecast.parquet")
    theirs = theirs.merge(mine[["item_id", "store_id", "date"]].astype({"item_id": str, "store_id": str}),
                          on=["item_id", "store_id", "date"], how="right")  # the same (series, day) pairs
    if theirs["units"].isna().any():
        raise SystemExit(f"mlforecast forecast lacks {int(theirs['units'].isna().sum())} of the pipeline's rows")

    def wrmsse(forecast):
        table = evaluate.evaluate(forecast, snap, later_snap, d)
        pick = table[(table["metric"] == "wrmsse") & (table["level"] == "all")].set_index("model")["value"]
        return {m: round(float(v), 4) for m, v in pick.items()}

    ours_scores, peer_scores = wrmsse(mine), wrmsse(theirs)
    ours_wall = sum(s["wall_s"] for s in ours)
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "scale": args.scale,
        "run_date": d.isoformat(), "series": int(mine.groupby(["item_id", "store_id"]).ngroups),
        "trees": spec["num_trees"], "seed": meta["params"]["seed"], "cpus": os.cpu_count(),
        "ours": {"stages": ours, "wall_s": round(ours_wall, 1), "peak_rss_mb": max(s["peak_tree_rss_mb"] for s in ours),
                 "wrmsse": ours_scores["model"]},
        "mlforecast": {"wall_s": peer["wall_s"], "peak_rss_mb": peer["peak_tree_rss_mb"], "parts": peer_timings,
                       "wrmsse": peer_scores["model"]},
        "baselines_wrmsse": {k: v for k, v in ours_scores.items() if k != "model"},
        "speedup": round(peer["wall_s"] / ours_wall, 2),
    }
    out = Path(args.results) / f"peers-mlforecast-{args.scale}{'' if args.seed is None else f'-seed{args.seed}'}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{args.scale}: {report['series']:,} series, run date {d}, {spec['num_trees']} trees, same LightGBM parameters "
          f"(seed {report['seed']})")
    print(f"{'':<12} {'wall s':>8} {'peak RSS MB':>12} {'WRMSSE':>8}   (peak RSS: the process tree's, sampled)")
    print(f"{'pipeline':<12} {ours_wall:8.1f} {report['ours']['peak_rss_mb']:12.0f} {ours_scores['model']:8.4f}"
          f"   (features {ours[0]['wall_s']:.0f} s, training {ours[1]['wall_s']:.0f} s, compile {ours[2]['wall_s']:.0f} s, "
          f"predict {ours[3]['wall_s']:.0f} s)")
    print(f"{'mlforecast':<12} {peer['wall_s']:8.1f} {report['mlforecast']['peak_rss_mb']:12.0f} {peer_scores['model']:8.4f}"
          f"   (load {peer_timings['load_s']:.0f} s, features {peer_timings['features_s']:.0f} s, training "
          f"{peer_timings['train_s']:.0f} s, predict {peer_timings['predict_s']:.0f} s)")
    print(f"mlforecast's wall time / the pipeline's: {report['speedup']}; baselines WRMSSE {report['baselines_wrmsse']}; "
          f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
