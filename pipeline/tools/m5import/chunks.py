"""Typed reading of a checked CSV file, chunk by chunk, with a diagnosis naming the field when a chunk does not parse."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.tools.m5import.layout import CSV_OPTIONS, MAX_UNITS, error_at, units_message


def chunks(path: Path, dtypes: dict, chunk_rows: int, diagnose: Callable[[pd.DataFrame, int], None]) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(first_line, chunk)`` of a CSV (checked by :func:`scan_csv`) read with explicit dtypes.

    When a chunk does not parse with those dtypes (an empty field, a number too large for int64),
    the same lines are read again as text and ``diagnose(raw, first_line)`` raises the DataError
    naming the field; the fast typed parse stays the common path.
    """
    reader = pd.read_csv(path, dtype=dtypes, chunksize=chunk_rows, **CSV_OPTIONS)
    first_line = 2
    with reader:
        while True:
            try:
                chunk = next(reader)
            except StopIteration:
                return
            except (pd.errors.ParserError, UnicodeDecodeError) as exc:  # scan_csv refuses these first
                raise DataError(f"{path.name} lines {first_line}..: cannot read: {str(exc).strip()}") from exc
            except (ValueError, OverflowError) as exc:
                raw = pd.read_csv(path, dtype=str, skiprows=range(1, first_line - 1), nrows=chunk_rows, **CSV_OPTIONS)
                diagnose(raw, first_line)
                raise DataError(f"{path.name} lines {first_line}..{first_line + len(raw) - 1}: cannot read: {exc}") from exc
            yield first_line, chunk
            first_line += len(chunk)


def diagnose_units(path: Path, day_cols: list[str]) -> Callable[[pd.DataFrame, int], None]:
    """For :func:`chunks`: the first day field that is not an integer 0..MAX_UNITS is a DataError."""
    def diagnose(raw: pd.DataFrame, first_line: int) -> None:
        cells = pd.Series(raw[day_cols].to_numpy(dtype=object).reshape(-1)).fillna("").astype(str)
        ok = np.array(cells.str.fullmatch(r"[0-9]{1,10}").to_numpy(dtype=bool))
        ok[ok] = cells[ok].astype(np.int64).to_numpy() <= MAX_UNITS
        if not ok.all():
            r, c = divmod(int(np.flatnonzero(~ok)[0]), len(day_cols))
            raise error_at(path, first_line + r, day_cols[c], units_message(cells.iloc[r * len(day_cols) + c]))
    return diagnose

