"""Run logs: the console (Luigi's own handler) and a rotating file under ``<data_dir>/logs/``.

Each task logs what an operator needs to reconstruct a run: run date, model
version, input snapshot hash, row counts, its wall time, and the outcome.

No log line carries a secret: importing this module (``import pipeline`` does,
through ``tasks``) wraps the process's log record factory, so that every record of
any logger is a ``MaskedLogRecord``: its message is masked by
``pipeline.data.masking.mask`` whenever a handler formats it (so text a filter adds on
the way is masked too), its traceback and stack when it is created.

Why not a ``logging.Filter`` on handlers: it would have to be attached to every
handler after that handler exists, and most are not ours: the console handler Luigi
adds in ``InterfaceLogging.setup`` (after ``--module pipeline`` is imported, so no
code of ours runs between its creation and Luigi's first log lines), handlers of a
``[logging]`` section or ``logging_conf_file``, ``logging.lastResort`` (stderr, when
a logger has no handler), luigid's ``luigi-server.log``. A filter on the loggers
instead would miss the records of child loggers (``pipeline.stages.extract``): logger
filters do not apply to propagated records. The record factory covers all of them.
(A record built directly with ``logging.LogRecord``/``makeLogRecord`` bypasses the
factory; neither Luigi nor this project does that.)
"""
from __future__ import annotations

import functools
import logging
import logging.handlers

from tasks import config
from pipeline.data import masking
LOGGER_NAMES = ("luigi-interface", "pipeline")
_installed: dict[str, logging.Handler] = {}
_FORMATTER = logging.Formatter()


class MaskedLogRecord(logging.LogRecord):
    """A log record whose message is masked whenever it is formatted (``getMessage``).

    Masking at formatting time, not only at creation, also covers text that a filter
    adds to a record on its way to a handler (e.g. one that appends the exception's
    message and drops the traceback).
    """

    def getMessage(self) -> str:  # noqa: N802 - logging's name
        return masking.mask(super().getMessage())


@functools.cache
def _masked_class(cls: type) -> type:
    """``cls`` (a LogRecord class from another record factory) with ``getMessage`` masked."""
    if issubclass(cls, MaskedLogRecord):
        return cls
    if cls is logging.LogRecord:
        return MaskedLogRecord

    def getMessage(self, _base=cls.getMessage):  # noqa: N802
        return masking.mask(_base(self))

    return type(f"Masked{cls.__name__}", (cls,), {"getMessage": getMessage})


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """``record`` with its message masked when formatted, and its traceback and stack masked now.

    The traceback is formatted now only when it holds a secret (formatters use
    ``exc_text`` when it is set, see ``logging.Formatter.format``); records without a
    secret are otherwise left as they are.
    """
    record.__class__ = _masked_class(type(record))
    if record.exc_info and not record.exc_text:
        text = _FORMATTER.formatException(record.exc_info)
        masked = masking.mask(text)
        if masked != text:
            record.exc_text = masked
    if record.stack_info:
        record.stack_info = masking.mask(record.stack_info)
    return record


def install_masking() -> None:
    """Mask secrets in every log record created from now on in this process (idempotent)."""
    base = logging.getLogRecordFactory()
    if getattr(base, "masks_secrets", False):
        return

    def factory(*args, **kwargs):
        return mask_record(base(*args, **kwargs))

    factory.masks_secrets = True
    logging.setLogRecordFactory(factory)


install_masking()


def install_file_log(max_bytes: int = 10 << 20, backups: int = 10) -> str:
    """Attach a rotating file handler for the current data folder (once per path); returns its path."""
    install_masking()
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
