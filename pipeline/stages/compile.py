"""Stage 4: compile a LightGBM model to shared libraries with Treelite + TL2cgen.

The compiled model is a folder: one or more TL2cgen libraries (``block-000.so``,
…), each holding a consecutive slice of the model's trees, and ``compiled.json``
naming them in order with the link function. A prediction is the sum of the
blocks' raw margins passed through the link (``exp`` for tweedie). Slicing the
trees into blocks keeps each library's code small enough to stay in the CPU's
cache while it walks a whole batch of rows; one library of every tree is
re-fetched from memory for every row (measurements: docs/compiled-scoring.md).

Two things are done here by hand because TL2cgen 1.0.0 (the newest) does not:

* **Wide categorical splits.** TL2cgen writes a categorical split as a chain of
  one range test per 64 categories: 48 tests for 3,049 item ids, at every such
  node. That made the full model's C source hundreds of MB, gcc ran for tens of
  minutes, and the library was slower than LightGBM. :func:`rewrite_categorical_splits`
  turns each chain into one lookup in a static bitmap, the same test.
* **Small translation units.** The trees are spread over many C files
  (``trees_per_unit``) so that gcc's optimiser, superlinear in function size,
  stays fast and both cores compile.

The compiled model must give LightGBM's predictions: on a sample of real feature
rows the two may differ by at most ``RTOL`` relative plus ``ATOL`` absolute (the
order in which tree outputs are summed); otherwise :class:`ModelCheckError` is
raised and nothing is written.
"""
from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.data import storage
from pipeline.core.errors import ModelCheckError
from pipeline.stages.train import load_model

RTOL = 1e-5
ATOL = 1e-6
MANIFEST = "compiled.json"
# the links a blocked model can apply after summing the blocks' margins (Treelite's postprocessor names)
LINKS = {"exponential": np.exp, "identity": lambda m: m}

# TL2cgen's form of one categorical test: "(tmp >= 0 && tmp < 64 && (( (uint64_t)<word>U >> tmp) & 1) ) ||
# (tmp >= 64 && tmp < 128 && (( (uint64_t)<word>U >> (tmp - 64) ) & 1) ) || ..." over consecutive words
_FIRST_WORD = r"\(tmp >= 0 && tmp < 64 && \(\( \(uint64_t\)\d+U >> tmp\) & 1\) \)"
_NEXT_WORD = r" \|\| \(tmp >= \d+ && tmp < \d+ && \(\( \(uint64_t\)\d+U >> \(tmp - \d+\) \) & 1\) \)"
_CHAIN = re.compile(r"\(" + _FIRST_WORD + "(?:" + _NEXT_WORD + r")*\)")
_WORD = re.compile(r"\(uint64_t\)(\d+)U")
_BOUNDS = re.compile(r"tmp >= (\d+) && tmp < (\d+)")
_INCLUDE = '#include "header.h"\n'
_CATBIT = "#define CATBIT(t, n, x) ((x) < 64u * (n) && (((t)[(x) >> 6] >> ((x) & 63u)) & 1u))\n"


def rewrite_categorical_splits(source: str) -> tuple[str, int]:
    """``source`` (a TL2cgen translation unit) with every categorical chain replaced by a bitmap lookup.

    Returns the new source and the number of chains replaced. Identical bitmaps
    share one static table. A chain whose words are not 0, 64, 128, … in order
    is left as it is (never seen; the compiled-vs-LightGBM check would tell).
    """
    tables: dict[tuple[str, ...], str] = {}
    replaced = 0

    def lookup(match: re.Match) -> str:
        nonlocal replaced
        text = match.group(0)
        bounds = [(int(a), int(b)) for a, b in _BOUNDS.findall(text)]
        if bounds != [(64 * k, 64 * (k + 1)) for k in range(len(bounds))]:
            return text
        words = tuple(_WORD.findall(text))
        name = tables.setdefault(words, f"catbits{len(tables)}")
        replaced += 1
        return f"CATBIT({name}, {len(words)}u, tmp)"

    body = _CHAIN.sub(lookup, source)
    if not replaced:
        return source, 0
    head, include, rest = body.partition(_INCLUDE)
    if not include:
        raise ModelCheckError("TL2cgen source without its header include: cannot place the category tables")
    decls = "".join(f"static const uint64_t {name}[{len(words)}] = {{{', '.join(w + 'ULL' for w in words)}}};\n"
                    for words, name in tables.items())
    return head + include + _CATBIT + decls + rest, replaced


def _compile_library(model, libpath: Path, trees_per_unit: int, options: list[str], nthread: int,
                     params: dict) -> dict:
    """Generate TL2cgen C code for ``model``, rewrite its categorical splits, build ``libpath``."""
    import tl2cgen

    with tempfile.TemporaryDirectory(prefix="tl2cgen-") as src:
        units = max(1, math.ceil(model.num_tree / trees_per_unit))
        tl2cgen.generate_c_code(model, src, {**params, "parallel_comp": units})
        chains = 0
        for unit in sorted(Path(src).glob("tu*.c")):
            text, n = rewrite_categorical_splits(unit.read_text())
            if n:
                unit.write_text(text)
            chains += n
        built = tl2cgen.create_shared("gcc", src, nthread=nthread, options=options)
        shutil.move(built, libpath)
    return {"trees": int(model.num_tree), "units": units, "categorical_chains_rewritten": chains}


# LightGBM objectives by the link their raw margin goes through (Treelite's postprocessor names)
_LINK_OF_OBJECTIVE = {**dict.fromkeys(("poisson", "gamma", "tweedie"), "exponential"),
                      **dict.fromkeys(("regression", "regression_l1", "huber", "fair", "quantile", "mape"), "identity")}


def _link_of(booster) -> str | None:
    """The link of a LightGBM model's objective, or None when it is not one a blocked model can apply."""
    objective = booster.params.get("objective") or ""
    if not objective:  # a model loaded from text keeps its objective in the file's header
        header = booster.model_to_string(num_iteration=1).split("\nTree=", 1)[0]
        objective = next((line.split("=", 1)[1] for line in header.splitlines() if line.startswith("objective=")), "")
    return _LINK_OF_OBJECTIVE.get(objective.split()[0] if objective else "")


def compile_model(model_path: Path, out_dir: Path, *, trees_per_block: int = 0, trees_per_unit: int = 4,
                  optimization: str = "-O2", nthread: int = 2, annotate_rows: np.ndarray | None = None,
                  quantize: bool = False) -> dict:
    """Compile the LightGBM text model at ``model_path`` into the folder ``out_dir``.

    ``trees_per_block`` trees per library (0: one library of every tree);
    ``trees_per_unit`` trees per C file; ``optimization`` the gcc ``-O`` flag;
    ``annotate_rows`` (float32 feature rows) turns on branch annotation, which
    tells gcc the likely side of each split; ``quantize`` compares integer bin
    indices instead of floats. Writes the libraries and ``compiled.json``
    (not ``check.json``); returns the manifest plus ``compile_seconds``.
    """
    import lightgbm as lgb
    import tl2cgen
    import treelite

    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    booster = lgb.Booster(model_file=str(model_path))
    n_trees = booster.num_trees()
    per_block = trees_per_block if 0 < trees_per_block < n_trees else n_trees
    bounds = list(range(0, n_trees, per_block)) + [n_trees]
    params: dict = {"quantize": int(quantize)}
    link = _link_of(booster)
    if per_block < n_trees and link not in LINKS:
        raise ModelCheckError(f"{model_path}: objective {booster.params.get('objective')!r} has no link that summed "
                              f"blocks of trees can apply; set [compiler] trees_per_block = 0 (one library)")
    blocks = []
    with tempfile.TemporaryDirectory(prefix="blocks-") as tmp:
        for k, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            text = booster.model_to_string(start_iteration=start, num_iteration=stop - start)
            (Path(tmp) / "block.txt").write_text(text)
            model = treelite.frontend.load_lightgbm_model(str(Path(tmp) / "block.txt"))
            block_params = dict(params)
            if annotate_rows is not None:
                annotation = Path(tmp) / f"annotation-{k}.json"
                tl2cgen.annotate_branch(model, tl2cgen.DMatrix(annotate_rows, dtype="float32"), path=str(annotation))
                block_params["annotate_in"] = str(annotation)
            name = f"block-{k:03d}.so"
            info = _compile_library(model, out_dir / name, trees_per_unit, [optimization], nthread, block_params)
            blocks.append({"library": name, "first_tree": start, **info})
    manifest = {"link": link, "blocks": blocks, "trees": n_trees,
                "options": {"trees_per_block": trees_per_block, "trees_per_unit": trees_per_unit,
                            "optimization": optimization, "annotate": annotate_rows is not None,
                            "quantize": bool(quantize)}}
    storage.write_json(out_dir / MANIFEST, manifest)
    return {**manifest, "compile_seconds": round(time.perf_counter() - started, 2)}


class CompiledModel:
    """A compiled model folder, loaded: ``predict(X)`` gives the model's predictions for float32 rows."""

    def __init__(self, folder: Path, nthread: int = 1):
        import tl2cgen

        self.folder = Path(folder)
        self.manifest = storage.read_json(self.folder / MANIFEST)
        self.predictors = [tl2cgen.Predictor(str(self.folder / b["library"]), nthread=nthread)
                           for b in self.manifest["blocks"]]

    def predict(self, X: np.ndarray) -> np.ndarray:
        import tl2cgen

        dmat = tl2cgen.DMatrix(np.ascontiguousarray(X, dtype=np.float32))
        if len(self.predictors) == 1:
            return self.predictors[0].predict(dmat).reshape(-1)
        # one block at a time over every row: that block's code stays in cache for the whole batch
        margin = self.predictors[0].predict(dmat, pred_margin=True).reshape(-1).astype(np.float64)
        for predictor in self.predictors[1:]:
            margin += predictor.predict(dmat, pred_margin=True).reshape(-1)
        return LINKS[self.manifest["link"]](margin)


def library_files(folder: Path) -> list[str]:
    """The files of a compiled model folder: its manifest and every library it lists."""
    manifest = Path(folder) / MANIFEST
    if not manifest.exists():
        return [MANIFEST]
    return [MANIFEST, *(b["library"] for b in storage.read_json(manifest)["blocks"])]


def check_compiled(booster, folder: Path, X: np.ndarray) -> dict:
    """Compare the compiled model's predictions with LightGBM's on ``X``; raise if they differ."""
    expected = booster.predict(X)
    got = CompiledModel(folder).predict(X)
    diff = np.abs(got - expected)
    allowed = ATOL + RTOL * np.abs(expected)
    report = {"rows": int(len(X)), "max_abs_diff": float(diff.max(initial=0.0)), "rtol": RTOL, "atol": ATOL,
              "rows_outside_tolerance": int((diff > allowed).sum())}
    if report["rows_outside_tolerance"]:
        worst = int(np.argmax(diff - allowed))
        raise ModelCheckError(
            f"compiled model {Path(folder).name} disagrees with LightGBM on {report['rows_outside_tolerance']} of "
            f"{len(X)} rows (tolerance {RTOL} relative + {ATOL} absolute); worst row {worst}: "
            f"LightGBM {expected[worst]!r}, compiled {got[worst]!r}")
    return report


def compile_and_check(model_dir: Path, sample: np.ndarray, out_dir: Path, options: dict | None = None) -> dict:
    """Compile the model in ``model_dir`` into ``out_dir`` and check it on ``sample``.

    ``options``: keyword arguments of :func:`compile_model` (``annotate`` = True
    annotates branches with ``sample``). Writes ``check.json`` next to the
    libraries: the comparison, the model's date and hash.
    """
    options = dict(options or {})
    annotate = options.pop("annotate", False)
    booster, metadata = load_model(model_dir)
    built = compile_model(Path(model_dir) / "model.txt", out_dir, annotate_rows=sample if annotate else None, **options)
    report = check_compiled(booster, out_dir, sample)
    report.update({"model_date": metadata["date"], "model_sha256": storage.file_hash(Path(model_dir) / "model.txt")})
    storage.write_json(Path(out_dir) / "check.json", report)
    # the timing is returned for logs, not written: outputs stay byte-identical across reruns
    return {**report, "blocks": len(built["blocks"]), "compile_seconds": built["compile_seconds"]}


def check_sample(frame, metadata: dict, rows: int = 20_000, seed: int = 0) -> np.ndarray:
    """A fixed random sample of real feature rows, encoded as the model reads them."""
    from pipeline.stages.train import encode

    take = np.sort(np.random.default_rng(seed).choice(len(frame), size=min(rows, len(frame)), replace=False))
    return encode(frame.iloc[take], metadata["vocab"], metadata["features"])
