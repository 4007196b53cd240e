"""The override: an operator accepts a known anomaly, and only through this one mechanism.

``accept`` in the ``[quality]`` section of ``luigi.cfg`` lists entries, each ``"<check>"`` (accept
that check's failure on every run date) or ``"<check>:<YYYY-MM-DD>"`` (only on that run date),
separated by commas, spaces or new lines::

    [quality]
    accept = daily_total_outlier:2016-05-22, price_jump:2016-05-23

An accepted failure is still run and reported (``"passed": false, "accepted": true``) but does not
fail the report. An unknown check name, a malformed date or a hard stop
(:data:`~pipeline.core.checks.catalog.HARD_STOPS`, which no entry can accept) is a ``ValueError``,
so that a typo never silently disables a check nor seems to accept what it cannot. Prefer the
dated form: a bare name switches the check off for every later date too.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

from pipeline.core.checks.catalog import CHECKS, HARD_STOPS, OVERRIDABLE


def parse_accepted(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """Split a config value (entries separated by commas, spaces or new lines) into accept entries, validated."""
    if text is None:
        return ()
    parts = re.split(r"[,\s]+", text) if isinstance(text, str) else [str(p).strip() for p in text]
    entries = tuple(p for p in parts if p)
    validate_accepted(entries)
    return entries


def validate_accepted(entries: Iterable[str]) -> None:
    """ValueError naming the first entry that is no check, has no valid date, or names a hard stop."""
    for entry in entries:
        name, sep, date = str(entry).strip().partition(":")
        if name not in CHECKS:
            raise ValueError(f"quality accept entry {entry!r}: {name!r} is not a check; the checks that can be "
                             f"accepted are {', '.join(OVERRIDABLE)} (the form is '<check>' or '<check>:<YYYY-MM-DD>')")
        if name in HARD_STOPS:
            raise ValueError(f"quality accept entry {entry!r}: {name} is a hard stop, which cannot be accepted: mend "
                             f"the rows in the source (a correction recorded later replaces them); the checks that can "
                             f"be accepted are {', '.join(OVERRIDABLE)}")
        if sep:
            try:
                dt.date.fromisoformat(date)
            except ValueError:
                raise ValueError(f"quality accept entry {entry!r}: {date!r} is not a date YYYY-MM-DD") from None


def is_accepted(name: str, run_date: dt.date, accepted: Iterable[str]) -> bool:
    """Whether ``accepted`` holds ``name`` or ``name:<run_date>`` (a hard stop never is)."""
    if name in HARD_STOPS:
        return False
    for entry in accepted:
        check, sep, date = str(entry).strip().partition(":")
        if check == name and (not sep or dt.date.fromisoformat(date) == run_date):
            return True
    return False


def how_to_accept(name: str, run_date: dt.date) -> str:
    """The sentence a failure message ends with: how to accept it, or why it cannot be."""
    if name in HARD_STOPS:
        return ("A hard stop: it cannot be accepted; mend the rows in the source (a correction recorded later "
                "replaces them) and run the date again.")
    return (f"If the data is right, accept it in the [quality] section of luigi.cfg: "
            f"accept = {name}:{run_date.isoformat()}")
