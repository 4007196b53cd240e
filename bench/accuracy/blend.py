"""``python -m bench.accuracy.blend PANEL.json``: weighted averages of the batch pipeline's and the online model's
forecasts on the accuracy panel, scored like Evaluate scores a forecast.

Reads, for every case and origin of a panel run (``make bench-accuracy``, whose results JSON names
each origin's folders) the batch forecast, and the online model's forecast of the same origin made
by ``make bench-online`` (its configuration file per case: bench/data/accuracy/<case>/configs/online/
default.cfg). Scores ``(1 - w) * batch + w * online`` for each weight on the same (series, day)
pairs with the pipeline's ``evaluate_run`` (WRMSSE of all and the 12 levels, the 28-day total's
bias). Prints the per-case table and writes bench/accuracy-blend.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WEIGHTS = (0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 1.0)


def online_forecast_path(case_home: Path, world_url: str, origin: dt.date) -> Path:
    env = {**os.environ, "PIPELINE_DATABASE_URL": world_url, "PIPELINE_DATA_DIR": str(case_home / "data"),
           "LUIGI_CONFIG_PATH": str(case_home / "configs" / "online" / "default.cfg")}
    code = ("import sys, datetime as dt, tasks; "
            "print(tasks.ForecastOnline(date=dt.date.fromisoformat(sys.argv[1])).output().file('forecast.parquet'))")
    done = subprocess.run([sys.executable, "-c", code, origin.isoformat()], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def score(folders: dict, origin: dt.date, online_path: Path) -> dict:
    import pandas as pd

    from bench.accuracy import scores
    from pipeline.core.blend import blend_units
    from pipeline.stages import evaluate

    batch = pd.read_parquet(ROOT / folders["forecast"] / "forecast.parquet")
    online = pd.read_parquet(online_path)
    merged = batch.merge(online[["item_id", "store_id", "date", "units"]], on=["item_id", "store_id", "date"],
                         how="left", suffixes=("", "_online"))
    if merged["units_online"].isna().any():
        raise ValueError(f"{origin}: the online forecast lacks {int(merged['units_online'].isna().sum())} rows")
    # the shipped arithmetic (pipeline.core.blend), so a weight's numbers are those the chain would publish
    others = {f"w{w}": batch.assign(units=blend_units(merged["units"], merged["units_online"], w)) for w in WEIGHTS}
    table, totals = evaluate.evaluate_run(batch, ROOT / folders["snapshot"], ROOT / folders["later_snapshot"], origin,
                                          others=others)
    return {"wrmsse": {m: scores._wrmsse(table, m) for m in (evaluate.MODEL, *others)},
            "bias": {m: scores._bias(totals, m) for m in others}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("panel", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data" / "accuracy")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "accuracy-blend.json")
    args = parser.parse_args(argv)
    panel = json.loads(args.panel.read_text())
    out = {"panel": str(args.panel), "weights": WEIGHTS, "cases": []}
    for case in panel["cases"]:
        home = args.data / case["name"]
        world = home / "world.sqlite"
        rows = []
        for o in case["origins"]:
            origin = dt.date.fromisoformat(o["origin"])
            numbers = score(o["pipeline"]["folders"], origin, online_forecast_path(home, f"sqlite:///{world}", origin))
            mine = numbers["wrmsse"]["model"]["all"]
            if abs(mine - o["wrmsse"]["pipeline"]["all"]) > 1e-9:
                raise SystemExit(f"{case['name']} {origin}: the batch forecast scores {mine}, the panel recorded "
                                 f"{o['wrmsse']['pipeline']['all']}: not the same run")
            rows.append({"origin": o["origin"], **numbers, "mlforecast": o["wrmsse"].get("mlforecast", {}).get("all")})
        out["cases"].append({"name": case["name"], "role": case["role"], "origins": rows})
        means = {f"w{w}": sum(r["wrmsse"][f"w{w}"]["all"] for r in rows) / len(rows) for w in WEIGHTS}
        print(case["name"], " ".join(f"{k}={v:.4f}" for k, v in means.items()), flush=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
