"""A case's world as a SQLite database under bench/data/accuracy/<case>/, made once and kept.

A world is kept with ``world.json``: what it is made of (the case's source, scale, seed and
dynamics) and a hash of the code that made it (the generator, the Kaggle exporter and the
importer, the M5 folder builder). When either differs the case's whole folder (world, pipeline
outputs, the reference's forecasts) is removed and the world made again, so no output of an
older world is ever reused.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.accuracy import m5real  # noqa: E402
from bench.accuracy.cases import Case  # noqa: E402

PY = sys.executable
WORLD_CODE = ("pipeline/tools/world",)
IMPORT_CODE = ("pipeline/tools/m5import",)


class Unavailable(Exception):
    """The case's world cannot be made here (a missing generator option, the M5 files absent): the case is skipped."""


def code_hash(parts: tuple[str, ...]) -> str:
    """sha256 over the Python files under ``parts`` (paths relative to the project root), in sorted order."""
    digest = hashlib.sha256()
    for part in parts:
        base = ROOT / part
        for path in sorted(base.rglob("*.py")) if base.is_dir() else [base]:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _code_parts(case: Case) -> tuple[str, ...]:
    if case.source == "world":
        return WORLD_CODE
    if case.source == "kaggle":
        return WORLD_CODE + IMPORT_CODE
    return IMPORT_CODE + ("bench/accuracy/m5real.py",)


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {tail[0]}")


def _generator_options() -> str:
    """The world generator's --help (what options and dynamics it offers now)."""
    return subprocess.run([PY, "-m", "pipeline.tools.world", "--help"], cwd=ROOT, capture_output=True,
                          text=True).stdout


def check_available(case: Case) -> None:
    """Raise Unavailable when this checkout cannot make the case's world (saying why)."""
    if case.source == "m5":
        missing = m5real.missing_files()
        if missing:
            raise Unavailable(f"the real M5 files are not here ({missing[0]} missing): case {case.name} skipped")
        return
    if case.dynamics != "base":
        help_text = _generator_options()
        if "--dynamics" not in help_text:
            raise Unavailable(f"`python -m pipeline.tools.world` has no --dynamics option yet: {case.name} "
                              f"({case.dynamics}) skipped")
        if case.dynamics not in help_text:
            raise Unavailable(f"the world generator offers no dynamics {case.dynamics!r}: {case.name} skipped")
    if case.source == "kaggle" and not (ROOT / "pipeline" / "tools" / "world" / "kaggle").is_dir():
        raise Unavailable(f"no Kaggle exporter (python -m pipeline.tools.world.kaggle) yet: {case.name} skipped")


def ensure_world(case: Case, home: Path) -> Path:
    """The case's world database (made now unless kept), under ``home`` = bench/data/accuracy/<case>."""
    check_available(case)
    key = {**case.world_spec(), "code": code_hash(_code_parts(case))}
    world, stamp = home / "world.sqlite", home / "world.json"
    if world.exists() and stamp.exists() and json.loads(stamp.read_text()) == key:
        return world
    shutil.rmtree(home, ignore_errors=True)  # an older world's outputs must not be reused
    home.mkdir(parents=True)
    partial = home / "world.partial.sqlite"
    url = f"sqlite:///{partial}"
    if case.source == "world":
        cmd = [PY, "-m", "pipeline.tools.world", "--scale", case.scale, "--seed", str(case.seed), "--url", url]
        if case.dynamics != "base":  # base is the generator's default, also before it had --dynamics
            cmd += ["--dynamics", case.dynamics]
        _run(cmd, f"generating the world of {case.name}")
    else:
        files = home / "kaggle"
        if case.source == "kaggle":
            _run([PY, "-m", "pipeline.tools.world.kaggle", "--scale", case.scale, "--seed", str(case.seed),
                  "--dynamics", case.dynamics, "--out", str(files)], f"writing the Kaggle files of {case.name}")
        else:
            m5real.build_folder(files)
        _run([PY, "-m", "pipeline.tools.m5import", "--dir", str(files), "--url", url],
             f"importing the Kaggle files of {case.name}")
    partial.rename(world)
    stamp.write_text(json.dumps(key, indent=2) + "\n")
    return world
