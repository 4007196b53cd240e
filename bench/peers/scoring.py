"""Compiled scoring side by side: LightGBM's ``predict``, the pipeline's TL2cgen blocks, lleaves.

    python bench/peers/scoring.py FEATURES_DIR MODEL_DIR COMPILED_DIR THREADS WORK_DIR

The same rows (every scoring row of a run date, encoded as the model reads
them), the same threads, the median of 5 runs each, outputs compared with
LightGBM's. lleaves runs in its own environment (bench/.venv-lleaves), on the
rows saved to WORK_DIR/X.npy; its compiled object is cached in WORK_DIR by the
model's hash. Prints one JSON line.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline import compile as C  # noqa: E402
from pipeline import features as F  # noqa: E402
from pipeline import storage  # noqa: E402
from pipeline import train as T  # noqa: E402

LLEAVES_PY = ROOT / "bench" / ".venv-lleaves" / "bin" / "python"


def median_time(fn, repeat: int = 5):
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main(feat_dir: str, model_dir: str, compiled_dir: str, threads: str, work_dir: str) -> int:
    threads_n, work = int(threads), Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    booster, meta = T.load_model(Path(model_dir))
    X = T.encode(F.read_feature_set(feat_dir), meta["vocab"], meta["features"])
    lgb_s, lgb_out = median_time(lambda: booster.predict(X, num_threads=threads_n))
    compiled = C.CompiledModel(Path(compiled_dir), nthread=threads_n)
    tl_s, tl_out = median_time(lambda: compiled.predict(X))
    result = {"rows": len(X), "threads": threads_n, "trees": booster.num_trees(),
              "blocks": len(compiled.manifest["blocks"]), "lightgbm_s": lgb_s, "tl2cgen_s": tl_s,
              "tl2cgen_max_abs_diff": float(np.abs(tl_out - lgb_out).max())}
    if LLEAVES_PY.exists():
        np.save(work / "X.npy", X)
        model_txt = Path(model_dir) / "model.txt"
        cache = work / f"lleaves-{storage.file_hash(model_txt)[:16]}.o"
        done = subprocess.run([str(LLEAVES_PY), str(ROOT / "bench" / "peers" / "lleaves_score.py"), str(model_txt),
                               str(work / "X.npy"), threads, str(cache), str(work / "lleaves.npy")],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"lleaves failed:\n{done.stderr[-3000:]}")
        ll = json.loads(done.stdout.strip().splitlines()[-1])
        result.update({"lleaves_s": ll["predict_s"], "lleaves_compile_s": ll["compile_s"],
                       "lleaves_max_abs_diff": float(np.abs(np.load(work / "lleaves.npy") - lgb_out).max())})
    else:
        result["lleaves_s"] = None  # `make bench` creates the environment; a bare `bench/run.py` may not have it
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
