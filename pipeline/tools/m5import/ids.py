"""The wide sales file's id columns (items and stores), read and checked."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.data import db
from pipeline.tools.m5import.layout import CSV_OPTIONS, SALES_ID_COLUMNS, check_lengths, check_shapes, raise_first, shown


def read_sales_ids(path: Path) -> pd.DataFrame:
    """Read and check the id columns of the wide sales file (checked by :func:`scan_csv`; the day columns are skipped).

    Returns one row per line (``line`` = its line number) with the id columns. Checks: no empty
    id, item_id and store_id of M5's shape, each id within its column's length, ``id`` =
    ``{item_id}_{store_id}_validation|evaluation``, each series once, an item's dept_id/cat_id and
    a store's state_id the same on every line and consistent with the ids (M5's ids embed them:
    item HOBBIES_1_001 is in dept HOBBIES_1, category HOBBIES; store CA_1 is in state CA).
    """
    ids = pd.read_csv(path, usecols=list(SALES_ID_COLUMNS), dtype=str, **CSV_OPTIONS)
    if ids.empty:
        raise DataError(f"{path.name}: the file has a header but no series")
    ids = ids[list(SALES_ID_COLUMNS)]
    first = 2
    for col in SALES_ID_COLUMNS:
        raise_first(path, ids[col].isna().to_numpy(), first, col, lambda i: "missing value")
    ids = ids.astype(object)
    check_shapes(path, ids, first)
    check_lengths(path, ids[["item_id", "dept_id", "cat_id"]], first, db.items)
    check_lengths(path, ids[["store_id", "state_id"]], first, db.stores)
    kaggle = ids["item_id"] + "_" + ids["store_id"] + "_"
    raise_first(path, ~((ids["id"] == kaggle + "evaluation") | (ids["id"] == kaggle + "validation")).to_numpy(), first, "id",
                lambda i: f"id must be {kaggle.iloc[i]}evaluation or ...validation, got {shown(ids['id'].iloc[i])}")
    # M5's ids embed their parent: store CA_1 -> state CA, item HOBBIES_1_001 -> dept HOBBIES_1 -> cat HOBBIES
    checks = (("state_id", "store_id", "store"), ("dept_id", "item_id", "item"), ("cat_id", "dept_id", "department"))
    for part, whole, noun in checks:
        ok = (ids[whole].str.rsplit("_", n=1).str[0] == ids[part]).to_numpy(dtype=bool)
        raise_first(path, ~ok, first, part, lambda i, part=part, whole=whole, noun=noun:
                    f"{part} {shown(ids[part].iloc[i])} does not match {noun} {ids[whole].iloc[i]!r}")
    for key, attrs in (("item_id", ("dept_id", "cat_id")), ("store_id", ("state_id",))):
        for attr in attrs:
            first_seen = ids.groupby(key, sort=False)[attr].transform("first")
            raise_first(path, (ids[attr] != first_seen).to_numpy(), first, attr, lambda i, key=key, attr=attr, fs=first_seen:
                        f"{key} {ids[key].iloc[i]} has {attr} {fs.iloc[i]!r} on an earlier line, here {shown(ids[attr].iloc[i])}")
    dup = ids.duplicated(["item_id", "store_id"]).to_numpy()
    raise_first(path, dup, first, "id", lambda i: f"series {ids['id'].iloc[i]} appears twice (first on line "
                f"{first + int(np.flatnonzero(((ids['item_id'] == ids['item_id'].iloc[i]) & (ids['store_id'] == ids['store_id'].iloc[i])).to_numpy())[0])})")
    ids.insert(0, "line", np.arange(first, first + len(ids)))
    return ids

