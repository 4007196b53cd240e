"""Shared data of the metric tests: the hand-made hierarchy and sales, a pandas reference WRMSSE,
and the real M5 pieces (read from /work/shared/data/m5, see its SOURCE.md, found next to
the repo (``<repo>/../shared/data/m5``) or at ``$M5_SHARED_DIR``; tests that need them skip
when it is absent). Not a test module: the test modules import from it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.hierarchy import LEVELS
from pipeline.core.wrmsse_setup import WrmsseSetup
from pipeline.core.wrmsse_weights import wrmsse_weights_scales

M5_DIR = Path(os.environ.get("M5_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "m5")
HIER_COLS = ["item_id", "store_id", "dept_id", "cat_id", "state_id"]
# Series per level for the M5 hierarchy (Competitors' Guide, table 1).
M5_LEVEL_COUNTS = [1, 3, 10, 3, 7, 9, 21, 30, 70, 3049, 9147, 30490]


def need_m5() -> Path:
    if not (M5_DIR / "sales_test_validation.parquet").exists():
        pytest.skip(f"real M5 data not found at {M5_DIR} (set M5_SHARED_DIR to its folder)")
    return M5_DIR


# --------------------------------------------------------------------------- hand-made data
#
# Two items (A in dept X_1 / cat X, B in dept Y_1 / cat Y) x two stores (S1 in state P,
# S2 in state Q), six in-sample days 2016-01-01..06 (origin = 06):
#   A,S1: 0 0 2 1 3 3   (leading zeros; the two zero rows are left out of the frame)
#   A,S2: 1 2 1 2 1 2
#   B,S1: never sold    (no rows at all)
#   B,S2: 4 0 0 4 0 0
# Weeks: days 1-3 = 101, 4-6 = 102, 7-10 = 103. Prices: A,S1 1.0 then 2.0; A,S2 1.0 then
# missing; B,S2 0.5 and 0.5; B,S1 3.0 in week 102 only.

DAYS = pd.date_range("2016-01-01", periods=6)
ORIGIN = pd.Timestamp("2016-01-06")
SMALL_SALES = {
    ("A", "S1"): [0, 0, 2, 1, 3, 3],
    ("A", "S2"): [1, 2, 1, 2, 1, 2],
    ("B", "S2"): [4, 0, 0, 4, 0, 0],
}


def small_hierarchy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["A", "A", "B", "B"],
            "store_id": ["S1", "S2", "S1", "S2"],
            "dept_id": ["X_1", "X_1", "Y_1", "Y_1"],
            "cat_id": ["X", "X", "Y", "Y"],
            "state_id": ["P", "Q", "P", "Q"],
        }
    )


def small_history(drop_leading: bool = True, after_origin: bool = True) -> pd.DataFrame:
    rows = [
        (item, store, day, units)
        for (item, store), values in SMALL_SALES.items()
        for day, units in zip(DAYS, values)
    ]
    frame = pd.DataFrame(rows, columns=["item_id", "store_id", "date", "units"])
    if drop_leading:  # a long table that starts A,S1 at its first sale
        frame = frame[~((frame.item_id == "A") & (frame.store_id == "S1") & (frame.date < DAYS[2]))]
    if after_origin:  # must be ignored: after the origin
        frame = pd.concat(
            [frame, pd.DataFrame({"item_id": ["A"], "store_id": ["S1"], "date": [ORIGIN + pd.Timedelta(days=1)], "units": [100]})]
        )
    return frame.sample(frac=1, random_state=1).reset_index(drop=True)  # order must not matter


def small_calendar() -> pd.DataFrame:
    dates = pd.date_range("2016-01-01", periods=10)
    return pd.DataFrame({"date": dates, "wm_yr_wk": [101] * 3 + [102] * 3 + [103] * 4})


def small_prices() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("S1", "A", 101, 1.0),
            ("S1", "A", 102, 2.0),
            ("S2", "A", 101, 1.0),
            ("S2", "B", 101, 0.5),
            ("S2", "B", 102, 0.5),
            ("S1", "B", 102, 3.0),
            ("S1", "C", 102, 9.0),  # not a series of the hierarchy: ignored
        ],
        columns=["store_id", "item_id", "wm_yr_wk", "sell_price"],
    )


def small_setup(**kw) -> WrmsseSetup:
    return wrmsse_weights_scales(small_history(), small_prices(), small_calendar(), small_hierarchy(), ORIGIN, **kw)


def by_key(setup: WrmsseSetup, level: str, what: str) -> dict:
    """{key tuple: value} of one level's weights or scales."""
    lv = setup.levels[level]
    keys = [tuple(r) for r in lv.keys.itertuples(index=False)] if lv.columns else [()]
    return dict(zip(keys, getattr(lv, what)))


def long_frame(values: dict, start: str = "2016-01-07") -> pd.DataFrame:
    dates = pd.date_range(start, periods=len(next(iter(values.values()))))
    return pd.DataFrame(
        [(i, s, d, u) for (i, s), us in values.items() for d, u in zip(dates, us)],
        columns=["item_id", "store_id", "date", "units"],
    )


SMALL_ACTUALS = {("A", "S1"): [3, 2], ("A", "S2"): [1, 1], ("B", "S1"): [0, 1], ("B", "S2"): [0, 4]}
SMALL_FORECAST = {("A", "S1"): [2, 2], ("A", "S2"): [1, 2], ("B", "S1"): [1, 1], ("B", "S2"): [2, 2]}


def reference_wrmsse(forecast: pd.DataFrame, actuals: pd.DataFrame, setup: WrmsseSetup) -> dict[str, float]:
    """Straightforward pandas version: per level, group-by sums, then weight x RMSSE."""
    frame = actuals.merge(forecast, on=["item_id", "store_id", "date"], suffixes=("_a", "_f")).merge(
        setup.series, on=["item_id", "store_id"]
    )
    frame["_all"] = 0
    out = {}
    for name, cols in LEVELS:
        level = setup.levels[name]
        sums = frame.groupby((cols or ["_all"]) + ["date"])[["units_a", "units_f"]].sum()
        mse = ((sums.units_f - sums.units_a) ** 2).groupby(level=list(range(len(cols or ["_all"])))).mean()
        keys = pd.MultiIndex.from_frame(level.keys) if len(cols) > 1 else (level.keys[cols[0]] if cols else [0])
        mse = mse.reindex(keys).to_numpy()
        valid = level.scales > 0
        out[name] = float(np.sum(level.weights[valid] * np.sqrt(mse[valid] / level.scales[valid])))
    return out


@pytest.fixture(scope="module")
def m5():  # imported by the test modules that use it
    """Real M5 pieces: the 30,490-series test-period truth (d_1914..d_1941) and the calendar."""
    folder = need_m5()
    wide = pd.read_parquet(folder / "sales_test_validation.parquet")
    calendar = pd.read_parquet(folder / "calendar.parquet")
    calendar["date"] = pd.to_datetime(calendar["date"])
    d_cols = [c for c in wide.columns if c.startswith("d_")]
    dates = pd.DatetimeIndex(calendar.set_index("d").loc[d_cols, "date"])
    return {"wide": wide, "calendar": calendar, "d_cols": d_cols, "dates": dates, "folder": folder}


def to_long(wide_ids: pd.DataFrame, matrix: np.ndarray, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """(series x days) matrix, rows in ``wide_ids`` order -> long frame."""
    n, h = matrix.shape
    return pd.DataFrame(
        {
            "item_id": np.repeat(wide_ids["item_id"].to_numpy(), h),
            "store_id": np.repeat(wide_ids["store_id"].to_numpy(), h),
            "date": np.tile(dates.to_numpy(), n),
            "units": matrix.ravel(),
        }
    )
