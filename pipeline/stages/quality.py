"""Data-quality checks of a run date's snapshot: bad data is stopped at the door.

``run_checks(snapshot_dir, run_date)`` reads the snapshot written by
:mod:`pipeline.stages.extract` and runs every check of :data:`CHECKS` on it. Each check
gives a :class:`CheckResult` whose message names the offending rows; the
:class:`QualityReport` collects them, is written as ``quality.json`` and
``quality.md`` (``report.write(folder)``) and ``report.raise_if_failed()`` stops
the date's chain with a :class:`~pipeline.core.errors.DataError`. The checks are pure
functions of the snapshot's frames (:func:`check_frames`), vectorised over whole
columns (integer codes, epoch days, ``bincount``), so a 60 M-row snapshot is
checked in seconds.

Checks (thresholds are fields of :class:`Thresholds`, defaults in brackets)
    ``negative_units``       a sales row with units < 0 (whole history).
    ``duplicate_keys``       two rows with one key: sales ``(store_id, item_id, date)``,
                             prices ``(store_id, item_id, wm_yr_wk)`` (whole history).
    ``future_dates``         a sales row dated after the run date.
    ``vanished_series``      a series that sold >= 1 unit on >= ``regular_share`` [50 %] of the
                             ``regular_days`` [28] days before the run date but has no row at all
                             on the run date; a store with rows in those days and none on the run
                             date; with a previous snapshot, an item or store that had rows there
                             and has none at all now.
    ``new_from_nothing``     an item_id / store_id in sales that is not in the items / stores
                             table; with a previous snapshot, a store that had no row there, and
                             an item that had no row there but whose first row is dated before the
                             previous snapshot's date (history that appeared retroactively; a
                             brand-new item first sold after that date is a normal launch).
    ``daily_total_outlier``  the run date's total units against the same weekday's totals over the
                             previous ``outlier_weeks`` [8] weeks: outside median +- ``outlier_k``
                             [6] x MAD *and* more than ``outlier_min_relative`` [50 %] away from
                             the median. Days of a ``closed_events`` [Christmas] calendar event
                             (stores closed) are never checked nor used as reference; with fewer
                             than ``outlier_min_reference`` [4] reference days the check passes.
    ``history_change``       every sales row that became known since the previous snapshot, whatever
                             day it is for (a new key or a changed value; the run date's rows too):
                             units up by more than max(``history_factor`` [10] x the
                             ``history_quantile`` [95 %] quantile of the series' ``history_days``
                             [56] days before the row's date, ``history_min_units`` [100] on a past
                             day, ``history_run_date_min_units`` [1,000] on the run date); a past
                             day whose total the changes moved far outside the weekday band of
                             ``daily_total_outlier``; a key of the previous snapshot with no row
                             now (history deleted); more past keys changed or added than
                             ``history_max_changed_days`` [1] days' worth of rows. Without a
                             previous snapshot it passes, saying it could not compare. Rules and
                             their rationale: :mod:`pipeline.core.history_checks`.
    ``price_not_positive``   a sell_price that is zero, negative or missing (whole history).
    ``price_jump``           an item-store's price changing by more than a factor
                             ``price_jump_factor`` [5] (up or down) from its previous priced week,
                             into the run date's week or a later one (``price_jump_weeks`` [1]:
                             how many weeks up to the run date's are checked, 0 = all history;
                             real M5 history holds a few such jumps, which must not fail every
                             later date).

Override (an operator accepts a known anomaly)
    ``accepted`` is a collection of strings, each ``"<check name>"`` (accept that check's
    failure on every run date) or ``"<check name>:<run date>"`` (only on that run date, ISO
    ``YYYY-MM-DD``), e.g. in ``luigi.cfg``::

        [quality]
        accept = daily_total_outlier:2016-05-22, price_jump:2016-05-23

    (entries separated by commas, spaces or new lines: :func:`parse_accepted`). An accepted
    failure is still run and reported (``"passed": false, "accepted": true``) but does not fail
    the report. An unknown check name or a malformed date is a ``ValueError``, so that a typo
    never silently disables a check. Prefer the dated form: a bare name switches the check off
    for every later date too.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from pipeline.core import history_checks
from pipeline.core.errors import DataError

CHECKS = ("negative_units", "duplicate_keys", "future_dates", "vanished_series", "new_from_nothing",
          "daily_total_outlier", "history_change", "price_not_positive", "price_jump")
REPORT_FILES = ("quality.json", "quality.md")
NULL_ID = "<null>"  # how a missing item_id / store_id is shown


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The knobs of the checks (see the module docstring)."""

    regular_days: int = 28
    regular_share: float = 0.5
    outlier_weeks: int = 8
    outlier_k: float = 6.0
    outlier_min_relative: float = 0.5
    outlier_min_reference: int = 4
    closed_events: tuple[str, ...] = ("Christmas",)
    price_jump_factor: float = 5.0
    price_jump_weeks: int = 1
    history_days: int = 56
    history_quantile: float = 0.95
    history_factor: float = 10.0
    history_min_units: int = 100
    history_run_date_min_units: int = 1000
    history_max_changed_days: float = 1.0
    max_offending: int = 20


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
    def ok(self) -> bool:
        """Passed, or failed and accepted by the operator."""
        return self.passed or self.accepted

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "accepted": self.accepted, "message": self.message,
                "count": self.count, "offending": _records(self.offending)}


@dataclasses.dataclass(frozen=True)
class PreviousSnapshot:
    """What the checks need of the previous snapshot: its date, the ids that had sales rows, its sales.

    ``sales`` (item_id, store_id, date, units) is what ``history_change`` compares with; without
    it that check passes, saying it could not compare.
    """

    date: dt.date
    store_ids: frozenset[str]
    item_ids: frozenset[str]
    sales: pd.DataFrame | None = dataclasses.field(default=None, compare=False, repr=False)


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
        """Stable JSON (sorted keys, checks in :data:`CHECKS` order): the same snapshot gives the same bytes."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=_json_default, allow_nan=False,
                          ensure_ascii=False) + "\n"

    def to_markdown(self) -> str:
        d = self.run_date.isoformat()
        status = "PASSED" if self.passed else "FAILED"
        lines = [f"# Data quality of the snapshot of {d}: {status}", ""]
        if self.previous_date:
            lines += [f"Compared with the previous snapshot of {self.previous_date.isoformat()}.", ""]
        lines += ["| check | result | rows | message |", "| --- | --- | ---: | --- |"]
        for c in self.checks:
            result = "passed" if c.passed else ("failed, accepted" if c.accepted else "**FAILED**")
            lines.append(f"| {c.name} | {result} | {c.count:,} | {_md_cell(c.message)} |")
        for c in self.checks:
            if c.passed:
                continue
            head = f"## {c.name}: {'failed, accepted by the operator' if c.accepted else 'FAILED'}"
            lines += ["", head, "", c.message, ""]
            if len(c.offending):
                shown = f"first {len(c.offending)} of {c.count:,}" if c.count > len(c.offending) else f"all {c.count:,}"
                lines += [f"Offending rows ({shown}):", "", *_md_table(c.offending)]
        if self.failed:
            lines += ["", "## How to accept a known anomaly", "", _override_hint(self.run_date, self.failed)]
        if self.accept:
            lines += ["", f"Operator acceptances in force: {', '.join(f'`{a}`' for a in self.accept)}."]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path | str) -> list[Path]:
        """Write ``quality.json`` and ``quality.md`` into ``out_dir`` (wrap in ``storage.atomic_dir`` for atomicity)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / name for name in REPORT_FILES]
        paths[0].write_text(self.to_json(), encoding="utf-8")
        paths[1].write_text(self.to_markdown(), encoding="utf-8")
        return paths

    def raise_if_failed(self, report_path: Path | str | None = None) -> None:
        """Raise DataError listing every failed (not accepted) check's message and how to override."""
        failed = self.failed
        if not failed:
            return
        lines = [f"data quality checks failed for the snapshot of {self.run_date.isoformat()} "
                 f"({len(failed)} of {len(self.checks)} checks); nothing downstream of it runs:"]
        lines += [f"  - {c.message}" for c in failed]
        if report_path is not None:
            lines.append(f"Report: {report_path}")
        lines.append(_override_hint(self.run_date, failed))
        raise DataError("\n".join(lines))


def _override_hint(run_date: dt.date, failed: list[CheckResult]) -> str:
    entries = ", ".join(f"{c.name}:{run_date.isoformat()}" for c in failed)
    return ("If the data is right (a known anomaly), accept it for this run date with `accept` in the "
            f"[quality] section of luigi.cfg, e.g. `accept = {entries}` ('<check>' without a date "
            "accepts it on every run date), and run the date again.")


# ----------------------------------------------------------------------------------------------
# The override
# ----------------------------------------------------------------------------------------------


def parse_accepted(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """Split a config value (entries separated by commas, spaces or new lines) into accept entries, validated."""
    if text is None:
        return ()
    parts = re.split(r"[,\s]+", text) if isinstance(text, str) else [p.strip() for p in text]
    entries = tuple(p for p in parts if p)
    _validate_accepted(entries)
    return entries


def _validate_accepted(entries: Iterable[str]) -> None:
    for entry in entries:
        name, sep, date = str(entry).strip().partition(":")
        if name not in CHECKS:
            raise ValueError(f"quality accept entry {entry!r}: {name!r} is not a check; the checks are {', '.join(CHECKS)} "
                             "(the form is '<check>' or '<check>:<YYYY-MM-DD>')")
        if sep:
            try:
                dt.date.fromisoformat(date)
            except ValueError:
                raise ValueError(f"quality accept entry {entry!r}: {date!r} is not a date YYYY-MM-DD") from None


def is_accepted(name: str, run_date: dt.date, accepted: Iterable[str]) -> bool:
    """Whether ``accepted`` holds ``name`` or ``name:<run_date>``."""
    for entry in accepted:
        check, sep, date = str(entry).strip().partition(":")
        if check == name and (not sep or dt.date.fromisoformat(date) == run_date):
            return True
    return False


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


def run_checks(snapshot_dir: Path | str, run_date: dt.date | str, previous_snapshot_dir: Path | str | None = None,
               accepted: Iterable[str] = (), thresholds: Thresholds | None = None) -> QualityReport:
    """Run every check on the snapshot in ``snapshot_dir`` (see the module docstring)."""
    snapshot_dir = Path(snapshot_dir)
    frames = {name: pd.read_parquet(snapshot_dir / f"{name}.parquet")
              for name in ("calendar", "items", "stores", "prices")}
    frames["sales"] = pd.read_parquet(snapshot_dir / "sales.parquet", columns=["item_id", "store_id", "date", "units"])
    manifest = _manifest(snapshot_dir)
    snapshot_hash = (manifest or {}).get("content_hash", {}).get("all")
    previous = read_previous(previous_snapshot_dir) if previous_snapshot_dir is not None else None
    return check_frames(frames, run_date, previous, accepted, thresholds, snapshot_hash)


def read_previous(snapshot_dir: Path | str) -> PreviousSnapshot:
    """The date (manifest, else the last sales date), the ids with sales rows and the sales of a snapshot."""
    snapshot_dir = Path(snapshot_dir)
    manifest = _manifest(snapshot_dir)
    sales = pd.read_parquet(snapshot_dir / "sales.parquet", columns=["item_id", "store_id", "date", "units"])
    if manifest and manifest.get("date"):
        date = dt.date.fromisoformat(manifest["date"])
    else:
        date = pd.Timestamp(sales["date"].max()).date()
    return PreviousSnapshot(date, _names_with_rows(sales["store_id"]), _names_with_rows(sales["item_id"]), sales)


def _names_with_rows(col: pd.Series) -> frozenset[str]:
    """The distinct non-null values of an id column (a categorical's by counting its codes)."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype("category")
    codes = col.cat.codes.to_numpy()
    used = np.flatnonzero(np.bincount(codes + 1, minlength=len(col.cat.categories) + 1)[1:])  # code -1: missing
    return frozenset(str(x) for x in col.cat.categories[used])


def check_frames(frames: Mapping[str, pd.DataFrame], run_date: dt.date | str, previous: PreviousSnapshot | None = None,
                 accepted: Iterable[str] = (), thresholds: Thresholds | None = None,
                 snapshot_hash: str | None = None) -> QualityReport:
    """Every check on in-memory snapshot frames (``sales, prices, calendar, items, stores``); pure."""
    run_date = _as_date(run_date)
    accepted = tuple(str(a).strip() for a in accepted)
    _validate_accepted(accepted)
    t = thresholds or Thresholds()
    snap = _Snap(frames, run_date, previous, t)
    results = []
    for name in CHECKS:
        result = _CHECK_FUNCS[name](snap)
        if not result.passed and is_accepted(name, run_date, accepted):
            result.accepted = True
            result.message += " [accepted by the operator]"
        results.append(result)
    return QualityReport(run_date, results, accepted, t, snapshot_hash, previous.date if previous else None)


# ----------------------------------------------------------------------------------------------
# Columns as integer arrays
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Ids:
    codes: np.ndarray  # the categorical's integer codes, every row >= 0 (a missing id is the category NULL_ID)
    names: np.ndarray  # object array of str, indexed by code

    def name(self, codes) -> np.ndarray:
        return self.names[np.asarray(codes)]


def _ids(col: pd.Series) -> _Ids:
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype("category")
    codes = col.cat.codes.to_numpy()  # int8 / int16 / int32: no copy of a 60 M-row column
    names = np.asarray([str(x) for x in col.cat.categories], dtype=object)
    if len(codes) and codes.min() < 0:
        codes = np.where(codes < 0, len(names), codes).astype(np.int32)
        names = np.append(names, NULL_ID).astype(object)
    return _Ids(codes, names)


def _used_names(ids: _Ids) -> list[str]:
    used = np.bincount(ids.codes, minlength=len(ids.names)) > 0
    return list(ids.names[used])


def _epoch_days(values) -> np.ndarray:
    """Dates as int32 days since 1970-01-01 (NaT: the smallest int32)."""
    days = np.asarray(values).astype("datetime64[D]").view(np.int64)
    return np.maximum(days, np.iinfo(np.int32).min).astype(np.int32)


def _day(d: int) -> str:
    return (np.datetime64(int(d), "D")).astype(object).isoformat() if d > np.iinfo(np.int32).min else "NaT"


class _Snap:
    """The snapshot's frames plus the integer columns every check shares (computed once).

    Sales dates stay raw datetime ticks (``ticks``, a view of the column, no copy): whole-column
    work is comparisons against day boundaries; ticks become days only on the few rows of a window.
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame], run_date: dt.date, previous: PreviousSnapshot | None,
                 t: Thresholds):
        self.run_date, self.previous, self.t = run_date, previous, t
        self.run_day = int(np.datetime64(run_date, "D").astype(np.int64))
        self.calendar, self.items, self.stores = frames["calendar"], frames["items"], frames["stores"]
        self.prices = frames["prices"]
        sales = frames["sales"]
        self.n_rows = len(sales)
        self.store, self.item = _ids(sales["store_id"]), _ids(sales["item_id"])
        self.n_stores, self.n_items = len(self.store.names), len(self.item.names)
        dates = sales["date"].to_numpy()
        if dates.dtype.kind != "M":
            dates = pd.to_datetime(sales["date"]).to_numpy()
        unit, count = np.datetime_data(dates.dtype)
        self.ticks_per_day = int(np.timedelta64(1, "D") // np.timedelta64(count, unit))
        self.ticks = dates.view(np.int64)  # NaT is the smallest int64: before every day
        self.units = sales["units"].to_numpy()
        # series code store * n_items + item, int32 (30,490 series need 15 bits)
        self.series = self.store.codes.astype(np.int32) * np.int32(self.n_items)
        self.series += self.item.codes

    def start_of(self, day: int) -> int:
        """The first tick of epoch day ``day``."""
        return day * self.ticks_per_day

    def between(self, first_day: int, last_day: int) -> np.ndarray:
        """Positions of the rows dated ``first_day`` .. ``last_day`` (epoch days, inclusive)."""
        return np.flatnonzero((self.ticks >= self.start_of(first_day)) & (self.ticks < self.start_of(last_day + 1)))

    def days(self, idx: np.ndarray) -> np.ndarray:
        """Epoch days of the rows ``idx``."""
        t = self.ticks[idx]
        return np.where(t == np.iinfo(np.int64).min, np.iinfo(np.int32).min, t // self.ticks_per_day)

    def sales_rows(self, idx: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({
            "store_id": self.store.name(self.store.codes[idx]),
            "item_id": self.item.name(self.item.codes[idx]),
            "date": [_day(d) for d in self.days(idx)],
            "units": self.units[idx].astype(np.int64),
        })


def _result(snap: _Snap, name: str, count: int, message: str, offending: pd.DataFrame | None = None) -> CheckResult:
    offending = pd.DataFrame() if offending is None else offending.head(snap.t.max_offending).reset_index(drop=True)
    return CheckResult(name, count == 0, f"{name}: {message}", offending, False, int(count))


def _describe(rows: pd.DataFrame, n: int = 3) -> str:
    """The first ``n`` rows as ``col=value ...`` separated by '; '."""
    parts = []
    for rec in _records(rows.head(n)):
        parts.append(" ".join(f"{k}={_fmt(v)}" for k, v in rec.items() if v is not None))
    more = "" if len(rows) <= n else "; ..."
    return "; ".join(parts) + more


def _fmt(v) -> str:
    if isinstance(v, float):
        return _num(v)
    return str(v)


def _num(x: float, digits: int = 2) -> str:
    """12,345 for whole numbers, else up to ``digits`` decimals."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return str(x)
    if float(x).is_integer():
        return f"{int(x):,}"
    text = f"{x:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# ----------------------------------------------------------------------------------------------
# The checks
# ----------------------------------------------------------------------------------------------


def _negative_units(s: _Snap) -> CheckResult:
    idx = np.flatnonzero(s.units < 0)
    if not len(idx):
        return _result(s, "negative_units", 0, f"no sales row has negative units ({s.n_rows:,} rows)")
    rows = s.sales_rows(idx[: s.t.max_offending])
    return _result(s, "negative_units", len(idx),
                   f"{len(idx):,} sales row(s) with negative units, e.g. {_describe(rows)}", rows)


def _duplicate_positions(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Positions of the rows whose key (major, minor) occurs more than once, grouped by key.

    O(n) comparisons when the rows are sorted by the key (as a snapshot is); otherwise one lexsort.
    """
    if len(major) < 2:
        return np.empty(0, dtype=np.int64)
    a0, a1, b0, b1 = major[:-1], major[1:], minor[:-1], minor[1:]
    same_major = a1 == a0
    if ((a1 > a0) | (same_major & (b1 > b0))).all():
        return np.empty(0, dtype=np.int64)
    if ((a1 > a0) | (same_major & (b1 >= b0))).all():
        order = None
        eq = same_major & (b1 == b0)
    else:
        order = np.lexsort((minor, major))
        ma, mi = major[order], minor[order]
        eq = (ma[1:] == ma[:-1]) & (mi[1:] == mi[:-1])
    dup = np.zeros(len(major), dtype=bool)
    dup[1:] |= eq
    dup[:-1] |= eq
    pos = np.flatnonzero(dup)
    return pos if order is None else order[pos]


def _duplicate_keys(s: _Snap) -> CheckResult:
    t = s.t
    sales_dup = _duplicate_positions(s.series, s.ticks)  # (store_id, item_id, date)
    p = s.prices
    pst, pit = _ids(p["store_id"]), _ids(p["item_id"])
    pser = pst.codes.astype(np.int64) * len(pit.names) + pit.codes
    wk = p["wm_yr_wk"].to_numpy().astype(np.int64)
    price_dup = _duplicate_positions(pser, wk)  # (store_id, item_id, wm_yr_wk)

    def n_keys(major: np.ndarray, minor: np.ndarray) -> int:
        return len(pd.MultiIndex.from_arrays([major, minor]).unique()) if len(major) else 0

    n_keys_sales = n_keys(s.series[sales_dup], s.ticks[sales_dup])
    n_keys_prices = n_keys(pser[price_dup], wk[price_dup])
    if not len(sales_dup) and not len(price_dup):
        return _result(s, "duplicate_keys", 0, f"every key is unique: {s.n_rows:,} sales rows (store_id, item_id, date), "
                                               f"{len(p):,} price rows (store_id, item_id, wm_yr_wk)")
    sales_rows = s.sales_rows(sales_dup[: t.max_offending]).assign(table="sales")
    pi = price_dup[: t.max_offending]
    price_rows = pd.DataFrame({
        "table": "prices", "store_id": pst.name(pst.codes[pi]), "item_id": pit.name(pit.codes[pi]),
        "wm_yr_wk": wk[pi], "sell_price": p["sell_price"].to_numpy()[pi].astype(np.float64),
    })
    cols = ["table", "store_id", "item_id", "date", "wm_yr_wk", "units", "sell_price"]
    frames = [f for f in (sales_rows, price_rows) if len(f)]
    rows = pd.concat(frames, ignore_index=True).reindex(columns=cols).astype(object)
    rows = rows.where(pd.notna(rows), None)
    parts = []
    if len(sales_dup):
        parts.append(f"sales: {len(sales_dup):,} rows share {n_keys_sales:,} key(s) (store_id, item_id, date), "
                     f"e.g. {_describe(sales_rows.drop(columns='table'), 2)}")
    if len(price_dup):
        parts.append(f"prices: {len(price_dup):,} rows share {n_keys_prices:,} key(s) (store_id, item_id, wm_yr_wk), "
                     f"e.g. {_describe(price_rows.drop(columns='table'), 2)}")
    return _result(s, "duplicate_keys", len(sales_dup) + len(price_dup), "; ".join(parts), rows)


def _future_dates(s: _Snap) -> CheckResult:
    idx = np.flatnonzero(s.ticks >= s.start_of(s.run_day + 1))
    d = s.run_date.isoformat()
    if not len(idx):
        return _result(s, "future_dates", 0, f"no sales row is dated after the run date {d}")
    rows = s.sales_rows(idx[: s.t.max_offending])
    return _result(s, "future_dates", len(idx),
                   f"{len(idx):,} sales row(s) dated after the run date {d} (the latest {_day(s.days(idx).max())}), "
                   f"e.g. {_describe(rows)}", rows)


def _vanished_series(s: _Snap) -> CheckResult:
    t, run = s.t, s.run_day
    d = s.run_date.isoformat()
    window = s.between(run - t.regular_days, run)
    wday = s.days(window)
    wser = s.series[window].astype(np.int64)
    on_run = wday == run
    before = ~on_run
    n_series = s.n_stores * s.n_items
    present = np.bincount(wser[on_run], minlength=n_series) > 0
    # distinct (series, day) pairs, so that a duplicated row does not count twice
    sold = before & (s.units[window] >= 1)
    width = t.regular_days + 1  # a (series, day) pair as series * width + days back from the run date
    sold_days = np.bincount(np.unique(wser[sold] * width + (run - wday[sold])) // width, minlength=n_series)
    last_day = np.full(n_series, np.iinfo(np.int32).min, dtype=np.int64)
    np.maximum.at(last_day, wser[before], wday[before])
    regular = sold_days >= t.regular_share * t.regular_days

    wstore = s.store.codes[window]
    store_present = np.bincount(wstore[on_run], minlength=s.n_stores) > 0
    store_pairs = np.unique(wstore[before].astype(np.int64) * width + (run - wday[before]))
    store_days = np.bincount(store_pairs // width, minlength=s.n_stores)
    store_last = np.full(s.n_stores, np.iinfo(np.int32).min, dtype=np.int64)
    np.maximum.at(store_last, wstore[before], wday[before])
    gone_stores = np.flatnonzero((store_days > 0) & ~store_present)
    gone_series = np.flatnonzero(regular & ~present & ~np.isin(np.arange(n_series) // s.n_items, gone_stores))

    rows, parts = [], []
    for st in gone_stores:
        rows.append({"what": "store", "store_id": s.store.names[st], "item_id": None,
                     "days_with_rows": int(store_days[st]), "days_with_sales": None, "last_row_date": _day(store_last[st])})
    if len(gone_stores):
        listed = ", ".join(f"{s.store.names[st]} (rows on {int(store_days[st])} of the previous {t.regular_days} days, "
                           f"the last on {_day(store_last[st])})" for st in gone_stores)
        parts.append(f"{len(gone_stores)} store(s) with no sales row on {d}: {listed}")
    series_rows = []
    for code in gone_series:
        series_rows.append({"what": "series", "store_id": s.store.names[code // s.n_items],
                            "item_id": s.item.names[code % s.n_items], "days_with_rows": None,
                            "days_with_sales": int(sold_days[code]), "last_row_date": _day(last_day[code])})
    if len(gone_series):
        eg = "; ".join(f"item_id={r['item_id']} store_id={r['store_id']} (sold on {r['days_with_sales']} of "
                       f"{t.regular_days} days, last row {r['last_row_date']})" for r in series_rows[:3])
        parts.append(f"{len(gone_series):,} series that sold >= 1 unit on >= {_num(100 * t.regular_share)}% of the "
                     f"previous {t.regular_days} days have no sales row on {d}, e.g. {eg}"
                     + ("; ..." if len(series_rows) > 3 else ""))
    rows += series_rows
    if s.previous is not None:
        now_stores, now_items = set(_used_names(s.store)), set(_used_names(s.item))
        lost = ([("store", x) for x in sorted(s.previous.store_ids - now_stores)]
                + [("item", x) for x in sorted(s.previous.item_ids - now_items)])
        for what, x in lost:
            rows.append({"what": what, "store_id": x if what == "store" else None, "item_id": x if what == "item" else None,
                         "days_with_rows": 0, "days_with_sales": None, "last_row_date": None})
        if lost:
            parts.append(f"{len(lost)} id(s) with sales rows in the previous snapshot ({s.previous.date.isoformat()}) "
                         f"have no row at all now: " + ", ".join(f"{w} {x}" for w, x in lost[:5])
                         + (", ..." if len(lost) > 5 else ""))
    if not rows:
        return _result(s, "vanished_series", 0,
                       f"every store with rows in the previous {t.regular_days} days and every series that sold on "
                       f">= {_num(100 * t.regular_share)}% of them has a row on {d}")
    return _result(s, "vanished_series", len(rows), "; ".join(parts), pd.DataFrame(rows))


def _new_from_nothing(s: _Snap) -> CheckResult:
    known_items = set(s.items["item_id"].astype(str)) if "item_id" in s.items else set()
    known_stores = set(s.stores["store_id"].astype(str)) if "store_id" in s.stores else set()
    flagged: list[tuple[str, str, int, str]] = []  # (kind, id, code, reason)
    for kind, ids, known, table in (("store", s.store, known_stores, "stores"), ("item", s.item, known_items, "items")):
        for code in np.flatnonzero(np.bincount(ids.codes, minlength=len(ids.names)) > 0):
            name = ids.names[code]
            if name == NULL_ID:
                flagged.append((kind, name, code, f"{kind}_id missing"))
            elif name not in known:
                flagged.append((kind, name, code, f"{kind}_id not in the {table} table"))
    prev = s.previous
    prev_day = None
    if prev is not None:
        prev_day = int(np.datetime64(prev.date, "D").astype(np.int64))
        already = {(k, n) for k, n, _, _ in flagged}
        for code in np.flatnonzero(np.bincount(s.store.codes, minlength=s.n_stores) > 0):
            name = s.store.names[code]
            if name not in prev.store_ids and ("store", name) not in already:
                flagged.append(("store", name, code, f"store_id has no row in the previous snapshot ({prev.date.isoformat()})"))
        candidates = [c for c in np.flatnonzero(np.bincount(s.item.codes, minlength=s.n_items) > 0)
                      if s.item.names[c] not in prev.item_ids and ("item", s.item.names[c]) not in already]
        if candidates:
            first = _first_days(s, s.item.codes, s.n_items, candidates)
            for c in candidates:
                if first[c][1] < prev_day:
                    flagged.append(("item", s.item.names[c], c,
                                    f"item_id has no row in the previous snapshot ({prev.date.isoformat()}) but rows "
                                    f"dated before it: history that appeared retroactively"))
    if not flagged:
        extra = (f"; every store, and every item with rows dated before {prev.date.isoformat()}, already had rows "
                 f"in the previous snapshot of {prev.date.isoformat()}" if prev is not None else "")
        return _result(s, "new_from_nothing", 0, f"every item_id and store_id in sales is in the items and stores tables{extra}")
    stats = {}
    for kind, ids in (("store", s.store), ("item", s.item)):
        codes = [c for k, _, c, _ in flagged if k == kind]
        if codes:
            stats[kind] = _first_days(s, ids.codes, len(ids.names), codes)
    rows = pd.DataFrame([{"reason": reason, "store_id": name if kind == "store" else None,
                          "item_id": name if kind == "item" else None,
                          "first_date": _day(stats[kind][code][1]), "rows": int(stats[kind][code][0])}
                         for kind, name, code, reason in flagged])
    eg = "; ".join(f"{r.store_id or r.item_id}: {r.reason} ({r.rows:,} rows from {r.first_date})"
                   for r in rows.head(3).itertuples())
    return _result(s, "new_from_nothing", len(rows),
                   f"{len(rows)} id(s) in sales appeared from nothing: {eg}" + ("; ..." if len(rows) > 3 else ""), rows)


def _first_days(s: _Snap, codes: np.ndarray, n: int, selected) -> dict[int, tuple[int, int]]:
    """{code: (rows, first day)} for the selected codes, in one pass over the rows of those codes."""
    pick = np.zeros(n, dtype=bool)
    pick[np.asarray(list(selected), dtype=np.int64)] = True
    idx = np.flatnonzero(pick[codes])
    c, d = codes[idx].astype(np.int64), s.days(idx).astype(np.int64)
    counts = np.bincount(c, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, c, d)
    return {int(k): (int(counts[k]), int(first[k])) for k in selected}


def _closed_days(s: _Snap) -> set[int]:
    cal = s.calendar
    events = [c for c in ("event_name_1", "event_name_2") if c in cal]
    if not events or not len(cal):
        return set()
    closed = np.zeros(len(cal), dtype=bool)
    for c in events:
        closed |= cal[c].isin(s.t.closed_events).to_numpy()
    return set(_epoch_days(cal["date"].to_numpy()[closed]).tolist())


def _daily_total_outlier(s: _Snap) -> CheckResult:
    t, run = s.t, s.run_day
    d = s.run_date.isoformat()
    weekday = pd.Timestamp(s.run_date).day_name()
    closed = _closed_days(s)
    if run in closed:
        return _result(s, "daily_total_outlier", 0,
                       f"not checked on {d} ({weekday}): a {'/'.join(t.closed_events)} day, stores closed")
    first = run - 7 * t.outlier_weeks
    idx = s.between(first, run)
    off = (s.days(idx) - first).astype(np.int64)
    totals = np.bincount(off, weights=s.units[idx].astype(np.float64), minlength=run - first + 1)
    nrows = np.bincount(off, minlength=run - first + 1)
    ref_days = [run - 7 * w for w in range(1, t.outlier_weeks + 1)]
    ref = [(x, totals[x - first]) for x in ref_days if nrows[x - first] > 0 and x not in closed]
    total = float(totals[run - first])
    if len(ref) < t.outlier_min_reference:
        return _result(s, "daily_total_outlier", 0,
                       f"not checked on {d} ({weekday}): only {len(ref)} usable same-weekday day(s) in the previous "
                       f"{t.outlier_weeks} weeks (at least {t.outlier_min_reference} needed)")
    med, mad, lo, hi = (float(x) for x in history_checks.weekday_band(np.array([v for _, v in ref]), t.outlier_k))
    rel = float(history_checks.relative_deviation(total, med))
    outside = total < lo or total > hi
    head = (f"total units on {d} ({weekday}) are {_num(total)}, the same weekday's median over the previous "
            f"{t.outlier_weeks} weeks is {_num(med)} (MAD {_num(mad)})")
    band = f"median ± {_num(t.outlier_k)}·MAD [{_num(lo)}, {_num(hi)}]"
    if not outside:
        return _result(s, "daily_total_outlier", 0, f"{head}: inside {band}")
    if rel <= t.outlier_min_relative:
        return _result(s, "daily_total_outlier", 0,
                       f"{head}: outside {band} but only {_num(100 * rel, 0)}% from the median "
                       f"(flagged beyond {_num(100 * t.outlier_min_relative)}%)")
    reference = ", ".join(f"{_day(x)}={_num(v)}" for x, v in ref)
    rows = pd.DataFrame([{"date": d, "weekday": weekday, "total_units": int(total), "median": med, "mad": mad,
                          "low": lo, "high": hi, "relative_deviation": round(rel, 4) if math.isfinite(rel) else None,
                          "reference": reference}])
    direction = "below" if total < med else "above"
    pct = f"{_num(100 * rel, 0)}%" if math.isfinite(rel) else "infinitely"
    return _result(s, "daily_total_outlier", 1,
                   f"{head}: outside {band} and {pct} {direction} "
                   f"the median (reference days: {reference})", rows)


def _price_rows(p: pd.DataFrame, idx: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "store_id": p["store_id"].to_numpy()[idx].astype(str).astype(object),
        "item_id": p["item_id"].to_numpy()[idx].astype(str).astype(object),
        "wm_yr_wk": p["wm_yr_wk"].to_numpy()[idx].astype(np.int64),
        "sell_price": p["sell_price"].to_numpy()[idx].astype(np.float64),
    })


def _price_not_positive(s: _Snap) -> CheckResult:
    p = s.prices
    price = p["sell_price"].to_numpy().astype(np.float64)
    idx = np.flatnonzero(~(price > 0))
    if not len(idx):
        return _result(s, "price_not_positive", 0, f"every sell_price is positive ({len(p):,} rows)")
    rows = _price_rows(p, idx[: s.t.max_offending])
    return _result(s, "price_not_positive", len(idx),
                   f"{len(idx):,} price row(s) with a sell_price that is zero, negative or missing, e.g. {_describe(rows)}",
                   rows)


def _first_checked_week(s: _Snap) -> int | None:
    """The first wm_yr_wk whose change from the week before is checked (None: all of them)."""
    if s.t.price_jump_weeks <= 0 or not len(s.calendar):
        return None
    cal = s.calendar
    weeks = np.unique(cal["wm_yr_wk"].to_numpy()[_epoch_days(cal["date"].to_numpy()) <= s.run_day])
    if not len(weeks):
        return None
    return int(weeks[-min(s.t.price_jump_weeks, len(weeks))])


def _price_jump(s: _Snap) -> CheckResult:
    t, p = s.t, s.prices
    f = t.price_jump_factor
    st, it = _ids(p["store_id"]), _ids(p["item_id"])
    ser = st.codes.astype(np.int64) * len(it.names) + it.codes
    wk = p["wm_yr_wk"].to_numpy().astype(np.int64)
    price = p["sell_price"].to_numpy().astype(np.float64)
    if len(wk):
        key = ser * (int(wk.max()) - int(wk.min()) + 1) + (wk - int(wk.min()))
        order = np.arange(len(key)) if (key[1:] >= key[:-1]).all() else np.argsort(key, kind="stable")
    else:
        order = np.arange(0)
    ser, wk, price = ser[order], wk[order], price[order]
    first_week = _first_checked_week(s)
    since = ("in any week" if first_week is None else
             f"into week {first_week} (the run date's week) or later" if t.price_jump_weeks == 1 else
             f"into week {first_week} or later (the last {t.price_jump_weeks} weeks up to the run date's)")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = price[1:] / price[:-1]
    jump = ((ser[1:] == ser[:-1]) & (price[1:] > 0) & (price[:-1] > 0) & ((ratio > f) | (ratio < 1 / f)))
    if first_week is not None:
        jump &= wk[1:] >= first_week
    idx = np.flatnonzero(jump)
    if not len(idx):
        return _result(s, "price_jump", 0,
                       f"no item-store price changes by more than a factor {_num(f)} from its previous priced week {since}")
    shown = idx[: t.max_offending]  # positions (in sorted order) of the week before each jump
    to_row = order[shown + 1]
    rows = pd.DataFrame({
        "store_id": st.name(st.codes[to_row]), "item_id": it.name(it.codes[to_row]),
        "from_week": wk[shown], "to_week": wk[shown + 1],
        "from_price": price[shown], "to_price": price[shown + 1],
        "factor": np.round(ratio[shown], 4),
    })
    eg = "; ".join(f"item_id={r.item_id} store_id={r.store_id}: {r.from_price:.2f} in week {r.from_week} -> "
                   f"{r.to_price:.2f} in week {r.to_week} (x {_num(r.factor)})" for r in rows.head(3).itertuples())
    return _result(s, "price_jump", len(idx),
                   f"{len(idx):,} item-store price change(s) by more than a factor {_num(f)} (up or down) from the "
                   f"previous priced week {since}, e.g. {eg}" + ("; ..." if len(idx) > 3 else ""), rows)


def _history_change(s: _Snap) -> CheckResult:
    prev = s.previous
    sales = prev.sales if prev is not None else None
    if prev is not None and sales is None:
        return _result(s, "history_change", 0, "not checked: the previous snapshot's sales rows were not given, "
                                               "so the rows that became known since it cannot be told apart")
    cur = history_checks.Sales(s.store.codes, s.store.names, s.item.codes, s.item.names, s.ticks, s.ticks_per_day,
                               s.units)
    old = None
    if sales is not None:
        store, item = _ids(sales["store_id"]), _ids(sales["item_id"])
        dates = sales["date"].to_numpy()
        if dates.dtype.kind != "M":
            dates = pd.to_datetime(sales["date"]).to_numpy()
        unit, n = np.datetime_data(dates.dtype)
        old = history_checks.Sales(store.codes, store.names, item.codes, item.names, dates.view(np.int64),
                                   int(np.timedelta64(1, "D") // np.timedelta64(n, unit)), sales["units"].to_numpy())
    count, message, rows = history_checks.history_change(cur, old, prev.date if prev is not None else None, s.run_day,
                                                         _closed_days(s), s.t)
    return _result(s, "history_change", count, message, rows)


_CHECK_FUNCS: dict[str, Callable[[_Snap], CheckResult]] = {
    "negative_units": _negative_units,
    "duplicate_keys": _duplicate_keys,
    "future_dates": _future_dates,
    "vanished_series": _vanished_series,
    "new_from_nothing": _new_from_nothing,
    "daily_total_outlier": _daily_total_outlier,
    "history_change": _history_change,
    "price_not_positive": _price_not_positive,
    "price_jump": _price_jump,
}


# ----------------------------------------------------------------------------------------------
# Helpers: files, JSON, markdown
# ----------------------------------------------------------------------------------------------


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _manifest(snapshot_dir: Path) -> dict | None:
    path = Path(snapshot_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def _json_value(v):
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        ts = pd.Timestamp(v)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _records(frame: pd.DataFrame) -> list[dict]:
    if frame is None or not len(frame):
        return []
    out = []
    for rec in frame.astype(object).to_dict(orient="records"):
        out.append({str(k): (None if _isnull(v) else _json_value(v)) for k, v in rec.items()})
    return out


def _isnull(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _json_default(v):
    value = _json_value(v)
    return str(value) if value is v else value


def _md_cell(v) -> str:
    text = "" if v is None else (_num(v) if isinstance(v, float) else str(v))
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(frame: pd.DataFrame) -> list[str]:
    recs = _records(frame)
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(_md_cell(r[c]) for c in cols) + " |" for r in recs]
    return lines
