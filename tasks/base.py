"""What every task of the pipeline shares: transient errors retried in place, the rest failing once, clearly.

A :class:`~pipeline.core.errors.PipelineError` (bad data, an unreachable database, an unwritable
folder) already says what is wrong and where, so its failure is reported as that one message
(console, log file, visualiser) without a Python traceback; any other exception is a bug and keeps
its traceback. Luigi's own retries are not used ([worker] keep_alive = false): they would repeat
errors that cannot heal; ``tasks.retry`` retries the transient ones inside the task instead.
"""
from __future__ import annotations

import logging

import luigi

from tasks import config
from pipeline.data import masking
from tasks import retry
from pipeline.core.errors import PipelineError
from tasks import logs

log = logging.getLogger("pipeline")


class _OneLineForPipelineErrors(logging.Filter):
    """Drop the traceback of a record whose exception is a PipelineError (its message says it all)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PipelineError):
            record.msg = f"{record.msg}: {type(record.exc_info[1]).__name__}: %s"
            record.args = (*(record.args or ()), record.exc_info[1])
            record.exc_info, record.exc_text = None, None
        return True


@luigi.Task.event_handler(luigi.Event.START)
def _log_start(task):
    logs.install_file_log()
    log.info("start %s", task)


@luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)
def _log_time(task, seconds):
    log.info("timing %s: %.1f s", task, seconds)


@luigi.Task.event_handler(luigi.Event.SUCCESS)
def _log_success(task):
    log.info("outcome %s: DONE", task)


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _log_failure(task, exception):
    log.error("outcome %s: FAILED: %s: %s", task, type(exception).__name__, exception)


_filter = _OneLineForPipelineErrors()
if _filter not in logging.getLogger("luigi-interface").filters:
    logging.getLogger("luigi-interface").addFilter(_filter)


def _policy() -> tuple[int, float]:
    cfg = config.retry()
    return max(1, cfg.attempts), max(0.0, cfg.delay_seconds)


class PipelineTask(luigi.Task):
    """Base of the pipeline's tasks: ``run`` retried on transient errors (see ``tasks.retry``)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None and not getattr(run, "__retrying__", False):
            cls.run = retry.retrying(run, str, _policy)

    def on_failure(self, exception):
        # what is returned goes to the scheduler (visualiser, luigid's state): masked like every log line
        if isinstance(exception, PipelineError):
            return masking.mask(f"{type(exception).__name__}: {exception}")
        return masking.mask(super().on_failure(exception))
