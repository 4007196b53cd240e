"""``make bench-accuracy [CONFIG=file.cfg]``: the accuracy panel of the pipeline under one configuration.

    python -m bench.accuracy [--config FILE] [--cases a,b | --quick] [--no-peer] [--rerun]

For every case of ``bench.accuracy.cases`` and each of its origins: the case's world (kept
under bench/data/accuracy/<case>/), the pipeline's forecast and evaluation under the
configuration (``bench.accuracy.pipeline_run``), the mlforecast reference's forecast of the same
origin (``bench.accuracy.peer``; kept between runs, it does not depend on the configuration),
both scored with the pipeline's WRMSSE (``bench.accuracy.scores``). Per case and for the panel
(all cases, the tune half, the confirm half): the mean over the origins of the WRMSSE (all
levels and each of the 12) and of the 28-day total's bias, for the pipeline, the reference,
seasonal naive and the 28-day average; the wall time of each side.

The whole panel writes bench/accuracy-<config>.json (<config>: the file's name without .cfg;
``default`` = no extra settings) and docs/accuracy-panel.md (with a comparison against
bench/accuracy-default.json when the config is another); a subset (--cases, --quick) writes
bench/data/accuracy/accuracy-<config>-subset.json and no docs unless --results/--docs say so.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.accuracy import cases as panel_cases  # noqa: E402
from bench.accuracy import peer, pipeline_run, scores, table, worlds  # noqa: E402

DEFAULT_CONFIG = ROOT / "bench" / "accuracy" / "configs" / "default.cfg"
BASELINE = "default"


def say(message: str) -> None:
    print(f"[{dt.datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def shown(path: Path) -> str:
    """A path as the results show it: relative to the project root when under it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def code_state() -> dict:
    """The commit and the files changed from it (the pipeline's outputs are keyed by configuration, not code)."""
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout  # noqa: E731
    # porcelain lines are "XY path": the two status letters (either may be a space), a space, the path
    changed = [ln[3:] for ln in git("status", "--porcelain", "--", "pipeline", "tasks", "luigi.cfg").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "changed_files": sorted(changed)}


def run_case(case, home: Path, config_name: str, config_file: Path | None, with_peer: bool, rerun: bool) -> dict:
    world = worlds.ensure_world(case, home)
    if rerun:
        pipeline_run.forget_model_outputs(home / "data", case.origins)
    records = []
    # latest origin first: each origin's chain then makes its own snapshots (the evaluation of an
    # earlier origin needs the later one's snapshot, made by then), so the forecast times compare
    for origin in sorted(case.origins, reverse=True):
        what = f"{case.name} {origin}"
        ours = pipeline_run.run_origin(world, home, config_name, config_file, origin, what, min(case.origins))
        took = "kept" if ours["kept"] else f"{ours['forecast_s']:.0f} s"
        say(f"{what}: pipeline {took} ({ours['trees']} trees)")
        folders = {k: Path(v) for k, v in ours["folders"].items()}
        theirs = None
        if with_peer:
            theirs = peer.run_origin(folders["snapshot"], origin, home / "mlforecast" / origin.isoformat(), what)
            took = "kept" if theirs["kept"] else f"{theirs['total_s']:.0f} s"
            say(f"{what}: mlforecast reference {took}")
        numbers = scores.origin_numbers(folders, origin,
                                        home / "mlforecast" / origin.isoformat() / "forecast.parquet" if with_peer else None)
        records.append({"origin": origin.isoformat(), **numbers,
                        "pipeline": {**{k: ours[k] for k in ("forecast_s", "evaluate_s", "trees", "kept", "measured_at")},
                                     "folders": {k: shown(v) for k, v in folders.items()}},
                        "mlforecast": None if theirs is None else
                        {k: theirs.get(k) for k in ("total_s", "train_s", "process_s", "train_rows", "kept")}})
        say(f"{what}: WRMSSE " + ", ".join(f"{s} {records[-1]['wrmsse'][s]['all']:.4f}"
                                            for s in scores.SIDES if s in records[-1]["wrmsse"]))
    records.sort(key=lambda r: r["origin"])
    return {"name": case.name, "role": case.role, "source": case.source, "what": case.describe(),
            "scale": case.scale, "seed": case.seed, "dynamics": case.dynamics if case.source != "m5" else None,
            "origins": records, "mean": summarize(records)}


def summarize(records: list[dict]) -> dict:
    """Means over ``records`` (origins, or case means) of every side's WRMSSE per level and bias."""
    wrmsse = {s: {lv: scores.mean_of(records, ("wrmsse", s, lv)) for lv in scores.LEVEL_NAMES} for s in scores.SIDES}
    bias = {s: scores.mean_of(records, ("bias", s)) for s in scores.SIDES}
    out = {"wrmsse": {s: v for s, v in wrmsse.items() if v["all"] is not None},
           "bias": {s: v for s, v in bias.items() if v is not None}}
    for metric in ("wspl", "coverage_95"):  # the quantile forecasts' numbers, where every record has them
        means = {s: scores.mean_of(records, (metric, s)) for s in (scores.PIPELINE, "seasonal_naive")}
        if all(v is not None for v in means.values()):
            out[metric] = means
    return out


def time_sums(case: dict) -> dict:
    ours = [r["pipeline"]["forecast_s"] for r in case["origins"]]
    theirs = [r["mlforecast"]["total_s"] for r in case["origins"] if r["mlforecast"]]
    return {"pipeline_s": round(sum(ours), 1), "mlforecast_s": round(sum(theirs), 1) if theirs else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="extra luigi.cfg under test (default: bench/accuracy/configs/default.cfg, empty)")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--quick", action="store_true", help="one tiny case at one origin (or each --cases at one)")
    parser.add_argument("--no-peer", action="store_true", help="leave the mlforecast reference out")
    parser.add_argument("--rerun", action="store_true", help="remake the model's outputs (after a code change)")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data" / "accuracy", help="worlds and outputs")
    parser.add_argument("--results", type=Path, help="results JSON (default: see above)")
    parser.add_argument("--docs", type=Path, help="markdown table (default: docs/accuracy-panel.md for the whole panel)")
    args = parser.parse_args(argv)
    config_file = args.config.resolve()
    config_name = config_file.stem if config_file.suffix == ".cfg" else config_file.name
    chosen = panel_cases.select(args.cases, args.quick)
    whole = not args.cases and not args.quick
    results = args.results or (ROOT / "bench" / f"accuracy-{config_name}.json" if whole
                               else args.data / f"accuracy-{config_name}-subset.json")
    docs = args.docs or (ROOT / "docs" / "accuracy-panel.md" if whole else None)
    if os.environ.get("LUIGI_CONFIG_PATH"):
        say(f"LUIGI_CONFIG_PATH={os.environ['LUIGI_CONFIG_PATH']} is not read: the configuration under test is --config")
    peer_missing = None if not args.no_peer else "left out (--no-peer)"
    peer_missing = peer_missing or peer.available()
    if peer_missing:
        say(peer_missing)
    started = time.perf_counter()
    report = {"config": config_name, "config_file": shown(config_file), "config_text": config_file.read_text(),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "code": code_state(), "reference": peer_missing or "mlforecast 1.1.0, bench/peers/mlforecast_reference.py",
              "cases": [], "skipped": [], "failed": []}
    for case in chosen:
        say(f"case {case.name} ({case.role}): {case.describe()}, origins {', '.join(map(str, case.origins))}")
        try:
            done = run_case(case, args.data / case.name, config_name, config_file, not peer_missing, args.rerun)
        except worlds.Unavailable as exc:
            say(str(exc))
            report["skipped"].append({"case": case.name, "reason": str(exc)})
            continue
        except (RuntimeError, ValueError, OSError) as exc:
            say(f"case {case.name} FAILED: {exc}")
            report["failed"].append({"case": case.name, "error": str(exc)})
            continue
        done["time"] = time_sums(done)
        report["cases"].append(done)
    report["panel"] = {part: {"cases": [c["name"] for c in members], **summarize([c["mean"] for c in members])}
                       for part, members in (("all", report["cases"]),
                                             ("tune", [c for c in report["cases"] if c["role"] == "tune"]),
                                             ("confirm", [c for c in report["cases"] if c["role"] == "confirm"]))}
    report["run_s"] = round(time.perf_counter() - started, 1)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2) + "\n")
    say(f"results in {results} ({report['run_s'] / 60:.1f} min)")
    if docs is not None:
        baseline_file = ROOT / "bench" / f"accuracy-{BASELINE}.json"
        before = (json.loads(baseline_file.read_text())
                  if config_name != BASELINE and baseline_file.exists() and baseline_file != results else None)
        table.write(docs, report, before)
        say(f"table in {docs}")
    print(table.summary_lines(report))
    return 1 if report["failed"] else 0
