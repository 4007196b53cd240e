"""Series ids of millions of rows, matched vectorised: shared by features and metrics.

A series is ``(item_id, store_id)``. The sales and prices of a snapshot hold
those ids as categoricals; the functions here work on their codes, so the ids
of tens of millions of rows are never turned into strings (that alone took most
of a feature partition's time), and accept plain string columns too.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError

ITEM, STORE = "item_id", "store_id"
#: The columns that name a series, in the order frames are keyed and sorted by
#: (the one definition: import it rather than spelling the list out again).
SERIES_KEY = [ITEM, STORE]


def _codes_of(col: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """(per-row code into the column's own distinct values, -1 for NaN; those values as str)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes, uniques = col.cat.codes.to_numpy(), col.cat.categories
    else:
        codes, uniques = pd.factorize(col)
    return codes, pd.Index(uniques).astype(str)


def local_codes(col: pd.Series, values: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(per-row code into the column's own distinct values, -1 for NaN; position of each
    distinct value in ``values`` with -1 for unknown, plus a trailing -1)."""
    codes, uniques = _codes_of(col)
    return codes, np.append(values.get_indexer(uniques), -1)


def series_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The distinct (store_id, item_id) of ``frame`` as strings, sorted by store_id, item_id.

    Raises DataError if a row has no store_id or item_id.
    """
    store_codes, stores = _codes_of(frame[STORE])
    item_codes, items = _codes_of(frame[ITEM])
    missing = (store_codes < 0) | (item_codes < 0)
    if missing.any():
        raise DataError(f"{int(missing.sum())} rows have no store_id or item_id")
    combined = store_codes.astype(np.int64)
    combined *= len(items)
    combined += item_codes
    bound = len(stores) * len(items)
    # a chain's (store x item) grid is small: counting codes is one pass, hashing 60 M rows three
    distinct = np.flatnonzero(np.bincount(combined, minlength=bound)) if bound <= 1 << 26 else pd.unique(combined)
    store, item = np.divmod(distinct, len(items))
    keys = pd.DataFrame({STORE: stores[store], ITEM: items[item]})
    return keys.sort_values([STORE, ITEM], ignore_index=True)


class SeriesIndexer:
    """Maps (item_id, store_id) columns of any frame to positions in a list of series, vectorised.

    Item and store are coded against the list's values (cheap for categorical input,
    one hash pass for strings); a small (items x stores) table then gives the position,
    -1 where the pair is not in the list.
    """

    def __init__(self, series: pd.DataFrame):
        self.items = pd.Index(np.unique(series[ITEM].astype(str).to_numpy()))
        self.stores = pd.Index(np.unique(series[STORE].astype(str).to_numpy()))
        # One extra row and column of -1: an unknown item or store (code -1) lands there.
        self.table = np.full((len(self.items) + 1, len(self.stores) + 1), -1, dtype=np.int64)
        self.table[self.items.get_indexer(series[ITEM].astype(str)),
                   self.stores.get_indexer(series[STORE].astype(str))] = np.arange(len(series))

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Position of each row of ``frame`` in the series list (-1 where not in it)."""
        item_codes, item_pos = local_codes(frame[ITEM], self.items)
        store_codes, store_pos = local_codes(frame[STORE], self.stores)
        # Positions for every (local item, local store) pair: small, then one gather per row.
        # Its last row and column are -1 (from the extra -1 entries), so a code of -1 (NaN)
        # wraps onto a -1 cell in the flat index below.
        local = self.table[np.ix_(item_pos, store_pos)]
        # In-place arithmetic: one index array, not three, for tens of millions of rows.
        flat = item_codes.astype(np.int64)
        flat *= local.shape[1]
        flat += store_codes
        return local.ravel()[flat]
