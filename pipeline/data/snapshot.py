"""The snapshot dataset: what the source database held at the end of a run date, as parquet files.

A snapshot folder holds one parquet file per table (``SNAPSHOT_FILES``), written
store by store, and ``manifest.json`` (run date, row counts, the latest
``recorded_at`` read, content hashes). ``sales`` and ``prices`` hold item_id and
store_id as categoricals of the items and stores tables' ids, then the columns of
``TABLE_COLUMNS``. :mod:`pipeline.data.snapshot_writer` writes it (for
``pipeline.stages.extract``); everything else reads it through this module.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.data import storage

SNAPSHOT_FILES = ("calendar", "items", "stores", "sales", "prices")
MANIFEST = "manifest.json"
#: The versioned tables' columns after item_id and store_id: (key column, type), (value column, type).
TABLE_COLUMNS = {
    "sales": (("date", pa.timestamp("ns")), ("units", pa.int32())),
    "prices": (("wm_yr_wk", pa.int32()), ("sell_price", pa.float64())),
}


def combined_hash(hashes: dict) -> str:
    """The snapshot's content hash: one sha256 over the tables' own hashes, in ``SNAPSHOT_FILES`` order."""
    return hashlib.sha256("".join(hashes[n] for n in SNAPSHOT_FILES).encode()).hexdigest()


def read_manifest(snapshot_dir: Path) -> dict:
    """The snapshot's ``manifest.json``."""
    return storage.read_json(Path(snapshot_dir) / MANIFEST)


def read_snapshot(snapshot_dir: Path, name: str, **kwargs) -> pd.DataFrame:
    """One table of a snapshot (``kwargs`` go to ``pandas.read_parquet``, e.g. ``columns``)."""
    return pd.read_parquet(Path(snapshot_dir) / f"{name}.parquet", **kwargs)


def read_snapshot_store(snapshot_dir: Path, name: str, store_id: str) -> pd.DataFrame:
    """The rows of one store of a snapshot table (sales or prices), in file order, index 0..n-1.

    The tables are written store by store, so a store's rows fill a few row
    groups: only those (by their store_id statistics) are read, then masked
    exactly. pyarrow's ``filters`` gives the same rows but tests every row of
    every group against the string, which is much slower on a full-scale table.
    """
    file = pq.ParquetFile(Path(snapshot_dir) / f"{name}.parquet")
    meta = file.metadata
    col = meta.schema.to_arrow_schema().get_field_index("store_id")
    groups = []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(col).statistics
        if stats is None or not stats.has_min_max or stats.min <= store_id <= stats.max:
            groups.append(g)
    frame = file.read_row_groups(groups).to_pandas()
    return frame[(frame["store_id"] == store_id).to_numpy()].reset_index(drop=True)
