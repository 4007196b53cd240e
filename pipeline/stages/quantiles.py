"""Quantile forecasts: coefficients fitted on a model's validation window, applied to a run's point forecast.

``calibrate`` scores the model's early-stopped version (it never saw its validation days) on the
last 28 days of its training window, sums forecast and actuals up the 12 levels and fits one
multiplier per level and quantile (:mod:`pipeline.core.quantiles`). ``quantile_forecast`` sums a
run's point forecast up the same levels and multiplies: every series of every level (42,840 on
the M5 hierarchy), 9 quantiles, 28 days, written as ``quantiles.parquet`` (one row per level
series and quantile, ``F1..F28``) and as an M5 Uncertainty submission.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from pipeline.core import features as F
from pipeline.core import quantiles as Q
from pipeline.core.days import as_day
from pipeline.core.hierarchy import LEVELS, aggregation_plan, build_hierarchy, check_hierarchy, level_codes, sum_up
from pipeline.core.series import SeriesIndexer
from pipeline.data import storage
from pipeline.data.snapshot import read_snapshot
from pipeline.stages.promote import validation_forecast, validation_rows
from pipeline.stages.score import submission_suffix
from pipeline.stages.train import VALID_DAYS

KEY_COLUMNS = ["state_id", "store_id", "cat_id", "dept_id", "item_id"]


@dataclasses.dataclass(frozen=True)
class _Level:
    name: str
    columns: list
    codes: np.ndarray
    keys: pd.DataFrame

    @property
    def n_series(self) -> int:
        return len(self.keys)


class Levels:
    """The 12 levels of a set of bottom series: keys, and how a (series × days) matrix sums up them."""

    def __init__(self, hierarchy: pd.DataFrame):
        self.series = check_hierarchy(hierarchy)  # sorted by item, then store
        self.levels = [_Level(name, cols, *level_codes(self.series, cols)) for name, cols in LEVELS]
        self.plan = aggregation_plan(self.levels, len(self.series))
        self.indexer = SeriesIndexer(self.series)

    def matrix(self, frame: pd.DataFrame, days: pd.DatetimeIndex, column: str) -> np.ndarray:
        """(series × days) of ``frame[column]``, rows in ``series`` order; every cell must be given."""
        rows = self.indexer.codes(frame)
        cols = days.get_indexer(pd.to_datetime(frame["date"]))
        if (rows < 0).any() or (cols < 0).any():
            raise ValueError("rows of unknown series or days outside the window")
        out = np.full((len(self.series), len(days)), np.nan)
        out[rows, cols] = frame[column].to_numpy(dtype=np.float64)
        if np.isnan(out).any():
            raise ValueError(f"{int(np.isnan(out).sum())} (series, day) cells have no {column}")
        return out

    def aggregate(self, bottom: np.ndarray) -> dict[str, np.ndarray]:
        out = sum_up(bottom, self.plan)
        return {level.name: out[level.name] for level in self.levels}


def hierarchy_of(frame: pd.DataFrame, snapshot_dir: Path) -> pd.DataFrame:
    return build_hierarchy(frame, read_snapshot(snapshot_dir, "items"), read_snapshot(snapshot_dir, "stores"))


def calibrate(model_dir: Path, train_dir: Path, snapshot_dir: Path, run_date: dt.date, bins: int = 1) -> dict:
    """The quantile coefficients of the model trained on ``run_date`` and their validation coverage."""
    valid, origin = validation_rows(train_dir, run_date)  # the rows promotion scores the model on
    valid["forecast"] = validation_forecast(model_dir, valid)
    levels = Levels(hierarchy_of(valid, snapshot_dir))
    days = pd.date_range(origin + pd.Timedelta(days=1), periods=VALID_DAYS)
    point = levels.aggregate(levels.matrix(valid, days, "forecast"))
    actual = levels.aggregate(levels.matrix(valid, days, F.TARGET))
    coefficients = Q.fit_coefficients(point, actual, bins=bins)
    return {"date": as_day(run_date).date().isoformat(), "quantiles": list(Q.QUANTILES),
            "validation_window": [days[0].date().isoformat(), days[-1].date().isoformat()],
            "series": len(levels.series), "bins": bins, "coefficients": coefficients,
            "validation_coverage": Q.coverage(Q.model_quantiles(point, coefficients), actual)}


def level_ids(levels: Levels) -> dict[str, list[str]]:
    """M5 Uncertainty ids of every level's series (without quantile and suffix): ``Total_X``, ``CA_X``,
    ``CA_1_HOBBIES_1``, ``HOBBIES_1_001_CA`` ..."""
    out = {}
    for level in levels.levels:
        keys = level.keys
        if not level.columns:
            out[level.name] = ["Total_X"]
        elif len(level.columns) == 1:
            out[level.name] = [f"{v}_X" for v in keys[level.columns[0]].astype(str)]
        else:
            out[level.name] = ["_".join(parts) for parts in keys[level.columns].astype(str).itertuples(index=False)]
    return out


def quantile_forecast(forecast: pd.DataFrame, calibration: dict, snapshot_dir: Path) -> pd.DataFrame:
    """Every level series × quantile of a run's forecast: ``level, id, <keys>, quantile, F1..F<h>``."""
    levels = Levels(hierarchy_of(forecast, snapshot_dir))
    days = pd.DatetimeIndex(sorted(pd.to_datetime(forecast["date"]).unique()))
    point = levels.aggregate(levels.matrix(forecast.assign(units=forecast["units"].astype(np.float64)), days, "units"))
    quantiles = Q.model_quantiles(point, calibration["coefficients"])
    return long_table(levels, quantiles, calibration["quantiles"], len(days))


def long_table(levels: Levels, quantiles: dict[str, np.ndarray], us, horizon: int) -> pd.DataFrame:
    ids = level_ids(levels)
    parts = []
    for level in levels.levels:
        q = quantiles[level.name]  # series × days × quantiles
        n = level.n_series
        keys = level.keys.reindex(columns=KEY_COLUMNS) if level.columns else pd.DataFrame(
            {c: [None] for c in KEY_COLUMNS})
        part = pd.DataFrame({"level": level.name, "id": np.repeat(ids[level.name], len(us)),
                             "quantile": np.tile(np.asarray(us, dtype=np.float64), n)})
        for c in KEY_COLUMNS:
            part[c] = np.repeat(keys[c].astype(object).where(keys[c].notna(), None).to_numpy(), len(us))
        values = q.transpose(0, 2, 1).reshape(n * len(us), horizon)
        for h in range(horizon):
            part[f"F{h + 1}"] = values[:, h].astype(np.float32)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[["level", "id", *KEY_COLUMNS, "quantile",
                                                 *[f"F{h + 1}" for h in range(horizon)]]]


def uncertainty_submission(table: pd.DataFrame, first_day: dt.date) -> pd.DataFrame:
    """The M5 Uncertainty layout: ``id`` = level keys + ``_<quantile>`` + ``_validation``/``_evaluation``."""
    suffix = submission_suffix(first_day)
    out = table[[c for c in table.columns if c.startswith("F")]].copy()
    out.insert(0, "id", table["id"] + "_" + table["quantile"].map(lambda u: f"{u:.3f}") + suffix)
    return out


def write_quantiles(table: pd.DataFrame, out_dir: Path, first_day: dt.date) -> dict:
    out_dir = Path(out_dir)
    storage.write_parquet(table, out_dir / "quantiles.parquet")
    # Arrow's writer: pandas' formatting of 385,560 × 28 floats took most of a full-scale daily run's
    # quantile step; float32 values are written in their shortest exact form
    submission = uncertainty_submission(table, first_day)
    buffer = io.BytesIO((",".join(submission.columns) + "\n").encode())  # Arrow would quote the header
    buffer.seek(0, io.SEEK_END)
    pa_csv.write_csv(pa.Table.from_pandas(submission, preserve_index=False), buffer,
                     pa_csv.WriteOptions(quoting_style="none", include_header=False))
    storage.atomic_file(out_dir / "submission_uncertainty.csv", buffer.getvalue())
    manifest = {"rows": len(table), "series": int(len(table) // len(set(table["quantile"]))),
                "quantiles": sorted(set(table["quantile"])), "first_date": first_day.isoformat(),
                "content_hash": storage.frame_hash(table)}
    storage.write_json(out_dir / "manifest.json", manifest)
    return manifest
