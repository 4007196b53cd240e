"""``python -m bench.accuracy``: the accuracy panel (see bench.accuracy.runner)."""
import sys

from bench.accuracy.runner import main

sys.exit(main())
