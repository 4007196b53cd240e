"""The M5 hierarchy: the 12 aggregation levels and the sums of bottom series up them.

* A *series* is one ``(item_id, store_id)`` pair: the bottom of the hierarchy.
  Its hierarchy columns are ``dept_id`` and ``cat_id`` (from the item) and
  ``state_id`` (from the store).
* ``LEVELS`` are the 12 M5 aggregation levels. On the M5 hierarchy (3,049 items,
  10 stores, 3 states, 3 categories, 7 departments) they hold 42,840 series.
* A level's *codes* map each bottom series to its aggregated series; a sparse
  0/1 *indicator* matrix ``S`` sums a (series x days) matrix ``X`` up a level as ``S @ X``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline.core.series import ITEM, SERIES_KEY, STORE

__all__ = ["LEVELS", "HIERARCHY_COLUMNS", "build_hierarchy", "check_hierarchy", "level_codes", "level_series",
           "aggregation_plan", "sum_up"]

HIERARCHY_COLUMNS = [ITEM, STORE, "dept_id", "cat_id", "state_id"]

#: The 12 M5 aggregation levels, in the organisers' order: (name, group-by columns).
LEVELS: list[tuple[str, list[str]]] = [
    ("total", []),
    ("state", ["state_id"]),
    ("store", ["store_id"]),
    ("category", ["cat_id"]),
    ("department", ["dept_id"]),
    ("state_category", ["state_id", "cat_id"]),
    ("state_department", ["state_id", "dept_id"]),
    ("store_category", ["store_id", "cat_id"]),
    ("store_department", ["store_id", "dept_id"]),
    ("item", ["item_id"]),
    ("item_state", ["item_id", "state_id"]),
    ("item_store", ["item_id", "store_id"]),
]


def build_hierarchy(series: pd.DataFrame, items: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
    """The hierarchy rows of the distinct series of ``series``, as str columns.

    In: ``series`` with ``item_id, store_id`` (other columns and repeated pairs
    ignored); ``items`` with ``item_id, dept_id, cat_id``; ``stores`` with
    ``store_id, state_id`` (as a snapshot holds them). Out: one row per series
    found in both tables, in the order of first appearance in ``series``; a series
    whose item or store is unknown is left out (scoring it then fails by name).
    """
    return (series[SERIES_KEY].astype(str).drop_duplicates()
            .merge(items.astype(str), on=ITEM)
            .merge(stores.astype(str), on=STORE))


def check_hierarchy(hierarchy: pd.DataFrame) -> pd.DataFrame:
    """Validated copy of the hierarchy: str columns, one row per series, sorted by (item, store).

    Sorting makes the bottom order equal to the ``item_store`` level's order, so that
    level is the identity and never needs a copy of the bottom matrix.
    """
    missing = [c for c in HIERARCHY_COLUMNS if c not in hierarchy.columns]
    if missing:
        raise ValueError(f"hierarchy lacks columns {missing}; it needs {HIERARCHY_COLUMNS}")
    h = hierarchy[HIERARCHY_COLUMNS]
    if h.isna().any().any():
        bad = h.columns[h.isna().any()].tolist()
        raise ValueError(f"hierarchy has missing values in {bad}")
    # Plain strings: categorical columns would sort by category order and carry unused
    # categories into group-bys; strings make every key comparable with any input.
    h = pd.DataFrame({c: h[c].astype(str).to_numpy() for c in HIERARCHY_COLUMNS})
    dup = h.duplicated(SERIES_KEY)
    if dup.any():
        first = h.loc[dup, SERIES_KEY].iloc[0].tolist()
        raise ValueError(f"hierarchy has {int(dup.sum())} duplicate (item_id, store_id) rows, e.g. {first}")
    if h.empty:
        raise ValueError("hierarchy is empty")
    return h.sort_values(SERIES_KEY, ignore_index=True)


def level_series(hierarchy: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The aggregated series of each level.

    In: one row per series with ``item_id, store_id, dept_id, cat_id, state_id``.
    Out: ``{level name: DataFrame}`` in ``LEVELS`` order, each frame holding the
    level's group-by columns (as str), one row per aggregated series, sorted by those
    columns (the ``total`` frame has no columns and one row).
    """
    h = check_hierarchy(hierarchy)
    return {name: level_codes(h, cols)[1] for name, cols in LEVELS}


def level_codes(h: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """(bottom series -> aggregated row, keys of the aggregated rows sorted by ``cols``).

    ``h``: a hierarchy from :func:`check_hierarchy`.
    """
    if not cols:
        return np.zeros(len(h), dtype=np.int64), pd.DataFrame(index=pd.RangeIndex(1))
    grouped = h.groupby(cols, sort=True)
    keys = grouped.size().index.to_frame(index=False)[cols]
    return grouped.ngroup().to_numpy(dtype=np.int64), keys


def _indicator(rows: np.ndarray, n_rows: int) -> sparse.csr_matrix:
    """Sparse 0/1 matrix S (n_rows x len(rows)) with S[rows[j], j] = 1: ``S @ X`` sums rows of X."""
    n = len(rows)
    return sparse.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(n_rows, n))


def aggregation_plan(levels: Sequence[Any], n_bottom: int) -> list[tuple[str, str | None, Any]]:
    """Order and sources for summing the bottom up every level: ``[(level, source, op)]``.

    ``levels``: objects with ``name``, ``codes`` (bottom series -> aggregated row)
    and ``n_series``. Each level is summed from the smallest already-planned level
    whose groups nest in it (codes constant within each source group), else from the
    bottom (``source`` None); ``op`` is a sparse indicator, or None when the level
    *is* the bottom (identity). Coarse levels are thus summed from fine aggregates,
    so a bottom matrix is read only about twice.
    """
    plan: list[tuple[str, str | None, Any]] = []
    done: list[Any] = []
    for level in sorted(levels, key=lambda lv: -lv.n_series):
        if level.n_series == n_bottom and np.array_equal(level.codes, np.arange(n_bottom)):
            plan.append((level.name, None, None))
            done.append(level)
            continue
        source, rows = None, level.codes
        for cand in sorted(done, key=lambda lv: lv.n_series):
            mapping = np.zeros(cand.n_series, dtype=np.int64)
            mapping[cand.codes] = level.codes
            if np.array_equal(mapping[cand.codes], level.codes):
                source, rows = cand.name, mapping
                break
        plan.append((level.name, source, _indicator(rows, level.n_series)))
        done.append(level)
    return plan


def sum_up(bottom: np.ndarray, plan: list[tuple[str, str | None, Any]]) -> dict[str, np.ndarray]:
    """Sum a (series x days) matrix up every level of an :func:`aggregation_plan`, in plan order.

    ``{level: (aggregated series x days) array}``; the bottom level is ``bottom`` itself.
    """
    out: dict[str, np.ndarray] = {}
    for name, source, op in plan:
        x = bottom if source is None else out[source]
        out[name] = x if op is None else np.asarray(op @ x)
    return out
