"""The published forecast as a blend of the batch and online models' forecasts: by hand, and refused when
the two do not forecast the same (series, day) pairs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.blend import blend, blend_units
from pipeline.core.errors import DataError


def frame(units, items=("A", "A", "B", "B")) -> pd.DataFrame:
    return pd.DataFrame({"as_of": pd.Timestamp("2016-05-22"), "item_id": list(items), "store_id": "CA_1",
                         "date": pd.to_datetime(["2016-05-23", "2016-05-24"] * (len(items) // 2)),
                         "horizon": np.array([1, 2] * (len(items) // 2), dtype=np.int16),
                         "units": np.array(units, dtype=np.float32)})


def test_the_blend_by_hand():
    batch, online = frame([1.0, 2.0, 0.0, 10.0]), frame([3.0, 2.0, 4.0, 0.0])
    out, components = blend(batch, online.iloc[::-1], 0.25)  # rows matched by key, not by position
    assert out["units"].tolist() == [1.5, 2.0, 1.0, 7.5]
    assert out["units"].dtype == np.float32 and list(out.columns) == list(batch.columns)
    assert components["batch"].tolist() == [1.0, 2.0, 0.0, 10.0] and components["online"].tolist() == [3.0, 2.0, 4.0, 0.0]
    # float64 arithmetic rounded once: the service repeats it for one series and gets the same float32
    b, o = np.float32(0.1), np.float32(0.7)
    assert blend_units([b], [o], 0.3)[0] == np.float32(0.7 * np.float64(b) + 0.3 * np.float64(o))


def test_a_missing_or_extra_online_row_is_refused_naming_it():
    batch = frame([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(DataError, match="lacks 1 .*item_id=B store_id=CA_1 date=2016-05-24"):
        blend(batch, frame([1.0, 2.0, 3.0, 4.0]).iloc[:3], 0.3)
    extra = pd.concat([frame([1.0, 2.0, 3.0, 4.0]), frame([1.0, 2.0], items=("C", "C"))])
    with pytest.raises(DataError, match="has 6 rows, the batch forecast 4"):
        blend(batch, extra, 0.3)
    for weight in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="between 0 and 1"):
            blend(batch, frame([1.0, 2.0, 3.0, 4.0]), weight)
