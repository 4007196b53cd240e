"""Reading and checking the Kaggle M5 CSV files, without a database (used by :mod:`pipeline.tools.m5import`).

Every problem is a DataError that names the file, the 1-based line (header = line 1) and, where
there is one, the column, and shows the value as written. Nothing here touches a database.

Bytes first (:func:`scan_csv`, one pass over each whole file before anything is written): the
file must be plain UTF-8 CSV text (a compressed file, a UTF-16/UTF-32 file, a NUL byte or bytes
that are not UTF-8 are refused with the line they are on), every line must have exactly the
header's number of fields (a line cut short, an empty line, a stray carriage return are refused)
and the file must end with a line break (a file cut off inside its last line does not, and a
value cut short there, ``12`` -> ``1``, could not be told from a complete one). In the sales file
every day field must consist of the digits 0-9 only, so ``-3``, ``2.5``, ``5.0``, ``1e3`` or
``+5`` never reach a number parser that might round or accept them.

Values: units are integers 0..``MAX_UNITS`` (the ``sales.units`` column is a 32-bit Integer);
prices are plain decimals (``9.58``), parsed exactly (Python's correctly rounded ``float``), in
(0, ``MAX_SELL_PRICE``]; ids fit their columns' lengths and have the M5 shape (item
``HOBBIES_1_001``, store ``CA_1``). The calendar's ``d`` labels must agree with its dates:
``d_N`` is N - 1 days after ``d_1``, no label twice, no day missing.
"""
from __future__ import annotations

import collections
import csv
import re
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from pipeline.data import db
from pipeline.core.bounds import MAX_SELL_PRICE  # one bound for the importer and the snapshot
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

_DAY_COLUMN = re.compile(r"d_[1-9][0-9]*")
_ITEM_ID = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+")  # category_department_number
_STORE_ID = re.compile(r"[A-Za-z0-9]+_[A-Za-z0-9]+")  # state_number
_PRICE = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")
# only an empty field is missing: a string like "NA" or "null" must not silently become NaN
_CSV_OPTIONS = dict(keep_default_na=False, na_values=[""], skip_blank_lines=False, encoding="utf-8-sig")

_BLOCK = 1 << 21  # bytes per step of scan_csv
_UTF8_BOM = b"\xef\xbb\xbf"
_NOT_TEXT = ((b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "a zip archive"), (b"BZh", "bzip2-compressed"),
             (b"\xfd7zXZ\x00", "xz-compressed"), (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
             (b"\xff\xfe\x00\x00", "UTF-32 text"), (b"\x00\x00\xfe\xff", "UTF-32 text"),
             (b"\xff\xfe", "UTF-16 text"), (b"\xfe\xff", "UTF-16 text"))
_DIGIT_BYTES = np.zeros(256, dtype=bool)
_DIGIT_BYTES[[*b"0123456789,\r\n"]] = True


# ----------------------------------------------------------------------------------------------
# Error messages with file / line / column
# ----------------------------------------------------------------------------------------------

def _at(path: Path, line: int, column: str, message: str) -> DataError:
    return DataError(f"{path.name} line {line}, column {column}: {message}")


def _raise_first(path: Path, bad: np.ndarray, first_line: int, column: str, message: Callable[[int], str]) -> None:
    """Raise a DataError for the first True of ``bad`` (row i of the chunk is line ``first_line + i``)."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _at(path, first_line + i, column, message(i))


def _shown(value) -> str:
    """A raw CSV value as the message shows it (an empty field is '')."""
    return repr("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def units_message(raw: str) -> str:
    """What is wrong with a units field, written as ``raw``."""
    if raw == "":
        return "units must be a non-negative integer, got an empty field"
    if raw.isascii() and raw.isdigit():
        return f"units must be a non-negative integer of at most {MAX_UNITS} (sales.units is a 32-bit integer), got {raw!r}"
    return f"units must be a non-negative integer, got {raw!r}"


def _check_lengths(path: Path, frame: pd.DataFrame, first_line: int, table) -> None:
    """Text longer than its column holds (PostgreSQL refuses it, SQLite would store it anyway) is an error."""
    for col in frame.columns:
        length = getattr(table.c[col].type, "length", None) if col in table.c else None
        if length:
            _raise_first(path, (frame[col].astype(object).fillna("").str.len() > length).to_numpy(dtype=bool),
                         first_line, col, lambda i, col=col, length=length:
                         f"{col} {frame[col].iloc[i]!r} is longer than the {length} characters the {table.name} table holds")


def _check_shapes(path: Path, frame: pd.DataFrame, first_line: int) -> None:
    """item_id and store_id must look like M5's (HOBBIES_1_001, CA_1): a swapped or garbled column is an error."""
    for col, shape, example in (("store_id", _STORE_ID, "CA_1"), ("item_id", _ITEM_ID, "HOBBIES_1_001")):
        values = frame[col].astype(object)
        ok = values.notna().to_numpy() & values.fillna("").str.fullmatch(shape.pattern).to_numpy(dtype=bool)
        _raise_first(path, ~ok, first_line, col, lambda i, col=col, example=example, values=values:
                     "missing value" if pd.isna(values.iloc[i]) else
                     f"{col} must look like {example} (letters and digits joined by '_'), got {_shown(values.iloc[i])}")


# ----------------------------------------------------------------------------------------------
# The bytes of a file: text, encoding, one row per line, complete lines
# ----------------------------------------------------------------------------------------------

def _refuse_non_text(path: Path, head: bytes) -> None:
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            hint = "save it as UTF-8" if "text" in what else "unpack it first"
            raise DataError(f"{path.name} line 1: the file is {what} (it starts with bytes {head[:len(magic)].hex(' ')}), "
                            f"not UTF-8 CSV text; {hint}")


def _column(header: list[str], field: int) -> str:
    return header[field] if field < len(header) else f"{field + 1} (beyond the header's {len(header)})"


def _not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError, first_line: int, header: list[str] | None) -> DataError:
    """The bytes at ``exc.start`` of ``data`` (whose first line is ``first_line``) are not UTF-8; ``header``
    None: ``data`` is the header line itself."""
    start = data.rfind(b"\n", 0, exc.start) + 1
    line = first_line + data.count(b"\n", 0, exc.start)
    field = data.count(b",", start, exc.start)
    where = f"field {field + 1}" if header is None else f"column {_column(header, field)}"
    return DataError(f"{path.name} line {line}, {where}: byte 0x{data[exc.start]:02x} is not UTF-8 (the file must be "
                     "UTF-8 text; was it saved as Latin-1 / Windows-1252?)")


def read_header(path: Path) -> list[str]:
    """The header line of a CSV file, as written (no pandas renaming of duplicates, no stripping)."""
    with open(path, "rb") as fh:
        first = fh.readline(1 << 24)
    _refuse_non_text(path, first)
    if first.startswith(_UTF8_BOM):
        first = first[len(_UTF8_BOM):]
    if b"\x00" in first:
        raise DataError(f"{path.name} line 1: a NUL byte: the file is not UTF-8 text (UTF-16 or UTF-32 without "
                        "a byte-order mark? binary?)")
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, first, exc, 1, None) from None
    text = text.rstrip("\r\n")
    if not text.strip():
        raise DataError(f"{path.name} line 1: the file is empty or has no header")
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise DataError(f"{path.name} line 1: the header is not CSV ({exc})") from None


def check_header(path: Path, header: list[str], expected: tuple[str, ...], extra: Callable[[str], bool] | None = None) -> None:
    """Missing, unknown or repeated columns are a DataError naming the file and the expected header."""
    want = ", ".join(expected) + (", d_1, d_2, ..." if extra else "")
    missing = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected and not (extra and extra(c))]
    repeated = sorted(c for c, n in collections.Counter(header).items() if n > 1)
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated[:5])}")
    if problems:
        raise DataError(f"{path.name} line 1: {'; '.join(problems)}; expected the header {want}")


def scan_csv(path: Path, header: list[str], digits_only: Callable[[str], bool] | None = None) -> int:
    """Check the bytes of a whole CSV file (see the module docstring); return its number of data lines.

    ``digits_only(column)`` marks the columns whose fields may hold the digits 0-9 only (anything
    else there is refused with :func:`units_message`). Memory: one block of ~2 MB at a time.
    """
    digit_field = np.zeros(len(header) + 1, dtype=bool)  # the last entry: fields beyond the header
    if digits_only is not None:
        digit_field[:len(header)] = [bool(digits_only(c)) for c in header]
    lines, carry, first = 0, b"", True
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_BLOCK)
            if first:
                _refuse_non_text(path, block)
                block = block[len(_UTF8_BOM):] if block.startswith(_UTF8_BOM) else block
                first = False
            if not block:
                if carry:
                    raise DataError(f"{path.name} line {lines + 1}: the last line does not end with a line break, so "
                                    "the file looks cut short (a value cut there cannot be told from a whole one); "
                                    "if the file is complete, add the line break")
                return max(0, lines - 1)
            data = carry + block if carry else block
            end = data.rfind(b"\n") + 1
            if end == 0:
                carry = data
                continue
            segment, carry = data[:end], data[end:]
            _check_lines(path, segment, lines + 1, header, digit_field)
            lines += segment.count(b"\n")


def _check_lines(path: Path, seg: bytes, first_line: int, header: list[str], digit_field: np.ndarray) -> None:
    """The checks of :func:`scan_csv` on whole lines ``seg`` (the first is line ``first_line``)."""
    try:
        seg.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, seg, exc, first_line, header) from None
    n = len(header)
    b = np.frombuffer(seg, dtype=np.uint8)
    ends = np.flatnonzero(b == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    skip = 1 if first_line == 1 else 0  # the header line is checked by read_header
    nul = np.flatnonzero(b == 0)
    if len(nul):
        line = int(np.searchsorted(ends, nul[0]))
        raise DataError(f"{path.name} line {first_line + line}: a NUL byte: the file is not UTF-8 text (UTF-16 or "
                        "UTF-32 without a byte-order mark? binary?)")
    cr_end = (ends > starts) & (b[np.maximum(ends - 1, 0)] == 13)
    content_end = ends - cr_end
    cr = np.flatnonzero(b == 13)
    stray = cr[~np.isin(cr, content_end)]
    if len(stray):
        line = int(np.searchsorted(ends, stray[0]))
        raise DataError(f"{path.name} line {first_line + line}: a carriage return inside the line (CSV readers "
                        "would split the line there)")
    comma = b == 44
    cum = np.cumsum(comma, dtype=np.int64)
    before = np.concatenate(([0], cum[ends[:-1]]))  # commas before each line
    fields = cum[ends] - before + 1
    quotes = np.cumsum(b == 34, dtype=np.int64)
    quoted = (quotes[ends] - np.concatenate(([0], quotes[ends[:-1]]))) > 0
    for j in np.flatnonzero(quoted[skip:]) + skip:
        text = seg[starts[j]:content_end[j]].decode("utf-8")
        try:
            row = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            raise DataError(f"{path.name} line {first_line + j}: the quotes do not parse ({exc}); a value may not "
                            "span lines") from None
        fields[j] = len(row)
        for f, value in enumerate(row[:n]):
            if digit_field[f] and not re.fullmatch(r"[0-9]+", value):
                raise _at(path, first_line + j, header[f], units_message(value))
    empty = content_end == starts
    bad = (empty | (fields != n))
    bad[:skip] = False
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        line, k = first_line + j, int(fields[j])
        if empty[j]:
            raise DataError(f"{path.name} line {line}: the line is empty (remove empty lines, also at the end of the file)")
        if k < n:
            raise DataError(f"{path.name} line {line}: {k} fields where the header has {n}: the line ends after column "
                            f"{header[k - 1]}, before {header[k]} (is the file cut short?)")
        raise DataError(f"{path.name} line {line}: {k} fields where the header has {n} (a comma too many, or a "
                        "comma in an unquoted value?)")
    if digit_field.any():
        line_of = np.repeat(np.arange(len(ends)), ends - starts + 1)
        field_of = cum - comma - before[line_of]
        wrong = ~_DIGIT_BYTES[b] & digit_field[np.minimum(field_of, n)] & ~quoted[line_of]
        wrong[:starts[skip] if skip < len(starts) else len(b)] = False
        if wrong.any():
            p = int(np.flatnonzero(wrong)[0])
            j, f = int(line_of[p]), int(field_of[p])
            value = seg[starts[j]:content_end[j]].decode("utf-8").split(",")[f]
            raise _at(path, first_line + j, header[f], units_message(value))


# ----------------------------------------------------------------------------------------------
# Typed reading of chunks
# ----------------------------------------------------------------------------------------------

def _int_column(path: Path, raw: pd.Series, first_line: int, what: str, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """Parse a column of raw strings as integers in [lo, hi]; the first bad field is a DataError."""
    text = raw.astype(object)
    ok = raw.notna().to_numpy() & raw.astype(str).str.fullmatch(r"-?[0-9]{1,18}").fillna(False).to_numpy(dtype=bool)
    rng = f" in {lo}..{hi}" if lo is not None and hi is not None else ""
    _raise_first(path, ~ok, first_line, raw.name, lambda i: f"{what} must be an integer{rng}, got {_shown(text.iloc[i])}")
    values = raw.astype(str).astype(np.int64).to_numpy()
    out = np.zeros(len(values), dtype=bool)
    if lo is not None:
        out |= values < lo
    if hi is not None:
        out |= values > hi
    _raise_first(path, out, first_line, raw.name, lambda i: f"{what} must be an integer{rng}, got {_shown(text.iloc[i])}")
    return values


def chunks(path: Path, dtypes: dict, chunk_rows: int, diagnose: Callable[[pd.DataFrame, int], None]) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(first_line, chunk)`` of a CSV (checked by :func:`scan_csv`) read with explicit dtypes.

    When a chunk does not parse with those dtypes (an empty field, a number too large for int64),
    the same lines are read again as text and ``diagnose(raw, first_line)`` raises the DataError
    naming the field; the fast typed parse stays the common path.
    """
    reader = pd.read_csv(path, dtype=dtypes, chunksize=chunk_rows, **_CSV_OPTIONS)
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
                raw = pd.read_csv(path, dtype=str, skiprows=range(1, first_line - 1), nrows=chunk_rows, **_CSV_OPTIONS)
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
            raise _at(path, first_line + r, day_cols[c], units_message(cells.iloc[r * len(day_cols) + c]))
    return diagnose


# ----------------------------------------------------------------------------------------------
# calendar.csv
# ----------------------------------------------------------------------------------------------

def read_calendar(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Read and check ``calendar.csv`` (header, bytes and values).

    Returns ``(calendar, day_dates)``: ``calendar`` has the columns of ``db.calendar``
    (``date`` datetime64, events as object with None where empty); ``day_dates`` maps each
    ``d_N`` label to its date (datetime64). Raises DataError naming file, line and column.
    """
    header = read_header(path)
    check_header(path, header, CALENDAR_COLUMNS)
    scan_csv(path, header)
    raw = pd.read_csv(path, dtype=str, **_CSV_OPTIONS)
    if raw.empty:
        raise DataError(f"{path.name}: the calendar has no rows")
    first = 2
    for col in ("date", "wm_yr_wk", "weekday", "wday", "month", "year", "d", "snap_CA", "snap_TX", "snap_WI"):
        _raise_first(path, raw[col].isna().to_numpy(), first, col, lambda i: "missing value")
    date = pd.to_datetime(raw["date"], format="%Y-%m-%d", errors="coerce")
    _raise_first(path, date.isna().to_numpy(), first, "date",
                 lambda i: f"date must be a date YYYY-MM-DD, got {_shown(raw['date'].iloc[i])}")
    _raise_first(path, date.duplicated().to_numpy(), first, "date",
                 lambda i: f"date {raw['date'].iloc[i]} appears twice (first on line {first + int(np.flatnonzero((date == date.iloc[i]).to_numpy())[0])})")
    ints = {
        "wm_yr_wk": _int_column(path, raw["wm_yr_wk"], first, "wm_yr_wk", 10000, 99999),
        "wday": _int_column(path, raw["wday"], first, "wday", 1, 7),
        "month": _int_column(path, raw["month"], first, "month", 1, 12),
        "year": _int_column(path, raw["year"], first, "year", 1900, 2999),
        **{c: _int_column(path, raw[c], first, c, 0, 1) for c in ("snap_CA", "snap_TX", "snap_WI")},
    }
    # the derived columns must agree with the date: a shifted row would silently move events
    expect = {
        "weekday": date.dt.day_name().to_numpy(dtype=object),
        "wday": ((date.dt.day_of_week.to_numpy() - 5) % 7 + 1),
        "month": date.dt.month.to_numpy(),
        "year": date.dt.year.to_numpy(),
    }
    for col, want in expect.items():
        got = raw[col].to_numpy(dtype=object) if col == "weekday" else ints[col]
        _raise_first(path, got != want, first, col,
                     lambda i, col=col, want=want: f"{col} of {raw['date'].iloc[i]} is {want[i]}, got {_shown(raw[col].iloc[i])}")
    d = raw["d"].astype(str)
    _raise_first(path, ~d.str.fullmatch(_DAY_COLUMN.pattern).to_numpy(dtype=bool), first, "d",
                 lambda i: f"d must look like d_1, d_2, ..., got {_shown(raw['d'].iloc[i])}")
    _raise_first(path, d.duplicated().to_numpy(), first, "d", lambda i: f"{d.iloc[i]} appears twice "
                 f"(first on line {first + int(np.flatnonzero((d == d.iloc[i]).to_numpy())[0])})")
    # d_N is the day N - 1 days after d_1: the sales file's day columns are mapped to dates by it
    n = d.str.slice(2).astype(np.int64).to_numpy()
    day = date.to_numpy().astype("datetime64[D]")
    origin = day - (n - 1).astype("timedelta64[D]")
    _raise_first(path, origin != origin[0], first, "d", lambda i: f"{d.iloc[i]} is dated {raw['date'].iloc[i]}, but "
                 f"line {first} has {d.iloc[0]} = {raw['date'].iloc[0]}, which puts {d.iloc[i]} on "
                 f"{origin[0] + np.timedelta64(int(n[i]) - 1, 'D')}: the d labels and the dates disagree")
    order = np.argsort(n, kind="stable")
    gap = np.flatnonzero(np.diff(n[order]) > 1)
    if len(gap):
        a, b = int(order[gap[0]]), int(order[gap[0] + 1])
        raise _at(path, first + b, "d", f"no d_{n[a] + 1} ({day[a] + np.timedelta64(1, 'D')}) between {d.iloc[a]} "
                  f"(line {first + a}) and {d.iloc[b]}: the calendar must list every day")
    # a week is seven consecutive days: one wm_yr_wk spread over far-apart dates is a typo
    by_week = date.groupby(ints["wm_yr_wk"])
    span = (by_week.transform("max") - by_week.transform("min")).dt.days
    _raise_first(path, (span > 6).to_numpy(), first, "wm_yr_wk",
                 lambda i: f"week {ints['wm_yr_wk'][i]} spans more than 7 days")
    events = ["event_name_1", "event_type_1", "event_name_2", "event_type_2"]
    _check_lengths(path, raw[events], first, db.calendar)

    calendar = pd.DataFrame({
        "date": date.astype("datetime64[s]"),
        "wm_yr_wk": ints["wm_yr_wk"],
        "weekday": raw["weekday"].to_numpy(dtype=object),
        "wday": ints["wday"],
        "month": ints["month"],
        "year": ints["year"],
    })
    for col in events:
        # object with None: SQL NULL where there is no event (not NaN, not the string 'nan')
        calendar[col] = pd.Series(np.where(raw[col].isna(), None, raw[col].to_numpy(dtype=object)), dtype=object)
    for col in ("snap_CA", "snap_TX", "snap_WI"):
        calendar[col] = ints[col]
    calendar = calendar[[c.name for c in db.calendar.columns]]
    day_dates = pd.Series(calendar["date"].to_numpy(), index=pd.Index(d.to_numpy(dtype=object), name="d"))
    return calendar, day_dates


# ----------------------------------------------------------------------------------------------
# The sales file's id columns: items and stores
# ----------------------------------------------------------------------------------------------

def read_sales_ids(path: Path) -> pd.DataFrame:
    """Read and check the id columns of the wide sales file (checked by :func:`scan_csv`; the day columns are skipped).

    Returns one row per line (``line`` = its line number) with the id columns. Checks: no empty
    id, item_id and store_id of M5's shape, each id within its column's length, ``id`` =
    ``{item_id}_{store_id}_validation|evaluation``, each series once, an item's dept_id/cat_id and
    a store's state_id the same on every line and consistent with the ids (M5's ids embed them:
    item HOBBIES_1_001 is in dept HOBBIES_1, category HOBBIES; store CA_1 is in state CA).
    """
    ids = pd.read_csv(path, usecols=list(SALES_ID_COLUMNS), dtype=str, **_CSV_OPTIONS)
    if ids.empty:
        raise DataError(f"{path.name}: the file has a header but no series")
    ids = ids[list(SALES_ID_COLUMNS)]
    first = 2
    for col in SALES_ID_COLUMNS:
        _raise_first(path, ids[col].isna().to_numpy(), first, col, lambda i: "missing value")
    ids = ids.astype(object)
    _check_shapes(path, ids, first)
    _check_lengths(path, ids[["item_id", "dept_id", "cat_id"]], first, db.items)
    _check_lengths(path, ids[["store_id", "state_id"]], first, db.stores)
    kaggle = ids["item_id"] + "_" + ids["store_id"] + "_"
    _raise_first(path, ~((ids["id"] == kaggle + "evaluation") | (ids["id"] == kaggle + "validation")).to_numpy(), first, "id",
                 lambda i: f"id must be {kaggle.iloc[i]}evaluation or ...validation, got {_shown(ids['id'].iloc[i])}")
    # M5's ids embed their parent: store CA_1 -> state CA, item HOBBIES_1_001 -> dept HOBBIES_1 -> cat HOBBIES
    checks = (("state_id", "store_id", "store"), ("dept_id", "item_id", "item"), ("cat_id", "dept_id", "department"))
    for part, whole, noun in checks:
        ok = (ids[whole].str.rsplit("_", n=1).str[0] == ids[part]).to_numpy(dtype=bool)
        _raise_first(path, ~ok, first, part, lambda i, part=part, whole=whole, noun=noun:
                     f"{part} {_shown(ids[part].iloc[i])} does not match {noun} {ids[whole].iloc[i]!r}")
    for key, attrs in (("item_id", ("dept_id", "cat_id")), ("store_id", ("state_id",))):
        for attr in attrs:
            first_seen = ids.groupby(key, sort=False)[attr].transform("first")
            _raise_first(path, (ids[attr] != first_seen).to_numpy(), first, attr, lambda i, key=key, attr=attr, fs=first_seen:
                         f"{key} {ids[key].iloc[i]} has {attr} {fs.iloc[i]!r} on an earlier line, here {_shown(ids[attr].iloc[i])}")
    dup = ids.duplicated(["item_id", "store_id"]).to_numpy()
    _raise_first(path, dup, first, "id", lambda i: f"series {ids['id'].iloc[i]} appears twice (first on line "
                 f"{first + int(np.flatnonzero(((ids['item_id'] == ids['item_id'].iloc[i]) & (ids['store_id'] == ids['store_id'].iloc[i])).to_numpy())[0])})")
    ids.insert(0, "line", np.arange(first, first + len(ids)))
    return ids


# ----------------------------------------------------------------------------------------------
# sell_prices.csv
# ----------------------------------------------------------------------------------------------

# read as text: dtype "category" would turn '0' or '1e-400' into float categories before any check
PRICE_DTYPES = {c: object for c in PRICE_COLUMNS}


def _check_texts(path: Path, codes: np.ndarray, texts: list[str], first_line: int, column: str, missing: str,
                 problem: Callable[[str], str | None]) -> None:
    """The first line whose field is empty (``missing``, code -1) or whose text ``problem`` objects to is a DataError.

    ``codes``/``texts`` are a column factorized: each distinct text is checked once, not per line.
    """
    wrong = [problem(t) for t in texts]
    bad = (codes < 0) | np.array([w is not None for w in wrong] + [False], dtype=bool)[codes]
    _raise_first(path, bad, first_line, column, lambda i: missing if codes[i] < 0 else wrong[codes[i]])


def _id_problem(col: str) -> Callable[[str], str | None]:
    shape, example, table = (_STORE_ID, "CA_1", db.stores) if col == "store_id" else (_ITEM_ID, "HOBBIES_1_001", db.items)
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
