"""Stage 1: the snapshot of the source database as known at the end of a run date.

``sales`` and ``sell_prices`` are append-only; the value in force at time T is
the latest row recorded at or before T. The snapshot of date D keeps, for every
key, the latest row with ``recorded_at`` before D+1 00:00, so a correction
recorded later changes only later snapshots.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline import db, storage
from pipeline.errors import DataError

SNAPSHOT_FILES = ("calendar", "items", "stores", "sales", "prices")
CHUNK_ROWS = 1_000_000


def cutoff(date: dt.date) -> dt.datetime:
    """First instant after the run date: rows recorded before it are known at the end of ``date``."""
    return dt.datetime.combine(date + dt.timedelta(days=1), dt.time.min)


def _read_master(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with engine.connect() as conn:
        calendar = pd.read_sql(sa.select(db.calendar).order_by(db.calendar.c.date), conn)
        items = pd.read_sql(sa.select(db.items).order_by(db.items.c.item_id), conn)
        stores = pd.read_sql(sa.select(db.stores).order_by(db.stores.c.store_id), conn)
    calendar["date"] = pd.to_datetime(calendar["date"])
    for col in ("wday", "month", "year", "snap_CA", "snap_TX", "snap_WI"):
        calendar[col] = calendar[col].astype("int16")
    calendar["wm_yr_wk"] = calendar["wm_yr_wk"].astype("int32")
    for frame in (items, stores):
        for col in frame.columns:
            frame[col] = frame[col].astype(str)
    return calendar, items, stores


def _codes(values: pd.Series, vocab: pd.Index, table: str, column: str, chunk: pd.DataFrame) -> np.ndarray:
    """Map ids to positions in ``vocab``; an id missing from the master table is an error."""
    codes = vocab.get_indexer(values)
    if (codes < 0).any():
        bad = chunk[codes < 0].iloc[0]
        raise DataError(
            f"{table} row refers to {column}={bad[column]!r}, which is not in the "
            f"{'items' if column == 'item_id' else 'stores'} table (row: {bad.to_dict()})"
        )
    return codes


def _read_versioned(
    engine: sa.Engine, table: sa.Table, key: list[str], value: str, until: dt.datetime,
    items: pd.Index, stores: pd.Index,
) -> pd.DataFrame:
    """All rows of ``table`` recorded before ``until``, ids as integer codes, in chunks.

    Strings become codes per chunk so that memory stays near 8 bytes a row even
    for tens of millions of rows.
    """
    cols = [table.c[c] for c in (*key, value, "recorded_at")]
    query = sa.select(*cols).where(table.c.recorded_at < until)
    parts = []
    with engine.connect().execution_options(stream_results=True) as conn:
        for chunk in pd.read_sql(query, conn, chunksize=CHUNK_ROWS):
            part = pd.DataFrame({
                "item": _codes(chunk["item_id"], items, table.name, "item_id", chunk).astype(np.int16),
                "store": _codes(chunk["store_id"], stores, table.name, "store_id", chunk).astype(np.int8),
            })
            for col in key:
                if col in ("item_id", "store_id"):
                    continue
                part[col] = pd.to_datetime(chunk[col]) if col == "date" else chunk[col].astype(np.int32)
            part[value] = chunk[value].to_numpy()
            part["recorded_at"] = pd.to_datetime(chunk["recorded_at"])
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["item", "store", *[k for k in key if k not in ("item_id", "store_id")], value, "recorded_at"])
    return pd.concat(parts, ignore_index=True)


def latest_per_key(rows: pd.DataFrame, key: list[str], table: str, describe) -> pd.DataFrame:
    """Keep the latest-recorded row of each key; two rows of one key recorded at the same instant are an error."""
    rows = rows.sort_values([*key, "recorded_at"], kind="stable", ignore_index=True)
    same_key = (rows[key].shift() == rows[key]).all(axis=1)
    tie = same_key & (rows["recorded_at"].shift() == rows["recorded_at"])
    if tie.any():
        first = rows[tie].iloc[0]
        raise DataError(
            f"{table}: {int(tie.sum())} duplicate row(s): two rows for the same key recorded at the same "
            f"instant, so neither is the correction of the other; first: {describe(first)}"
        )
    last = ~(rows[key].shift(-1) == rows[key]).all(axis=1)
    return rows[last].reset_index(drop=True)


def extract_snapshot(engine: sa.Engine, date: dt.date, out_dir: Path) -> dict:
    """Write the snapshot of the database as known at the end of ``date`` into ``out_dir``.

    Files: ``calendar, items, stores, sales, prices`` (.parquet) and ``manifest.json``
    (row counts, max recorded_at, content hash). ``sales`` is long: item_id,
    store_id (categoricals), date, units (int16), sorted by store, item, date;
    ``prices``: item_id, store_id, wm_yr_wk, sell_price (float32).
    Raises DataError, naming the offending rows, when the data as of ``date``
    cannot give a forecast; nothing is written then.
    """
    db.check_schema(engine)
    calendar, items, stores = _read_master(engine)
    if items.empty or stores.empty:
        raise DataError(f"the items table holds {len(items)} rows and stores {len(stores)}: nothing to forecast")
    item_ix, store_ix = pd.Index(items["item_id"]), pd.Index(stores["store_id"])
    until = cutoff(date)

    def describe(row):
        return (f"item_id={item_ix[row['item']]} store_id={store_ix[row['store']]} "
                + " ".join(f"{k}={row[k]}" for k in row.index if k not in ("item", "store")))

    sales = _read_versioned(engine, db.sales, ["item_id", "store_id", "date"], "units", until, item_ix, store_ix)
    if sales.empty:
        with engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(db.sales.c.recorded_at))).scalar()
        if first is None:
            raise DataError("the sales table holds no rows: there is no history to forecast from")
        raise DataError(f"run date {date} is before any history: the first sales row was recorded at {first}")
    sales = latest_per_key(sales, ["store", "item", "date"], "sales", describe)
    _check_sales(sales, date, describe)

    prices = _read_versioned(engine, db.sell_prices, ["item_id", "store_id", "wm_yr_wk"], "sell_price", until, item_ix, store_ix)
    prices = latest_per_key(prices, ["store", "item", "wm_yr_wk"], "sell_prices", describe)
    bad = prices["sell_price"].isna() | (prices["sell_price"] <= 0)
    if bad.any():
        raise DataError(f"sell_prices: {int(bad.sum())} row(s) with a price that is not positive; first: {describe(prices[bad].iloc[0])}")

    frames = {
        "calendar": calendar,
        "items": items,
        "stores": stores,
        "sales": pd.DataFrame({
            "item_id": pd.Categorical.from_codes(sales["item"], categories=item_ix),
            "store_id": pd.Categorical.from_codes(sales["store"], categories=store_ix),
            "date": sales["date"].astype("datetime64[ns]"),
            "units": sales["units"].astype(np.int16),
        }),
        "prices": pd.DataFrame({
            "item_id": pd.Categorical.from_codes(prices["item"], categories=item_ix),
            "store_id": pd.Categorical.from_codes(prices["store"], categories=store_ix),
            "wm_yr_wk": prices["wm_yr_wk"].astype(np.int32),
            "sell_price": prices["sell_price"].astype(np.float32),
        }),
    }
    manifest = {
        "date": date.isoformat(),
        "recorded_before": until.isoformat(),
        "rows": {name: len(frame) for name, frame in frames.items()},
        "max_recorded_at": {
            "sales": sales["recorded_at"].max().isoformat(),
            "sell_prices": prices["recorded_at"].max().isoformat() if len(prices) else None,
        },
        "series": int(sales.groupby(["store", "item"]).ngroups),
        "first_sales_date": sales["date"].min().date().isoformat(),
        "content_hash": {name: storage.frame_hash(frame) for name, frame in frames.items()},
    }
    manifest["content_hash"]["all"] = storage.hashlib.sha256(
        "".join(manifest["content_hash"][n] for n in SNAPSHOT_FILES).encode()).hexdigest()
    for name, frame in frames.items():
        storage.write_parquet(frame, out_dir / f"{name}.parquet")
    storage.write_json(out_dir / "manifest.json", manifest)
    return manifest


def _check_sales(sales: pd.DataFrame, date: dt.date, describe) -> None:
    """Stop values no forecast should be built on; each message names a first offending row."""
    negative = sales["units"] < 0
    if negative.any():
        raise DataError(f"sales: {int(negative.sum())} row(s) in force with negative units; first: {describe(sales[negative].iloc[0])}")
    run_day = pd.Timestamp(date)
    future = sales["date"] > run_day
    if future.any():
        raise DataError(f"sales: {int(future.sum())} row(s) dated after the run date {date} but recorded by then; "
                        f"first: {describe(sales[future].iloc[0])}")
    last = sales["date"].max()
    if last < run_day:
        raise DataError(f"no sales are recorded for the run date {date}: the last recorded day as of then is "
                        f"{last.date()}; a run date after the last recorded day cannot be forecast from")


def read_snapshot(snapshot_dir: Path, name: str, **kwargs) -> pd.DataFrame:
    """One table of a snapshot (``kwargs`` go to ``pandas.read_parquet``, e.g. ``filters``)."""
    return pd.read_parquet(Path(snapshot_dir) / f"{name}.parquet", **kwargs)
