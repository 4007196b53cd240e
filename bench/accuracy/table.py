"""docs/accuracy-panel.md from a panel's results JSON, and the comparison of two configurations per case and level.

    python -m bench.accuracy.table AFTER.json [--before BEFORE.json] [--out docs/accuracy-panel.md]

Every number is the results file's, rounded for reading: WRMSSE to 4 places, bias (the 28-day
total over all series: forecast sum / actual sum - 1) in percent to one place.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.accuracy.scores import LEVEL_NAMES, PIPELINE, REFERENCE, SIDES  # noqa: E402

SIDE_TITLES = {PIPELINE: "pipeline", "online": "online model", REFERENCE: "mlforecast reference", "seasonal_naive": "seasonal naive",
               "moving_average_28": "28-day average"}
PARTS = (("tune", "panel mean, tune half"), ("confirm", "panel mean, confirm half"), ("all", "panel mean, all cases"))


def w(value) -> str:
    return "—" if value is None else f"{value:.4f}"


def pct(value) -> str:
    return "—" if value is None else f"{100 * value:+.1f} %"


def ratio(a, b) -> str:
    return "—" if a is None or b is None else f"{a / b:.3f}"


def _get(block: dict, side: str, level: str = "all"):
    return block.get("wrmsse", {}).get(side, {}).get(level)


def case_table(report: dict) -> list[str]:
    head = ("| case | role | world | origins | " + " | ".join(SIDE_TITLES[s] for s in SIDES)
            + " | pipeline / reference | bias: pipeline | bias: reference | trees | time: pipeline / reference |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for c in report["cases"]:
        m, t = c["mean"], c["time"]
        trees = "/".join(str(r["pipeline"]["trees"]) for r in c["origins"])
        took = f"{t['pipeline_s']:.0f} s / " + ("—" if t["mlforecast_s"] is None else f"{t['mlforecast_s']:.0f} s")
        lines.append(f"| {c['name']} | {c['role']} | {c['what']} | {len(c['origins'])} | "
                     + " | ".join(w(_get(m, s)) for s in SIDES)
                     + f" | {ratio(_get(m, PIPELINE), _get(m, REFERENCE))} | {pct(m['bias'].get(PIPELINE))} | "
                       f"{pct(m['bias'].get(REFERENCE))} | {trees} | {took} |")
    for part, title in PARTS:
        p = report["panel"][part]
        if not p["cases"]:
            continue
        lines.append(f"| **{title}** | | {len(p['cases'])} cases | | "
                     + " | ".join(f"**{w(_get(p, s))}**" for s in SIDES)
                     + f" | **{ratio(_get(p, PIPELINE), _get(p, REFERENCE))}** | {pct(p['bias'].get(PIPELINE))} | "
                       f"{pct(p['bias'].get(REFERENCE))} | | |")
    return lines


def origin_table(report: dict) -> list[str]:
    lines = ["| case | origin | " + " | ".join(SIDE_TITLES[s] for s in SIDES) + " | bias: pipeline | bias: reference "
             "| pipeline: trees, forecast time | reference: time |", "|" + " --- |" * (6 + len(SIDES))]
    for c in report["cases"]:
        for r in c["origins"]:
            ref = r["mlforecast"]
            lines.append(f"| {c['name']} | {r['origin']} | " + " | ".join(w(_get(r, s)) for s in SIDES)
                         + f" | {pct(r['bias'].get(PIPELINE))} | {pct(r['bias'].get(REFERENCE))} | "
                           f"{r['pipeline']['trees']}, {r['pipeline']['forecast_s']:.0f} s | "
                           + ("—" if ref is None else f"{ref['total_s']:.0f} s") + " |")
    return lines


def level_table(report: dict) -> list[str]:
    parts = [(part, title) for part, title in PARTS if report["panel"][part]["cases"]]
    lines = ["| level | " + " | ".join(f"{title}: pipeline / reference / seasonal naive" for _, title in parts) + " |",
             "|" + " --- |" * (len(parts) + 1)]
    for level in LEVEL_NAMES:
        cells = []
        for part, _ in parts:
            p = report["panel"][part]
            cells.append(f"{w(_get(p, PIPELINE, level))} / {w(_get(p, REFERENCE, level))} / "
                         f"{w(_get(p, 'seasonal_naive', level))}")
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return lines


def level_by_case(report: dict) -> list[str]:
    names = [c["name"] for c in report["cases"]]
    lines = ["| level | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]
    for level in LEVEL_NAMES:
        cells = []
        for c in report["cases"]:
            ours, ref = _get(c["mean"], PIPELINE, level), _get(c["mean"], REFERENCE, level)
            mark = "" if ref is None or ours is None else (" ✗" if ours > ref else " ✓")
            cells.append(f"{w(ours)} / {w(ref)}{mark}")
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return lines


def comparison(before: dict, after: dict) -> list[str]:
    """The pipeline's WRMSSE per case and level, ``before`` → ``after`` (cases in both only)."""
    old = {c["name"]: c for c in before["cases"]}
    both = [c for c in after["cases"] if c["name"] in old]
    lines = [f"The pipeline's WRMSSE (mean over each case's origins) under `{before['config']}` (before, "
             f"{before['date']}) and `{after['config']}` (after, {after['date']}); the change in percent.", "",
             "| level | " + " | ".join(c["name"] for c in both) + " |", "|" + " --- |" * (len(both) + 1)]
    for level in LEVEL_NAMES:
        cells = []
        for c in both:
            a, b = _get(old[c["name"]]["mean"], PIPELINE, level), _get(c["mean"], PIPELINE, level)
            cells.append(f"{w(a)} → {w(b)} ({100 * (b / a - 1):+.1f} %)" if a and b else "—")
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    for part, title in PARTS:
        a, b = _get(before["panel"][part], PIPELINE), _get(after["panel"][part], PIPELINE)
        if a and b:
            lines.append(f"\n{title}: {w(a)} → {w(b)} ({100 * (b / a - 1):+.1f} %)" + (
                "" if before["panel"][part]["cases"] == after["panel"][part]["cases"] else " (not the same cases)"))
    return lines


def quantile_table(report: dict) -> list[str]:
    """WSPL of the pipeline's quantiles and of seasonal naive's, and the series-level 95 % coverage, per case."""
    lines = ["| case | WSPL: pipeline | WSPL: seasonal naive | pipeline / seasonal naive | 95 % coverage: pipeline "
             "| 95 % coverage: seasonal naive |", "| --- | --- | --- | --- | --- | --- |"]
    blocks = [(c["name"], c["mean"]) for c in report["cases"]] + [
        (f"**{title}**", report["panel"][part]) for part, title in PARTS if report["panel"][part]["cases"]]
    shown = 0
    for name, block in blocks:
        if "wspl" not in block:
            continue
        q, c = block["wspl"], block["coverage_95"]
        lines.append(f"| {name} | {w(q['pipeline'])} | {w(q['seasonal_naive'])} | "
                     f"{ratio(q['pipeline'], q['seasonal_naive'])} | {c['pipeline']:.3f} | {c['seasonal_naive']:.3f} |")
        shown += 1
    return lines if shown else []


def render(report: dict, before: dict | None = None) -> str:
    m, code = report["machine"], report["code"]
    changed = (f"; files changed from it when measured: {', '.join(code['changed_files'])}"
               if code["changed_files"] else "")
    origins = [r for c in report["cases"] for r in c["origins"]]
    kept = sum(1 for r in origins if r["pipeline"]["kept"])
    kept_note = f" ({kept} of the {len(origins)} pipeline forecasts kept from an earlier run)" if kept else ""
    out = ["# The accuracy panel", "",
           f"Measured {report['date']} on {m['cpus']} CPUs, {m['memory_gb']} GB ({m['platform']}, Python {m['python']}), "
           f"in {report['run_s'] / 60:.0f} min{kept_note}; configuration `{report['config']}` (`{report['config_file']}`), "
           f"commit {code['commit'][:10]}{changed}. The reference: {report['reference']}.", "",
           "Reproduce with `make bench-accuracy` (`CONFIG=bench/accuracy/configs/<name>.cfg` for another "
           "configuration; `bench/accuracy/`, results in `bench/accuracy-<config>.json`). Each case is one world "
           "forecast at each of its origins by the pipeline (a model trained on the origin and served, "
           "`DailyForecast` then `Evaluate`) and by the mlforecast reference set-up of issue 16 "
           "(`bench/peers/mlforecast_reference.py`), both scored by the pipeline's `evaluate` with the same weights, "
           "scales and actuals. WRMSSE: the mean over the case's origins; a panel mean is the mean of the case means. "
           "Bias: the 28-day total over all series, forecast / actual − 1. Time: the pipeline's `DailyForecast` "
           "(snapshots of the origin and its eve, checks, features, training, compilation, scoring) against the "
           "reference's loading, features, training and prediction (it reads the pipeline's snapshot), summed over "
           "the origins, on a machine shared with other work.", ""]
    for s in report["skipped"]:
        out.append(f"- skipped: {s['reason']}")
    for f in report["failed"]:
        out.append(f"- **failed**: {f['case']}: {f['error']}")
    out += ["", "## WRMSSE per case", "", *case_table(report), "",
            "## WRMSSE by level (panel means)", "", *level_table(report), "",
            "## WRMSSE by level and case: pipeline / reference (✗: the pipeline loses)", "", *level_by_case(report), "",
            "## Every origin", "", *origin_table(report), ""]
    quantiles = quantile_table(report)
    if quantiles:
        out += ["## Quantile forecasts: WSPL and the series-level 95 % interval's coverage", "", *quantiles, ""]
    if before is not None:
        out += [f"## `{before['config']}` → `{report['config']}`", "", *comparison(before, report), ""]
    return "\n".join(out)


def write(path: Path, report: dict, before: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(render(report, before))
    partial.replace(path)


def summary_lines(report: dict) -> str:
    """The per-case lines printed at the end of a run."""
    short = {PIPELINE: "pipeline", "online": "online", REFERENCE: "reference", "seasonal_naive": "s.naive",
             "moving_average_28": "avg28"}
    lines = [f"{'case':<24} " + " ".join(f"{short.get(s, s)[:9]:>9}" for s in SIDES) + f" {'bias':>8} {'bias ref':>8}"]
    rows = [(c["name"], c["mean"]) for c in report["cases"]]
    rows += [(title, report["panel"][part]) for part, title in PARTS if report["panel"][part]["cases"]]
    for name, block in rows:
        lines.append(f"{name[:24]:<24} " + " ".join(f"{w(_get(block, s)):>9}" for s in SIDES)
                     + f" {pct(block['bias'].get(PIPELINE)):>8} {pct(block['bias'].get(REFERENCE)):>8}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("after", type=Path)
    parser.add_argument("--before", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "accuracy-panel.md")
    args = parser.parse_args(argv)
    before = json.loads(args.before.read_text()) if args.before else None
    write(args.out, json.loads(args.after.read_text()), before)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
