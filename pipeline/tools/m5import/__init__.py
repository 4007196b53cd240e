"""Import the Kaggle M5 files into the source database (schema of :mod:`pipeline.data.db`).

``import_m5(url_or_engine, m5_dir)`` reads from ``m5_dir``:

* ``calendar.csv`` -> ``calendar`` (its ``d`` column maps ``d_N`` to a date and is not stored);
* ``sales_train_evaluation.csv`` if present, else ``sales_train_validation.csv`` (wide: one line
  per series, one ``d_N`` column per day) -> ``items``, ``stores`` and ``sales`` (long, one row per
  series and day, ``recorded_at`` = 23:00 of the sale's day, "end of the day", as the synthetic
  world of :mod:`pipeline.tools.world` does);
* ``sell_prices.csv`` -> ``sell_prices`` (``recorded_at`` = 00:00 of the first calendar date of its
  Walmart week). The sales file decides what is imported: a price line whose item or store the
  sales file lacks is checked like any other and then skipped, and counted in the summary
  (``prices_not_in_sales_file``): the full price file with a subset of the series is normal. A
  price file covering only some stores is fine too: the others get no price rows (price features
  are then missing for them, never invented).

Order and atomicity
    First, without a database: every header, the bytes of all three files (plain UTF-8 text, one
    row per line with the header's number of fields, a line break at the end: see
    :mod:`pipeline.tools.m5import.scan`), the whole calendar (including that its ``d_N`` labels and dates
    agree) and the id columns of the sales file. Then one transaction holds the whole import:
    the schema if missing, ``calendar``, ``items``, ``stores`` (keys not present yet), then
    ``sales`` and ``sell_prices``, streamed: each chunk of lines is parsed, checked, turned long
    (vectorised) and written inside that transaction, so memory stays bounded by the chunk size.
    Any failure (a bad value in the last price line, a conflict with an existing row, the
    database refusing a row, an interrupt) rolls the transaction back: the database is exactly as
    it was before (a SQLite file the import created is removed again). On SQLite the transaction
    starts with ``BEGIN IMMEDIATE`` (other writers wait, readers go on; in rollback-journal mode
    readers are blocked while the transaction spills pages to the file and commits); on
    PostgreSQL the five tables are locked against other writers for the import's duration.

Idempotency
    Importing the same files twice adds nothing. Master keys (date, item_id, store_id) already
    present are skipped if their attributes are equal and are a DataError otherwise. For a sales /
    price row the importer looks, in the import's transaction, at the rows already in the table
    for the chunk's series (rows committed before, and rows of earlier chunks of this import): a
    key with a row recorded at the very instant the importer would record it, with the same value,
    is skipped; any other existing row of the key (another value, or only rows recorded at other
    instants) is a DataError: the tables are append-only and a correction is a new row with a
    later ``recorded_at``, which this importer never invents (the wall clock must not decide what
    the database holds).

Values: exact or refused
    Units are the digits 0-9 only (no sign, point, exponent or blank), 0..``MAX_UNITS`` =
    2,147,483,647 (``sales.units`` is a 32-bit Integer). Prices are plain decimals (``9.58``) in
    (0, ``MAX_SELL_PRICE``] = (0, 100,000] a unit (above that is a typo, not a price: store CA_1's
    prices are 0.01..30.98), parsed exactly; empty, text, ``nan``, ``inf``, zero and negative are
    refused.
    Ids must have M5's shape (item ``HOBBIES_1_001``, store ``CA_1``) and fit their columns. A
    file cut short (a line with fewer fields, no line break at the end), not UTF-8 (UTF-16,
    Latin-1 bytes), compressed (a gzip file named .csv) or a calendar whose labels and dates
    disagree (d_N not N - 1 days after d_1, a label twice, a day missing) is refused, naming the
    line.

Speed and memory
    Memory is bounded by the chunk sizes, not the file: about 0.4 GB for a first import with the
    defaults (500 series x 1,941 days = ~1 M long rows per sales chunk, 1 M price lines), about
    0.5 GB for a re-import. On SQLite a first import writes ~200 k rows/s (its B-trees, not the
    parsing, are the limit); the full M5 (59 M sales + 6.8 M price rows) takes minutes. The byte
    checks read each file once more (a few seconds per 100 MB). A first import into an empty ``sales``
    table needs no look-ups of existing rows; a re-import reads the existing rows of each chunk's
    series (no index on (store_id, item_id): one table scan per chunk), so it is slower than the
    first import.

Errors (``DataError``) name the file, the 1-based line (header = line 1; the Kaggle files have no
quoted line breaks, so a CSV row is one line) and the column, e.g.
``sales_train_evaluation.csv line 1532, column d_1207: units must be a non-negative integer, got '-3'``.

Modules: ``layout`` (file names, columns, limits, error messages), ``scan`` (the bytes of a file),
``calendar``, ``ids`` and ``price_checks`` (the values of each file), ``chunks`` (typed chunked
reading), ``master`` (calendar, items, stores), ``existing`` (which rows are new), ``stream`` (sales
and prices, chunk by chunk), ``importer`` (``import_m5``: the order and the one transaction), ``cli``.

Command line: ``python -m pipeline.tools.m5import --dir M5_DIR [--url URL]``.
"""
from __future__ import annotations

from pipeline.tools.m5import.cli import main
from pipeline.tools.m5import.importer import PRICES_CHUNK_ROWS, SALES_CHUNK_ROWS, import_m5, sales_file
from pipeline.tools.m5import.layout import (
    CALENDAR_COLUMNS, CALENDAR_FILE, MAX_SELL_PRICE, MAX_UNITS, PRICE_COLUMNS, PRICES_FILE, SALES_FILES, SALES_ID_COLUMNS,
)
from pipeline.tools.m5import.price_checks import PRICE_DTYPES
from pipeline.tools.m5import.stream import SALE_RECORDED_AT

__all__ = [
    "CALENDAR_COLUMNS", "CALENDAR_FILE", "MAX_SELL_PRICE", "MAX_UNITS", "PRICES_CHUNK_ROWS", "PRICES_FILE", "PRICE_COLUMNS",
    "PRICE_DTYPES", "SALES_CHUNK_ROWS", "SALES_FILES", "SALES_ID_COLUMNS", "SALE_RECORDED_AT", "import_m5", "main",
    "sales_file",
]
