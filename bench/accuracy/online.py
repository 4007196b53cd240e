"""``make bench-online``: the online model (issue 18) on the accuracy panel's cases, beside the batch pipeline.

    python -m bench.accuracy.online [--cases a,b] [--learner linear] [--learning-rate 0.0001] [--name NAME]

For every case of ``bench.accuracy.cases``: its world (the panel's own, under
bench/data/accuracy/<case>/), the online model started on the case's first origin (warmed up
over ``[online_model] warmup_days`` days up to it, then updated one day at a time through the
last origin), its forecast of every origin scored with the pipeline's ``evaluate_run`` (WRMSSE of
all and the 12 levels, the 28-day total's bias, the baselines), and its daily progressive-
validation MAE. The batch pipeline's and the mlforecast reference's numbers are those of the
panel's last full run (bench/accuracy-default.json): the same worlds, which this run checks by
recomputing seasonal naive's WRMSSE of every origin and comparing it with the recorded one.

Writes bench/accuracy-online-<name>.json and prints the table (docs/online-model.md quotes it).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.accuracy import cases as panel_cases  # noqa: E402
from bench.accuracy import pipeline_run, scores, worlds  # noqa: E402
from bench.accuracy.runner import machine, say  # noqa: E402

PANEL = ROOT / "bench" / "accuracy-default.json"
LEVELS = ["all", "total", "state", "store", "cat", "dept", "state_cat", "state_dept", "store_cat", "store_dept",
          "item", "item_state", "item_store"]


def config_file(home: Path, name: str, start: dt.date, learner: str, learning_rate: float, warmup: int) -> Path:
    path = home / "configs" / "online" / f"{name}.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    # The online model walks every day from the first origin on, each day's snapshot checked; the small
    # generated worlds have single days the daily-total outlier check flags (an event, chance on a few
    # hundred units), which would stop the walk there. The panel accepts that one check, as an operator
    # would after looking (pipeline_run.ONLINE_SETTINGS, shared with make bench-accuracy); the others stay hard.
    extra = "".join(f"\n[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
                    for section, values in pipeline_run.ONLINE_SETTINGS.items())
    path.write_text(f"[online_model]\nstart_date = {start}\nwarmup_days = {warmup}\nlearner = {learner}\n"
                    f"learning_rate = {learning_rate}\n" + extra)
    return path


def score_origin(origin: dt.date) -> dict:
    """In the case's environment: the online forecast of ``origin`` scored like Evaluate scores a forecast."""
    import pandas as pd

    import tasks
    from pipeline.stages import evaluate, online_model
    from tasks import config

    later = config.forecast_spec().last_target_date(origin)
    forecast = pd.read_parquet(tasks.ForecastOnline(date=origin).output().file("forecast.parquet"))
    table, totals = evaluate.evaluate_run(forecast, tasks.ExtractSnapshot(date=origin).output().path,
                                          tasks.ExtractSnapshot(date=later).output().path, origin)
    progressive = online_model.read_progressive(tasks.UpdateOnlineModel(date=origin).output().path)
    models = sorted(set(table["model"]))
    return {"wrmsse": {m: scores._wrmsse(table, m) for m in models},
            "bias": {m: scores._bias(totals, m) for m in models},
            "progressive_mae_28": float(progressive["mae"].tail(28).mean())}


def recorded(panel: dict, case: str, origin: dt.date) -> dict | None:
    for c in panel.get("cases", []):
        if c["name"] == case:
            for o in c["origins"]:
                if o["origin"] == origin.isoformat():
                    return o
    return None


def run_case(case, home: Path, args, panel: dict) -> dict:
    world = worlds.ensure_world(case, home)
    start = min(case.origins)
    cfg = config_file(home, args.name, start, args.learner, args.learning_rate, args.warmup_days)
    env = pipeline_run.environment(world, home / "data", cfg)
    out = []
    for origin in sorted(case.origins):
        what = f"{case.name} {origin}"
        t0 = time.perf_counter()
        pipeline_run._luigi(env, "ForecastOnline", origin, what)
        took = time.perf_counter() - t0
        pipeline_run._luigi(env, "ExtractSnapshot", origin + dt.timedelta(days=28), what)
        done = subprocess.run([sys.executable, "-m", "bench.accuracy.online", "--score", origin.isoformat()],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{what}: scoring failed: {done.stderr.strip()[-800:]}")
        numbers = json.loads(done.stdout.strip().splitlines()[-1])
        row = {"origin": origin.isoformat(), "online_s": round(took, 1), **numbers}
        rec = recorded(panel, case.name, origin)
        if rec is not None:
            same = abs(rec["wrmsse"]["seasonal_naive"]["all"] - numbers["wrmsse"]["seasonal_naive"]["all"]) < 1e-9
            row["panel"] = {"same_world": same, "pipeline": rec["wrmsse"]["pipeline"],
                            "mlforecast": rec["wrmsse"].get("mlforecast"), "bias": rec["bias"]}
        say(f"{what}: online {numbers['wrmsse']['model']['all']:.4f}"
            + (f", pipeline {rec['wrmsse']['pipeline']['all']:.4f}" if rec else "")
            + f", seasonal naive {numbers['wrmsse']['seasonal_naive']['all']:.4f} ({took:.0f} s)")
        out.append(row)
    return {"name": case.name, "role": case.role, "what": case.describe(), "origins": out}


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def table(report: dict) -> str:
    lines = ["| case | role | online model | batch pipeline | mlforecast reference | seasonal naive | "
             "online / pipeline | online bias | progressive MAE (28 d) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = []
    for c in report["cases"]:
        o = c["origins"]
        online = mean(r["wrmsse"]["model"]["all"] for r in o)
        pipe = mean(r.get("panel", {}).get("pipeline", {}).get("all") for r in o)
        ref = mean((r.get("panel", {}).get("mlforecast") or {}).get("all") for r in o)
        snaive = mean(r["wrmsse"]["seasonal_naive"]["all"] for r in o)
        bias = mean(r["bias"]["model"] for r in o)
        pv = mean(r["progressive_mae_28"] for r in o)
        rows.append((online, pipe, ref, snaive))
        f = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
        lines.append(f"| {c['name']} | {c['role']} | {f(online)} | {f(pipe)} | {f(ref)} | {f(snaive)} | "
                     f"{'–' if not pipe else f'{online / pipe:.3f}'} | {100 * bias:+.1f} % | {pv:.3f} |")
    cols = list(zip(*rows)) if rows else [[], [], [], []]
    m = [mean(col) for col in cols]
    f = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
    lines.append(f"| panel mean | | {f(m[0])} | {f(m[1])} | {f(m[2])} | {f(m[3])} | "
                 f"{'–' if not m[1] else f'{m[0] / m[1]:.3f}'} | | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--learner", default="linear")
    parser.add_argument("--learning-rate", type=float, default=0.0001)
    parser.add_argument("--warmup-days", type=int, default=365)
    parser.add_argument("--name", default="default", help="names the results file and the cases' config files")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data" / "accuracy")
    parser.add_argument("--score", metavar="ORIGIN", help=argparse.SUPPRESS)  # internal: one origin, in its env
    args = parser.parse_args(argv)
    if args.score:
        print(json.dumps(score_origin(dt.date.fromisoformat(args.score))))
        return 0
    panel = json.loads(PANEL.read_text()) if PANEL.exists() else {}
    started = time.perf_counter()
    report = {"name": args.name, "learner": args.learner, "learning_rate": args.learning_rate,
              "warmup_days": args.warmup_days, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "panel_results": str(PANEL.relative_to(ROOT)), "cases": [], "skipped": [],
              "failed": []}
    for case in panel_cases.select(args.cases):
        try:
            report["cases"].append(run_case(case, args.data / case.name, args, panel))
        except worlds.Unavailable as exc:
            report["skipped"].append({"case": case.name, "reason": str(exc)})
        except (RuntimeError, ValueError, OSError) as exc:
            say(f"case {case.name} FAILED: {exc}")
            report["failed"].append({"case": case.name, "error": str(exc)})
    report["run_s"] = round(time.perf_counter() - started, 1)
    out = ROOT / "bench" / f"accuracy-online-{args.name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    say(f"results in {out} ({report['run_s'] / 60:.1f} min)")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
