"""``generate_world``: the whole world written into an empty source database."""
from __future__ import annotations

import time
from typing import Callable

import pandas as pd
import sqlalchemy as sa

from pipeline.data import db
from pipeline.tools.target import engine_creating_file
from pipeline.tools.world.calendar import build_calendar
from pipeline.tools.world.demand import StoreWorld, generate_store
from pipeline.tools.world.dynamics import Dynamics, resolve
from pipeline.tools.world.effects import Effects, draw_effects, with_launches
from pipeline.tools.world.frame import Frame, make_frame
from pipeline.tools.world.model import ROWS_PER_WRITE
from pipeline.tools.world.params import item_params, state_params
from pipeline.tools.world.rows import price_frames, sales_frames
from pipeline.tools.world.scales import CALENDAR_END, SCALES, STATES, STORES


def _refuse_existing(engine: sa.Engine) -> None:
    """Raise ValueError if any source table already holds rows: source data is never modified."""
    with engine.connect() as conn:
        for table in (db.sales, db.sell_prices, db.calendar, db.items, db.stores):
            if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None:
                what = "sales" if table is db.sales else f"source data (table {table.name})"
                raise ValueError(
                    f"database {db.redact(str(engine.url))} already holds {what}; "
                    "the synthetic world is only written into an empty database"
                )


def draw_stores(frame: Frame, seed: int, effects: Effects,
                report: Callable[[int, str], None] = lambda done, store: None) -> list[StoreWorld]:
    """Every store's arrays, in STORES order, with ``effects`` (:func:`draw_effects`); ``report(stores done, store)`` after each."""
    items = with_launches(item_params(frame, seed), effects)
    states = {s: state_params(frame, seed, s) for s in STATES}
    worlds = []
    for i, store in enumerate(STORES):
        worlds.append(generate_store(frame, items, states[store[:2]], seed, store, effects))
        report(i + 1, store)
    return worlds


def check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")


def generate_world(
    url: str,
    scale: str = "demo",
    seed: int = 42,
    progress: Callable[[float, str], None] | None = None,
    dynamics: str | Dynamics = "base",
) -> dict:
    """Write a synthetic world of ``scale`` (a key of SCALES) drawn with ``seed`` into the database at ``url``.

    ``dynamics`` is a key of :data:`pipeline.tools.world.dynamics.DYNAMICS` (or a ``Dynamics``):
    the effects on top of the base world (``"base"``: none, the world as it always was).

    Creates the schema, refuses (ValueError) a database whose source tables already
    hold rows, and writes calendar, items, stores, sell_prices and sales, chunk by chunk, each
    chunk by ADBC ingestion (:func:`pipeline.data.db.ingest`) in a transaction of its own: a
    generation that fails leaves the chunks written so far (``make data`` writes into a
    ``.partial`` file and renames it when done).
    ``progress(done_fraction, message)`` is called now and then if given.

    Returns ``{"scale", "seed", "dynamics", "rows": {table: rows written}, "series", "items",
    "stores", "corrections", "first_date", "last_date", "seconds"}`` (dates as
    ``datetime.date``: the first and last day of sales; ``dynamics``: the set's name and its
    realised effects, see :func:`pipeline.tools.world.effects.draw_effects`).
    """
    check_scale(scale)
    report = progress or (lambda fraction, message: None)
    began = time.perf_counter()
    sc = SCALES[scale]
    calendar = build_calendar()
    frame = make_frame(sc, calendar)
    effects = draw_effects(frame, seed, resolve(dynamics))  # a knob out of range fails before any write
    engine = engine_creating_file(url)
    try:
        db.create_schema(engine)
        _refuse_existing(engine)
        rows = {
            "calendar": db.ingest(engine, db.calendar, calendar),
            "items": db.ingest(engine, db.items, frame.items),
            "stores": db.ingest(engine, db.stores, pd.DataFrame({"store_id": STORES, "state_id": [s[:2] for s in STORES]})),
        }
        report(0.01, "calendar, items, stores written")

        worlds = draw_stores(frame, seed, effects, lambda done, store: report(
            0.01 + 0.29 * done / len(STORES), f"generated store {store}"))

        n_series = sc.n_series
        rows["sell_prices"] = 0
        chunk_weeks = max(1, ROWS_PER_WRITE // n_series)
        for chunk in price_frames(frame, worlds, chunk_weeks):
            rows["sell_prices"] += db.ingest(engine, db.sell_prices, chunk)
        report(0.35, "sell_prices written")

        rows["sales"] = 0
        n_days = len(frame.days)
        chunk_days = max(1, ROWS_PER_WRITE // n_series)
        for j, chunk in enumerate(sales_frames(frame, worlds, chunk_days)):
            rows["sales"] += db.ingest(engine, db.sales, chunk)
            done = min(n_days, (j + 1) * chunk_days)
            report(0.35 + 0.65 * done / n_days, f"sales written through {frame.days[done - 1]}")
    finally:
        engine.dispose()
    return {
        "scale": scale,
        "seed": seed,
        "dynamics": effects.summary,
        "rows": rows,
        "series": n_series,
        "items": len(frame.items),
        "stores": len(STORES),
        "corrections": rows["sales"] - n_series * n_days,
        "first_date": sc.history_start,
        "last_date": CALENDAR_END,
        "seconds": round(time.perf_counter() - began, 1),
    }

