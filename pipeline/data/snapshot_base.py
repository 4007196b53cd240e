"""The previous day's snapshot as the base of today's, when it is one: else None, and a fresh extraction.

The folder is used only if its manifest is of D-1 and the database holds, before that
snapshot's cutoff, exactly the rows it read: the same latest row, and no row inserted
since with an earlier ``recorded_at`` (back-dated) or removed. So a snapshot of another
database, or one taken before rows were back-dated into it, is not used; nor are
unreadable files or tables whose ids the current master tables no longer hold.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipeline.core.keys import Vocabulary, small
from pipeline.core.latest import cutoff
from pipeline.core.merge import Table
from pipeline.data import source_state, storage
from pipeline.data.snapshot import MANIFEST, TABLE_COLUMNS
from pipeline.data.source import PRICES, SALES

log = logging.getLogger("pipeline")


@dataclasses.dataclass
class Base:
    """The previous snapshot: its manifest, and its sales and prices as tables."""

    manifest: dict
    sales: Table
    prices: Table


def load_previous(engine: sa.Engine, vocab: Vocabulary, previous_dir: Path, date: dt.date) -> Base | None:
    """The snapshot of ``date - 1`` in ``previous_dir`` as a base for ``date``; None (fresh) if it is not usable."""
    prev = date - dt.timedelta(days=1)
    folder = Path(previous_dir)
    try:
        manifest = storage.read_json(folder / MANIFEST)
    except (OSError, ValueError) as exc:
        log.info("snapshot %s: previous snapshot %s unreadable (%s); extracting fresh", date, folder, exc)
        return None
    if not isinstance(manifest, dict) or manifest.get("date") != prev.isoformat() \
            or manifest.get("recorded_before") != cutoff(prev).isoformat():
        log.info("snapshot %s: %s is not the snapshot of %s; extracting fresh", date, folder, prev)
        return None
    try:
        if not _same_rows(engine, manifest, prev, date):
            return None
        sales = _read_table(vocab, folder / "sales.parquet", "sales", manifest["rows"]["sales"])
        prices = _read_table(vocab, folder / "prices.parquet", "prices", manifest["rows"]["prices"])
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException) as exc:
        log.info("snapshot %s: previous snapshot %s unusable (%s: %s); extracting fresh",
                 date, folder, type(exc).__name__, exc)
        return None
    if sales is None or prices is None or not len(sales):
        log.info("snapshot %s: previous snapshot %s does not match the current tables; extracting fresh", date, folder)
        return None
    return Base(manifest, sales, prices)


def _same_rows(engine: sa.Engine, manifest: dict, prev: dt.date, date: dt.date) -> bool:
    """Whether the database holds, before the cutoff of ``prev``, exactly the rows the manifest's snapshot read."""
    for spec in (SALES, PRICES):
        latest = source_state.latest_before(engine, spec.table, cutoff(prev))
        recorded = manifest["max_recorded_at"][spec.name]
        if (latest is None) != (recorded is None) or (
                latest is not None and pd.Timestamp(latest) != pd.Timestamp(recorded)):
            log.info("snapshot %s: the database's last %s row before %s is %s, the previous snapshot's %s; "
                     "extracting fresh", date, spec.name, cutoff(prev), latest, recorded)
            return False
        unread = source_state.unread_rows(engine, spec.table, cutoff(prev), manifest)
        if unread:
            log.warning("snapshot %s: %d %s row(s) recorded before %s were %s since the previous snapshot was "
                        "taken; extracting fresh", date, abs(unread), spec.name, cutoff(prev),
                        "inserted (back-dated)" if unread > 0 else "removed")
            return False
    return True


def _id_codes(column: pa.ChunkedArray, ids: pd.Index) -> np.ndarray | None:
    """Codes of a stored categorical column against the current master table (by name); None if one is missing."""
    parts = []
    for chunk in column.chunks:
        if not pa.types.is_dictionary(chunk.type):
            return None
        mapping = ids.get_indexer(chunk.dictionary.to_pandas())
        indices = chunk.indices.to_numpy(zero_copy_only=False)
        if not len(indices):
            continue
        if len(mapping) and (mapping == np.arange(len(mapping))).all():
            codes = indices  # the same vocabulary as when it was written: the codes as they are
        else:
            codes = small(mapping, len(ids))[indices]
        if codes.min() < 0:
            return None
        parts.append(codes)
    return small(np.concatenate(parts), len(ids)) if parts else np.empty(0, np.int16)


def _read_table(vocab: Vocabulary, path: Path, name: str, rows: int) -> Table | None:
    """A stored sales or prices table as sorted columns coded against ``vocab``; None if it does not fit."""
    (third, third_type), (value, value_type) = TABLE_COLUMNS[name]
    table = pq.read_table(path, memory_map=True)
    types = dict(zip(table.schema.names, table.schema.types))
    if (table.schema.names != ["item_id", "store_id", third, value] or types[third] != third_type
            or types[value] != value_type or table.num_rows != rows):
        return None
    item = _id_codes(table.column("item_id"), vocab.items)
    store = _id_codes(table.column("store_id"), vocab.stores)
    if item is None or store is None:
        return None
    third_values = table.column(third)
    third_values = third_values.cast(pa.int64()) if name == "sales" else third_values
    values = table.column(value).to_numpy()
    base = Table(store, item, third_values.to_numpy(), values if values.flags.writeable else values.copy())
    _, series = base.runs(vocab.n_items)
    if len(series) > 1 and not (series[1:] > series[:-1]).all():  # ids renamed out of the written order
        return None
    return base
