"""The values of ``sell_prices.csv`` lines: ids of M5's shape, a calendar week, a plain decimal price, parsed exactly."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pipeline.data import db
from pipeline.tools.m5import.layout import ITEM_ID, MAX_SELL_PRICE, PRICE_COLUMNS, STORE_ID, raise_first

_PRICE = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")

# read as text: dtype "category" would turn '0' or '1e-400' into float categories before any check
PRICE_DTYPES = {c: object for c in PRICE_COLUMNS}


def _check_texts(path: Path, codes: np.ndarray, texts: list[str], first_line: int, column: str, missing: str,
                 problem: Callable[[str], str | None]) -> None:
    """The first line whose field is empty (``missing``, code -1) or whose text ``problem`` objects to is a DataError.

    ``codes``/``texts`` are a column factorized: each distinct text is checked once, not per line.
    """
    wrong = [problem(t) for t in texts]
    bad = (codes < 0) | np.array([w is not None for w in wrong] + [False], dtype=bool)[codes]
    raise_first(path, bad, first_line, column, lambda i: missing if codes[i] < 0 else wrong[codes[i]])


def _id_problem(col: str) -> Callable[[str], str | None]:
    shape, example, table = (STORE_ID, "CA_1", db.stores) if col == "store_id" else (ITEM_ID, "HOBBIES_1_001", db.items)
    length = table.c[col].type.length

    def problem(text: str) -> str | None:
        if not shape.fullmatch(text):
            return f"{col} must look like {example} (letters and digits joined by '_'), got {text!r}"
        if len(text) > length:
            return f"{col} {text!r} is longer than the {length} characters the {table.name} table holds"
        return None
    return problem


def _price_problem(text: str) -> str | None:
    if not _PRICE.fullmatch(text) or float(text) <= 0:
        return f"sell_price must be a positive number, got {text!r}"
    if float(text) > MAX_SELL_PRICE:
        return f"sell_price must be at most {MAX_SELL_PRICE:,.0f} (MAX_SELL_PRICE), got {text!r}"
    return None


def check_prices(path: Path, chunk: pd.DataFrame, first_line: int, weeks: pd.Index) -> dict:
    """Check a chunk of sell_prices.csv read with ``PRICE_DTYPES`` (every field as written).

    store_id and item_id must have M5's shape and fit their columns, wm_yr_wk must be one of
    ``weeks`` (the calendar's), sell_price a plain decimal in (0, MAX_SELL_PRICE]. Returns
    ``{"store_id": (codes, texts), "item_id": (codes, texts), "wm_yr_wk": int64 array,
    "sell_price": float64 array}``; prices parsed exactly (Python's correctly rounded ``float``).
    """
    out = {}
    for col in PRICE_COLUMNS:
        codes, texts = pd.factorize(chunk[col].to_numpy(dtype=object))
        out[col] = (codes, [str(t) for t in texts])
    for col in ("store_id", "item_id"):
        _check_texts(path, *out[col], first_line, col, "missing value", _id_problem(col))
    _check_texts(path, *out["wm_yr_wk"], first_line, "wm_yr_wk", "wm_yr_wk must be an integer, got ''",
                 lambda t: None if re.fullmatch(r"[0-9]{1,9}", t) and int(t) in weeks else
                 f"week {t} is not in the calendar (weeks {weeks.min()}..{weeks.max()})" if re.fullmatch(r"[0-9]+", t)
                 else f"wm_yr_wk must be an integer, got {t!r}")
    _check_texts(path, *out["sell_price"], first_line, "sell_price",
                 "sell_price must be a positive number, got an empty field", _price_problem)
    # via the codes: '2.5' and '2.50' are two texts of one value
    codes, texts = out["wm_yr_wk"]
    out["wm_yr_wk"] = np.array([int(t) for t in texts], dtype=np.int64)[codes]
    codes, texts = out["sell_price"]
    out["sell_price"] = np.array([float(t) for t in texts], dtype=np.float64)[codes]
    return out
