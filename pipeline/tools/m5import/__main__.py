"""``python -m pipeline.tools.m5import``: see :mod:`pipeline.tools.m5import.cli`."""
import sys

from pipeline.tools.m5import.cli import main

sys.exit(main())
