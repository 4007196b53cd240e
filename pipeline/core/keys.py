"""The snapshot's id vocabularies and its row keys: ``(store, item, day or week)`` as one int64.

Item and store ids become codes into the master tables' sorted ids (:class:`Vocabulary`);
a row's key is :func:`pipeline.core.series.row_keys` of those codes and its third part
(a day number for sales, ``wm_yr_wk`` for prices), so keys sort as (store, item, third)
and deduplication is one integer sort. ``spec`` below is any table description with
``name``, ``third`` ("date" or "wm_yr_wk") and ``value`` (the value column's name).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from pipeline.core import series
from pipeline.core.errors import DataError

DAY_US = 86_400 * 1_000_000  # microseconds a day: recorded_at and dates are read as microseconds since 1970
DAY_NS = DAY_US * 1_000  # nanoseconds a day: the snapshot's date column


def small(codes: np.ndarray, n: int) -> np.ndarray:
    """Codes of a vocabulary of ``n`` in the smallest integer type (the categoricals' own)."""
    return codes.astype(np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32, copy=False)


def last_day(key: np.ndarray) -> int:
    """The latest day (days since 1970) among sales keys."""
    return int(series.key_third(key).max())


@dataclasses.dataclass
class Vocabulary:
    """The ids of the items and stores tables, sorted as those tables are read; codes are positions in them."""

    items: pd.Index
    stores: pd.Index

    def __post_init__(self):
        self.n_items = len(self.items)
        if len(self.stores) * self.n_items >= 1 << 31:
            raise DataError(f"{len(self.stores)} stores x {self.n_items} items: too many series for one snapshot")

    def key(self, store: np.ndarray, item: np.ndarray, third: np.ndarray) -> np.ndarray:
        """int64 keys ordered as (store, item, third): series in the high 32 bits."""
        return series.row_keys(store, item, self.n_items, third)

    def decode(self, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        store, item = series.split_series(series.key_series(key), self.n_items)
        return store, item, series.key_third(key)

    def describe(self, spec, key: int, value, recorded_us: int) -> str:
        """A row as the messages name it: ``item_id=… store_id=… date=… units=… recorded_at=…``."""
        store, item, third = (int(v[0]) for v in self.decode(np.array([key], np.int64)))
        third_value = np.datetime64(third, "D").astype("datetime64[ns]") if spec.third == "date" else np.int32(third)
        row = pd.DataFrame({
            spec.third: [third_value], spec.value: [value],
            "recorded_at": [np.datetime64(int(recorded_us), "us")],
        }).iloc[0]
        return (f"item_id={self.items[item]} store_id={self.stores[store]} "
                + " ".join(f"{k}={row[k]}" for k in row.index))
