"""Tests of pipeline.core.wrmsse_setup: a setup from weights and scales given per aggregated series."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.core.wrmsse import wrmsse
from pipeline.core.wrmsse_setup import WrmsseSetup
from tests.wrmsse_cases import ORIGIN, SMALL_ACTUALS, SMALL_FORECAST, long_frame, small_hierarchy, small_setup


def test_from_arrays_checks_its_input():
    setup = small_setup()
    weights = {}
    scales = {}
    for name, level in setup.levels.items():
        index = pd.MultiIndex.from_frame(level.keys) if level.columns else pd.Index([0])
        weights[name] = pd.Series(level.weights, index=index)
        scales[name] = pd.Series(level.scales, index=index)
    rebuilt = WrmsseSetup.from_arrays(small_hierarchy(), weights, scales, origin=ORIGIN)
    fc, act = long_frame(SMALL_FORECAST), long_frame(SMALL_ACTUALS)
    assert wrmsse(fc, act, rebuilt).total == wrmsse(fc, act, setup).total
    # A MultiIndex whose level names are the columns is matched by name, in any order.
    swapped = {**weights, "state_category": weights["state_category"].swaplevel()}
    assert wrmsse(fc, act, WrmsseSetup.from_arrays(small_hierarchy(), swapped, scales)).total == wrmsse(fc, act, setup).total
    with pytest.raises(ValueError, match="lacks level"):
        WrmsseSetup.from_arrays(small_hierarchy(), {k: v for k, v in weights.items() if k != "item"}, scales)
    with pytest.raises(ValueError, match="sum to 1"):
        WrmsseSetup.from_arrays(small_hierarchy(), {**weights, "store": weights["store"] * 2}, scales)
    with pytest.raises(ValueError, match="lacks 1 series"):
        WrmsseSetup.from_arrays(small_hierarchy(), {**weights, "item": weights["item"].iloc[:1]}, scales)
