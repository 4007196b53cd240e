"""``RunDateParameter``: a run date that, when it does not parse, says in one line what was expected.

Luigi parses a task's command-line values only when it instantiates the task
(``CmdlineParser.get_task_obj`` -> ``DateParameter.parse`` -> ``strptime``), inside
``luigi.retcodes.run_with_retcodes``'s ``try``; a bad date there ends as
"Uncaught exception in luigi" with a ``ValueError`` traceback and exit code 40.

This parameter checks its value earlier, while ``CmdlineParser`` runs argparse
(its ``_parser_kwargs`` gives argparse an action of ours), which happens before
that ``try``: a bad ``--date`` (or ``--DailyForecast-date``) prints

    --date: '2016-13-01' is not a date: expected YYYY-MM-DD (e.g. 2016-05-22)

on stderr and exits with status 2 (argparse's status for a bad command line),
without a traceback. Nothing at the entry point is needed. A bad value from
anywhere else (a ``[DailyForecast] date`` in luigi.cfg, ``Task.from_str_params``)
raises ``BadDate``, a ``ValueError`` with the same message.

This module must not import ``tasks``: the tasks import it.
"""
from __future__ import annotations

import argparse
import datetime as dt

import luigi

EXAMPLE = dt.date(2016, 5, 22)


class BadDate(ValueError):
    """A run date that does not parse; the message says what was expected."""


def _message(value, flag: str = "") -> str:
    head = f"{flag}: " if flag else ""
    return f"{head}{value!r} is not a date: expected YYYY-MM-DD (e.g. {EXAMPLE.isoformat()})"


class _CheckDate(argparse.Action):
    """Store the raw value (Luigi parses it later) once it is known to parse; else one line and exit 2."""

    def __init__(self, *args, run_date_parameter: "RunDateParameter", **kwargs):
        super().__init__(*args, **kwargs)
        self.run_date_parameter = run_date_parameter

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            self.run_date_parameter.parse(values)
        except BadDate:
            parser.exit(2, _message(values, option_string or self.dest) + "\n")
        setattr(namespace, self.dest, values)


class RunDateParameter(luigi.DateParameter):
    """A ``luigi.DateParameter`` (``YYYY-MM-DD``) whose bad value is one clear line, not a traceback."""

    def parse(self, s):
        try:
            return super().parse(s)
        except (TypeError, ValueError) as exc:
            raise BadDate(_message(s)) from exc

    def _parser_kwargs(self, param_name, task_name=None):
        kwargs = super()._parser_kwargs(param_name, task_name)
        parameter = self

        class Check(_CheckDate):
            def __init__(self, *args, **kw):
                super().__init__(*args, run_date_parameter=parameter, **kw)

        kwargs["action"] = Check
        return kwargs


class YesterdayParameter(RunDateParameter):
    """A run date that, when none is given, is yesterday (the last complete day) as of building the task.

    The default is computed each time a task is built, not once when the module is
    imported: a long-lived process (the scheduler's worker, a notebook) asking for
    ``DailyForecast()`` after midnight gets the new day.
    """

    def __init__(self, **kwargs):
        kwargs.pop("default", None)
        super().__init__(**kwargs)

    def _value_iterator(self, task_name, param_name):
        yield from super()._value_iterator(task_name, param_name)
        yield (dt.date.today() - dt.timedelta(days=1), None)
