"""The pipeline's side of one case and origin: its forecast and evaluation under the configuration under test.

The configuration under test is an extra luigi.cfg (``--config``; the default configuration is
an empty one). For each origin the panel writes that file with two settings of its own on top:
``[training] serve_model = ORIGIN`` and ``anchor_date = ORIGIN``, so that a model is trained on
the origin and it is the one that serves (promotion, which could hand the forecast to an older
model, is not what the panel measures). Then, in the case's world and data folder:

  luigi --module pipeline DailyForecast --date ORIGIN   (timed: the pipeline end to end)
  luigi --module pipeline Evaluate --date ORIGIN        (timed apart: scoring is not forecasting)

Outputs are fingerprinted by configuration (a changed setting never reuses old ones), but not
by code: after changing the model's code, ``--rerun`` removes the model's outputs of the
panel's origins (features, models, compiled, promotions, forecasts, metrics; snapshots and
checks are kept) so that they are made again.
"""
from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
LUIGI = str(Path(PY).parent / "luigi")
MODEL_STAGES = ("features", "models", "compiled", "promotions", "forecasts", "metrics")
# OpenMP threads that wait by sleeping, not spinning, on both sides: on a machine shared with other
# work a spinning LightGBM thread burns the time slice its partner needs (the same forecast, much
# later; docs/accuracy-panel.md). It changes no result, only how idle threads wait.
QUIET_THREADS = {"OMP_WAIT_POLICY": "PASSIVE"}


# The online model (the challenger in DailyForecast from its start date on) starts on each case's first
# origin and walks every day from there, each day's snapshot checked: the panel accepts the one check
# the small generated worlds trip on single days (the daily-total outlier), as make bench-online does, so
# both share the online model's outputs. A configuration under test that sets either keeps its own.
ONLINE_SETTINGS = {"quality": {"accept": "daily_total_outlier"}}


def origin_config(config_file: Path | None, origin: dt.date, out: Path, online_start: dt.date | None = None) -> Path:
    """``config_file`` with the origin's pin on top, written to ``out`` (replaced when it differs); with
    ``online_start``, the online model's start date and ``ONLINE_SETTINGS`` where the file does not set them."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # luigi.cfg keys keep their spelling
    if config_file is not None:
        if not config_file.is_file():
            raise SystemExit(f"bench.accuracy: no configuration file {config_file}")
        parser.read(config_file)
    if not parser.has_section("training"):
        parser.add_section("training")
    parser.set("training", "serve_model", origin.isoformat())
    parser.set("training", "anchor_date", origin.isoformat())
    if online_start is not None:
        for section, values in {"online_model": {"start_date": online_start.isoformat()}, **ONLINE_SETTINGS}.items():
            if not parser.has_section(section):
                parser.add_section(section)
            for key, value in values.items():
                if not parser.has_option(section, key):
                    parser.set(section, key, value)
    lines = []
    for section in parser.sections():
        lines.append(f"[{section}]")
        lines += [f"{k} = {v}" for k, v in parser.items(section)]
        lines.append("")
    text = "\n".join(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return out


def environment(world: Path, data: Path, cfg: Path) -> dict:
    env = {**os.environ, "PIPELINE_DATABASE_URL": f"sqlite:///{world}", "PIPELINE_DATA_DIR": str(data),
           "LUIGI_CONFIG_PATH": str(cfg)}
    env.pop("DASK_SCHEDULER_ADDRESS", None)  # the panel runs on this machine
    return {**env, **QUIET_THREADS}


def folders(env: dict, origin: dt.date) -> dict[str, Path]:
    done = subprocess.run([PY, "-m", "bench.accuracy.folders", origin.isoformat()], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench.accuracy.folders {origin} failed: {done.stderr.strip()[-500:]}")
    return {k: Path(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def _luigi(env: dict, task: str, origin: dt.date, what: str) -> float:
    cmd = [LUIGI, "--module", "pipeline", task, "--date", origin.isoformat(), "--local-scheduler", "--no-lock",
           "--log-level", "WARNING"]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        lines = [ln for ln in (done.stdout + done.stderr).splitlines() if "Error" in ln or "error" in ln]
        raise RuntimeError(f"{what}: luigi {task} --date {origin} failed (exit {done.returncode}): "
                           f"{(lines or ['see ' + str(Path(env['PIPELINE_DATA_DIR']) / 'logs')])[-1][:400]}")
    return wall


def forget_model_outputs(data: Path, origins) -> None:
    """``--rerun``: remove the model's outputs of ``origins`` (every configuration's); snapshots and checks stay."""
    for origin in origins:
        for stage in MODEL_STAGES:
            shutil.rmtree(data / stage / origin.isoformat(), ignore_errors=True)


def run_origin(world: Path, home: Path, config_name: str, config_file: Path | None, origin: dt.date,
               what: str, online_start: dt.date | None = None) -> dict:
    """The pipeline's forecast and evaluation of ``origin`` (kept when already made under this configuration).

    Returns the folders (str), the forecast's and the evaluation's wall time (those of the run
    that made them, when kept) and the number of trees of the model. ``config_name`` names the
    folder of the origin's configuration file.
    """
    data = home / "data"
    cfg = origin_config(config_file, origin, home / "configs" / config_name / f"{origin}.cfg", online_start)
    env = environment(world, data, cfg)
    where = folders(env, origin)
    # kept by the evaluation's fingerprint, not the configuration's name: two names of one configuration
    # share the outputs, and the times measured when they were made
    record_file = home / "runs" / origin.isoformat() / f"{where['evaluate'].name}.json"
    if record_file.exists() and (where["evaluate"] / "metrics.parquet").exists():
        record = json.loads(record_file.read_text())
        if record["folders"]["evaluate"] == str(where["evaluate"]):
            return {**record, "kept": True}
    forecast_s = _luigi(env, "DailyForecast", origin, what)
    evaluate_s = _luigi(env, "Evaluate", origin, what)
    meta = json.loads((where["model"] / "metadata.json").read_text())
    record = {"folders": {k: str(v) for k, v in where.items()}, "forecast_s": round(forecast_s, 1),
              "evaluate_s": round(evaluate_s, 1), "trees": meta["metrics"].get("best_iteration"),
              "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    record_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(record, indent=2) + "\n")
    return {**record, "kept": False}
