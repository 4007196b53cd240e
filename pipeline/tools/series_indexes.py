"""``python -m pipeline.tools.series_indexes``: create the indexes the prediction service reads one series by.

Idempotent: an index that exists is left alone. A schema change only (no row of any table is
written); on a full world it takes a few minutes, once. ``make serve`` runs it before the service.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.core.errors import PipelineError
from pipeline.data import db
from pipeline.data.series_history import SERIES_INDEXES, create_indexes


def main(argv: list[str] | None = None) -> int:
    from tasks import config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="SQLAlchemy URL (default: PIPELINE_DATABASE_URL, else [pipeline] database_url)")
    args = parser.parse_args(argv)
    try:
        engine = db.engine_for(args.url or config.database_url())
        made = create_indexes(engine)
    except PipelineError as exc:
        print(f"series_indexes: {exc}", file=sys.stderr)
        return 1
    for name in SERIES_INDEXES:
        print(f"{name}: {'created' if name in made else 'present'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
