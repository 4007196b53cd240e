"""Write a seeded synthetic world as the Kaggle M5 files (calendar, sell_prices, sales_train_*) into a new folder.

Command line: ``python -m pipeline.tools.world.kaggle --scale S --seed N --dynamics D --out DIR``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.tools.bars import fraction_bar
from pipeline.tools.world.dynamics import DYNAMICS
from pipeline.tools.world.kaggle.export import export_kaggle
from pipeline.tools.world.scales import SCALES


def main(argv: list[str] | None = None) -> int:
    """Command line: export the world of ``--scale/--seed/--dynamics`` into the new folder ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.world.kaggle", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dynamics", choices=list(DYNAMICS), default="base")
    parser.add_argument("--out", required=True, type=Path, help="new (or empty) folder for the files")
    args = parser.parse_args(argv)
    try:
        with fraction_bar(f"kaggle {args.scale}") as show:
            summary = export_kaggle(args.out, scale=args.scale, seed=args.seed, dynamics=args.dynamics, progress=show)
    except (ValueError, PipelineError, OSError) as exc:  # bad input, an existing folder, a full disk
        print(f"pipeline.tools.world.kaggle: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}",
              file=sys.stderr)
        return 1
    print(json.dumps({"out": str(args.out), **summary}, indent=2))
    return 0
