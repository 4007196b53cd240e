"""The test tiers: which tests are slow, and the fast tier's time budget per test (a pytest plugin).

Markers (registered in pyproject.toml): ``slow`` (trains a model, compiles with gcc, starts a luigi,
luigid or pytest process, Chromium or a Dask cluster), ``browser`` (needs headless Chromium, from
``make browser``), ``postgres`` (needs a PostgreSQL server). ``make test-fast`` deselects all three;
``make test`` runs everything.

A test that uses a fixture of the chain (a tiny world to build, luigid, Chromium, PostgreSQL) is marked
here, by the fixtures it uses; any other slow test carries its marker itself. One that nobody marked
cannot hide in the fast tier: with ``--fast-budget=SECONDS`` a test whose set-up and run took longer
fails, naming the marker to add.
"""
from __future__ import annotations

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
                     help="fail a test whose set-up and run take longer than SECONDS, asking for a slow marker "
                          "(make test-fast)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture in item.fixturenames:
            for name in MARKS_BY_FIXTURE.get(fixture, ()):
                item.add_marker(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    budget = item.config.getoption("--fast-budget")
    if budget is None:
        return report
    if report.when == "setup":
        item.stash[_setup_seconds] = report.duration
    elif report.when == "call" and report.passed:
        took = item.stash.get(_setup_seconds, 0.0) + report.duration
        if took > budget:
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid} took {took:.1f} s (set-up and run), over the fast tier's budget of "
                               f"{budget:g} s: mark it @pytest.mark.slow (or give it a fixture of the chain, "
                               f"see tests/tiers.py), or make it faster")
    return report


_setup_seconds = pytest.StashKey[float]()
