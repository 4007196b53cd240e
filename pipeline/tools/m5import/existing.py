"""Which rows of a chunk are new: the rows already in sales / sell_prices for the chunk's series, compared key by key."""
from __future__ import annotations

import contextlib
import gc
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.tools.m5import.layout import error_at

# ids per IN list (rendered as literals, so no bound-parameter limit applies): one list, hence
# one scan of the table, per chunk; the cap only bounds the statement's length
_IN_BATCH = 30_000
# rows per fetch of existing rows: bounds the Python row tuples held at once
FETCH_ROWS = 250_000


def _batches(values: list, size: int) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored as it was on exit)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _parse_times(values: np.ndarray, unit: str) -> np.ndarray:
    """Dates or timestamps as the backend returns them (ISO text, date/datetime objects) -> int64 in ``unit``.

    Few distinct values (one per day): parse the distinct ones, then index.
    """
    codes, uniques = pd.factorize(values)
    parsed = pd.to_datetime(pd.Index(uniques, dtype=object)).to_numpy().astype(f"datetime64[{unit}]").astype(np.int64)
    return parsed[codes]


def _existing_rows(conn: sa.Connection, table: sa.Table, third: str, value: str,
                   store_ix: pd.Index, item_ix: pd.Index) -> pd.DataFrame:
    """Rows of ``table`` for the given stores and items (a superset of the chunk's series), integer-keyed.

    Columns ``s``, ``i`` (positions in ``store_ix``, ``item_ix``), ``k`` (the date as days since
    1970, or wm_yr_wk), ``t`` (recorded_at as seconds since 1970) and ``v`` (the value). Read with
    a plain DB-API cursor in slices and keyed at once: a re-import of the full M5 reads ~60 M rows
    and SQLAlchemy's per-row result processing would double that time.
    """
    cols = [table.c.store_id, table.c.item_id, table.c[third], table.c[value], table.c.recorded_at]
    parts = []
    for batch in _batches(list(item_ix), _IN_BATCH):
        query = sa.select(*cols).where(table.c.store_id.in_(list(store_ix)), table.c.item_id.in_(batch))
        # the ids are quoted by the dialect's own literal rendering
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        cursor = conn.connection.cursor()  # the same DB-API connection: inside the chunk's transaction
        try:
            cursor.execute(sql)
            # millions of short-lived row tuples trigger the cyclic GC over and over (a third of
            # the read time); none of them is in a cycle, so it is paused while they are keyed
            with _gc_paused():
                while rows := cursor.fetchmany(FETCH_ROWS):
                    store, item, key, val, rec = (np.array(c, dtype=object) for c in zip(*rows))
                    del rows
                    parts.append(pd.DataFrame({
                        "s": store_ix.get_indexer(store),
                        "i": item_ix.get_indexer(item),
                        "k": _parse_times(key, "D") if third == "date" else key.astype(np.int64),
                        "t": _parse_times(rec, "s"),
                        "v": val.astype(np.float64),
                    }))
        finally:
            cursor.close()
    if not parts:
        return pd.DataFrame({c: np.array([], dtype=np.int64) for c in "sikt"} | {"v": np.array([], dtype=np.float64)})
    return pd.concat(parts, ignore_index=True)


def new_rows(conn: sa.Connection, table: sa.Table, third: str, value: str, long: pd.DataFrame,
             where: Callable[[int], tuple[int, str]], path: Path) -> np.ndarray:
    """Boolean mask of the rows of ``long`` to write; raises DataError on a conflicting existing row.

    ``long`` has store_id, item_id (categoricals of the chunk's ids only), ``third`` (date or
    wm_yr_wk), ``value`` and recorded_at. A row is skipped when its key has a row recorded at the
    same instant with the same value; it is an error when its key has any other row (see the
    module docstring). ``where(i)`` gives (line, column) of row i for the message.
    """
    store_ix = pd.Index([str(s) for s in long["store_id"].cat.categories], dtype=object)
    item_ix = pd.Index([str(s) for s in long["item_id"].cat.categories], dtype=object)
    old_k = _existing_rows(conn, table, third, value, store_ix, item_ix)
    if old_k.empty:
        return np.ones(len(long), dtype=bool)
    # integer keys on both sides: merges on codes are fast and dtype-proof
    new = pd.DataFrame({
        "s": long["store_id"].cat.codes.to_numpy(dtype=np.int64),
        "i": long["item_id"].cat.codes.to_numpy(dtype=np.int64),
        "k": (long[third].to_numpy().astype("datetime64[D]").astype(np.int64) if third == "date"
              else long[third].to_numpy(dtype=np.int64)),
        "t": long["recorded_at"].to_numpy().astype("datetime64[s]").astype(np.int64),
        "v": long[value].to_numpy(dtype=np.float64),
    })
    new["pos"] = np.arange(len(new))
    seen = new.merge(old_k[["s", "i", "k"]].drop_duplicates(), on=["s", "i", "k"], how="inner")["pos"].to_numpy()
    if not len(seen):
        return np.ones(len(long), dtype=bool)
    at_instant = new.merge(old_k.drop_duplicates(["s", "i", "k", "t"]), on=["s", "i", "k", "t"], how="inner", suffixes=("", "_db"))
    same = at_instant.loc[at_instant["v"] == at_instant["v_db"], "pos"].to_numpy()
    # masks, not np.setdiff1d: that sorts/hashes millions of positions for nothing
    skip = np.zeros(len(long), dtype=bool)
    skip[same] = True
    conflict = np.zeros(len(long), dtype=bool)
    conflict[seen] = True
    bad = np.flatnonzero(conflict & ~skip)
    if len(bad):
        i = int(bad[0])
        line, column = where(i)
        row = long.iloc[i]
        key = f"store_id={row['store_id']} item_id={row['item_id']} {third}=" + (
            str(pd.Timestamp(row[third]).date()) if third == "date" else str(row[third]))
        here = at_instant[at_instant["pos"] == i]
        shown = lambda v: f"{v:g}" if value == "sell_price" else str(int(v))  # noqa: E731
        if len(here):
            what = f"already holds {value}={shown(here['v_db'].iloc[0])} for {key}, the file says {shown(row[value])}"
        else:
            o = old_k[(old_k["s"] == new["s"].iloc[i]) & (old_k["i"] == new["i"].iloc[i]) & (old_k["k"] == new["k"].iloc[i])].iloc[0]
            what = (f"already holds {value}={shown(o['v'])} for {key} recorded at {pd.Timestamp(np.datetime64(int(o['t']), 's'))}, "
                    f"not at {pd.Timestamp(row['recorded_at'])} where this import records it")
        raise error_at(path, line, column, f"the {table.name} table {what}; import corrections as new rows "
                       "with a later recorded_at instead")
    return ~skip
