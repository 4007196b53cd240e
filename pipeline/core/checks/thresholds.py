"""The knobs of the checks: every threshold a check compares with is a field of :class:`Thresholds`.

Each field is also a parameter of the ``[quality]`` section of ``luigi.cfg`` (``tasks.config.quality``)
of the same name; :meth:`Thresholds.from_settings` reads them from there. What a check holds fixed
by definition (the layout of its integer keys, the block sizes that bound its memory, how many
examples a message quotes) is a constant of its module, documented there as fixed.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The thresholds of the checks; defaults in brackets, the check that uses each in parentheses."""

    #: (vanished_series) days before the run date in which a series' regularity is judged [28]
    regular_days: int = 28
    #: (vanished_series) share of those days with >= 1 unit sold that makes a series regular [0.5]
    regular_share: float = 0.5
    #: (daily_total_outlier, history_change) weeks of same-weekday totals a day is compared with [8]
    outlier_weeks: int = 8
    #: (daily_total_outlier, history_change) the band is median +- outlier_k x MAD [6]
    outlier_k: float = 6.0
    #: (daily_total_outlier, history_change) a total outside the band is flagged only when also
    #: more than this share away from the median [0.5]
    outlier_min_relative: float = 0.5
    #: (daily_total_outlier, history_change) fewer usable reference days than this: not checked [4]
    outlier_min_reference: int = 4
    #: (daily_total_outlier, history_change) calendar events on which the stores are closed: such
    #: days are neither checked nor used as reference days [Christmas]
    closed_events: tuple[str, ...] = ("Christmas",)
    #: (price_jump) a price changing by more than this factor, up or down, from its previous priced week [5]
    price_jump_factor: float = 5.0
    #: (price_jump) weeks up to the run date's whose price changes are checked, 0 = all history [1]
    price_jump_weeks: int = 1
    #: (history_change) days before a row's date that give its series' usual range [56]
    history_days: int = 56
    #: (history_change) the quantile of those days' units that is the top of the usual range [0.95]
    history_quantile: float = 0.95
    #: (history_change) a row is flagged when its units rose by more than this x that quantile ... [10]
    history_factor: float = 10.0
    #: (history_change) ... and by more than this on a past day (a late row, a correction) [100]
    history_min_units: int = 100
    #: (history_change) ... or by more than this on the run date (its rows are a whole day) [1000]
    history_run_date_min_units: int = 1000
    #: (history_change) more past keys changed than this many days' worth of rows is a rewrite [1]
    history_max_changed_days: float = 1.0
    #: (every check) offending rows listed in the report and the error; all are counted [20]
    max_offending: int = 20

    def __post_init__(self):
        if isinstance(self.closed_events, str):
            object.__setattr__(self, "closed_events", parse_events(self.closed_events))
        else:
            object.__setattr__(self, "closed_events", tuple(str(e) for e in self.closed_events))
        rules = {
            "regular_days": self.regular_days >= 1, "regular_share": 0 < self.regular_share <= 1,
            "outlier_weeks": self.outlier_weeks >= 1, "outlier_k": self.outlier_k >= 0,
            "outlier_min_relative": self.outlier_min_relative >= 0, "outlier_min_reference": self.outlier_min_reference >= 1,
            "price_jump_factor": self.price_jump_factor > 1, "price_jump_weeks": self.price_jump_weeks >= 0,
            "history_days": self.history_days >= 0, "history_quantile": 0 <= self.history_quantile <= 1,
            "history_factor": self.history_factor >= 0, "history_min_units": self.history_min_units >= 0,
            "history_run_date_min_units": self.history_run_date_min_units >= 0,
            "history_max_changed_days": self.history_max_changed_days >= 0, "max_offending": self.max_offending >= 1,
        }
        bad = [name for name, ok in rules.items() if not ok]
        if bad:
            raise ValueError("quality thresholds out of range: " + ", ".join(
                f"{name}={getattr(self, name)!r} (must be {_RANGES[name]})" for name in bad))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_settings(cls, settings) -> "Thresholds":
        """The thresholds from an object with one attribute per field (the ``[quality]`` config section)."""
        return cls(**{name: getattr(settings, name) for name in cls.names()})


_RANGES = {
    "regular_days": ">= 1", "regular_share": "in (0, 1]", "outlier_weeks": ">= 1", "outlier_k": ">= 0",
    "outlier_min_relative": ">= 0", "outlier_min_reference": ">= 1", "price_jump_factor": "> 1",
    "price_jump_weeks": ">= 0", "history_days": ">= 0", "history_quantile": "in [0, 1]", "history_factor": ">= 0",
    "history_min_units": ">= 0", "history_run_date_min_units": ">= 0", "history_max_changed_days": ">= 0",
    "max_offending": ">= 1",
}


def parse_events(text: str) -> tuple[str, ...]:
    """Event names separated by commas (a name may hold spaces, as "Mother's day" does)."""
    return tuple(e.strip() for e in text.split(",") if e.strip())
