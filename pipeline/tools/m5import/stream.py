"""The streamed tables: the wide sales file and sell_prices.csv, chunk by chunk, checked, turned long and written."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.core.errors import DataError
from pipeline.data import db
from pipeline.tools.m5import.chunks import chunks, diagnose_units
from pipeline.tools.m5import.existing import new_rows
from pipeline.tools.m5import.layout import DAY_COLUMN, MAX_UNITS, SALES_ID_COLUMNS, error_at, units_message
from pipeline.tools.m5import.price_checks import PRICE_DTYPES, check_prices

SALE_RECORDED_AT = np.timedelta64(23 * 3600, "s")  # end of the sale's day, as pipeline.tools.world
# rows per db.bulk_insert call inside the import's transaction: its SQLite path holds a Python
# object per value, so this (not the chunk size) bounds that memory
WRITE_ROWS = 250_000


def _write(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, keep: np.ndarray) -> int:
    """Append the rows of ``frame`` where ``keep``, in slices, inside the caller's transaction."""
    if not keep.all():
        frame = frame[keep]
    return sum(db.bulk_insert(conn, table, frame.iloc[a:a + WRITE_ROWS]) for a in range(0, len(frame), WRITE_ROWS))


def import_sales(conn: sa.Connection, path: Path, header: list[str], day_dates: pd.Series, ids: pd.DataFrame,
                 chunk_rows: int, check_existing: bool, report: Callable[[int, str], None]) -> tuple[int, int]:
    """Stream the wide sales file into ``sales``; returns (rows added, rows already present)."""
    day_cols = [c for c in header if DAY_COLUMN.fullmatch(c)]
    dates = day_dates.loc[day_cols].to_numpy().astype("datetime64[s]")
    recorded = dates + SALE_RECORDED_AT
    stores = sorted(ids["store_id"].unique())
    items = sorted(ids["item_id"].unique())
    # int64: pandas parses to it natively (int32 costs a cast per column and chunk)
    dtypes = {**{c: str for c in SALES_ID_COLUMNS}, **{c: "int64" for c in day_cols}}
    n_days = len(day_cols)
    added = skipped = 0
    for first_line, chunk in chunks(path, dtypes, chunk_rows, diagnose_units(path, day_cols)):
        # the id columns were checked in the first pass; a file changed since then is caught here
        expect = ids.iloc[first_line - 2:first_line - 2 + len(chunk)]
        if len(expect) != len(chunk) or not ((chunk["item_id"].to_numpy(dtype=object) == expect["item_id"].to_numpy())
                                             & (chunk["store_id"].to_numpy(dtype=object) == expect["store_id"].to_numpy())).all():
            raise DataError(f"{path.name} changed while it was being imported (lines {first_line}.. differ from the first pass)")
        units = chunk[day_cols].to_numpy(dtype=np.int64)
        # scan_csv let digits only through; what int64 holds but sales.units (32-bit) does not is refused
        wrong = (units < 0) | (units > MAX_UNITS)
        if wrong.any():
            r, c = divmod(int(np.flatnonzero(wrong.reshape(-1))[0]), n_days)
            raise error_at(path, first_line + r, day_cols[c], units_message(str(units[r, c])))
        n = len(chunk)
        # wide -> long without a Python loop, day-major (all series of the chunk for day 1, then
        # day 2, ...): rows of one recorded_at are then written together, which keeps the inserts
        # into the recorded_at index local (twice as fast on SQLite as series-major order)
        store_codes = pd.Index(stores).get_indexer(chunk["store_id"].astype(object))
        item_codes = pd.Index(items).get_indexer(chunk["item_id"].astype(object))
        long = pd.DataFrame({
            "store_id": pd.Categorical.from_codes(np.tile(store_codes, n_days), categories=stores),
            "item_id": pd.Categorical.from_codes(np.tile(item_codes, n_days), categories=items),
            "date": np.repeat(dates, n),
            "units": units.T.reshape(-1),
            "recorded_at": np.repeat(recorded, n),
        })
        if check_existing:
            used = long.assign(store_id=long["store_id"].cat.remove_unused_categories(),
                               item_id=long["item_id"].cat.remove_unused_categories())
            keep = new_rows(conn, db.sales, "date", "units", used,
                            lambda i: (first_line + i % n, day_cols[i // n]), path)
        else:
            keep = np.ones(len(long), dtype=bool)
        added += _write(conn, db.sales, long, keep)
        skipped += int((~keep).sum())
        report(n * n_days, f"{path.name}: through line {first_line + n - 1}")
    return added, skipped


def import_prices(conn: sa.Connection, path: Path, week_start: pd.Series, ids: pd.DataFrame, chunk_rows: int,
                  report: Callable[[int, str], None]) -> tuple[int, int, dict]:
    """Stream ``sell_prices.csv`` into ``sell_prices``; returns (rows added, rows already present, lines skipped).

    Every line is checked; lines of an item or a store that the sales file lacks are then skipped
    (importing a subset of the series with the full price file is normal) and counted:
    ``{"rows": lines, "items": distinct such items, "stores": distinct such stores}``.
    """
    stores = sorted(ids["store_id"].unique())
    items = sorted(ids["item_id"].unique())
    store_ix, item_ix = pd.Index(stores, dtype=object), pd.Index(items, dtype=object)
    weeks = pd.Index(week_start.index)
    added = skipped = 0
    other_items: set[str] = set()
    other_stores: set[str] = set()
    outside = 0
    for first_line, chunk in chunks(path, PRICE_DTYPES, chunk_rows, lambda raw, first: None):
        n = len(chunk)
        checked = check_prices(path, chunk, first_line, weeks)
        (s_codes, s_texts), (i_codes, i_texts) = checked["store_id"], checked["item_id"]
        week, price = checked["wm_yr_wk"], checked["sell_price"]
        # the same key twice in the file, known series or not (across chunks: see new_rows)
        dup = pd.DataFrame({"s": s_codes, "i": i_codes, "w": week}).duplicated().to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise error_at(path, first_line + i, "wm_yr_wk", f"store {s_texts[s_codes[i]]} item {i_texts[i_codes[i]]} "
                           f"week {week[i]} appears twice in the file (an earlier line has the same key)")
        store_codes = store_ix.get_indexer(pd.Index(s_texts, dtype=object))[s_codes]
        item_codes = item_ix.get_indexer(pd.Index(i_texts, dtype=object))[i_codes]
        known = (store_codes >= 0) & (item_codes >= 0)
        if not known.all():
            other_stores.update(s_texts[c] for c in np.unique(s_codes[store_codes < 0]))
            other_items.update(i_texts[c] for c in np.unique(i_codes[item_codes < 0]))
            outside += int((~known).sum())
            rows = np.flatnonzero(known)
            store_codes, item_codes, week, price = store_codes[rows], item_codes[rows], week[rows], price[rows]
        else:
            rows = np.arange(n)
        long = pd.DataFrame({
            "store_id": pd.Categorical.from_codes(store_codes, categories=stores),
            "item_id": pd.Categorical.from_codes(item_codes, categories=items),
            "wm_yr_wk": week,
            "sell_price": price,
            "recorded_at": week_start.to_numpy()[weeks.get_indexer(week)],
        })
        # written week by week (the file is sorted by series): local inserts into the recorded_at index
        order = np.argsort(week, kind="stable")
        long = long.iloc[order].reset_index(drop=True)
        used = long.assign(store_id=long["store_id"].cat.remove_unused_categories(),
                           item_id=long["item_id"].cat.remove_unused_categories())
        # always checked: besides earlier imports, an earlier chunk of this file may hold the key
        keep = new_rows(conn, db.sell_prices, "wm_yr_wk", "sell_price", used,
                        lambda i: (first_line + int(rows[order[i]]), "sell_price"), path)
        added += _write(conn, db.sell_prices, long, keep)
        skipped += int((~keep).sum())
        report(n, f"{path.name}: through line {first_line + n - 1}")
    return added, skipped, {"rows": outside, "items": len(other_items), "stores": len(other_stores)}
