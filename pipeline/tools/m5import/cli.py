"""Import the Kaggle M5 files into the source database.

Command line: ``python -m pipeline.tools.m5import --dir M5_DIR [--url URL]``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import sqlalchemy as sa

from pipeline.core.errors import DataError, PipelineError
from pipeline.data import db
from pipeline.tools.bars import fraction_bar
from pipeline.tools.m5import.importer import PRICES_CHUNK_ROWS, SALES_CHUNK_ROWS, import_m5


def main(argv: list[str] | None = None) -> int:
    """Command line: import ``--dir`` into ``--url`` (default: the configured source database)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.m5import", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="folder with calendar.csv, sell_prices.csv, sales_train_*.csv")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: tasks.config.database_url())")
    parser.add_argument("--sales-chunk-rows", type=int, default=SALES_CHUNK_ROWS, help="series (lines) per sales chunk")
    parser.add_argument("--prices-chunk-rows", type=int, default=PRICES_CHUNK_ROWS, help="lines per sell_prices chunk")
    args = parser.parse_args(argv)
    if args.url is None:
        from tasks import config
        args.url = config.database_url()

    try:
        with fraction_bar("import-m5") as show:
            summary = import_m5(args.url, args.dir, progress=show,
                                sales_chunk_rows=args.sales_chunk_rows, prices_chunk_rows=args.prices_chunk_rows)
    except DataError as exc:
        print(f"pipeline.tools.m5import: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI reports any failure as one line, with its type
        if not isinstance(exc, (PipelineError, sa.exc.SQLAlchemyError, OSError)):
            raise
        print(f"pipeline.tools.m5import: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"url": db.redact(args.url), "dir": str(args.dir), **summary}, indent=2, default=str))
    return 0
