"""A run date that does not parse is one line saying what was expected, and a non-zero exit, not a traceback."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import luigi
import pytest

from tasks.dates import BadDate, RunDateParameter
from tests.conftest import PROJECT_ROOT

TASKS = '''
import luigi

from tasks.dates import RunDateParameter


class Dated(luigi.Task):
    date = RunDateParameter()

    def complete(self):
        return self.date.isoformat() == "2016-05-22"


class DatedWithDefault(luigi.WrapperTask):
    date = RunDateParameter(default=__import__("datetime").date(2016, 5, 22))
'''


def luigi_run(tmp_path, *args) -> subprocess.CompletedProcess:
    (tmp_path / "datedtasks.py").write_text(TASKS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT_ROOT)])}
    return subprocess.run([sys.executable, "-m", "luigi", "--module", "datedtasks", *args, "--local-scheduler"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("flag, value", [("--date", "2016-13-01"), ("--date", "2016-02-30"), ("--date", "yesterday"),
                                         ("--date", ""), ("--Dated-date", "22/05/2016")])
def test_a_bad_date_on_the_command_line_is_one_line_and_exit_code_2(tmp_path, flag, value):
    done = luigi_run(tmp_path, "Dated", flag, value)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"{flag}: {value!r} is not a date: expected YYYY-MM-DD (e.g. 2016-05-22)\n"


@pytest.mark.slow
def test_a_good_date_runs_and_a_default_still_works(tmp_path):
    done = luigi_run(tmp_path, "Dated", "--date", "2016-05-22")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    done = luigi_run(tmp_path, "DatedWithDefault")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_the_parameter_parses_as_luigis_date_parameter():
    p = RunDateParameter()
    assert p.parse("2016-05-22") == dt.date(2016, 5, 22) == luigi.DateParameter().parse("2016-05-22")
    assert p.serialize(dt.date(2016, 5, 22)) == "2016-05-22"
    with pytest.raises(BadDate, match=r"^'2016-13-01' is not a date: expected YYYY-MM-DD \(e.g. 2016-05-22\)$"):
        p.parse("2016-13-01")
    assert issubclass(BadDate, ValueError)  # what Luigi's callers of parse() expect


@pytest.mark.slow
def test_the_real_tasks_use_it():
    """`luigi --module pipeline DailyForecast --date 2016-13-01` says it in one line."""
    from tasks import DailyForecast

    assert isinstance(DailyForecast.date, RunDateParameter)
    done = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline", "DailyForecast", "--date",
                           "2016-13-01", "--local-scheduler"], capture_output=True, text=True, timeout=300,
                          cwd=PROJECT_ROOT)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "--date: '2016-13-01' is not a date: expected YYYY-MM-DD (e.g. 2016-05-22)\n"
