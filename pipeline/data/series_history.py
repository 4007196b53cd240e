"""One series' history as known at the end of a run date, read from the source database through indexes.

The prediction service's read: the snapshot's point-in-time rule (:mod:`pipeline.core.latest`: the
row of each key in force at the end of ``date`` is its latest one recorded before the cutoff), for
one ``(item_id, store_id)`` instead of the whole chain. Reading one series must not scan the 58
million sales rows of a full world: :data:`SERIES_INDEXES` are the two indexes it needs (created
once by ``python -m pipeline.tools.series_indexes``, run by ``make serve``); :func:`check_indexes`
refuses a database without them. Nothing here writes a row.
"""
from __future__ import annotations

import datetime as dt
import functools

import sqlalchemy as sa

from pipeline.core.errors import DatabaseError, DataError
from pipeline.core.latest import cutoff
from pipeline.core.online import Calendar, CalendarDay, SeriesHistory
from pipeline.data import db

# name -> (table, columns): each covers its query, so a read never visits the table's own rows
SERIES_INDEXES = {
    "ix_sales_series": ("sales", ("store_id", "item_id", "date", "recorded_at", "units")),
    "ix_sell_prices_item": ("sell_prices", ("item_id", "store_id", "wm_yr_wk", "recorded_at", "sell_price")),
}


class UnknownSeries(LookupError):
    """The store, the item or the series has no row: what is missing is in the message."""


def create_indexes(engine: sa.Engine) -> list[str]:
    """Create the missing :data:`SERIES_INDEXES` (a schema change only; no row is touched). Returns their names."""
    made = []
    for name in missing_indexes(engine):
        table, columns = SERIES_INDEXES[name]
        quote = engine.dialect.identifier_preparer.quote
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE INDEX {quote(name)} ON {quote(table)} ({', '.join(map(quote, columns))})")
        made.append(name)
    return made


def missing_indexes(engine: sa.Engine) -> list[str]:
    inspector = sa.inspect(engine)
    present = {ix["name"] for table in ("sales", "sell_prices") for ix in inspector.get_indexes(table)}
    return [name for name in SERIES_INDEXES if name not in present]


def check_indexes(engine: sa.Engine) -> None:
    """Raise DatabaseError naming the indexes a single-series read needs and the command that makes them."""
    missing = missing_indexes(engine)
    if missing:
        raise DatabaseError(f"the source database lacks the index(es) {', '.join(missing)} that reading one series "
                            f"needs (without them every request scans the sales table): run "
                            f"`python -m pipeline.tools.series_indexes` (`make serve` does)")


def read_calendar(conn: sa.Connection) -> Calendar:
    """The whole calendar table as :class:`pipeline.core.online.Calendar`."""
    rows = conn.execute(sa.select(db.calendar).order_by(db.calendar.c.date)).mappings().all()
    states = [c.name[len("snap_"):] for c in db.calendar.columns if c.name.startswith("snap_")]
    return Calendar(tuple(
        CalendarDay(date=r["date"], wm_yr_wk=int(r["wm_yr_wk"]), wday=int(r["wday"]), month=int(r["month"]),
                    events=tuple(r[c] for c in ("event_name_1", "event_type_1", "event_name_2", "event_type_2")),
                    snap={s: int(r[f"snap_{s}"]) for s in states})
        for r in rows))


def series_ids(conn: sa.Connection, item_id: str, store_id: str) -> tuple[str, str, str]:
    """The series' ``(state_id, dept_id, cat_id)``; :class:`UnknownSeries` naming an unknown store or item."""
    store = conn.execute(sa.select(db.stores.c.state_id).where(db.stores.c.store_id == store_id)).first()
    if store is None:
        raise UnknownSeries(f"store {store_id!r} is not in the stores table")
    item = conn.execute(sa.select(db.items.c.dept_id, db.items.c.cat_id).where(db.items.c.item_id == item_id)).first()
    if item is None:
        raise UnknownSeries(f"item {item_id!r} is not in the items table")
    return str(store.state_id), str(item.dept_id), str(item.cat_id)


def read_series(conn: sa.Connection, item_id: str, store_id: str, date: dt.date) -> SeriesHistory:
    """The series' sales (days up to ``date``) and its item's prices in every store selling it, as of ``date``.

    Raises :class:`UnknownSeries` naming the unknown store or item, or a series without a sales row
    recorded by the end of ``date``; DataError when two rows of one key were recorded at the same
    instant (the snapshot refuses them too).
    """
    state_id, dept_id, cat_id = series_ids(conn, item_id, store_id)
    # plain SQL, rows as the driver gives them: SQLAlchemy's per-value type processing would cost more
    # than the query (a full world's series has ~1,900 rows); recorded_at only ever meets itself
    until = _time_value(conn, cutoff(date))
    rows = _fetch(conn, "SELECT date, units, recorded_at FROM sales WHERE store_id = :store AND item_id = :item "
                        "AND recorded_at < :until ORDER BY date, recorded_at",
                  {"store": store_id, "item": item_id, "until": until})
    if not rows:
        raise UnknownSeries(f"no sales row of item {item_id!r} in store {store_id!r} was recorded by the end of {date}")
    sales = _latest(rows, f"sales of {item_id} in {store_id}")
    # the stores whose series of this item exist at the cutoff: the item's mean price is over them
    selling = set(conn.execute(sa.text(
        "SELECT store_id FROM stores WHERE EXISTS (SELECT 1 FROM sales WHERE sales.store_id = stores.store_id "
        "AND sales.item_id = :item AND sales.recorded_at < :until)"), {"item": item_id, "until": until}).scalars())
    price_rows = _fetch(conn, "SELECT store_id, wm_yr_wk, sell_price, recorded_at FROM sell_prices WHERE item_id = :item "
                              "AND recorded_at < :until ORDER BY store_id, wm_yr_wk, recorded_at",
                        {"item": item_id, "until": until})
    prices: dict[str, dict[int, float]] = {st: {} for st in sorted(selling)}
    for st, weekly in _latest_by_store(price_rows, f"prices of {item_id}").items():
        if st in prices:
            prices[st] = {int(week): float(price) for week, price in weekly.items()}
    return SeriesHistory(item_id=item_id, store_id=store_id, dept_id=dept_id, cat_id=cat_id, state_id=state_id,
                         sales={d: int(u) for d, u in ((_day(k), v) for k, v in sales.items()) if d <= date},
                         prices=prices)


@functools.lru_cache(maxsize=64)
def _compiled(sql: str, dialect: sa.Dialect) -> tuple[str, tuple | None]:
    """``sql`` in the driver's parameter style, and the order of its positional parameters (None: named)."""
    compiled = sa.text(sql).compile(dialect=dialect)
    return str(compiled), (tuple(compiled.positiontup) if compiled.positional else None)


def _fetch(conn: sa.Connection, sql: str, params: dict) -> list[tuple]:
    """Every row of ``sql`` straight from the driver's cursor (no Result wrapping per row)."""
    text, order = _compiled(sql, conn.dialect)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(text, tuple(params[k] for k in order) if order is not None else params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _time_value(conn: sa.Connection, t: dt.datetime):
    """``t`` as the driver compares it with a stored DateTime (SQLite: SQLAlchemy's text spelling)."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else t


@functools.lru_cache(maxsize=16384)
def _day(value) -> dt.date:
    """A Date column's value as the driver gives it (SQLite: 'YYYY-MM-DD' text) as a date."""
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value.date() if isinstance(value, dt.datetime) else value


def _latest(rows, what: str) -> dict:
    """(key, value, recorded_at) rows in key, recorded_at order -> the latest-recorded value of each key.

    Two rows of a key recorded at the same instant (adjacent in that order) are refused.
    """
    out, last_key, last_rec = {}, None, None
    for key, value, rec in rows:
        if key == last_key and rec == last_rec:
            raise DataError(f"{what}: two rows of {key} were recorded at the same instant {rec}: "
                            "neither is the correction of the other")
        out[key] = value
        last_key, last_rec = key, rec
    return out


def _latest_by_store(rows, what: str) -> dict:
    """(store, week, price, recorded_at) rows in that order -> {store: {week: latest price}}."""
    out: dict = {}
    for store, week, price, rec in rows:
        out.setdefault(store, []).append((week, price, rec))
    return {store: _latest(weekly, f"{what} in {store}") for store, weekly in out.items()}
