"""WRMSSE weights and scales of a set of series as of an origin, from a snapshot.

Both the evaluation of a forecast (``pipeline.stages.evaluate``) and the
promotion gate (``pipeline.stages.promote``) score forecasts by the M5 WRMSSE;
this is the one place that reads a snapshot's sales, prices, calendar, items
and stores for it, so both score with the same weights and scales.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from pipeline.core.days import as_day
from pipeline.core.hierarchy import build_hierarchy
from pipeline.core.series import SeriesIndexer
from pipeline.core.wrmsse_setup import WrmsseSetup
from pipeline.core.wrmsse_weights import wrmsse_weights_scales
from pipeline.data.snapshot import read_snapshot


class SnapshotScoring(NamedTuple):
    """``setup``: weights and scales of the series; ``sales``: the snapshot's sales rows of
    those series up to the origin (as read: categorical ids stay categorical)."""

    setup: WrmsseSetup
    sales: pd.DataFrame


def snapshot_scoring(snapshot_dir: Path, series: pd.DataFrame, origin: Any) -> SnapshotScoring:
    """The WRMSSE setup of the series of ``series`` (its ``item_id, store_id``) as of ``origin``.

    The hierarchy comes from the snapshot's items and stores, the scales from its
    sales up to ``origin``, the weights from the dollar sales of the 28 days up to
    ``origin`` (its prices and calendar); see
    :func:`pipeline.core.wrmsse_weights.wrmsse_weights_scales`. Sales of other
    series are left out. Raises ``ValueError`` as that function does (e.g. no
    series of ``series`` in the items and stores: the hierarchy is empty).
    """
    day = as_day(origin, "origin")
    hierarchy = build_hierarchy(series, read_snapshot(snapshot_dir, "items"), read_snapshot(snapshot_dir, "stores"))
    sales = read_snapshot(snapshot_dir, "sales")
    # the series' own rows, matched on their codes: ids of millions of rows never become strings
    keep = (SeriesIndexer(hierarchy).codes(sales) >= 0) & (sales["date"] <= day).to_numpy()
    sales = sales[keep]
    setup = wrmsse_weights_scales(sales, read_snapshot(snapshot_dir, "prices"),
                                  read_snapshot(snapshot_dir, "calendar", columns=["date", "wm_yr_wk"]),
                                  hierarchy, day)
    return SnapshotScoring(setup, sales)
