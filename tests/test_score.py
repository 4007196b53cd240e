"""The forecast in the Kaggle M5 submission layout: ids carry the half of the submission Kaggle scores them in."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.stages import score


def forecast_of(origin: dt.date, horizon: int = 28) -> pd.DataFrame:
    days = pd.date_range(pd.Timestamp(origin) + pd.Timedelta(days=1), periods=horizon)
    rows = [(item, store, d, h + 1, float(h) + (0.5 if store == "TX_1" else 0.0))
            for item, store in (("FOODS_1_001", "CA_1"), ("FOODS_1_001", "TX_1")) for h, d in enumerate(days)]
    return pd.DataFrame(rows, columns=["item_id", "store_id", "date", "horizon", "units"])


@pytest.mark.parametrize("origin, suffix", [
    (dt.date(2016, 4, 24), "_validation"),   # d_1914..d_1941: Kaggle's validation half
    (dt.date(2016, 5, 22), "_evaluation"),   # d_1942..d_1969: the evaluation half
    (dt.date(2016, 5, 21), "_evaluation"),   # any other origin: no half of its own
    (dt.date(2016, 4, 23), "_evaluation"),
])
def test_submission_ids_name_the_kaggle_half(origin, suffix):
    sub = score.submission(forecast_of(origin))
    assert sub["id"].tolist() == [f"FOODS_1_001_CA_1{suffix}", f"FOODS_1_001_TX_1{suffix}"]
    assert list(sub.columns) == ["id"] + [f"F{h}" for h in range(1, 29)]
    np.testing.assert_array_equal(sub.iloc[1, 1:].to_numpy(dtype=float), np.arange(28) + 0.5)


def test_a_shorter_horizon_has_fewer_columns():
    sub = score.submission(forecast_of(dt.date(2016, 4, 24), horizon=14))
    assert list(sub.columns) == ["id"] + [f"F{h}" for h in range(1, 15)]
    assert sub["id"].str.endswith("_validation").all()
