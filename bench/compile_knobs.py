"""TL2cgen's knobs measured on a trained model: compile time and scoring speed against LightGBM.

    python bench/compile_knobs.py MODEL_DIR TRAIN_FEATURES_DIR CONFIG [CONFIG ...]

CONFIG is ``trees_per_block,optimization,extra`` with extra one of none,
annotate, quantize (e.g. ``32,-O2,none``; trees_per_block 0 = one library).
The rows are the model's 28 validation days (every series: as many rows as a
day's scoring), 2 threads, median of 3 runs, outputs compared with LightGBM's.
LightGBM's predict is timed again beside every configuration (this machine's
speed drifts through the day), and each ratio is of those two side-by-side times.
Prints one line per configuration; nothing is written outside a temporary folder.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stages import compile as C  # noqa: E402
from pipeline.core import features as F  # noqa: E402
from pipeline.stages import features as feature_sets
from pipeline.stages import train as T  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from scoring import median_time  # noqa: E402


def main(model_dir: str, features_dir: str, configs: list[str]) -> int:
    booster, meta = T.load_model(Path(model_dir))
    frame = feature_sets.read_feature_set(features_dir)
    frame = frame[frame["date"] >= pd.Timestamp(meta["validation_window"][0])]
    X = T.encode(frame, meta["vocab"], meta["features"])
    del frame
    lgb_s, expected = median_time(lambda: booster.predict(X, num_threads=2), repeat=3)
    print(f"{len(X):,} rows, {booster.num_trees()} trees, 2 threads: LightGBM predict {lgb_s:.2f} s", flush=True)
    sample = X[np.random.default_rng(0).choice(len(X), min(20_000, len(X)), replace=False)]
    for cfg in configs:
        per_block, optimization, extra = cfg.split(",")
        with tempfile.TemporaryDirectory(prefix="knobs-") as out:
            started = time.perf_counter()
            built = C.compile_model(Path(model_dir) / "model.txt", Path(out), trees_per_block=int(per_block),
                                    optimization=optimization, annotate_rows=sample if extra == "annotate" else None,
                                    quantize=extra == "quantize")
            compile_s = time.perf_counter() - started
            model = C.CompiledModel(Path(out), nthread=2)
            score_s, got = median_time(lambda: model.predict(X), repeat=3)
        lgb_s, _ = median_time(lambda: booster.predict(X, num_threads=2), repeat=3)
        print(f"{cfg:<18} compile {compile_s:6.0f} s  blocks {len(built['blocks']):3d}  score {score_s:6.2f} s  "
              f"LightGBM {lgb_s:6.2f} s  {lgb_s / score_s:5.2f}x  max |diff| {np.abs(got - expected).max():.1e}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
