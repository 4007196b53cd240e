"""What the source database holds around a cutoff, found with index lookups rather than reads.

Whether a run date has sales at all (:func:`missing_run_date`), the latest row recorded
before an instant, and whether rows were inserted or removed before a snapshot's cutoff
after it was taken (SQLite's largest rowid, noted in the manifest, makes that a range of
the table's own b-tree).
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from pipeline.core.latest import cutoff
from pipeline.data import db
from pipeline.data.source import time_literal


def latest_before(engine: sa.Engine, table: sa.Table, until: dt.datetime):
    """The latest recorded_at before ``until`` (one index lookup)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(table.c.recorded_at).where(table.c.recorded_at < until)
                            .order_by(table.c.recorded_at.desc()).limit(1)).scalar()


def missing_run_date(engine: sa.Engine, date: dt.date) -> str | None:
    """Why ``date`` cannot be forecast because its sales were never recorded, or None.

    A day's sales are recorded on that day, so a run date on which no sales row at all
    was recorded is after the data's end, or its sales have not arrived. Two index
    lookups: a date years away from the data is refused in milliseconds, before any work
    is scheduled for it.
    """
    latest = latest_before(engine, db.sales, cutoff(date))
    if latest is None:
        with engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(db.sales.c.recorded_at))).scalar()
        if first is None:
            return "the sales table holds no rows: there is no history to forecast from"
        return f"run date {date} is before any history: the first sales row was recorded at {first}"
    if pd.Timestamp(latest) < pd.Timestamp(date):
        return (f"no sales are recorded for the run date {date}: no sales row was recorded on that day, the last "
                f"one before it at {latest}; a run date after the last recorded day cannot be forecast from")
    return None


def max_rowid(engine: sa.Engine, table: sa.Table) -> int | None:
    """SQLite: the table's largest rowid (one b-tree lookup); None elsewhere."""
    if engine.dialect.name != "sqlite":
        return None
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                f"SELECT max(rowid) FROM {engine.dialect.identifier_preparer.quote(table.name)}").scalar()
    except sa.exc.DBAPIError:  # a table WITHOUT ROWID: counted instead
        return None


def unread_rows(engine: sa.Engine, table: sa.Table, until: dt.datetime, manifest: dict) -> int:
    """How many rows recorded before ``until`` the snapshot of ``manifest`` did not read (back-dated rows
    inserted after it was taken; negative: rows removed).

    SQLite appends rows with growing rowids, so the rows inserted since are those above the rowid
    the snapshot noted: a range of the table's own b-tree, a few thousand rows a day. Elsewhere all
    rows are counted, less the few recorded since (a scan of the recorded_at index).
    """
    noted = (manifest.get("source_max_rowid") or {}).get(table.name)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite" and noted is not None:
            name = engine.dialect.identifier_preparer.quote(table.name)
            return int(conn.exec_driver_sql(
                # NOT INDEXED: the rowid range, not the recorded_at index (which the planner would pick)
                f"SELECT count(*) FROM {name} NOT INDEXED WHERE rowid > {int(noted)} "
                f"AND recorded_at < {time_literal(engine, until)}"
            ).scalar())
        total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
        since = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.recorded_at >= until)).scalar()
    return int(total) - int(since) - manifest["source_rows"][table.name]
