"""Stage 1: the snapshot of the source database as known at the end of a run date.

The snapshot of date D keeps, for every key, the latest row recorded before D+1 00:00
(:mod:`pipeline.core.latest`), so a correction recorded later changes only later
snapshots. Two ways to build it, with identical results (same files, same ``content_hash``):

* fresh: read every row recorded before D+1 00:00 (:mod:`pipeline.data.source`) and
  keep the latest per key;
* from the previous day's snapshot (``previous_dir``, :mod:`pipeline.data.snapshot_base`):
  the snapshot of D-1 plus the rows recorded on D, merged latest-wins
  (:mod:`pipeline.core.merge`).

One validation boundary: extraction refuses only what a snapshot cannot hold or leaves
undefined (NULL, text, fractions, counts past ``bounds.MAX_UNITS``:
:mod:`pipeline.data.source_values`; two rows of one key recorded at the same instant) and a
run date without its day's sales. Whether the data is plausible (ids missing from the master
tables, negative units, sales dated after the run date, prices that are not positive, ...)
is judged by CheckSnapshot (:mod:`pipeline.stages.quality`), which says which of its checks
``[quality] accept`` can override.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipeline.core import keys
from pipeline.core.errors import DataError
from pipeline.core.keys import DAY_NS, Vocabulary
from pipeline.core.latest import InForce, cutoff, latest, max_recorded
from pipeline.core.merge import Table, merge
from pipeline.data import db
from pipeline.data.snapshot_base import load_previous
from pipeline.data.snapshot_writer import write_snapshot
from pipeline.data.source import PRICES, SALES, read_master, read_rows
from pipeline.data.source_state import max_rowid, missing_run_date

__all__ = ["cutoff", "extract_snapshot", "missing_run_date"]

log = logging.getLogger("pipeline")


def extract_snapshot(engine: sa.Engine, date: dt.date, out_dir: Path, previous_dir: Path | None = None) -> dict:
    """Write the snapshot of the database as known at the end of ``date`` into ``out_dir``.

    Files: ``calendar, items, stores, sales, prices`` (.parquet) and ``manifest.json``
    (row counts, max recorded_at, content hash, ``built_from``). ``sales`` is long:
    item_id, store_id (categoricals), date, units (int32), sorted by store, item, date;
    ``prices``: item_id, store_id, wm_yr_wk, sell_price (float64, as recorded). Values are
    exact: units above ``bounds.MAX_UNITS`` in magnitude, fractional, NULL or text are refused.

    ``previous_dir``, when it holds the snapshot of ``date - 1`` taken from this
    database, is the base: only the rows recorded on ``date`` are read and applied
    (``built_from: "previous"``); any other folder is ignored (``"fresh"``). Both
    give the same files and ``content_hash``.

    Raises DataError, naming the offending rows, when the data as of ``date``
    cannot make a snapshot; nothing is written then.
    """
    db.check_schema(engine)
    missing = missing_run_date(engine, date)
    if missing:
        raise DataError(missing)
    calendar, items, stores = read_master(engine)
    if items.empty or stores.empty:
        raise DataError(f"the items table holds {len(items)} rows and stores {len(stores)}: nothing to forecast")
    vocab = Vocabulary(pd.Index(items["item_id"]), pd.Index(stores["store_id"]))
    until = cutoff(date)
    # noted before any row is read: a row inserted during the read is above it, and checked tomorrow
    rowids = {spec.name: max_rowid(engine, spec.table) for spec in (SALES, PRICES)}

    base = load_previous(engine, vocab, previous_dir, date) if previous_dir is not None else None
    if base is not None:
        # the vocabulary may grow by ids missing from the master tables (read_rows): each table's rows
        # are merged with the vocabulary they were coded in; codes already given keep their meaning
        since = cutoff(date - dt.timedelta(days=1))
        rows, vocab = read_rows(engine, vocab, SALES, since, until)
        delta = latest(vocab, SALES, rows)
        last_day = int(base.sales.third.max()) // DAY_NS
        _check_run_date(date, max(last_day, keys.last_day(delta.key)) if len(delta) else last_day)
        sales = merge(vocab, SALES, base.sales, delta)
        rows, vocab = read_rows(engine, vocab, PRICES, since, until)
        delta_prices = latest(vocab, PRICES, rows)
        prices = merge(vocab, PRICES, base.prices, delta_prices)
        del rows
        recorded = {name: max_recorded(base.manifest["max_recorded_at"][name], read.max_recorded)
                    for name, read in (("sales", delta), ("sell_prices", delta_prices))}
        source_rows = {name: base.manifest["source_rows"][name] + read.rows_read
                       for name, read in (("sales", delta), ("sell_prices", delta_prices))}
        del base  # the previous snapshot's columns, unless still the output's
        log.info("snapshot %s: built from %s and the %d sales and %d price rows in force recorded on %s",
                 date, previous_dir, len(delta), len(delta_prices), date)
        built_from = "previous"
    else:
        rows, vocab = read_rows(engine, vocab, SALES, None, until)
        if not len(rows):  # missing_run_date found one: the table changed under the read
            raise DataError(f"no sales rows recorded before {until} could be read; the sales table changed during "
                            "the extraction, run again")
        in_force = latest(vocab, SALES, rows)
        del rows
        _check_run_date(date, keys.last_day(in_force.key))
        recorded = {"sales": max_recorded(None, in_force.max_recorded)}
        source_rows = {"sales": in_force.rows_read}
        in_force.recorded_at = None  # frees every row's recorded_at: only messages needed them
        sales = Table.from_keys(vocab, SALES, in_force.key, in_force.value)
        del in_force
        rows, vocab = read_rows(engine, vocab, PRICES, None, until)
        in_force = latest(vocab, PRICES, rows)
        del rows
        recorded["sell_prices"] = max_recorded(None, in_force.max_recorded)
        source_rows["sell_prices"] = in_force.rows_read
        in_force.recorded_at = None
        prices = Table.from_keys(vocab, PRICES, in_force.key, in_force.value)
        del in_force
        built_from = "fresh"
    return write_snapshot(out_dir, vocab, date, until, calendar, items, stores, sales, prices,
                          {"max_recorded_at": recorded, "source_rows": source_rows, "source_max_rowid": rowids,
                           "built_from": built_from})


def _check_run_date(date: dt.date, last_day: int) -> None:
    """The run date must have sales: ``last_day`` (days since 1970) is the latest day of every row in force.

    missing_run_date saw a row recorded on the run date; if every row recorded by then is dated
    before it (late corrections only), there is still nothing of that day to forecast from.
    """
    run_day = (date - dt.date(1970, 1, 1)).days
    if last_day < run_day:
        raise DataError(f"no sales are recorded for the run date {date}: the last recorded day as of then is "
                        f"{dt.date(1970, 1, 1) + dt.timedelta(days=int(last_day))}; a run date after the last "
                        "recorded day cannot be forecast from")
