"""Retry what a retry can fix, and nothing else.

A database that blinks or a disk that is momentarily full can succeed a few
seconds later; bad data, a model that disagrees with its compiled form or a bug
cannot, and retrying them only delays the failure and repeats its message. So a
task's ``run`` is retried in the same process (``[retry] attempts``, ``delay_seconds``)
when, and only when, the error or one of its causes is transient:

* :class:`~pipeline.core.errors.DatabaseError` (the source database cannot be reached, its SQLite file
  is missing: it may be being restored) and
  SQLAlchemy's connection errors (``OperationalError``, ``InterfaceError``, ``DisconnectionError``);
* an ``OSError`` whose errno says the condition may pass (no space, I/O error, busy, timed out,
  connection refused or reset).

:class:`~pipeline.core.errors.DataError`, :class:`~pipeline.core.errors.ModelCheckError`, a database URL
that does not parse and a missing driver module are never retried, nor is a read-only or
unwritable folder (``EACCES``, ``EROFS``: a person must act).

Once a task of a process has used up its tries on a transient error, the later tasks of that
process get one try each: a database down for good then costs one round of waiting per run,
not one per task of the graph.
"""
from __future__ import annotations

import errno
import functools
import inspect
import logging
import time
from typing import Callable

from pipeline.core.errors import DatabaseError, DatabaseURLError, DataError, ModelCheckError

log = logging.getLogger("pipeline")

_given_up: list[str] = []  # the task that used up its tries on a transient error in this process, if any

TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT,
                              errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
                              errno.ENETUNREACH, errno.EINTR})


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """Whether a retry of the work that raised ``exc`` may succeed (see the module's docstring)."""
    import sqlalchemy.exc as sa_exc

    causes = list(_causes(exc))
    if any(isinstance(e, (DataError, ModelCheckError, DatabaseURLError, ImportError)) for e in causes):
        return False
    for e in causes:
        if isinstance(e, DatabaseError):
            return True
        if isinstance(e, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError)):
            return True
        if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
            return True
    return False


def retrying(run: Callable, name: Callable[[object], str], policy: Callable[[], tuple[int, float]],
             sleep: Callable[[float], None] = time.sleep) -> Callable:
    """``run`` (a plain method, or a generator method yielding requirements as Luigi's dynamic
    dependencies do) retried on transient errors; ``policy()`` gives (attempts, delay in seconds)."""

    def again(self, exc: BaseException, attempt: int, attempts: int, delay: float) -> bool:
        """Whether to try again after ``exc`` (having waited), or to let it raise."""
        if attempt == attempts or not is_transient(exc):
            if attempt > 1 and is_transient(exc) and not _given_up:
                _given_up.append(name(self))
            return False
        log.warning("retry: %s failed with a transient error (%s: %s); attempt %d of %d in %.0f s",
                    name(self), type(exc).__name__, exc, attempt + 1, attempts, delay)
        sleep(delay)
        return True

    def tries(self) -> tuple[int, float]:
        attempts, delay = policy()
        if _given_up and attempts > 1:
            log.warning("retry: %s gets one try: %s already used up its tries on a transient error in this run",
                        name(self), _given_up[0])
            return 1, delay
        return attempts, delay

    def succeeded(self, attempt: int, attempts: int) -> None:
        if attempt > 1:
            log.warning("retry: %s succeeded in a retry (attempt %d of %d)", name(self), attempt, attempts)

    if inspect.isgeneratorfunction(run):
        @functools.wraps(run)
        def wrapped(self):
            attempts, delay = tries(self)
            for attempt in range(1, attempts + 1):
                gen = run(self)
                try:
                    sent = None
                    while True:
                        sent = yield gen.send(sent)  # requirements go to Luigi, their outputs come back
                except StopIteration:
                    succeeded(self, attempt, attempts)
                    return
                except Exception as exc:
                    if not again(self, exc, attempt, attempts, delay):
                        raise
    else:
        @functools.wraps(run)
        def wrapped(self):
            attempts, delay = tries(self)
            for attempt in range(1, attempts + 1):
                try:
                    result = run(self)
                except Exception as exc:
                    if not again(self, exc, attempt, attempts, delay):
                        raise
                else:
                    succeeded(self, attempt, attempts)
                    return result
    wrapped.__retrying__ = True
    return wrapped
