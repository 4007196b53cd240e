"""Writing a snapshot folder: its five tables as parquet, their content hashes and the manifest.

The tables arrive as sorted columns (:class:`pipeline.core.merge.Table`); the frames
written are views of them (no second copy of 60 M rows), with the types of
:data:`pipeline.data.snapshot.TABLE_COLUMNS`. A value those types would change is an
error, never a silent narrowing. Every file is written atomically.
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.core.errors import DataError
from pipeline.core.keys import Vocabulary
from pipeline.core.merge import Table
from pipeline.data import storage
from pipeline.data.snapshot import MANIFEST, TABLE_COLUMNS, combined_hash


def write_snapshot(out_dir: Path, vocab: Vocabulary, date: dt.date, until: dt.datetime, calendar: pd.DataFrame,
                   items: pd.DataFrame, stores: pd.DataFrame, sales: Table, prices: Table, provenance: dict) -> dict:
    """Write the snapshot of ``date`` (rows recorded before ``until``) into ``out_dir``; returns its manifest.

    ``provenance``: ``max_recorded_at``, ``source_rows``, ``source_max_rowid`` and ``built_from``,
    copied into the manifest as they are.
    """
    frames = {"calendar": calendar, "items": items, "stores": stores,
              "sales": _frame(vocab, "sales", sales), "prices": _frame(vocab, "prices", prices)}
    if sales.n_series is None:
        sales.runs(vocab.n_items)
    manifest = {
        "date": date.isoformat(),
        "recorded_before": until.isoformat(),
        "rows": {name: len(frame) for name, frame in frames.items()},
        "max_recorded_at": provenance["max_recorded_at"],
        "source_rows": provenance["source_rows"],
        "source_max_rowid": provenance["source_max_rowid"],
        "series": int(sales.n_series),
        "first_sales_date": str(np.datetime64(int(sales.third.min()), "ns").astype("datetime64[D]")),
        "built_from": provenance["built_from"],
    }
    # the files are written while the hashes are computed: both spend their time outside the GIL
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        written = pool.submit(lambda: [storage.write_parquet(frame, out_dir / f"{name}.parquet")
                                       for name, frame in frames.items()])
        manifest["content_hash"] = {name: storage.frame_hash(frame) for name, frame in frames.items()}
        written.result()
    manifest["content_hash"]["all"] = combined_hash(manifest["content_hash"])
    storage.write_json(out_dir / MANIFEST, manifest)
    return manifest


def _frame(vocab: Vocabulary, name: str, table: Table) -> pd.DataFrame:
    """The table as the frame written: ids as categoricals, then its key and value columns."""
    (third, third_type), (value, value_type) = TABLE_COLUMNS[name]
    if pa.types.is_timestamp(third_type):  # int64 nanoseconds since 1970: a view, no copy
        third_values = table.third.view(third_type.to_pandas_dtype())
    else:
        third_values = table.third.astype(third_type.to_pandas_dtype(), copy=False)
    # copy=False: the frames are views of the columns (no second copy of 60 M rows)
    return pd.DataFrame({
        "item_id": pd.Categorical.from_codes(table.item, categories=vocab.items),
        "store_id": pd.Categorical.from_codes(table.store, categories=vocab.stores),
        third: third_values,
        value: exact(table.value, value_type.to_pandas_dtype(), value),
    }, copy=False)


def exact(values: np.ndarray, dtype, name: str) -> np.ndarray:
    """``values`` as ``dtype``, or an error if that would change any of them (the source checks rule it out)."""
    out = values.astype(dtype, copy=False)
    if out is not values and not np.array_equal(out, values):
        raise DataError(f"snapshot: {name} would not be stored exactly as {np.dtype(dtype).name}")
    return out
