"""Series ids matched through their codes: the same answers for categorical and string columns."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.core.errors import DataError
from pipeline.core.series import SeriesIndexer, series_keys
from tests.test_features import make_sales


def test_series_keys_and_rows_are_the_same_for_categorical_and_string_ids():
    sales = make_sales()
    cat = sales.assign(item_id=pd.Categorical(sales["item_id"], categories=["FOODS_1_002", "FOODS_1_001", "UNSOLD"]),
                       store_id=sales["store_id"].astype("category"))
    keys = series_keys(sales)
    assert keys.to_dict("list") == {"store_id": ["CA_1", "CA_1", "TX_1", "TX_1"],
                                    "item_id": ["FOODS_1_001", "FOODS_1_002", "FOODS_1_001", "FOODS_1_002"]}
    pd.testing.assert_frame_equal(series_keys(cat), keys)
    expected = [keys.index[(keys.store_id == s) & (keys.item_id == i)][0] for s, i in zip(sales.store_id, sales.item_id)]
    assert SeriesIndexer(keys).codes(sales).tolist() == expected
    assert SeriesIndexer(keys).codes(cat).tolist() == expected
    # a series not in the keys, and a key the frame's categories do not hold, map to nothing
    other = pd.DataFrame({"store_id": ["CA_1", "WI_1"], "item_id": ["FOODS_1_002", "FOODS_1_001"]})
    assert SeriesIndexer(other).codes(cat.iloc[[0, 200]]).tolist() == [-1, 0]


def test_a_sales_row_without_a_store_is_refused():
    sales = make_sales()
    sales.loc[3, "store_id"] = None
    with pytest.raises(DataError, match="1 rows have no store_id or item_id"):
        series_keys(sales)
