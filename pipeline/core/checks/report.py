"""The outcome of the checks: one :class:`CheckResult` per check, collected in a :class:`QualityReport`.

The report renders itself as stable JSON (:meth:`QualityReport.to_json`: the same snapshot gives the
same bytes) and as markdown (:meth:`QualityReport.to_markdown`); :mod:`pipeline.stages.quality`
writes them as ``quality.json`` and ``quality.md``. :meth:`QualityReport.raise_if_failed` stops the
date's chain with a :class:`~pipeline.core.errors.DataError` listing every failed check.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pandas as pd

from pipeline.core.checks.catalog import HARD_STOPS
from pipeline.core.checks.text import json_value, num, records
from pipeline.core.checks.thresholds import Thresholds
from pipeline.core.errors import DataError


@dataclasses.dataclass
class CheckResult:
    """The outcome of one check: ``offending`` holds the first ``max_offending`` rows, ``count`` all of them."""

    name: str
    passed: bool
    message: str
    offending: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    accepted: bool = False
    count: int = 0

    @property
    def hard_stop(self) -> bool:
        """A failure of this check cannot be accepted (see :mod:`pipeline.core.checks.catalog`)."""
        return self.name in HARD_STOPS

    @property
    def ok(self) -> bool:
        """Passed, or failed and accepted by the operator."""
        return self.passed or self.accepted

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "accepted": self.accepted, "hard_stop": self.hard_stop,
                "message": self.message, "count": self.count, "offending": records(self.offending)}


@dataclasses.dataclass
class QualityReport:
    """Every check's result for one run date."""

    run_date: dt.date
    checks: list[CheckResult]
    accept: tuple[str, ...] = ()
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    snapshot_hash: str | None = None
    previous_date: dt.date | None = None

    @property
    def passed(self) -> bool:
        """True when every check passed or its failure was accepted."""
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        """The checks that failed and were not accepted."""
        return [c for c in self.checks if not c.ok]

    @property
    def accepted(self) -> list[CheckResult]:
        """The checks that failed but were accepted by the operator."""
        return [c for c in self.checks if not c.passed and c.accepted]

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict:
        return {
            "run_date": self.run_date.isoformat(),
            "passed": self.passed,
            "failed": [c.name for c in self.failed],
            "accepted": [c.name for c in self.accepted],
            "accept": list(self.accept),
            "snapshot_hash": self.snapshot_hash,
            "previous_snapshot_date": self.previous_date.isoformat() if self.previous_date else None,
            "thresholds": dataclasses.asdict(self.thresholds),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_json(self) -> str:
        """Stable JSON (sorted keys, checks in catalog order): the same snapshot gives the same bytes."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=_json_default, allow_nan=False,
                          ensure_ascii=False) + "\n"

    def to_markdown(self) -> str:
        d = self.run_date.isoformat()
        lines = [f"# Data quality of the snapshot of {d}: {'PASSED' if self.passed else 'FAILED'}", ""]
        if self.previous_date:
            lines += [f"Compared with the previous snapshot of {self.previous_date.isoformat()}.", ""]
        lines += ["| check | result | rows | message |", "| --- | --- | ---: | --- |"]
        for c in self.checks:
            result = ("passed" if c.passed else "failed, accepted" if c.accepted
                      else "**FAILED** (hard stop)" if c.hard_stop else "**FAILED**")
            lines.append(f"| {c.name} | {result} | {c.count:,} | {_md_cell(c.message)} |")
        for c in self.checks:
            if c.passed:
                continue
            verdict = ("failed, accepted by the operator" if c.accepted
                       else "FAILED, a hard stop (cannot be accepted)" if c.hard_stop else "FAILED")
            lines += ["", f"## {c.name}: {verdict}", "", c.message, ""]
            if len(c.offending):
                shown = f"first {len(c.offending)} of {c.count:,}" if c.count > len(c.offending) else f"all {c.count:,}"
                lines += [f"Offending rows ({shown}):", "", *_md_table(c.offending)]
        if self.failed:
            lines += ["", "## What to do", "", _what_to_do(self.run_date, self.failed)]
        if self.accept:
            lines += ["", f"Operator acceptances in force: {', '.join(f'`{a}`' for a in self.accept)}."]
        return "\n".join(lines) + "\n"

    def raise_if_failed(self, report_path=None) -> None:
        """Raise DataError listing every failed (not accepted) check's message and what to do."""
        failed = self.failed
        if not failed:
            return
        lines = [f"data quality checks failed for the snapshot of {self.run_date.isoformat()} "
                 f"({len(failed)} of {len(self.checks)} checks); nothing downstream of it runs:"]
        lines += [f"  - {c.message}" for c in failed]
        if report_path is not None:
            lines.append(f"Report: {report_path}")
        lines.append(_what_to_do(self.run_date, failed))
        raise DataError("\n".join(lines))


def _what_to_do(run_date: dt.date, failed: list[CheckResult]) -> str:
    hard = [c.name for c in failed if c.hard_stop]
    soft = [c.name for c in failed if not c.hard_stop]
    parts = []
    if hard:
        parts.append(f"{', '.join(hard)} {'is a hard stop' if len(hard) == 1 else 'are hard stops'}: no setting "
                     "accepts them; mend the rows in the source (a correction recorded later replaces them) and run "
                     "the date again.")
    if soft:
        entries = ", ".join(f"{name}:{run_date.isoformat()}" for name in soft)
        parts.append("If the data is right (a known anomaly), accept it for this run date with `accept` in the "
                     f"[quality] section of luigi.cfg, e.g. `accept = {entries}` ('<check>' without a date "
                     "accepts it on every run date), and run the date again.")
    return " ".join(parts)


def _json_default(v):
    value = json_value(v)
    return str(value) if value is v else value


def _md_cell(v) -> str:
    text = "" if v is None else (num(v) if isinstance(v, float) else str(v))
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(frame: pd.DataFrame) -> list[str]:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(_md_cell(r[c]) for c in cols) + " |" for r in records(frame)]
    return lines
