"""Run logs: the console (Luigi's own handler) and a rotating file under ``<data_dir>/logs/``.

Each task logs what an operator needs to reconstruct a run: run date, model
version, input snapshot hash, row counts, its wall time, and the outcome.
"""
from __future__ import annotations

import logging
import logging.handlers

from pipeline import config

LOGGER_NAMES = ("luigi-interface", "pipeline")
_installed: dict[str, logging.Handler] = {}


def install_file_log(max_bytes: int = 10 << 20, backups: int = 10) -> str:
    """Attach a rotating file handler for the current data folder (once per path); returns its path."""
    path = config.data_dir() / "logs" / "pipeline.log"
    key = str(path)
    if key not in _installed:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s"))
        handler.setLevel(logging.INFO)
        for name in LOGGER_NAMES:
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
        _installed[key] = handler
    return key
