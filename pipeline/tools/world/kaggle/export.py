"""``export_kaggle``: a generated world written as the Kaggle M5 files (calendar, prices, wide sales), atomically."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

from pipeline.data import storage
from pipeline.tools.m5import.layout import CALENDAR_COLUMNS, CALENDAR_FILE, PRICE_COLUMNS, PRICES_FILE, SALES_ID_COLUMNS
from pipeline.tools.world.calendar import build_calendar
from pipeline.tools.world.demand import StoreWorld
from pipeline.tools.world.dynamics import Dynamics, resolve
from pipeline.tools.world.effects import draw_effects
from pipeline.tools.world.frame import Frame, make_frame
from pipeline.tools.world.generate import check_scale, draw_stores
from pipeline.tools.world.scales import CALENDAR_END, CALENDAR_START, SCALES, STORES

VALIDATION_DAYS = 1913  # d_1..d_1913: sales_train_validation.csv (through 2016-04-24)
EVALUATION_DAYS = 1941  # d_1..d_1941: sales_train_evaluation.csv (through 2016-05-22)
# what Kaggle published: values as they stood at the end of d_1941 (later corrections are not in the files)
AS_OF = np.datetime64(CALENDAR_START + dt.timedelta(days=EVALUATION_DAYS), "s")
# the files the importer reads (train), then the truth after d_1941 (M5's later release), then our summary
TRAIN_FILES = {"sales_train_validation.csv": ("validation", 1, VALIDATION_DAYS),
               "sales_train_evaluation.csv": ("evaluation", 1, EVALUATION_DAYS)}
TEST_FILE = "sales_test_evaluation.csv"
SUMMARY_FILE = "world.json"
CATEGORY_ORDER = ("HOBBIES", "HOUSEHOLD", "FOODS")  # M5's line order within a store
_CSV = pcsv.WriteOptions(include_header=False, quoting_style="none")


def m5_item_order(frame: Frame) -> np.ndarray:
    """Item rows of ``frame`` in M5's order: category HOBBIES, HOUSEHOLD, FOODS, then item_id."""
    items = frame.items
    return np.lexsort((items["item_id"].to_numpy(), items["cat_id"].map(CATEGORY_ORDER.index).to_numpy()))


def final_units(world: StoreWorld, frame: Frame, as_of: np.datetime64) -> np.ndarray:
    """(n, d) units of one store as they stood just before ``as_of``: each original row, or its latest correction before then."""
    units = world.units.astype(np.int32)
    corr = world.corrections[world.corrections["recorded_at"].to_numpy().astype("datetime64[s]") < as_of]
    corr = corr.sort_values("recorded_at", kind="stable").drop_duplicates(["item", "day"], keep="last")
    units[corr["item"].to_numpy(), corr["day"].to_numpy()] = corr["units"].to_numpy()
    return units


def _wide(frame: Frame, order: np.ndarray, store: str, units: np.ndarray, suffix: str, first: int, last: int) -> pa.Table:
    """One store's lines of a wide sales file: ids, then d_first..d_last (0 before the world's first day)."""
    items = frame.items.iloc[order]
    offset = (np.datetime64(frame.days[0], "D") - np.datetime64(CALENDAR_START, "D")).astype(np.int64)  # d_(offset+1) = days[0]
    cols = {"id": (items["item_id"] + f"_{store}_{suffix}").to_numpy(dtype=object), "item_id": items["item_id"].to_numpy(),
            "dept_id": items["dept_id"].to_numpy(), "cat_id": items["cat_id"].to_numpy(),
            "store_id": np.full(len(items), store, dtype=object), "state_id": np.full(len(items), store[:2], dtype=object)}
    arrays = [pa.array(cols[c], pa.string()) for c in SALES_ID_COLUMNS]
    zeros = pa.array(np.zeros(len(items), dtype=np.int32))
    for k in range(first, last + 1):
        j = k - 1 - offset
        arrays.append(pa.array(units[order, j]) if j >= 0 else zeros)
    return pa.Table.from_arrays(arrays, names=[*SALES_ID_COLUMNS, *(f"d_{k}" for k in range(first, last + 1))])


def _calendar_table(calendar: pd.DataFrame) -> pa.Table:
    out = calendar.assign(date=pd.DatetimeIndex(calendar["date"]).strftime("%Y-%m-%d"),
                          d=[f"d_{k}" for k in range(1, len(calendar) + 1)])
    return pa.Table.from_pandas(out[list(CALENDAR_COLUMNS)], preserve_index=False)


def _prices_table(frame: Frame, order: np.ndarray, store: str, world: StoreWorld) -> pa.Table:
    """One store's sell_prices lines: item (M5 order), then week, from the item's first priced week on."""
    n, w = world.price.shape
    item = np.repeat(order, w)
    week = np.tile(np.arange(w), n)
    keep = week >= world.first_week[item]
    ids = frame.items["item_id"].to_numpy(dtype=object)
    return pa.table({"store_id": pa.array(np.full(keep.sum(), store, dtype=object), pa.string()),
                     "item_id": pa.array(ids[item[keep]], pa.string()),
                     "wm_yr_wk": pa.array(frame.wm_yr_wk[week[keep]].astype(np.int64)),
                     "sell_price": pa.array(world.price[item[keep], week[keep]])})


def _write(path: Path, header: list[str], tables) -> None:
    """A CSV file: the header as M5 writes it (no quotes), then the tables' lines (fields never quoted)."""
    with open(path, "wb") as fh:
        fh.write((",".join(header) + "\n").encode())
        for table in tables:
            pcsv.write_csv(table, fh, _CSV)


def export_kaggle(out_dir: Path | str, scale: str = "demo", seed: int = 42, dynamics: str | Dynamics = "base",
                  progress: Callable[[float, str], None] | None = None) -> dict:
    """Write the world of (``scale``, ``seed``, ``dynamics``) as the Kaggle M5 files into the new folder ``out_dir``.

    The world is the one :func:`pipeline.tools.world.generate_world` writes for the same
    arguments (drawn again here, not read from a database). Files (see the package docstring):
    calendar.csv, sell_prices.csv, sales_train_validation.csv, sales_train_evaluation.csv,
    sales_test_evaluation.csv and world.json. ``out_dir`` must not exist or be empty
    (ValueError): the folder appears whole, or not at all. Returns the summary written to world.json.
    """
    check_scale(scale)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"{out_dir} already exists and is not an empty folder; the Kaggle files go into a new folder")
    report = progress or (lambda fraction, message: None)
    sc = SCALES[scale]
    calendar = build_calendar()
    frame = make_frame(sc, calendar)
    effects = draw_effects(frame, seed, resolve(dynamics))
    worlds = draw_stores(frame, seed, effects, lambda done, store: report(0.5 * done / len(STORES), f"generated store {store}"))
    order = m5_item_order(frame)
    with storage.atomic_dir(out_dir) as tmp:
        _write(tmp / CALENDAR_FILE, list(CALENDAR_COLUMNS), [_calendar_table(calendar)])
        _write(tmp / PRICES_FILE, list(PRICE_COLUMNS), (_prices_table(frame, order, s, w) for s, w in zip(STORES, worlds)))
        report(0.6, "calendar.csv and sell_prices.csv written")
        train = [final_units(w, frame, AS_OF) for w in worlds]
        for name, (suffix, first, last) in TRAIN_FILES.items():
            _write(tmp / name, [*SALES_ID_COLUMNS, *(f"d_{k}" for k in range(first, last + 1))],
                   (_wide(frame, order, s, u, suffix, first, last) for s, u in zip(STORES, train)))
            report(0.6 + 0.15 * (1 + list(TRAIN_FILES).index(name)), f"{name} written")
        del train
        n_days = (CALENDAR_END - CALENDAR_START).days + 1
        end = np.datetime64(CALENDAR_END + dt.timedelta(days=1), "s")
        _write(tmp / TEST_FILE, [*SALES_ID_COLUMNS, *(f"d_{k}" for k in range(EVALUATION_DAYS + 1, n_days + 1))],
               (_wide(frame, order, s, final_units(w, frame, end), "evaluation", EVALUATION_DAYS + 1, n_days)
                for s, w in zip(STORES, worlds)))
        summary = {"scale": scale, "seed": seed, "dynamics": effects.summary, "series": sc.n_series,
                   "items": len(frame.items), "stores": len(STORES), "first_date": str(sc.history_start),
                   "zero_days_before_first_date": int((sc.history_start - CALENDAR_START).days),
                   "as_of": str(AS_OF), "files": sorted([CALENDAR_FILE, PRICES_FILE, *TRAIN_FILES, TEST_FILE])}
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    report(1.0, f"Kaggle files written to {out_dir}")
    return summary
