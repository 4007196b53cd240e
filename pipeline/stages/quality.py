"""The CheckSnapshot stage: read a run date's snapshot (and the previous one), run every check, write the report.

Bad data is stopped at the door. The checks themselves are pure functions of the snapshot's
frames in :mod:`pipeline.core.checks` (its ``catalog`` lists them by name and says which are hard
stops); this module only loads the frames through :mod:`pipeline.data.snapshot` and writes
``quality.json`` and ``quality.md`` (:func:`write_report`). ``report.raise_if_failed()`` then stops
the date's chain with a :class:`~pipeline.core.errors.DataError`.

The knobs are the fields of :class:`Thresholds` (``[quality]`` in ``luigi.cfg``); the one way to
accept a known anomaly is ``accept`` there (:mod:`pipeline.core.checks.accept`).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Iterable

import pandas as pd

from pipeline.core.checks.accept import is_accepted, parse_accepted
from pipeline.core.checks.catalog import CHECKS, HARD_STOPS
from pipeline.core.checks.frame import PreviousSnapshot, names_with_rows
from pipeline.core.checks.report import CheckResult, QualityReport
from pipeline.core.checks.run import check_frames
from pipeline.core.checks.thresholds import Thresholds
from pipeline.data import storage
from pipeline.data.snapshot import MANIFEST, read_manifest, read_snapshot

__all__ = ["CHECKS", "HARD_STOPS", "REPORT_FILES", "CheckResult", "PreviousSnapshot", "QualityReport", "Thresholds",
           "check_frames", "is_accepted", "parse_accepted", "read_previous", "run_checks", "write_report"]

REPORT_FILES = ("quality.json", "quality.md")
SALES_COLUMNS = ["item_id", "store_id", "date", "units"]  # what the checks read of the sales


def run_checks(snapshot_dir: Path | str, run_date: dt.date | str, previous_snapshot_dir: Path | str | None = None,
               accepted: Iterable[str] = (), thresholds: Thresholds | None = None) -> QualityReport:
    """Every check on the snapshot in ``snapshot_dir`` (and the one in ``previous_snapshot_dir``, if given)."""
    snapshot_dir = Path(snapshot_dir)
    frames = {name: read_snapshot(snapshot_dir, name) for name in ("calendar", "items", "stores", "prices")}
    frames["sales"] = read_snapshot(snapshot_dir, "sales", columns=SALES_COLUMNS)
    snapshot_hash = _manifest(snapshot_dir).get("content_hash", {}).get("all")
    previous = read_previous(previous_snapshot_dir) if previous_snapshot_dir is not None else None
    return check_frames(frames, run_date, previous, accepted, thresholds, snapshot_hash)


def read_previous(snapshot_dir: Path | str) -> PreviousSnapshot:
    """The date (manifest, else the last sales date), the ids with sales rows and the sales of a snapshot."""
    snapshot_dir = Path(snapshot_dir)
    sales = read_snapshot(snapshot_dir, "sales", columns=SALES_COLUMNS)
    date = _manifest(snapshot_dir).get("date")
    date = dt.date.fromisoformat(date) if date else pd.Timestamp(sales["date"].max()).date()
    return PreviousSnapshot(date, names_with_rows(sales["store_id"]), names_with_rows(sales["item_id"]), sales)


def write_report(report: QualityReport, out_dir: Path | str) -> list[Path]:
    """Write ``quality.json`` and ``quality.md`` into ``out_dir``, each atomically; the paths in REPORT_FILES order."""
    out = Path(out_dir)
    paths = [out / name for name in REPORT_FILES]
    for path, text in zip(paths, (report.to_json(), report.to_markdown())):
        storage.atomic_file(path, text.encode("utf-8"))
    return paths


def _manifest(snapshot_dir: Path) -> dict:
    """The snapshot's manifest, or {} for a folder without one (a snapshot written by hand in a test)."""
    return read_manifest(snapshot_dir) if (snapshot_dir / MANIFEST).exists() else {}
