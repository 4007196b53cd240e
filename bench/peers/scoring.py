"""Compiled scoring side by side: LightGBM's ``predict``, the pipeline's TL2cgen blocks, lleaves.

    python bench/peers/scoring.py FEATURES_DIR MODEL_DIR COMPILED_DIR THREADS WORK_DIR [lleaves|no-lleaves]

The same rows (every scoring row of a run date, encoded as the model reads
them), the same threads, the median of 5 runs each, outputs compared with
LightGBM's. lleaves runs in its own environment (bench/.venv-lleaves), on the
rows saved to WORK_DIR/X.npy; its compiled object is cached in WORK_DIR by the
model's hash, and so is its last measurement (reported, marked kept, when lleaves is skipped).
Prints one JSON line.
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

from pipeline.stages import compile as C  # noqa: E402
from pipeline.core import features as F  # noqa: E402
from pipeline.stages import features as feature_sets
from pipeline.data import storage  # noqa: E402
from pipeline.stages import train as T  # noqa: E402

LLEAVES_PY = ROOT / "bench" / ".venv-lleaves" / "bin" / "python"


def _unlimited_stack() -> None:
    """In the lleaves child, before exec: its main thread's stack limit lifted (see lleaves_score.py)."""
    import resource

    resource.setrlimit(resource.RLIMIT_STACK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def median_time(fn, repeat: int = 5):
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main(feat_dir: str, model_dir: str, compiled_dir: str, threads: str, work_dir: str, lleaves: str = "lleaves") -> int:
    threads_n, work = int(threads), Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    booster, meta = T.load_model(Path(model_dir))
    X = T.encode(feature_sets.read_feature_set(feat_dir), meta["vocab"], meta["features"])
    lgb_s, lgb_out = median_time(lambda: booster.predict(X, num_threads=threads_n))
    compiled = C.CompiledModel(Path(compiled_dir), nthread=threads_n)
    tl_s, tl_out = median_time(lambda: compiled.predict(X))
    result = {"rows": len(X), "threads": threads_n, "trees": booster.num_trees(),
              "blocks": len(compiled.manifest["blocks"]), "lightgbm_s": lgb_s, "tl2cgen_s": tl_s,
              "tl2cgen_max_abs_diff": float(np.abs(tl_out - lgb_out).max())}
    model_txt = Path(model_dir) / "model.txt"
    model_key = storage.file_hash(model_txt)[:16]
    kept = work / f"lleaves-{model_key}.json"  # the last lleaves measurement of this very model
    if lleaves == "lleaves" and LLEAVES_PY.exists():
        np.save(work / "X.npy", X)
        done = subprocess.run([str(LLEAVES_PY), str(ROOT / "bench" / "peers" / "lleaves_score.py"), str(model_txt),
                               str(work / "X.npy"), threads, str(work / f"lleaves-{model_key}.o"), str(work / "lleaves.npy")],
                              capture_output=True, text=True, preexec_fn=_unlimited_stack)
        if done.returncode != 0:
            raise SystemExit(f"lleaves failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        ll = json.loads(done.stdout.strip().splitlines()[-1])
        measured = {"lleaves_s": ll["predict_s"], "lleaves_compile_s": ll["compile_s"],
                    "lleaves_max_abs_diff": float(np.abs(np.load(work / "lleaves.npy") - lgb_out).max()),
                    "lleaves_lightgbm_s": lgb_s}
        kept.write_text(json.dumps(measured))
        result.update(measured)
    elif kept.exists():
        # not run now (--no-lleaves): the kept measurement, with the LightGBM time measured beside it
        result.update({**json.loads(kept.read_text()), "lleaves_kept": True})
    else:
        # `make bench` creates the environment; a bare `bench/run.py` may not have it, --no-lleaves skips it
        result["lleaves_s"] = None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:7]))
