"""The master tables (calendar, items, stores): only new keys are inserted; a key with other attributes is refused."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.core.errors import DataError
from pipeline.data import db
from pipeline.tools.m5import.layout import error_at


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Elementwise equality where two missing values are equal."""
    a, b = a.astype(object), b.astype(object)
    return ((a == b) | (a.isna() & b.isna())).to_numpy(dtype=bool)


def _new_master_rows(conn: sa.Connection, table: sa.Table, key: str, frame: pd.DataFrame,
                     where: Callable[[pd.DataFrame, int, str], DataError]) -> pd.DataFrame:
    """Rows of ``frame`` whose ``key`` is not in ``table``; an existing key with other attributes is an error.

    ``where(frame, i, column)`` builds the DataError for row i (so it can name the file and line).
    """
    existing = pd.read_sql(sa.select(table), conn)
    if key == "date":
        existing["date"] = pd.to_datetime(existing["date"]).astype("datetime64[s]")
    if existing.empty:
        return frame
    both = frame.reset_index(drop=True).merge(existing, on=key, how="left", suffixes=("", "__db"), indicator=True)
    present = (both["_merge"] == "both").to_numpy()
    for col in existing.columns:
        if col == key:
            continue
        differs = present & ~_same(both[col], both[f"{col}__db"])
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            raise where(both, i, col)
    return frame[~present]


def write_master(conn: sa.Connection, calendar: pd.DataFrame, cal_path: Path, ids: pd.DataFrame, sales_path: Path) -> dict:
    """Write the new calendar, items and stores rows in the caller's transaction; returns rows added per table."""
    items = ids.drop_duplicates("item_id")[["line", "item_id", "dept_id", "cat_id"]]
    stores = ids.drop_duplicates("store_id")[["line", "store_id", "state_id"]]
    cal = calendar.assign(line=np.arange(2, 2 + len(calendar)))

    def conflict(path: Path, table: str, key: str):
        def where(both: pd.DataFrame, i: int, col: str) -> DataError:
            k = both[key].iloc[i]
            k = k.date() if isinstance(k, pd.Timestamp) else k
            return error_at(path, int(both["line"].iloc[i]), col,
                            f"the {table} table already holds {col}={both[f'{col}__db'].iloc[i]!r} for {key} {k}, "
                            f"the file says {both[col].iloc[i]!r}; the database holds other data than these files")
        return where

    added = {}
    for name, table, key, frame, path in (("calendar", db.calendar, "date", cal, cal_path),
                                          ("items", db.items, "item_id", items, sales_path),
                                          ("stores", db.stores, "store_id", stores, sales_path)):
        new = _new_master_rows(conn, table, key, frame, conflict(path, name, key))
        added[name] = db.bulk_insert(conn, table, new.drop(columns="line"))
    return added
