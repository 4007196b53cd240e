"""What the tests of the data-quality checks share: the real snapshot of the tiny world, cut to any run date.

One real snapshot of the tiny world (2016-05-22) is extracted per test module (the ``base`` fixture,
imported by each); the snapshots of the other run dates are its rows dated up to that date (and
prices up to that week), which is what the extract of that date holds up to the few later
corrections. Anomalies are injected into copies of those frames, written with the snapshot's file
layout and dtypes, and checked through :func:`pipeline.stages.quality.run_checks`.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.data import db, storage
from pipeline.data.snapshot import SNAPSHOT_FILES, read_snapshot
from pipeline.stages import extract, quality
from tests.conftest import RUN_DATE

D = RUN_DATE.isoformat()  # 2016-05-22, a Sunday; its Walmart week is 11617
PREV = RUN_DATE - dt.timedelta(days=1)
TWO_WEEKS_BACK = (RUN_DATE - dt.timedelta(days=14)).isoformat()  # 2016-05-08, a Sunday


@pytest.fixture(scope="module")
def base(tiny_world_file, tmp_path_factory):
    """The frames of the real snapshot of RUN_DATE (read-only: tests copy them)."""
    engine = db.engine_for(f"sqlite:///{tiny_world_file}")
    out = tmp_path_factory.mktemp("quality") / D
    with storage.atomic_dir(out) as tmp:
        extract.extract_snapshot(engine, RUN_DATE, tmp)
    engine.dispose()
    return {name: read_snapshot(out, name) for name in SNAPSHOT_FILES}, out


def as_of(frames: dict, date: dt.date) -> dict:
    """Copies of ``frames`` cut to what the snapshot of ``date`` holds."""
    cal = frames["calendar"]
    week = cal.loc[cal["date"] == pd.Timestamp(date), "wm_yr_wk"].iloc[0]
    out = {k: v.copy() for k, v in frames.items()}
    out["sales"] = out["sales"][out["sales"]["date"] <= pd.Timestamp(date)].reset_index(drop=True)
    out["prices"] = out["prices"][out["prices"]["wm_yr_wk"] <= week].reset_index(drop=True)
    return out


def write(folder, frames: dict, date: dt.date | None = None):
    folder.mkdir(parents=True)
    for name, frame in frames.items():
        storage.write_parquet(frame, folder / f"{name}.parquet")
    if date is not None:
        storage.write_json(folder / "manifest.json", {"date": date.isoformat()})
    return folder


def check(tmp_path, frames, date=RUN_DATE, previous=None, **kwargs) -> quality.QualityReport:
    folder = write(tmp_path / f"snap-{len(list(tmp_path.iterdir()))}", frames, date)
    prev = None
    if previous is not None:
        prev = write(tmp_path / f"prev-{len(list(tmp_path.iterdir()))}", previous, date - dt.timedelta(days=1))
    return quality.run_checks(folder, date, previous_snapshot_dir=prev, **kwargs)


def failing(report) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


def expect_only(report, name, *phrases) -> quality.CheckResult:
    assert failing(report) == {name}, [c.message for c in report.checks if not c.passed]
    result = report.check(name)
    assert result.message.startswith(f"{name}: ") and result.count >= 1 and len(result.offending) >= 1
    for phrase in phrases:
        assert phrase in result.message, result.message
    assert not report.passed and [c.name for c in report.failed] == [name]
    return result


def row_of(sales, store, item, date):
    m = (sales["store_id"] == store) & (sales["item_id"] == item) & (sales["date"] == pd.Timestamp(date))
    assert m.sum() == 1
    return np.flatnonzero(m.to_numpy())[0]


def add_category(frame, column, value):
    frame[column] = frame[column].cat.add_categories([value])


def regular_series(sales) -> pd.Series:
    """Days with >= 1 unit in the 28 days before the run date, per series, most first."""
    window = sales[(sales["date"] < pd.Timestamp(RUN_DATE)) & (sales["date"] >= pd.Timestamp(RUN_DATE) - pd.Timedelta(days=28))]
    return (window["units"] >= 1).groupby([window["store_id"], window["item_id"]], observed=True).sum().sort_values(
        ascending=False, kind="stable")


def series_rows(sales, store, item, first, last, units=1) -> pd.DataFrame:
    days = pd.date_range(first, last)
    return pd.DataFrame({
        "item_id": pd.Categorical([item] * len(days), categories=sales["item_id"].cat.categories),
        "store_id": pd.Categorical([store] * len(days), categories=sales["store_id"].cat.categories),
        "date": days.astype("datetime64[ns]"), "units": np.full(len(days), units, dtype=np.int16),
    })


def with_master(frames, item=None, store=None):
    if item is not None:
        frames["items"] = pd.concat([frames["items"], pd.DataFrame({"item_id": [item], "dept_id": ["FOODS_1"],
                                                                    "cat_id": ["FOODS"]})], ignore_index=True)
        add_category(frames["sales"], "item_id", item)
    if store is not None:
        frames["stores"] = pd.concat([frames["stores"], pd.DataFrame({"store_id": [store], "state_id": ["CA"]})],
                                     ignore_index=True)
        add_category(frames["sales"], "store_id", store)
    return frames


def set_price(prices, store, item, week, factor):
    key = (prices["store_id"] == store) & (prices["item_id"] == item)
    before = prices.loc[key & (prices["wm_yr_wk"] < week)].sort_values("wm_yr_wk")["sell_price"].iloc[-1]
    prices.loc[key & (prices["wm_yr_wk"] == week), "sell_price"] = np.float32(round(before * factor, 2))
    return before


def snapshots(base) -> tuple[dict, dict]:
    """Copies of the frames of the snapshots of RUN_DATE and of the day before."""
    return as_of(base[0], RUN_DATE), as_of(base[0], PREV)


def set_units(sales, store, item, date, units):
    """Set one row's units (the column keeps its dtype, whatever integer type it is); returns the old units."""
    i = row_of(sales, store, item, date)
    old = int(sales.at[i, "units"])
    sales["units"] = sales["units"].to_numpy().copy()
    sales.loc[i, "units"] = np.asarray(units).astype(sales["units"].dtype)
    return old


def busiest_series(sales) -> tuple[str, str]:
    (store, item), _ = next(iter(regular_series(sales).items()))
    return store, item


def quiet_series(sales, date, most=2) -> tuple[str, str]:
    """A series that sold at most ``most`` units a day in the 56 days up to ``date`` (and some unit)."""
    w = sales[(sales["date"] <= pd.Timestamp(date)) & (sales["date"] > pd.Timestamp(date) - pd.Timedelta(days=56))]
    g = w.groupby(["store_id", "item_id"], observed=True)["units"].agg(["max", "sum"])
    (store, item) = g[(g["max"] <= most) & (g["sum"] > 0)].index[0]
    return store, item


def history(report) -> quality.CheckResult:
    return report.check("history_change")


@pytest.fixture
def low_day(base, tmp_path):
    """Snapshot folders of 2016-05-21 and 2016-05-22, each with its run date's sales cut to 5 %."""
    folders = {}
    for date in (RUN_DATE - dt.timedelta(days=1), RUN_DATE):
        f = as_of(base[0], date)
        on_day = f["sales"]["date"] == pd.Timestamp(date)
        f["sales"].loc[on_day, "units"] = (f["sales"].loc[on_day, "units"] // 20).astype(np.int16)
        folders[date] = write(tmp_path / f"low-{date}", f, date)
    return folders
