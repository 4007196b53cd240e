"""Transient errors are retried in place; bad data, model mismatches and bugs fail at once."""
from __future__ import annotations

import errno

import pytest
import sqlalchemy.exc

from tasks import retry
from pipeline.core.errors import DatabaseError, DatabaseURLError, DataError, ModelCheckError, PipelineError


def _wrapped(cause: BaseException) -> PipelineError:
    try:
        raise cause
    except BaseException as exc:
        try:
            raise PipelineError("cannot write the output folder x") from exc
        except PipelineError as outer:
            return outer


@pytest.mark.parametrize("exc, transient", [
    (DatabaseError("cannot connect"), True),
    (sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (_wrapped(OSError(errno.ENOSPC, "No space left on device")), True),
    (_wrapped(OSError(errno.EACCES, "Permission denied")), False),
    (OSError(errno.EROFS, "Read-only file system"), False),
    (DataError("sales: negative units"), False),
    (DatabaseURLError("postgresql://u:***@h:x/db is not a valid SQLAlchemy URL"), False),
    (_wrapped(ModuleNotFoundError("No module named 'psycopg'")), False),
    (ModelCheckError("compiled != LightGBM"), False),
    (ValueError("a bug"), False),
    (KeyError("a bug"), False),
])
def test_what_is_transient(exc, transient):
    assert retry.is_transient(exc) is transient


class Task:
    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0

    def __str__(self):
        return "Task()"


def _policy():
    return 3, 7.0


def test_a_transient_error_is_retried_and_the_retry_can_succeed(caplog):
    slept = []

    def run(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"

    wrapped = retry.retrying(run, str, _policy, sleep=slept.append)
    task = Task([DatabaseError("down"), OSError(errno.EIO, "I/O error")])
    with caplog.at_level("WARNING", logger="pipeline"):
        assert wrapped(task) == "done"
    assert task.calls == 3 and slept == [7.0, 7.0]
    assert "succeeded in a retry (attempt 3 of 3)" in caplog.text


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    monkeypatch.setattr(retry, "_given_up", [])


def test_retries_end_after_the_configured_attempts_and_later_tasks_get_one_try():
    slept = []

    def run(self):
        self.calls += 1
        raise DatabaseError("still down")

    wrapped = retry.retrying(run, str, _policy, sleep=slept.append)
    task = Task([])
    with pytest.raises(DatabaseError):
        wrapped(task)
    assert task.calls == 3 and len(slept) == 2
    later = Task([])
    with pytest.raises(DatabaseError):
        wrapped(later)
    assert later.calls == 1 and len(slept) == 2  # the database is down for good: no second round of waiting


@pytest.mark.parametrize("error", [DataError("bad data"), ModelCheckError("mismatch"), ValueError("bug")])
def test_an_error_a_retry_cannot_fix_fails_at_once(error):
    slept = []

    def run(self):
        self.calls += 1
        raise error

    task = Task([])
    with pytest.raises(type(error)):
        retry.retrying(run, str, _policy, sleep=slept.append)(task)
    assert task.calls == 1 and slept == []


def test_a_generator_run_passes_requirements_through_and_is_retried_from_the_start():
    slept = []

    def run(self):
        self.calls += 1
        got = yield "requirement"
        assert got == "its output"
        if self.errors:
            raise self.errors.pop(0)

    task = Task([OSError(errno.ENOSPC, "No space left on device")])
    gen = retry.retrying(run, str, _policy, sleep=slept.append)(task)
    seen = [next(gen)]
    with pytest.raises(StopIteration):
        while True:
            seen.append(gen.send("its output"))
    assert seen == ["requirement", "requirement"] and task.calls == 2 and slept == [7.0]
