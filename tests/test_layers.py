"""The package's layers hold: imports go only downward, and the pure core loads no heavy machinery."""
from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pipeline.core

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("luigi", "lightgbm", "sqlalchemy", "dask", "distributed", "treelite", "tl2cgen", "tasks")


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(pipeline.core.__path__, "pipeline.core."))


def test_importing_the_core_loads_no_luigi_lightgbm_or_sql():
    modules = core_modules()
    assert "pipeline.core.metrics" in modules and "pipeline.core.features" in modules
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted(h for h in {HEAVY!r} if h in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_luigi_command_finds_the_tasks_through_the_pipeline_module():
    # what `luigi --module pipeline DailyForecast` does: import Luigi, then the module
    code = ("import luigi, pipeline\n"
            "from luigi.task_register import Register\n"
            "print(Register.get_task_cls('DailyForecast').__module__, Register.get_task_cls('RangeDailyBase').__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    module, range_tool = done.stdout.split()
    assert module.startswith("tasks.") and range_tool == "RangeDailyBase"


MAX_LINES = 400  # "no module over ~400 lines": one concern a module, found by its name


def test_no_module_of_the_package_is_over_the_size_limit():
    big = {str(p.relative_to(ROOT)): n for p in sorted([*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("tasks/**/*.py"),
                                                                     *ROOT.glob("service/**/*.py")])
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them by concern): {big}"
