"""A text progress bar for the command-line tools (world generation, M5 import, backfill).

On a terminal it redraws one line; in a log file (cron) it writes a line per
10 % step instead of hundreds of carriage returns.
"""
from __future__ import annotations

import sys
import time


class ProgressBar:
    """Callable as ``bar(fraction, message)``; ``bar.close()`` ends the line."""

    def __init__(self, label: str, stream=None, width: int = 30):
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self.last_step = -1
        self.drawn = False

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(round(fraction * self.width))
        line = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction:6.1%} "
                f"{time.monotonic() - self.started:6.0f}s  {message[:60]}")
        if self.tty:
            print(f"\r{line:<{self.width + 90}}", end="", file=self.stream, flush=True)
            self.drawn = True
        elif int(fraction * 10) > self.last_step:
            self.last_step = int(fraction * 10)
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.drawn:
            print(file=self.stream, flush=True)
            self.drawn = False
