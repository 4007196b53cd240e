"""How the cost grows with the number of series: daily run and retrain at several scales.

    python bench/scaling.py full10 full30 full

Reads bench/results-<scale>.json (written by ``bench/run.py --scale <scale>``) and
prints, per scale, the series, the wall time of the daily run and of the
retrain, and each per 1,000 series relative to the smallest scale: a ratio at
or under 1.0 means the cost grows no faster than the number of series.
Writes bench/scaling.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage(report: dict, name: str) -> dict:
    return next(r for r in report["stages"] if r["stage"] == name)


def main(scales: list[str]) -> int:
    reports = [json.loads((ROOT / "bench" / f"results-{s}.json").read_text()) for s in scales]
    rows = []
    for r in reports:
        row = {"scale": r["scale"], "series": r["series"], "measured": r["date"], "trees": r["best_iteration"],
               "training_rows": r["training_rows"]}
        for name in ("daily", "retrain (total)", "retrain-features", "retrain-train", "retrain-compile"):
            row[name] = stage(r, name)["wall_s"]
        row["peak_rss_mb"] = max(s["peak_rss_mb"] or 0 for s in r["stages"] if s["stage"] != "generate")
        rows.append(row)
    base = rows[0]
    for row in rows:
        # LightGBM's cost is rows x trees, and early stopping keeps a different number of trees per world
        row["train per row-tree vs " + base["scale"]] = round(
            (row["retrain-train"] / (row["training_rows"] * row["trees"]))
            / (base["retrain-train"] / (base["training_rows"] * base["trees"])), 2)
        for name in ("daily", "retrain (total)"):
            per = row[name] / row["series"]
            row[f"{name} per series vs {base['scale']}"] = round(per / (base[name] / base["series"]), 2)
    out = ROOT / "bench" / "scaling.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"{'scale':<8} {'series':>7} {'trees':>6} {'daily s':>8} {'x/series':>9} {'retrain s':>10} {'x/series':>9} "
          f"{'train s':>8} {'x/row-tree':>11} {'peak RSS MB':>12}")
    for row in rows:
        print(f"{row['scale']:<8} {row['series']:>7,} {row['trees']:>6} {row['daily']:8.1f} {row['daily per series vs ' + base['scale']]:9.2f} "
              f"{row['retrain (total)']:10.1f} {row['retrain (total) per series vs ' + base['scale']]:9.2f} "
              f"{row['retrain-train']:8.1f} {row['train per row-tree vs ' + base['scale']]:11.2f} {row['peak_rss_mb']:12.0f}")
    print(f"x/series: cost per series relative to {base['scale']} (<= 1.0: grows no faster than the series); "
          f"x/row-tree: LightGBM training time per training row and tree, likewise; {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["full10", "full30", "full"]))
