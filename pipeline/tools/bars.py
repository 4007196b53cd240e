"""tqdm progress bars on stderr for the command-line tools (world generation, M5 import, backfill).

The tools report progress as ``report(done_fraction, message)``; :func:`fraction_bar` turns
those calls into one tqdm bar. In a log file (no terminal, e.g. cron) the bar is redrawn
only every 10 %, so the log gets a dozen updates instead of hundreds.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

from tqdm import tqdm

_STEPS = 1000  # bar positions: 0.1 % resolution, shown as "12.3%"
_FORMAT = "{desc} [{bar:30}] {percentage:5.1f}% {elapsed}{postfix}"


@contextlib.contextmanager
def fraction_bar(label: str, stream=None) -> Iterator[Callable[[float, str], None]]:
    """A bar labelled ``label`` on ``stream`` (default stderr), driven by ``report(fraction, message)``.

    Yields ``report``; the bar is closed (its last state left on screen) when the block exits.
    """
    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    pacing = {} if tty else {"mininterval": 0, "miniters": _STEPS // 10}
    with tqdm(total=_STEPS, desc=label, file=stream, bar_format=_FORMAT, ascii=" #", **pacing) as bar:
        def report(fraction: float, message: str = "") -> None:
            bar.set_postfix_str(message[:60], refresh=False)
            bar.update(round(min(max(fraction, 0.0), 1.0) * _STEPS) - bar.n)

        yield report
