"""Stage 4: compile a LightGBM model to a shared library with Treelite + TL2cgen.

The compiled library must give LightGBM's predictions: on a sample of real
feature rows the two may differ by at most ``RTOL`` relative plus ``ATOL``
absolute (float rounding in the summation order of the trees; in practice they
are equal). Otherwise :class:`ModelCheckError` is raised and nothing is written.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline import storage
from pipeline.errors import ModelCheckError
from pipeline.train import load_model

RTOL = 1e-5
ATOL = 1e-6
LIBRARY = "model.so"


def compile_model(model_path: Path, libpath: Path, parallel_comp: int = 2, annotate_rows: np.ndarray | None = None,
                  quantize: bool = False) -> float:
    """Compile the LightGBM text model at ``model_path`` into ``libpath``; returns seconds taken.

    ``annotate_rows`` (float32 feature rows) turns on branch annotation, which
    lets the C compiler lay out the likely branch first; ``quantize`` compares
    integer bin indices instead of floats.
    """
    import tl2cgen
    import treelite

    started = time.perf_counter()
    model = treelite.frontend.load_lightgbm_model(str(model_path))
    params: dict = {"parallel_comp": parallel_comp, "quantize": int(quantize)}
    if annotate_rows is not None:
        annotation = Path(libpath).with_suffix(".annotation.json")
        tl2cgen.annotate_branch(model, tl2cgen.DMatrix(annotate_rows, dtype="float32"), path=str(annotation))
        params["annotate_in"] = str(annotation)
    tl2cgen.export_lib(model, toolchain="gcc", libpath=str(libpath), params=params)
    return time.perf_counter() - started


def predict_compiled(libpath: Path, X: np.ndarray, nthread: int = 1) -> np.ndarray:
    """Predictions of a compiled library for float32 rows ``X`` (one value per row)."""
    import tl2cgen

    predictor = tl2cgen.Predictor(str(libpath), nthread=nthread)
    return predictor.predict(tl2cgen.DMatrix(np.ascontiguousarray(X, dtype=np.float32))).reshape(-1)


def check_compiled(booster, libpath: Path, X: np.ndarray) -> dict:
    """Compare the library's predictions with LightGBM's on ``X``; raise if they differ."""
    expected = booster.predict(X)
    got = predict_compiled(libpath, X)
    diff = np.abs(got - expected)
    allowed = ATOL + RTOL * np.abs(expected)
    report = {"rows": int(len(X)), "max_abs_diff": float(diff.max(initial=0.0)), "rtol": RTOL, "atol": ATOL,
              "rows_outside_tolerance": int((diff > allowed).sum())}
    if report["rows_outside_tolerance"]:
        worst = int(np.argmax(diff - allowed))
        raise ModelCheckError(
            f"compiled model {libpath.name} disagrees with LightGBM on {report['rows_outside_tolerance']} of "
            f"{len(X)} rows (tolerance {RTOL} relative + {ATOL} absolute); worst row {worst}: "
            f"LightGBM {expected[worst]!r}, compiled {got[worst]!r}")
    return report


def compile_and_check(model_dir: Path, sample: np.ndarray, out_dir: Path, parallel_comp: int = 2) -> dict:
    """Compile the model in ``model_dir`` into ``out_dir/model.so`` and check it on ``sample``.

    Writes ``check.json`` next to the library: the comparison and compile time.
    """
    booster, metadata = load_model(model_dir)
    libpath = Path(out_dir) / LIBRARY
    seconds = compile_model(Path(model_dir) / "model.txt", libpath, parallel_comp=parallel_comp)
    report = check_compiled(booster, libpath, sample)
    report.update({"model_date": metadata["date"], "model_sha256": storage.file_hash(Path(model_dir) / "model.txt")})
    storage.write_json(Path(out_dir) / "check.json", report)
    # the timing is returned for logs, not written: outputs stay byte-identical across reruns
    return {**report, "compile_seconds": round(seconds, 2)}


def check_sample(frame, metadata: dict, rows: int = 20_000, seed: int = 0) -> np.ndarray:
    """A fixed random sample of real feature rows, encoded as the model reads them."""
    from pipeline.train import encode

    take = np.sort(np.random.default_rng(seed).choice(len(frame), size=min(rows, len(frame)), replace=False))
    return encode(frame.iloc[take], metadata["vocab"], metadata["features"])
