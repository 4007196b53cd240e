"""The Kaggle M5 files' layout (names, columns, id shapes, limits) and the errors that name file, line and column."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pipeline.core.bounds import MAX_SELL_PRICE  # noqa: F401  (one bound for the importer and the snapshot)
from pipeline.core.errors import DataError

CALENDAR_FILE = "calendar.csv"
PRICES_FILE = "sell_prices.csv"
SALES_FILES = ("sales_train_evaluation.csv", "sales_train_validation.csv")  # first present wins

CALENDAR_COLUMNS = ("date", "wm_yr_wk", "weekday", "wday", "month", "year", "d", "event_name_1",
                    "event_type_1", "event_name_2", "event_type_2", "snap_CA", "snap_TX", "snap_WI")
SALES_ID_COLUMNS = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
PRICE_COLUMNS = ("store_id", "item_id", "wm_yr_wk", "sell_price")

MAX_UNITS = 2_147_483_647  # the largest value of the 32-bit sales.units column (sa.Integer); the
# snapshot takes at most bounds.MAX_UNITS of them (what float32 features and labels hold exactly)

DAY_COLUMN = re.compile(r"d_[1-9][0-9]*")
ITEM_ID = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+")  # category_department_number
STORE_ID = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9]+")  # state_number
# only an empty field is missing: a string like "NA" or "null" must not silently become NaN
CSV_OPTIONS = dict(keep_default_na=False, na_values=[""], skip_blank_lines=False, encoding="utf-8-sig")


def error_at(path: Path, line: int, column: str, message: str) -> DataError:
    return DataError(f"{path.name} line {line}, column {column}: {message}")


def raise_first(path: Path, bad: np.ndarray, first_line: int, column: str, message: Callable[[int], str]) -> None:
    """Raise a DataError for the first True of ``bad`` (row i of the chunk is line ``first_line + i``)."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise error_at(path, first_line + i, column, message(i))


def shown(value) -> str:
    """A raw CSV value as the message shows it (an empty field is '')."""
    return repr("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def units_message(raw: str) -> str:
    """What is wrong with a units field, written as ``raw``."""
    if raw == "":
        return "units must be a non-negative integer, got an empty field"
    if raw.isascii() and raw.isdigit():
        return f"units must be a non-negative integer of at most {MAX_UNITS} (sales.units is a 32-bit integer), got {raw!r}"
    return f"units must be a non-negative integer, got {raw!r}"


def check_lengths(path: Path, frame: pd.DataFrame, first_line: int, table) -> None:
    """Text longer than its column holds (PostgreSQL refuses it, SQLite would store it anyway) is an error."""
    for col in frame.columns:
        length = getattr(table.c[col].type, "length", None) if col in table.c else None
        if length:
            raise_first(path, (frame[col].astype(object).fillna("").str.len() > length).to_numpy(dtype=bool),
                        first_line, col, lambda i, col=col, length=length:
                        f"{col} {frame[col].iloc[i]!r} is longer than the {length} characters the {table.name} table holds")


def check_shapes(path: Path, frame: pd.DataFrame, first_line: int) -> None:
    """item_id and store_id must look like M5's (HOBBIES_1_001, CA_1): a swapped or garbled column is an error."""
    for col, shape, example in (("store_id", STORE_ID, "CA_1"), ("item_id", ITEM_ID, "HOBBIES_1_001")):
        values = frame[col].astype(object)
        ok = values.notna().to_numpy() & values.fillna("").str.fullmatch(shape.pattern).to_numpy(dtype=bool)
        raise_first(path, ~ok, first_line, col, lambda i, col=col, example=example, values=values:
                    "missing value" if pd.isna(values.iloc[i]) else
                    f"{col} must look like {example} (letters and digits joined by '_'), got {shown(values.iloc[i])}")

