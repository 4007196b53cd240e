"""The peer compiler: lleaves (LLVM) scoring the same rows, in its own environment.

    bench/.venv-lleaves/bin/python bench/peers/lleaves_score.py MODEL_TXT X_NPY THREADS CACHE_O OUT_NPY

Compiles the LightGBM text model with lleaves (the object file is cached at
CACHE_O: compiling a full model takes minutes), predicts the float32 rows of
X_NPY with THREADS threads five times, writes the predictions to OUT_NPY and
prints one JSON line: compile seconds (0 when cached), median predict seconds.
lleaves 1.3.0 needs llvmlite 0.43, hence its own environment
(bench/requirements-lleaves.txt).
"""
import json
import statistics
import sys
import threading
import time
from pathlib import Path

# lleaves' code for the full model (23,000 categorical splits on item ids) overflows the default
# 8 MB stack and segfaults; its worker threads get 1 GB (address space, not memory), and the caller
# starts this process with an unlimited stack for the main thread
threading.stack_size(1 << 30)

import lleaves  # noqa: E402
import numpy as np  # noqa: E402

model_txt, x_npy, threads, cache, out_npy = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
X = np.load(x_npy)
model = lleaves.Model(model_file=model_txt)
cached = Path(cache).exists()
t = time.perf_counter()
model.compile(cache=cache)
compile_s = 0.0 if cached else time.perf_counter() - t
times = []
for _ in range(5):
    t = time.perf_counter()
    pred = model.predict(X, n_jobs=threads)
    times.append(time.perf_counter() - t)
np.save(out_npy, pred)
print(json.dumps({"compile_s": round(compile_s, 1), "cached": cached, "predict_s": statistics.median(times),
                  "runs": times}))
