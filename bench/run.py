"""``make bench [SCALE=demo|full]``: time the pipeline's stages on a generated world, one table.

Each stage runs as its own process under ``/usr/bin/time -v`` (wall, CPU, peak RSS of the
process tree's largest member), in the order a real deployment meets them:

  generate        the synthetic world into bench/data/<scale>/world.sqlite (skipped if present)
  snapshot-fresh  the first snapshot (2016-05-14), read from scratch
  retrain         training date 2016-05-15: incremental snapshot, data checks, training
                  features, LightGBM training, TL2cgen compilation (+ its check)
  daily           run date 2016-05-16 with the existing model: incremental snapshot, checks,
                  features, promotion (first model), Dask scoring, writes (files + forecasts table)
  score-*         30,490 x 28 scoring rows (or the scale's): LightGBM predict vs the compiled
                  library, same rows, same threads, median of 5, outputs compared

Writes bench/results.json and prints the table. Nothing here is a pass/fail test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
LUIGI = str(Path(PY).parent / "luigi")
FIRST, TRAIN, DAILY = dt.date(2016, 5, 14), dt.date(2016, 5, 15), dt.date(2016, 5, 16)


def measured(name: str, cmd: list[str], env: dict, rows: int | None = None) -> dict:
    """Run ``cmd`` under GNU time; wall, CPU and peak RSS."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"bench: stage {name} failed (exit {done.returncode})")
    stats = dict(re.findall(r"^\s*(.+?): (.+)$", done.stderr, flags=re.M))
    cpu = float(stats["User time (seconds)"]) + float(stats["System time (seconds)"])
    result = {"stage": name, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
              "peak_rss_mb": round(int(stats["Maximum resident set size (kbytes)"]) / 1024, 1), "rows": rows}
    result["rows_per_s"] = round(rows / wall) if rows else None
    print(f"  {name:<16} {wall:8.1f} s", file=sys.stderr, flush=True)
    return result


SCORING = r'''
import json, statistics, sys, time
import numpy as np
from pipeline import compile as C, features as F, train as T
feat_dir, model_dir, lib_dir, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
booster, meta = T.load_model(model_dir)
X = T.encode(F.read_feature_set(feat_dir), meta["vocab"], meta["features"])
def median_time(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
    return statistics.median(times), out
lgb_s, lgb_out = median_time(lambda: booster.predict(X, num_threads=threads))
import tl2cgen
pred = tl2cgen.Predictor(f"{lib_dir}/model.so", nthread=threads)
dm = tl2cgen.DMatrix(X)
tl_s, tl_out = median_time(lambda: pred.predict(dm).reshape(-1))
print(json.dumps({"rows": len(X), "lightgbm_s": lgb_s, "tl2cgen_s": tl_s,
                  "max_abs_diff": float(np.abs(tl_out - lgb_out).max())}))
'''


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="demo", choices=["tiny", "demo", "full"])
    parser.add_argument("--fresh", action="store_true", help="delete this scale's outputs (not the world) first")
    args = parser.parse_args(argv)
    home = ROOT / "bench" / "data" / args.scale
    world = home / "world.sqlite"
    data = home / "data"
    if args.fresh or not world.exists():
        shutil.rmtree(data, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PIPELINE_DATABASE_URL": f"sqlite:///{world}", "PIPELINE_DATA_DIR": str(data)}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    luigi = [LUIGI, "--module", "pipeline", "--local-scheduler", "--no-lock", "--log-level", "WARNING"]
    print(f"bench {args.scale}: {home}", file=sys.stderr)

    results = []
    generated = home / "generate.json"  # the world is generated once; its measurement is kept beside it
    if not world.exists():
        partial = world.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        stage = measured("generate", [PY, "-m", "pipeline.world", "--scale", args.scale,
                                      "--url", f"sqlite:///{partial}"], env)
        generated.write_text(json.dumps(stage))
        partial.rename(world)
    if generated.exists():
        results.append(json.loads(generated.read_text()))
    import sqlalchemy as sa

    with sa.create_engine(f"sqlite:///{world}").connect() as conn:
        n_series = conn.execute(sa.text("SELECT count(*) FROM (SELECT DISTINCT store_id, item_id FROM sales "
                                        "WHERE date = :d)"), {"d": FIRST.isoformat()}).scalar()
        n_rows = conn.execute(sa.text("SELECT count(*) FROM sales WHERE recorded_at < :t"),
                              {"t": f"{FIRST + dt.timedelta(days=1)} 00:00:00.000000"}).scalar()

    for d in (FIRST, TRAIN, DAILY):  # each stage starts from the state the previous one left
        for stage in ("snapshots", "quality", "features", "models", "compiled", "forecasts"):
            shutil.rmtree(data / stage / d.isoformat(), ignore_errors=True)
    results.append(measured("snapshot-fresh", luigi + ["ExtractSnapshot", "--date", FIRST.isoformat()], env, rows=n_rows))
    results.append(measured("retrain", luigi + ["CompileModel", "--date", TRAIN.isoformat()], env))
    results.append(measured("daily", luigi + ["DailyForecast", "--date", DAILY.isoformat()], env,
                            rows=n_series * 28))
    score = subprocess.run([PY, "-c", SCORING, str(data / "features" / DAILY.isoformat() / "score"),
                            str(data / "models" / TRAIN.isoformat()), str(data / "compiled" / TRAIN.isoformat()), "2"],
                           env=env, capture_output=True, text=True, check=True)
    s = json.loads(score.stdout.strip().splitlines()[-1])
    for name, key in (("score-lightgbm", "lightgbm_s"), ("score-tl2cgen", "tl2cgen_s")):
        results.append({"stage": name, "wall_s": round(s[key], 3), "cpu_s": None, "peak_rss_mb": None,
                        "rows": s["rows"], "rows_per_s": round(s["rows"] / s[key])})
    train_meta = json.loads((data / "models" / TRAIN.isoformat() / "metadata.json").read_text())
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "scale": args.scale, "series": n_series,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "training_rows": train_meta["metrics"]["train_rows"] + train_meta["metrics"]["valid_rows"],
        "best_iteration": train_meta["metrics"]["best_iteration"],
        "scoring": {**s, "speedup": round(s["lightgbm_s"] / s["tl2cgen_s"], 2)},
        "stages": results,
    }
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nscale {args.scale}: {n_series} series, {report['machine']['cpus']} CPUs, {report['date']}")
    print(f"{'stage':<16} {'wall s':>9} {'CPU s':>9} {'peak RSS MB':>12} {'rows':>12} {'rows/s':>12}")
    for r in results:
        fmt = lambda v, f: (f.format(v) if v is not None else "-")  # noqa: E731
        print(f"{r['stage']:<16} {fmt(r['wall_s'], '{:9.2f}'):>9} {fmt(r['cpu_s'], '{:9.1f}'):>9} "
              f"{fmt(r['peak_rss_mb'], '{:12.0f}'):>12} {fmt(r['rows'], '{:12,}'):>12} {fmt(r['rows_per_s'], '{:12,}'):>12}")
    print(f"compiled scoring: {report['scoring']['speedup']}x LightGBM's predict on the same rows and threads, "
          f"max |difference| {s['max_abs_diff']:.2e}; results in {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
