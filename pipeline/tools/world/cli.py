"""Generate a seeded synthetic retail world in M5's shape into the source database.

Command line: ``python -m pipeline.tools.world --scale demo [--url URL] [--seed 42] [--dynamics base]``.
"""
from __future__ import annotations

import argparse
import json
import sys

import sqlalchemy as sa

from pipeline.core.errors import PipelineError
from pipeline.data import db, masking
from pipeline.tools.bars import fraction_bar
from pipeline.tools.world.dynamics import DYNAMICS
from pipeline.tools.world.generate import generate_world
from pipeline.tools.world.scales import SCALES


def main(argv: list[str] | None = None) -> int:
    """Command line: generate a world into ``--url`` (default: the configured source database)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.world", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL (default: tasks.config.database_url())")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dynamics", choices=list(DYNAMICS), default="base",
                        help="set of effects on top of the base world (pipeline.tools.world.dynamics)")
    args = parser.parse_args(argv)
    if args.url is None:
        from tasks import config
        args.url = config.database_url()

    try:
        with fraction_bar(f"world {args.scale}") as show:
            summary = generate_world(args.url, scale=args.scale, seed=args.seed, progress=show,
                                     dynamics=args.dynamics)
    except (ValueError, ImportError, PipelineError, sa.exc.SQLAlchemyError) as exc:  # bad input, database refused
        # one line, without the SQL statement SQLAlchemy appends to its messages
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        print(f"pipeline.tools.world: {masking.mask(reason)}", file=sys.stderr)
        return 1
    print(json.dumps({"url": db.redact(args.url), **summary}, indent=2, default=str))
    return 0
