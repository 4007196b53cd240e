"""The published forecast as a weighted average of the batch model's and the online model's forecasts.

The two models err differently: the weekly LightGBM model draws items and calendar effects the
online linear model cannot, and the online model follows a moving level that a model retrained on
a year's window is slow to (docs/online-model.md). Their average was better than either on the
accuracy panel. ``blend`` computes it row by row, in float64, rounded once to float32, so the same
two forecasts always give the same bytes; the service repeats the arithmetic for one series.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError

KEYS = ["item_id", "store_id", "date"]


def blend_units(batch: np.ndarray, online: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * batch + weight * online``, in float64, as float32."""
    return ((1.0 - weight) * np.asarray(batch, dtype=np.float64)
            + weight * np.asarray(online, dtype=np.float64)).astype(np.float32)


def blend(batch: pd.DataFrame, online: pd.DataFrame, weight: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The batch forecast with its units replaced by the blend, and the components (``KEYS``, batch, online).

    Raises ValueError for a weight outside (0, 1), DataError naming a (series, day) of the batch forecast
    the online forecast lacks, or when the online forecast holds rows the batch one does not.
    """
    if not 0.0 < weight < 1.0:
        raise ValueError(f"blend weight must be between 0 and 1 (exclusive), not {weight}")
    ids = {"item_id": str, "store_id": str}
    merged = batch[KEYS].astype(ids).merge(online[KEYS + ["units"]].astype(ids), on=KEYS, how="left",
                                           validate="one_to_one")
    missing = merged["units"].isna()
    if missing.any():
        first = merged[missing].iloc[0]
        raise DataError(f"the online forecast lacks {int(missing.sum())} (series, day) pairs of the batch forecast, "
                        f"e.g. item_id={first['item_id']} store_id={first['store_id']} date={first['date'].date()}")
    if len(online) != len(batch):
        raise DataError(f"the online forecast has {len(online)} rows, the batch forecast {len(batch)}: "
                        "they must forecast the same (series, day) pairs")
    out = batch.copy()
    out["units"] = blend_units(batch["units"].to_numpy(), merged["units"].to_numpy(), weight)
    components = batch[KEYS].copy()
    components["batch"] = batch["units"].to_numpy(dtype=np.float32)
    components["online"] = merged["units"].to_numpy(dtype=np.float32)
    return out, components
