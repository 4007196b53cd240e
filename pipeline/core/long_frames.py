"""Long frames of units (one row per series and day) read as arrays and matched row for row.

All frames scored are *long*: columns ``item_id, store_id, date, units``
(``date`` a real calendar day). Series are positions in a list of series
(:class:`pipeline.core.series.SeriesIndexer`), days whole day numbers, so the
metrics work on arrays, never on strings.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.days import day_numbers
from pipeline.core.series import SERIES_KEY, SeriesIndexer

DATE, UNITS = "date", "units"
LONG_COLUMNS = [*SERIES_KEY, DATE, UNITS]


def read_long(frame: pd.DataFrame, what: str, indexer: SeriesIndexer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series position, day number, units) arrays of a long frame, validated.

    Raises ``ValueError`` on missing columns, NaN/infinite/negative units, or series
    the hierarchy does not know.
    """
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it needs {LONG_COLUMNS}")
    col = frame[UNITS]
    n_na = int(col.isna().sum())
    if n_na:
        raise ValueError(f"{what} has {n_na} NaN units")
    # Plain numpy numbers are used as they are (no float copy of a large int16 column);
    # anything else (nullable, object) is converted.
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iuf":
        units = col.to_numpy()
    else:
        units = pd.to_numeric(col).to_numpy(dtype=np.float64)
    if units.dtype.kind == "f" and not np.isfinite(units).all():
        raise ValueError(f"{what} has {int((~np.isfinite(units)).sum())} infinite units")
    if units.dtype.kind != "u" and (units < 0).any():
        raise ValueError(f"{what} has {int((units < 0).sum())} negative units")
    if frame[SERIES_KEY].isna().any().any():
        raise ValueError(f"{what} has missing item_id/store_id")
    series = indexer.codes(frame)
    unknown = series < 0
    if unknown.any():
        example = frame.loc[frame.index[np.flatnonzero(unknown)[0]], SERIES_KEY].tolist()
        raise ValueError(
            f"{what} has {int(unknown.sum())} rows of series not in the hierarchy, e.g. {example}"
        )
    return series, day_numbers(frame[DATE], what), units


def align(
    forecast: pd.DataFrame, actuals: pd.DataFrame, indexer: SeriesIndexer
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forecast and actuals matched row for row.

    Out: (series position, day index, forecast units, actual units, sorted unique day
    numbers), one entry per (series, date) pair, sorted by series then day. Raises
    ``ValueError`` on duplicates or when the two frames do not cover the same pairs.
    """
    fs, fd, fu = read_long(forecast, "forecast", indexer)
    as_, ad, au = read_long(actuals, "actuals", indexer)
    days = np.unique(np.concatenate([fd, ad]))
    nd = len(days)
    fk = fs * nd + np.searchsorted(days, fd)
    ak = as_ * nd + np.searchsorted(days, ad)
    f_order, a_order = np.argsort(fk, kind="stable"), np.argsort(ak, kind="stable")
    fk, ak = fk[f_order], ak[a_order]

    for what, k in (("forecast", fk), ("actuals", ak)):
        dup = k[1:] == k[:-1]
        if dup.any():
            raise ValueError(f"{what} has {int(dup.sum())} duplicate (item_id, store_id, date) rows")
    if len(fk) != len(ak) or not np.array_equal(fk, ak):
        only_f = np.setdiff1d(fk, ak, assume_unique=True)
        only_a = np.setdiff1d(ak, fk, assume_unique=True)
        examples = []
        for what, keys in (("forecast", only_f), ("actuals", only_a)):
            if len(keys):
                examples.append(f"{len(keys)} only in {what}, e.g. {pair_text(indexer, keys[0], days)}")
        raise ValueError("forecast and actuals do not cover the same series x days: " + "; ".join(examples))
    return fk // nd, fk % nd, fu[f_order], au[a_order], days


def pair_text(indexer: SeriesIndexer, key: int, days: np.ndarray) -> str:
    """``(item, store, day)`` of a flat ``series * len(days) + day index`` key, for error messages."""
    nd = len(days)
    pos = int(key // nd)
    item, store = np.argwhere(indexer.table == pos)[0]
    return f"({indexer.items[item]}, {indexer.stores[store]}, {np.datetime64(int(days[key % nd]), 'D')})"
