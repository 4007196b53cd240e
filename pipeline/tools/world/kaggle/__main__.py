"""``python -m pipeline.tools.world.kaggle``: see :mod:`pipeline.tools.world.kaggle.cli`."""
import sys

from pipeline.tools.world.kaggle.cli import main

sys.exit(main())
