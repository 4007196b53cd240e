"""``make bench [SCALE=demo|full]``: time the pipeline's stages on a generated world, one table.

Each stage runs as its own process under ``/usr/bin/time -v`` (wall, CPU, peak RSS of the
process tree's largest member), in the order a real deployment meets them:

  generate        the synthetic world into bench/data/<scale>/world.sqlite (skipped if present)
  snapshot-fresh  the first snapshot (2016-05-14), read from scratch
  retrain-*       training date 2016-05-15, part by part: incremental snapshot + data checks,
                  training features, LightGBM training, TL2cgen compilation (+ its check), the
                  quantile calibration of the new model, and their total
  online-warmup   the online model's first state on 2016-05-15 (the bench starts it there), warmed
                  up over [online_model] warmup_days days, one day at a time
  daily           run date 2016-05-16 with the existing model: incremental snapshot, checks,
                  features, promotion (first model), the online model's update and forecast, Dask
                  scoring and the blend, writes (files + forecasts table), quantiles, monitoring
  online-*        the next day (2016-05-17): its snapshot and checks (next-snapshot), then the online
                  model's daily update alone (online-update) and its forecast (online-forecast)
  score-*         30,490 x 28 scoring rows (or the scale's): LightGBM predict vs the compiled
                  TL2cgen blocks vs lleaves (bench/peers/scoring.py), same rows, same threads,
                  median of 5, outputs compared

Each stage's measurement is kept under bench/data/<scale>/stages/; ``--reuse`` reports a finished
stage from there (marked "kept", with the time it was measured) instead of running it again.
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
LUIGI = str(Path(PY).parent / "luigi")
sys.path.insert(0, str(ROOT))
from pipeline.tools.world import SCALES  # noqa: E402

FIRST, TRAIN, DAILY = dt.date(2016, 5, 14), dt.date(2016, 5, 15), dt.date(2016, 5, 16)
NEXT = DAILY + dt.timedelta(days=1)


def bench_config(home: Path, env: dict) -> Path:
    """The luigi.cfg of the bench's processes: the caller's (LUIGI_CONFIG_PATH), with the online model starting
    on the training date, so that the daily run updates it once instead of walking from the project's start."""
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    if env.get("LUIGI_CONFIG_PATH"):
        cfg.read(env["LUIGI_CONFIG_PATH"])
    if not cfg.has_section("online_model"):
        cfg.add_section("online_model")
    cfg.set("online_model", "start_date", TRAIN.isoformat())
    path = home / "bench-luigi.cfg"
    with path.open("w") as f:
        cfg.write(f)
    return path


def _tree_rss_sampler(pid: int, peak: list, stop: threading.Event) -> None:
    """Keep in ``peak[0]`` the largest sum of RSS over ``pid`` and its descendants (Dask workers)."""
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.wait(0.2):
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        peak[0] = max(peak[0], total)


def measured(name: str, cmd: list[str], env: dict, rows: int | None = None) -> dict:
    """Run ``cmd`` under GNU time; wall, CPU, peak RSS of its largest process and of its whole process tree.

    The tree's peak is sampled every 0.2 s (a sum of RSS: shared pages count once per process, so an
    upper bound); it covers the Dask worker processes, which GNU time's figure does not add up.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-v", *cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak, stop = [0], threading.Event()
    sampler = threading.Thread(target=_tree_rss_sampler, args=(proc.pid, peak, stop), daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"bench: stage {name} failed (exit {done.returncode})")
    stats = dict(re.findall(r"^\s*(.+?): (.+)$", done.stderr, flags=re.M))
    cpu = float(stats["User time (seconds)"]) + float(stats["System time (seconds)"])
    result = {"stage": name, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
              "peak_rss_mb": round(int(stats["Maximum resident set size (kbytes)"]) / 1024, 1),
              "peak_tree_rss_mb": round(peak[0] / 2**20, 1), "rows": rows}
    result["rows_per_s"] = round(rows / wall) if rows else None
    print(f"  {name:<16} {wall:8.1f} s", file=sys.stderr, flush=True)
    return result


def output_folder(env: dict, task: str, date: dt.date) -> Path:
    """Where ``task`` of ``date`` writes under the bench's configuration (its fingerprint folder)."""
    done = subprocess.run([PY, "-m", "tasks.show", "--date", date.isoformat(), "--path", task],
                          env=env, capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="demo", choices=sorted(SCALES))
    parser.add_argument("--fresh", action="store_true", help="delete this scale's outputs (not the world) first")
    parser.add_argument("--reuse", action="store_true",
                        help="keep finished stages and report their kept measurements instead of rerunning them")
    parser.add_argument("--data", default=str(ROOT / "bench" / "data"), help="home of the worlds and their outputs")
    parser.add_argument("--results", default=str(ROOT / "bench"), help="folder of results.json and results-<scale>.json")
    parser.add_argument("--no-lleaves", action="store_true",
                        help="skip lleaves in the scoring comparison (its compilation of a full model takes many minutes)")
    parser.add_argument("--stop-after", metavar="STAGE", help="run the stages up to this one, then stop (no table)")
    args = parser.parse_args(argv)
    home = Path(args.data) / args.scale
    world = home / "world.sqlite"
    data = home / "data"
    if args.fresh or not world.exists():
        shutil.rmtree(data, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PIPELINE_DATABASE_URL": f"sqlite:///{world}", "PIPELINE_DATA_DIR": str(data)}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    env["LUIGI_CONFIG_PATH"] = str(bench_config(home, env))
    luigi = [LUIGI, "--module", "pipeline", "--local-scheduler", "--no-lock", "--log-level", "WARNING"]
    print(f"bench {args.scale}: {home}", file=sys.stderr)

    results = []
    generated = home / "generate.json"  # the world is generated once; its measurement is kept beside it
    if not world.exists():
        partial = world.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        stage = measured("generate", [PY, "-m", "pipeline.tools.world", "--scale", args.scale,
                                      "--url", f"sqlite:///{partial}"], env)
        generated.write_text(json.dumps(stage))
        partial.rename(world)
    if generated.exists():
        results.append(json.loads(generated.read_text()))
    if args.stop_after == "generate":
        print("bench: stopped after generate; continue with --reuse", file=sys.stderr)
        return 0
    import sqlalchemy as sa

    with sa.create_engine(f"sqlite:///{world}").connect() as conn:
        n_series = conn.execute(sa.text("SELECT count(*) FROM (SELECT DISTINCT store_id, item_id FROM sales "
                                        "WHERE date = :d)"), {"d": FIRST.isoformat()}).scalar()
        n_rows = conn.execute(sa.text("SELECT count(*) FROM sales WHERE recorded_at < :t"),
                              {"t": f"{FIRST + dt.timedelta(days=1)} 00:00:00.000000"}).scalar()

    # Each stage is its own process, in the order a deployment meets them; its measurement is kept
    # beside the world (bench/data/<scale>/stages/<name>.json), so `--reuse` can report a stage that
    # is already done (with the date it was measured) instead of running it again.
    stages_dir = home / "stages"
    if not args.reuse:
        for d in (FIRST, TRAIN, DAILY, NEXT):
            for stage in ("snapshots", "quality", "features", "models", "compiled", "promotions", "forecasts",
                          "calibration", "quantiles", "monitoring", "online_model", "online_forecasts"):
                shutil.rmtree(data / stage / d.isoformat(), ignore_errors=True)
        shutil.rmtree(stages_dir, ignore_errors=True)
    stages_dir.mkdir(exist_ok=True)
    plan = [
        ("snapshot-fresh", ["ExtractSnapshot", "--date", FIRST.isoformat()], n_rows),
        # the scheduled retrain, split into its parts: incremental snapshot + checks, features, training, compilation
        ("retrain-snapshot", ["CheckSnapshot", "--date", TRAIN.isoformat()], None),
        ("retrain-features", ["BuildTrainingFeatures", "--date", TRAIN.isoformat()], None),
        ("retrain-train", ["TrainModel", "--date", TRAIN.isoformat()], None),
        ("retrain-compile", ["CompileModel", "--date", TRAIN.isoformat()], None),
        # the quantile coefficients of the new model: once per training date, so a part of the retrain
        ("retrain-calibrate", ["CalibrateQuantiles", "--date", TRAIN.isoformat()], None),
        ("online-warmup", ["UpdateOnlineModel", "--date", TRAIN.isoformat()], None),
        ("daily", ["DailyForecast", "--date", DAILY.isoformat()], n_series * 28),
        ("next-snapshot", ["CheckSnapshot", "--date", NEXT.isoformat()], None),
        ("online-update", ["UpdateOnlineModel", "--date", NEXT.isoformat()], n_series),
        ("online-forecast", ["ForecastOnline", "--date", NEXT.isoformat()], n_series * 28),
    ]
    for name, task, rows in plan:
        kept = stages_dir / f"{name}.json"
        if args.reuse and kept.exists():
            results.append({**json.loads(kept.read_text()), "kept": True})
        else:
            stage = {**measured(name, luigi + task, env, rows=rows),
                     "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            kept.write_text(json.dumps(stage))
            results.append(stage)
        if name == args.stop_after:  # a kept stage stops the run too
            print(f"bench: stopped after {name}; continue with --reuse", file=sys.stderr)
            return 0
    parts = [r for r in results if r["stage"].startswith("retrain-")]
    results.insert(results.index(parts[-1]) + 1, {
        "stage": "retrain (total)", "wall_s": round(sum(r["wall_s"] for r in parts), 2),
        "cpu_s": round(sum(r["cpu_s"] for r in parts), 2), "peak_rss_mb": max(r["peak_rss_mb"] for r in parts),
        "peak_tree_rss_mb": max((r.get("peak_tree_rss_mb") or 0) for r in parts) or None,
        "rows": None, "rows_per_s": None})
    model_dir = output_folder(env, "TrainModel", TRAIN)
    score = subprocess.run([PY, str(ROOT / "bench" / "peers" / "scoring.py"),
                            str(output_folder(env, "BuildFeatures", DAILY)), str(model_dir),
                            str(output_folder(env, "CompileModel", TRAIN)), "2", str(home / "scoring"),
                            "no-lleaves" if args.no_lleaves else "lleaves"],
                           env=env, capture_output=True, text=True)
    if score.returncode != 0:
        sys.stderr.write(score.stderr[-3000:])
        raise SystemExit("bench: scoring comparison failed")
    s = json.loads(score.stdout.strip().splitlines()[-1])
    for name, key in (("score-lightgbm", "lightgbm_s"), ("score-tl2cgen", "tl2cgen_s"), ("score-lleaves", "lleaves_s")):
        if s.get(key) is None:
            continue
        results.append({"stage": name, "wall_s": round(s[key], 3), "cpu_s": None, "peak_rss_mb": None,
                        "rows": s["rows"], "rows_per_s": round(s["rows"] / s[key])})
    train_meta = json.loads((model_dir / "metadata.json").read_text())
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "scale": args.scale, "series": n_series,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "training_rows": train_meta["metrics"]["train_rows"] + train_meta["metrics"]["valid_rows"],
        "best_iteration": train_meta["metrics"]["best_iteration"],
        "scoring": {**s, "tl2cgen_speedup": round(s["lightgbm_s"] / s["tl2cgen_s"], 2),
                    "lleaves_speedup": round(s["lightgbm_s"] / s["lleaves_s"], 2) if s.get("lleaves_s") else None},
        "stages": results,
    }
    out = Path(args.results) / "results.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    # the latest of each scale too: bench/scaling.py reads them, docs/benchmarks.md quotes them
    (Path(args.results) / f"results-{args.scale}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nscale {args.scale}: {n_series} series, {report['machine']['cpus']} CPUs, {report['date']}")
    print(f"{'stage':<18} {'wall s':>9} {'CPU s':>9} {'peak RSS MB':>12} {'tree RSS MB':>12} {'rows':>12} {'rows/s':>12}")
    for r in results:
        fmt = lambda v, f: (f.format(v) if v is not None else "-")  # noqa: E731
        print(f"{r['stage']:<18} {fmt(r['wall_s'], '{:9.2f}'):>9} {fmt(r['cpu_s'], '{:9.1f}'):>9} "
              f"{fmt(r['peak_rss_mb'], '{:12.0f}'):>12} {fmt(r.get('peak_tree_rss_mb'), '{:12.0f}'):>12} "
              f"{fmt(r['rows'], '{:12,}'):>12} {fmt(r['rows_per_s'], '{:12,}'):>12}")
    sc = report["scoring"]
    print(f"compiled scoring ({sc['rows']:,} rows, {sc['threads']} threads, median of 5): TL2cgen "
          f"{sc['tl2cgen_speedup']}x LightGBM's predict (max |difference| {sc['tl2cgen_max_abs_diff']:.1e})"
          + (f", lleaves {sc['lleaves_speedup']}x (max |difference| {sc['lleaves_max_abs_diff']:.1e})"
             if sc.get("lleaves_s") else ", lleaves not run (--no-lleaves, or no bench/.venv-lleaves)"))
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
