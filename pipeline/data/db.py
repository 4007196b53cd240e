"""The source database: schema (in M5's vocabulary), connection and bulk writes.

``sales`` and ``sell_prices`` are append-only: a correction is a new row with a
later ``recorded_at``; the value in force at time T is the latest row recorded at
or before T. Nothing here updates or deletes source rows; only the pipeline's own
tables (``forecasts``) are written by the pipeline.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.data import masking
from pipeline.core.errors import DatabaseError, DatabaseURLError  # noqa: F401  (DatabaseURLError: raised here, re-exported)

metadata = sa.MetaData()

calendar = sa.Table(
    "calendar",
    metadata,
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("wm_yr_wk", sa.Integer, nullable=False),
    sa.Column("weekday", sa.String(10), nullable=False),
    sa.Column("wday", sa.SmallInteger, nullable=False),
    sa.Column("month", sa.SmallInteger, nullable=False),
    sa.Column("year", sa.SmallInteger, nullable=False),
    sa.Column("event_name_1", sa.String(40)),
    sa.Column("event_type_1", sa.String(20)),
    sa.Column("event_name_2", sa.String(40)),
    sa.Column("event_type_2", sa.String(20)),
    sa.Column("snap_CA", sa.SmallInteger, nullable=False),
    sa.Column("snap_TX", sa.SmallInteger, nullable=False),
    sa.Column("snap_WI", sa.SmallInteger, nullable=False),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("item_id", sa.String(40), primary_key=True),
    sa.Column("dept_id", sa.String(20), nullable=False),
    sa.Column("cat_id", sa.String(20), nullable=False),
)

stores = sa.Table(
    "stores",
    metadata,
    sa.Column("store_id", sa.String(10), primary_key=True),
    sa.Column("state_id", sa.String(4), nullable=False),
)

sell_prices = sa.Table(
    "sell_prices",
    metadata,
    sa.Column("store_id", sa.String(10), nullable=False),
    sa.Column("item_id", sa.String(40), nullable=False),
    sa.Column("wm_yr_wk", sa.Integer, nullable=False),
    sa.Column("sell_price", sa.Float, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    # the snapshot reads "everything recorded before T", then keeps the latest per key
    sa.Index("ix_sell_prices_recorded_at", "recorded_at"),
)

sales = sa.Table(
    "sales",
    metadata,
    sa.Column("store_id", sa.String(10), nullable=False),
    sa.Column("item_id", sa.String(40), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("units", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Index("ix_sales_recorded_at", "recorded_at"),
)

forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("item_id", sa.String(40), nullable=False),
    sa.Column("store_id", sa.String(10), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("horizon", sa.SmallInteger, nullable=False),
    sa.Column("units", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("as_of", "item_id", "store_id", "date"),
)

forecast_metrics = sa.Table(
    "forecast_metrics",
    metadata,
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("model", sa.String(40), nullable=False),
    sa.Column("metric", sa.String(20), nullable=False),
    sa.Column("level", sa.String(40), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("as_of", "model", "metric", "level"),
)

SOURCE_TABLES = ("calendar", "items", "stores", "sell_prices", "sales")


def redact(url) -> str:
    """The URL with any password masked, for messages and logs, whether SQLAlchemy can parse it or not.

    The password is also remembered (``pipeline.data.masking.remember``), so that it is
    masked in any later log line or error text that quotes it without its URL.
    """
    if isinstance(url, sa.engine.URL):  # str() of a URL object already hides the password
        if url.password:
            masking.remember(str(url.password))
        text = url.render_as_string(hide_password=True)
    else:
        text = str(url)
        masking.remember(text)
        try:
            text = sa.engine.make_url(text).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - unparsable: masked below all the same
            pass
    return masking.mask(text, whole_url=True)


def _secret_in_chain(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from/during quotes a secret (a traceback would show it)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        try:
            text = f"{exc} {exc.args!r}"
        except Exception:  # noqa: BLE001 - a traceback would not show it either
            text = ""
        if masking.holds_secret(text):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _raise_masked(message: str, exc: Exception, kind: type[DatabaseError] = DatabaseError):
    """Raise ``kind(message)`` from ``exc``, or from nothing if ``exc``'s traceback would quote a secret.

    Luigi sends a failed task's whole traceback to the scheduler (``Task.on_failure``),
    where the visualiser shows it and luigid pickles it: a chained cause is printed
    there verbatim, so a cause that quotes the password is dropped (its type and
    masked text are in ``message``).
    """
    if _secret_in_chain(exc):
        raise kind(message) from None
    raise kind(message) from exc


def engine_for(url: str) -> sa.Engine:
    """An engine for ``url``; raises DatabaseError naming the (redacted) URL if unparsable or unreachable."""
    try:
        sa.engine.make_url(url)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same problem for the user
        _raise_masked(f"source database URL {redact(url)} is not a valid SQLAlchemy URL "
                      f"({masking.mask(f'{exc.__class__.__name__}: {exc}')}); "
                      "check PIPELINE_DATABASE_URL or [pipeline] database_url", exc, DatabaseURLError)
    try:
        engine = sa.create_engine(url)
        if engine.dialect.name == "sqlite":
            path = engine.url.database
            from pathlib import Path

            if path and path != ":memory:" and not Path(path).exists():
                raise DatabaseError(
                    f"source database {redact(url)} does not exist (no file at {path}); "
                    "run `make data` or set PIPELINE_DATABASE_URL"
                )
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return engine
    except DatabaseError:
        raise
    except Exception as exc:
        _raise_masked(f"cannot connect to source database {redact(url)}: "
                      f"{masking.mask(f'{exc.__class__.__name__}: {exc}')}", exc)


def create_schema(engine: sa.Engine) -> None:
    """Create every table and index that does not exist yet."""
    metadata.create_all(engine)


def check_schema(engine: sa.Engine) -> None:
    """Raise DatabaseError naming any source table that is missing."""
    present = set(sa.inspect(engine).get_table_names())
    missing = [t for t in SOURCE_TABLES if t not in present]
    if missing:
        raise DatabaseError(
            f"source database {redact(str(engine.url))} lacks table(s) {', '.join(missing)}; "
            "run `make data` (synthetic world) or `make import-m5`"
        )


def _sqlite_times(col: pd.Series, kind: type) -> np.ndarray:
    """A Date or DateTime column as SQLAlchemy's SQLite text (object array of str)."""
    # few distinct values (one per day): format the uniques, not every row
    codes, uniques = pd.factorize(pd.to_datetime(col))
    fmt = "%Y-%m-%d" if kind is sa.Date else "%Y-%m-%d %H:%M:%S.%f"
    return pd.Index(uniques.strftime(fmt)).to_numpy(dtype=object)[codes]


def _sqlite_literals(frame: pd.DataFrame, table: sa.Table) -> pd.DataFrame:
    """Dates and timestamps as the exact strings SQLAlchemy writes and compares on SQLite.

    SQLite has no date type; SQLAlchemy stores ``YYYY-MM-DD`` and
    ``YYYY-MM-DD HH:MM:SS.ffffff`` and compares them as text, so rows written by
    a raw ``executemany`` must use the same spelling or ``recorded_at <= T``
    would compare differently spelled strings.
    """
    out = {}
    for name in frame.columns:
        col = frame[name]
        kind = type(table.c[name].type)
        if kind in (sa.Date, sa.DateTime):
            out[name] = _sqlite_times(col, kind)
        elif isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col.dtype):
            out[name] = col.astype(object).to_numpy()
        else:
            out[name] = col.to_numpy().tolist()
    return pd.DataFrame(out, index=frame.index)


def bulk_insert(target: sa.Engine | sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append the rows of ``frame`` (columns named as ``table``'s) to ``table``.

    ``target`` is an engine (the rows are written in a transaction of their own)
    or a connection inside the caller's transaction. Returns the row count.
    SQLite gets a plain ``executemany`` (no ORM overhead); PostgreSQL gets
    ``COPY``; other backends go through SQLAlchemy Core.
    """
    if frame.empty:
        return 0
    if isinstance(target, sa.Engine):
        with target.begin() as conn:
            return bulk_insert(conn, table, frame)
    conn = target
    columns = list(frame.columns)
    cols = ", ".join(f'"{c}"' for c in columns)
    dbapi = conn.connection.driver_connection
    dialect = conn.engine.dialect
    if dialect.name == "sqlite":
        literal = _sqlite_literals(frame, table)
        rows = zip(*(literal[c].tolist() for c in columns))
        marks = ", ".join("?" * len(columns))
        dbapi.executemany(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', rows)
    elif dialect.driver == "psycopg2":
        buf = io.StringIO()
        frame.to_csv(buf, index=False, header=False, na_rep="\\N")
        buf.seek(0)
        with dbapi.cursor() as cur:
            cur.copy_expert(f'COPY "{table.name}" ({cols}) FROM STDIN WITH (FORMAT csv, NULL \'\\N\')', buf)
    else:
        conn.execute(table.insert(), frame.to_dict("records"))
    return len(frame)


def _arrow_table(frame: pd.DataFrame, table: sa.Table, dialect: str):
    """``frame`` as an Arrow table that the database stores exactly as :func:`bulk_insert` does.

    SQLite: dates and timestamps in SQLAlchemy's text spelling (see ``_sqlite_literals``), numbers
    as int64 / float64 (INTEGER / REAL). PostgreSQL: every column in its table's type, since a
    binary COPY refuses any other (an int64 into an INTEGER column); a value that does not fit is
    an error, never wrapped. Missing values (None, NaN) are NULL, as in bulk_insert.
    """
    import pyarrow as pa

    pg_types = {sa.SmallInteger: pa.int16(), sa.Integer: pa.int32(), sa.Float: pa.float64(), sa.Date: pa.date32(),
                sa.DateTime: pa.timestamp("us"), sa.String: pa.string()}
    columns = {}
    for name in frame.columns:
        col, kind = frame[name], type(table.c[name].type)
        if dialect == "sqlite" and kind in (sa.Date, sa.DateTime):
            columns[name] = pa.array(_sqlite_times(col, kind), pa.string())
        elif isinstance(col.dtype, pd.CategoricalDtype) or kind is sa.String:
            columns[name] = pa.array(col.astype(object).to_numpy(), pa.string(), from_pandas=True)
        elif kind in (sa.Date, sa.DateTime):
            columns[name] = pa.array(pd.to_datetime(col).astype("datetime64[us]")).cast(pg_types[kind])
        else:
            values = pa.array(col)
            columns[name] = values if dialect == "sqlite" else values.cast(pg_types[kind])
    return pa.table(columns)


def _adbc_writer(engine: sa.Engine):
    """A writable ADBC connection to ``engine``'s database; None where ADBC cannot serve it."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        path = url.database
        if not path or path == ":memory:" or path.startswith("file:") or url.query:
            return None
        import adbc_driver_sqlite.dbapi as driver

        return driver.connect(str(Path(path).expanduser()))
    if engine.dialect.name == "postgresql" and engine.dialect.driver in ("psycopg2", "psycopg"):
        import adbc_driver_postgresql.dbapi as driver

        return driver.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    return None


def ingest(engine: sa.Engine, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append the rows of ``frame`` to ``table`` by ADBC ingestion (Arrow), in a transaction of its own.

    Stores what :func:`bulk_insert` stores (the same values, SQLite storage classes and spellings,
    PostgreSQL types), faster (docs/tools-bench.md). ADBC writes through a connection of its own,
    so it cannot join a caller's transaction: rows that must commit or roll back with other work
    go through ``bulk_insert(connection, ...)``. An in-memory or URI-named SQLite database, another
    backend, or a missing ADBC driver: ``bulk_insert``. Returns the row count.
    """
    if frame.empty:
        return 0
    try:
        conn = _adbc_writer(engine)
    except ImportError:
        conn = None
    if conn is None:
        return bulk_insert(engine, table, frame)
    data = _arrow_table(frame, table, engine.dialect.name)
    try:
        with conn:  # closed without commit on any failure: nothing of this call is written
            with conn.cursor() as cur:
                cur.adbc_ingest(table.name, data, mode="append")
            conn.commit()
    except Exception as exc:  # noqa: BLE001 - ADBC's errors (and Arrow's) name no URL; masked all the same
        _raise_masked(f"cannot write {len(frame)} rows into table {table.name} of {redact(engine.url)}: "
                      f"{masking.mask(f'{exc.__class__.__name__}: {exc}')}", exc)
    return len(frame)
