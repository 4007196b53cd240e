"""How the checks spell values in their messages and reports: numbers, days, rows as ``col=value``, JSON values."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

NULL_ID = "<null>"  # how a missing item_id / store_id is shown
NAT_DAY = np.iinfo(np.int32).min  # the epoch day of a missing date (before every real day)


def num(x: float, digits: int = 2) -> str:
    """12,345 for whole numbers, else up to ``digits`` decimals."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return str(x)
    if float(x).is_integer():
        return f"{int(x):,}"
    text = f"{x:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def day(d: int) -> str:
    """An epoch day as ``YYYY-MM-DD`` (``NaT`` for a missing date)."""
    return np.datetime64(int(d), "D").astype(object).isoformat() if d > NAT_DAY else "NaT"


def json_value(v):
    """A cell as a JSON value: dates as ISO text, numpy scalars as Python ones, NaN and infinities as None."""
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        ts = pd.Timestamp(v)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _isnull(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def records(frame: pd.DataFrame | None) -> list[dict]:
    """The rows of ``frame`` as dicts of JSON values (missing cells None)."""
    if frame is None or not len(frame):
        return []
    return [{str(k): (None if _isnull(v) else json_value(v)) for k, v in rec.items()}
            for rec in frame.astype(object).to_dict(orient="records")]


def describe(rows: pd.DataFrame, n: int = 3) -> str:
    """The first ``n`` rows as ``col=value ...`` separated by '; ' (missing cells left out)."""
    parts = [" ".join(f"{k}={num(v) if isinstance(v, float) else v}" for k, v in rec.items() if v is not None)
             for rec in records(rows.head(n))]
    return "; ".join(parts) + ("" if len(rows) <= n else "; ...")
