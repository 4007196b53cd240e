"""The bytes of a CSV file, checked before anything is parsed: text, encoding, one row per line, complete lines.

Every problem is a DataError that names the file, the 1-based line (header = line 1) and, where
there is one, the column, and shows the value as written. Nothing here touches a database.
"""
from __future__ import annotations

import collections
import csv
import re
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.core.errors import DataError
from pipeline.tools.m5import.layout import error_at, units_message

_BLOCK = 1 << 21  # bytes per step of scan_csv
_UTF8_BOM = b"\xef\xbb\xbf"
_NOT_TEXT = ((b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "a zip archive"), (b"BZh", "bzip2-compressed"),
             (b"\xfd7zXZ\x00", "xz-compressed"), (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
             (b"\xff\xfe\x00\x00", "UTF-32 text"), (b"\x00\x00\xfe\xff", "UTF-32 text"),
             (b"\xff\xfe", "UTF-16 text"), (b"\xfe\xff", "UTF-16 text"))
_DIGIT_BYTES = np.zeros(256, dtype=bool)
_DIGIT_BYTES[[*b"0123456789,\r\n"]] = True


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
                raise error_at(path, first_line + j, header[f], units_message(value))
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
            raise error_at(path, first_line + j, header[f], units_message(value))

