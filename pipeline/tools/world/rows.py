"""The generated arrays as table rows: sales and sell_prices DataFrames in write order, chunk by chunk."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.tools.world.demand import StoreWorld
from pipeline.tools.world.frame import Frame
from pipeline.tools.world.scales import STORES


def sales_frames(frame: Frame, stores: list[StoreWorld], chunk_days: int):
    """Yield sales DataFrames of up to ``chunk_days`` days each, in (date, store, item, recorded_at) order.

    Days first keeps recorded_at almost monotone (the index on it only appends) and
    the rows of each store ordered by date then item; a correction follows its original.
    """
    n, d = len(frame.items), len(frame.days)
    s = len(stores)
    units = np.stack([w.units for w in stores])  # (stores, items, days) int16
    corr = pd.concat([w.corrections.assign(store=i) for i, w in enumerate(stores)], ignore_index=True)
    corr["key"] = (corr["day"] * s + corr["store"]) * n + corr["item"]
    corr = corr.sort_values("key", ignore_index=True)
    item_ids = frame.items["item_id"].to_numpy()
    for d0 in range(0, d, chunk_days):
        d1 = min(d, d0 + chunk_days)
        block = units[:, :, d0:d1].transpose(2, 0, 1).reshape(-1)
        key = np.arange(block.size)
        store = key // n % s
        item = key % n
        day = d0 + key // (n * s)
        c = corr[(corr["day"] >= d0) & (corr["day"] < d1)]
        pos = (c["key"].to_numpy() - d0 * s * n) + 1  # insert right after the original row
        date = frame.days[day].astype("datetime64[s]")
        recorded = date + np.timedelta64(23 * 3600, "s")

        def ins(a: np.ndarray, v: np.ndarray) -> np.ndarray:
            return np.insert(a, pos, v)

        yield pd.DataFrame(
            {
                "store_id": pd.Categorical.from_codes(ins(store, c["store"].to_numpy()), categories=list(STORES)),
                "item_id": pd.Categorical.from_codes(ins(item, c["item"].to_numpy()), categories=item_ids),
                "date": ins(date, frame.days[c["day"].to_numpy()].astype("datetime64[s]")),
                "units": ins(block.astype(np.int64), c["units"].to_numpy()),
                "recorded_at": ins(recorded, c["recorded_at"].to_numpy().astype("datetime64[s]")),
            }
        )


def price_frames(frame: Frame, stores: list[StoreWorld], chunk_weeks: int):
    """Yield sell_prices DataFrames in (week, store, item) order, each priced week from launch on."""
    n, w, s = len(frame.items), len(frame.week_start), len(stores)
    price = np.stack([x.price for x in stores])  # (stores, items, weeks)
    first = np.stack([x.first_week for x in stores])  # (stores, items)
    item_ids = frame.items["item_id"].to_numpy()
    for w0 in range(0, w, chunk_weeks):
        w1 = min(w, w0 + chunk_weeks)
        wk = np.arange(w0, w1)[:, None, None]
        valid = (wk >= first[None, :, :]).reshape(-1)
        key = np.flatnonzero(valid)
        week = w0 + key // (n * s)
        yield pd.DataFrame(
            {
                "store_id": pd.Categorical.from_codes(key // n % s, categories=list(STORES)),
                "item_id": pd.Categorical.from_codes(key % n, categories=item_ids),
                "wm_yr_wk": frame.wm_yr_wk[week].astype(np.int64),
                "sell_price": price[:, :, w0:w1].transpose(2, 0, 1).reshape(-1)[key],
                "recorded_at": frame.week_start[week].astype("datetime64[s]"),
            }
        )

