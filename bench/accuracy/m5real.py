"""The 10 real M5 series of ../shared/data/m5 as a small folder in the Kaggle layout, for the importer.

What ../shared/data/m5 holds (its SOURCE.md): 10 full-history series (d_1..d_1913), the whole
calendar, the actuals d_1914..d_1941 of every series, and the sell prices of store CA_1 only.
The folder written here holds:

* ``calendar.csv``: the whole calendar;
* ``sales_train_evaluation.csv``: the 10 series, d_1..d_1913 from the sample joined with their
  d_1914..d_1941 from the actuals (ids ``{item}_{store}_evaluation``), so origin 2016-04-24
  (d_1913) has its 28 days of actuals;
* ``sell_prices.csv``: the items' CA_1 prices, for CA_1 and, **borrowed**, for the other four
  stores of the sample (CA_2, CA_3, TX_1, WI_1), whose own prices are not here. Why: without a
  price, a series' dollar sales are 0 and so is its WRMSSE weight: 8 of the 10 series would not
  count at the bottom levels. M5's prices of an item differ little between stores, so CA_1's
  week price stands in for the price features and the weights of those 8 series. The pipeline
  and the mlforecast reference read the same prices.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

M5_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "m5"
FILES = ("calendar.parquet", "sales_train_validation_sample10.parquet", "sales_test_validation.parquet",
         "sell_prices_CA_1.parquet")
IDS = ["item_id", "dept_id", "cat_id", "store_id", "state_id"]
CALENDAR_COLUMNS = ["date", "wm_yr_wk", "weekday", "wday", "month", "year", "d", "event_name_1", "event_type_1",
                    "event_name_2", "event_type_2", "snap_CA", "snap_TX", "snap_WI"]
PRICE_STORE = "CA_1"


def missing_files(m5_dir: Path = M5_DIR) -> list[str]:
    return [str(m5_dir / f) for f in FILES if not (m5_dir / f).is_file()]


def build_folder(out: Path, m5_dir: Path = M5_DIR) -> dict:
    """Write the Kaggle-layout folder ``out`` (new) from ``m5_dir``; returns what it holds."""
    out.mkdir(parents=True)
    calendar = pd.read_parquet(m5_dir / "calendar.parquet")[CALENDAR_COLUMNS]
    calendar.to_csv(out / "calendar.csv", index=False)

    train = pd.read_parquet(m5_dir / "sales_train_validation_sample10.parquet")
    test = pd.read_parquet(m5_dir / "sales_test_validation.parquet")
    for frame in (train, test):
        frame[IDS] = frame[IDS].astype(str)
    later = train[IDS].merge(test, on=IDS, how="left", validate="one_to_one")
    test_days = [c for c in test.columns if c.startswith("d_")]
    if later[test_days].isna().any().any():
        raise ValueError(f"{m5_dir / 'sales_test_validation.parquet'} lacks the actuals of some sample series")
    sales = pd.concat([train.drop(columns=["id"]), later[test_days].astype(train["d_1"].dtype)], axis=1)
    sales.insert(0, "id", sales["item_id"] + "_" + sales["store_id"] + "_evaluation")
    sales.to_csv(out / "sales_train_evaluation.csv", index=False)

    prices = pd.read_parquet(m5_dir / "sell_prices_CA_1.parquet")
    prices[["store_id", "item_id"]] = prices[["store_id", "item_id"]].astype(str)
    prices = prices[(prices["store_id"] == PRICE_STORE) & prices["item_id"].isin(sales["item_id"])]
    cents = np.round(prices["sell_price"].to_numpy(dtype=np.float64) * 100)
    if not np.allclose(cents / 100, prices["sell_price"].to_numpy(dtype=np.float64), atol=1e-4):
        raise ValueError("an M5 sell price is not a whole number of cents")
    prices = prices.assign(sell_price=[f"{c / 100:.2f}" for c in cents])
    # each sample series gets its item's CA_1 price rows, with its own store (see the module docstring)
    rows = sales[["store_id", "item_id"]].merge(prices.drop(columns=["store_id"]), on="item_id")
    rows = rows.sort_values(["store_id", "item_id", "wm_yr_wk"])[["store_id", "item_id", "wm_yr_wk", "sell_price"]]
    rows.to_csv(out / "sell_prices.csv", index=False)
    borrowed = sorted(set(sales["store_id"]) - {PRICE_STORE})
    return {"series": len(sales), "days": len([c for c in sales.columns if c.startswith("d_")]),
            "price_rows": len(rows), "prices_borrowed_from_CA_1_for": borrowed}
