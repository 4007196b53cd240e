"""The snapshot of a run date and its data-quality checks."""
from __future__ import annotations

import datetime as dt
import logging

from pipeline.data import db, snapshot, storage
from pipeline.stages import extract, quality
from tasks import config
from tasks.outputs import DatedTask

log = logging.getLogger("pipeline")


class ExtractSnapshot(DatedTask):
    """The source database as known at the end of ``date``."""

    stage = "snapshots"
    files = tuple(f"{name}.parquet" for name in snapshot.SNAPSHOT_FILES) + (snapshot.MANIFEST,)

    def run(self):
        engine = db.engine_for(config.database_url())
        # yesterday's snapshot, when it exists, is the base: only the rows recorded today are read.
        # It is not a requirement (that would recurse to the first day); the result is the same bytes.
        previous = ExtractSnapshot(self.date - dt.timedelta(days=1)).output()
        with self.writing() as tmp:
            manifest = extract.extract_snapshot(engine, self.date, tmp,
                                                previous_dir=previous.path if previous.exists() else None)
        log.info("snapshot %s: rows %s, max recorded_at %s, hash %s", self.date, manifest["rows"],
                 manifest["max_recorded_at"]["sales"], manifest["content_hash"]["all"])
        self.set_status_message(f"{manifest['rows']['sales']:,} sales rows, hash {manifest['content_hash']['all'][:12]}")


class CheckSnapshot(DatedTask):
    """Data-quality checks of the snapshot of ``date``; a failure stops the date's chain.

    A failed check writes its report to ``failed/`` inside the output folder (the task
    stays incomplete, nothing downstream runs) and raises.
    """

    stage = "quality"
    files = quality.REPORT_FILES

    def settings(self) -> dict:
        # of the accepted anomalies, only those that apply to this date shape its verdict: accepting one
        # for another date leaves this date's outputs as they are
        cfg = config.quality_settings()
        accepted = quality.parse_accepted(cfg.pop("accept"))
        cfg["accept"] = sorted(e for e in accepted if quality.is_accepted(e.partition(":")[0], self.date, [e]))
        return cfg

    def requires(self):
        req = {"snapshot": ExtractSnapshot(self.date)}
        if config.quality().compare_previous:
            req["previous"] = ExtractSnapshot(self.date - dt.timedelta(days=1))
        return req

    def run(self):
        cfg = config.quality()
        previous = self.input().get("previous")
        report = quality.run_checks(
            self.input()["snapshot"].path, self.date, previous_snapshot_dir=previous.path if previous else None,
            accepted=quality.parse_accepted(cfg.accept),
            thresholds=quality.Thresholds.from_settings(cfg))  # every field is a [quality] parameter
        if not report.passed:
            failed_dir = self.folder() / "failed"
            with storage.atomic_dir(failed_dir) as tmp:
                quality.write_report(report, tmp)
            self.set_status_message(f"data-quality checks failed: {', '.join(c.name for c in report.failed)}")
            report.raise_if_failed(report_path=failed_dir / "quality.md")
        with self.writing() as tmp:  # replaces a stale failed/ report too
            quality.write_report(report, tmp)
        log.info("quality %s: passed%s", self.date,
                 f" (accepted: {[c.name for c in report.accepted]})" if report.accepted else "")
