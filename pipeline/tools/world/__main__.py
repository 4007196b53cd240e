"""``python -m pipeline.tools.world``: see :mod:`pipeline.tools.world.cli`."""
import sys

from pipeline.tools.world.cli import main

sys.exit(main())
