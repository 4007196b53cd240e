"""The test tiers: which tests are slow, and the fast tier's time budget per test (a pytest plugin).

Markers (registered in pyproject.toml): ``slow`` (trains a model, compiles with gcc, starts a luigi,
luigid or pytest process, Chromium or a Dask cluster), ``browser`` (needs headless Chromium, from
``make browser``), ``postgres`` (needs a PostgreSQL server). ``make test-fast`` deselects all three;
``make test`` runs everything.

A test that uses a fixture of the chain (a tiny world to build, luigid, Chromium, PostgreSQL) is marked
here, by the fixtures it uses; any other slow test carries its marker itself. One that nobody marked
cannot hide in the fast tier: with ``--fast-budget=SECONDS`` a test whose set-up and run took more CPU
time fails, naming the marker to add.
"""
from __future__ import annotations

import os

import pytest

# fixture -> the markers every test using it (directly or through another fixture) gets
MARKS_BY_FIXTURE = {
    "chain_env": ("slow",),
    "luigid": ("slow",),
    "chromium": ("slow", "browser"),
    "pg_world": ("postgres",),
    "pg_engine": ("postgres",),
}


def pytest_addoption(parser):
    parser.addoption("--fast-budget", type=float, default=None, metavar="SECONDS",
                     help="fail a test whose set-up and run take more than SECONDS of CPU (its own and that of the "
                          "processes it waited for), asking for a slow marker (make test-fast)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture in item.fixturenames:
            for name in MARKS_BY_FIXTURE.get(fixture, ()):
                item.add_marker(name)


def cpu_seconds() -> float:
    """CPU time of this process and of the child processes it waited for: unlike the wall clock, it does
    not grow when other work shares the machine, and it counts a `luigi` or gcc process a test ran."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    item.stash[_started] = cpu_seconds()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    budget = item.config.getoption("--fast-budget")
    if budget is None or report.when != "call" or not report.passed or _started not in item.stash:
        return report
    took = cpu_seconds() - item.stash[_started]
    if took > budget:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} took {took:.1f} s of CPU (set-up and run), over the fast tier's budget "
                           f"of {budget:g} s: mark it @pytest.mark.slow (or give it a fixture of the chain, see "
                           "tests/tiers.py), or make it faster")
    return report


_started = pytest.StashKey[float]()
