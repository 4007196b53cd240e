"""Tests of pipeline.core.hierarchy: the 12 M5 levels, the hierarchy of series, sums up the levels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.hierarchy import LEVELS, aggregation_plan, build_hierarchy, check_hierarchy, level_codes, level_series, sum_up
from tests.wrmsse_cases import HIER_COLS, M5_LEVEL_COUNTS, need_m5, small_hierarchy


def test_levels_are_the_twelve_m5_levels_in_order():
    assert [name for name, _ in LEVELS] == [
        "total", "state", "store", "category", "department", "state_category", "state_department",
        "store_category", "store_department", "item", "item_state", "item_store",
    ]
    assert [cols for _, cols in LEVELS] == [
        [], ["state_id"], ["store_id"], ["cat_id"], ["dept_id"], ["state_id", "cat_id"], ["state_id", "dept_id"],
        ["store_id", "cat_id"], ["store_id", "dept_id"], ["item_id"], ["item_id", "state_id"], ["item_id", "store_id"],
    ]


def test_real_hierarchy_has_42840_series():
    wide = pd.read_parquet(need_m5() / "sales_test_validation.parquet", columns=HIER_COLS)
    counts = [len(keys) for keys in level_series(wide).values()]
    assert counts == M5_LEVEL_COUNTS
    assert sum(counts) == 42_840



def test_build_hierarchy_from_items_and_stores():
    series = pd.DataFrame({"item_id": pd.Categorical(["B", "A", "B", "Z"]), "store_id": ["S1", "S1", "S1", "S1"],
                           "units": [1, 2, 3, 4]})
    items = pd.DataFrame({"item_id": ["A", "B"], "dept_id": ["X_1", "Y_1"], "cat_id": ["X", "Y"]})
    stores = pd.DataFrame({"store_id": ["S1", "S2"], "state_id": ["P", "Q"]})
    h = build_hierarchy(series, items, stores)
    # one row per distinct series, first-appearance order; Z (no item row) is left out
    assert h[HIER_COLS].to_dict("list") == {"item_id": ["B", "A"], "store_id": ["S1", "S1"], "dept_id": ["Y_1", "X_1"],
                                            "cat_id": ["Y", "X"], "state_id": ["P", "P"]}
    assert check_hierarchy(h)["item_id"].tolist() == ["A", "B"]  # sorted by item, store


def test_check_hierarchy_errors():
    h = small_hierarchy()
    with pytest.raises(ValueError, match="lacks columns"):
        check_hierarchy(h.drop(columns="state_id"))
    with pytest.raises(ValueError, match="duplicate"):
        check_hierarchy(pd.concat([h, h.iloc[:1]]))
    with pytest.raises(ValueError, match="empty"):
        check_hierarchy(h.iloc[:0])
    with pytest.raises(ValueError, match="missing values"):
        check_hierarchy(h.assign(cat_id=[None, "X", "Y", "Y"]))


class _Level:
    def __init__(self, name, codes, n_series):
        self.name, self.codes, self.n_series = name, codes, n_series


def test_sums_up_the_plan_equal_group_by_sums():
    """Every level summed through the plan (coarse levels from finer sums) equals a direct group-by."""
    h = check_hierarchy(small_hierarchy())
    levels = []
    for name, cols in LEVELS:
        codes, keys = level_codes(h, cols)
        levels.append(_Level(name, codes, len(keys)))
    plan = aggregation_plan(levels, len(h))
    by_name = {name: (source, op) for name, source, op in plan}
    assert by_name["item_store"] == (None, None)  # the bottom itself
    assert by_name["total"][0] is not None  # summed from an aggregate, not from the bottom
    bottom = np.arange(len(h) * 3, dtype=float).reshape(len(h), 3) ** 2
    sums = sum_up(bottom, plan)
    frame = pd.concat([h, pd.DataFrame(bottom)], axis=1).assign(_all=0)
    for name, cols in LEVELS:
        expected = frame.groupby(cols or ["_all"])[[0, 1, 2]].sum().to_numpy()
        np.testing.assert_array_equal(sums[name], expected, err_msg=name)
