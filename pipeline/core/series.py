"""Series ids of millions of rows, matched vectorised: shared by features and metrics.

A series is ``(item_id, store_id)``. The sales and prices of a snapshot hold
those ids as categoricals; the functions here work on their codes, so the ids
of tens of millions of rows are never turned into strings (that alone took most
of a feature partition's time), and accept plain string columns too.

The integer series code of a row is ``store * n_items + item`` (codes into the store
and item vocabularies), and a row's key is ``series << 32 | (third + 2**31)`` (the
third part a day or a week): :func:`series_codes` and :func:`row_keys` compute them,
:func:`split_series`, :func:`key_series` and :func:`key_third` take them apart.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError

ITEM, STORE = "item_id", "store_id"
#: The columns that name a series, in the order frames are keyed and sorted by
#: (the one definition: import it rather than spelling the list out again).
SERIES_KEY = [ITEM, STORE]
KEY_BIAS = 1 << 31  # a key's third part (a day, a week), biased to be non-negative, is its low 32 bits
KEY_LOW = (1 << 32) - 1


def series_codes(store_codes: np.ndarray, item_codes: np.ndarray, n_items: int, dtype=np.int64) -> np.ndarray:
    """The series code ``store * n_items + item`` of each row, as ``dtype`` (a new array)."""
    out = np.asarray(store_codes).astype(dtype)
    out *= dtype(n_items)
    out += item_codes
    return out


def split_series(codes: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(store codes, item codes) of series codes."""
    return np.divmod(codes, n_items)


def row_keys(store_codes: np.ndarray, item_codes: np.ndarray, n_items: int, third: np.ndarray) -> np.ndarray:
    """int64 keys ordered as (store, item, third): ``series << 32 | (third + 2**31)``; ``third`` fits int32."""
    keys = series_codes(store_codes, item_codes, n_items)
    keys <<= 32
    keys |= np.asarray(third).astype(np.int64) + KEY_BIAS
    return keys


def key_series(keys: np.ndarray) -> np.ndarray:
    """The series codes of row keys."""
    return keys >> 32


def key_third(keys: np.ndarray) -> np.ndarray:
    """The third parts (days, weeks) of row keys."""
    return (keys & KEY_LOW) - KEY_BIAS


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
    combined = series_codes(store_codes, item_codes, len(items))
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
