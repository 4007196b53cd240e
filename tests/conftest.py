"""Shared fixtures: small hand-made databases, the tiny synthetic world, a fast chain configuration (empty, or
built once per session and copied), luigid.

Tests write only under their temporary folders: ``project_data_untouched`` (autouse,
whole session) fails the session if the project's ``data/`` (or the data folder
of the environment the tests were started from) changed while it ran.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import luigi
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tasks import config
from pipeline.data import db
from pipeline.tools import world

pytest_plugins = ["tests.tiers"]  # the slow/browser/postgres markers and the fast tier's budget
RUN_DATE = world.DEFAULT_RUN_DATE
SHARED_M5 = Path(__file__).resolve().parents[2] / "shared" / "data" / "m5"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_DATA = PROJECT_ROOT / "data"

# a small, fast model for the chain tests; the schedule anchors on the default run date
FAST_TRAINING = {
    "window_days": "120",
    "num_boost_round": "40",
    "early_stopping_rounds": "10",
    "num_leaves": "15",
    "min_data_in_leaf": "20",
    # one model per training date, no chain of earlier ones (tests/test_promote.py sets its own start)
    "promotion_start": RUN_DATE.isoformat(),
}
# small blocks of trees, so that the chain's small models are served by several summed libraries
FAST_COMPILER = {"trees_per_block": "8"}
# the online model starts two days before the run date, warmed up over 120 days: the chain runs its
# warm-up and two daily updates, and the run date's published forecast blends it in (the project's
# weight; tests/test_online_model_chain.py sets its own start and weight, restored from here)
FAST_ONLINE = {"start_date": (RUN_DATE - dt.timedelta(days=2)).isoformat(), "warmup_days": "120",
               "blend_weight": "0.3"}


def sales_frame(rows: list[tuple]) -> pd.DataFrame:
    """Sales rows (store_id, item_id, date, units, recorded_at) as the table's frame."""
    frame = pd.DataFrame(rows, columns=["store_id", "item_id", "date", "units", "recorded_at"])
    frame["date"] = pd.to_datetime(frame["date"], format="ISO8601")
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], format="ISO8601")
    return frame


POSTGRES_ADMIN_URL = os.environ.get("PIPELINE_TEST_POSTGRES_URL",
                                    "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def fresh_postgres(prefix: str, password: str | None = None):
    """The URL of a new, empty PostgreSQL database (dropped afterwards); the test skips, saying why,
    when no server is reachable. ``password``: one the server ignores (trust auth) but the URL carries."""
    import uuid

    try:
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # no server here: say so, do not pretend
        pytest.skip(f"PostgreSQL not reachable at {db.redact(POSTGRES_ADMIN_URL)} ({type(exc).__name__}); "
                    "set PIPELINE_TEST_POSTGRES_URL to run these tests")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
    if password is not None:
        url = url.set(password=password)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def small_db(tmp_path):
    """A hand-made database: 2 items x 2 stores, daily sales 2016-01-01..2016-05-22 recorded at 23:00.

    Returns (url, engine). Tests add their own anomalies on top.
    """
    url = f"sqlite:///{tmp_path / 'small.sqlite'}"
    engine = sa.create_engine(url)
    db.create_schema(engine)
    calendar = world.build_calendar()
    db.bulk_insert(engine, db.calendar, calendar)
    db.bulk_insert(engine, db.items, pd.DataFrame({"item_id": ["FOODS_1_001", "HOBBIES_1_001"],
                                                   "dept_id": ["FOODS_1", "HOBBIES_1"], "cat_id": ["FOODS", "HOBBIES"]}))
    db.bulk_insert(engine, db.stores, pd.DataFrame({"store_id": ["CA_1", "TX_1"], "state_id": ["CA", "TX"]}))
    days = pd.date_range("2016-01-01", RUN_DATE)
    rows = []
    for k, (store, item) in enumerate([("CA_1", "FOODS_1_001"), ("CA_1", "HOBBIES_1_001"),
                                       ("TX_1", "FOODS_1_001"), ("TX_1", "HOBBIES_1_001")]):
        units = (np.arange(len(days)) + k) % 5
        rows += [(store, item, d, int(u), d + pd.Timedelta(hours=23)) for d, u in zip(days, units)]
    db.bulk_insert(engine, db.sales, sales_frame(rows))
    weeks = calendar[(calendar["date"] >= days[0]) & (calendar["date"] <= days[-1])].groupby("wm_yr_wk")["date"].min()
    prices = pd.DataFrame([(s, i, wk, 2.5, start) for s in ("CA_1", "TX_1") for i in ("FOODS_1_001", "HOBBIES_1_001")
                           for wk, start in weeks.items()],
                          columns=["store_id", "item_id", "wm_yr_wk", "sell_price", "recorded_at"])
    db.bulk_insert(engine, db.sell_prices, prices)
    return url, engine


@pytest.fixture(scope="session")
def tiny_world_file(tmp_path_factory) -> Path:
    """The tiny synthetic world, generated once per test session (tests copy it before changing it)."""
    path = tmp_path_factory.mktemp("world") / "tiny.sqlite"
    world.generate_world(f"sqlite:///{path}", scale="tiny", seed=7)
    return path


@contextlib.contextmanager
def fast_chain(folder: Path, monkeypatch: pytest.MonkeyPatch):
    """The pipeline pointed at ``folder/world.sqlite`` and the data folder ``folder/data``, fast settings.

    The settings reach ``luigi.build`` in this process (Luigi's configuration, restored on exit) and the
    ``luigi`` commands a test starts (``folder/test-luigi.cfg``); the environment goes through
    ``monkeypatch``. Yields a namespace with ``url``, ``engine``, ``data`` and ``build(tasks)``.
    """
    url = f"sqlite:///{folder / 'world.sqlite'}"
    monkeypatch.setenv("PIPELINE_DATABASE_URL", url)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(folder / "data"))
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "synchronous")
    # a failure in a test is final at once, and nothing waits for retries (retries have their own test)
    settings = {"training": FAST_TRAINING, "compiler": FAST_COMPILER, "online_model": FAST_ONLINE, "retry": {"attempts": "1"},
                "worker": {"keep_alive": "false"}}
    cfg_file = folder / "test-luigi.cfg"
    cfg_file.write_text("".join(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
                                for section, values in settings.items()))
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(cfg_file))
    cfg = luigi.configuration.get_config()
    saved = {(section, k): cfg.get(section, k, None) for section, values in settings.items() for k in values}
    for section, values in settings.items():
        if not cfg.has_section(section):
            cfg.add_section(section)
        for key, value in values.items():
            cfg.set(section, key, value)

    class Env:
        pass

    env = Env()
    env.url, env.engine, env.data = url, sa.create_engine(url), folder / "data"
    env.build = lambda tasks: luigi.build(tasks, local_scheduler=True, detailed_summary=True, log_level="WARNING")
    try:
        yield env
    finally:
        env.engine.dispose()
        for (section, key), value in saved.items():
            if value is None:
                cfg.remove_option(section, key)
            else:
                cfg.set(section, key, value)


@pytest.fixture
def chain_env(request, tmp_path, tiny_world_file, monkeypatch):
    """A private copy of the tiny world and an empty private data folder, fast settings (``fast_chain``).

    A test marked ``prebuilt_chain`` starts instead from private copies of the database and data folder
    of the chain built once per session (``built_chain_folder``): building DailyForecast or Evaluate of
    the run date finds them complete, and the test may change or delete its copies. A test that must see
    the run date's chain run, or that changes the database before it runs, is not marked.
    """
    if request.node.get_closest_marker("prebuilt_chain"):
        built = request.getfixturevalue("built_chain_folder")
        shutil.copy(built / "world.sqlite", tmp_path / "world.sqlite")
        shutil.copytree(built / "data", tmp_path / "data", symlinks=True)
    else:
        shutil.copy(tiny_world_file, tmp_path / "world.sqlite")
    with fast_chain(tmp_path, monkeypatch) as env:
        yield env


@pytest.fixture(scope="session")
def built_chain_folder(tmp_path_factory, tiny_world_file) -> Path:
    """The tiny world's chain, DailyForecast and Evaluate of the run date, built once per session in
    ``world.sqlite`` and ``data/`` of the returned folder; only ``chain_env`` reads it, to copy it."""
    from tasks import DailyForecast, Evaluate

    folder = tmp_path_factory.mktemp("built-chain")
    shutil.copy(tiny_world_file, folder / "world.sqlite")
    with pytest.MonkeyPatch.context() as monkeypatch, fast_chain(folder, monkeypatch) as env:
        result = env.build([DailyForecast(date=RUN_DATE), Evaluate(date=RUN_DATE)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    return folder


def day(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


# ----------------------------------------------------------------------------------------------
# The user's data is never touched
# ----------------------------------------------------------------------------------------------


def tree_state(root: Path) -> dict[str, tuple] | None:
    """Every path under ``root`` with its kind, size and mtime (ns); None when ``root`` does not exist.

    Folders are listed too: a file created and deleted again still changes its folder's mtime.
    """
    if not os.path.lexists(root):
        return None
    state = {".": ("dir", 0, root.lstat().st_mtime_ns)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            try:
                st = path.lstat()
            except FileNotFoundError:  # removed while we looked: a change the comparison will show
                continue
            kind = "dir" if name in dirs else "file"
            state[str(path.relative_to(root))] = (kind, st.st_size if kind == "file" else 0, st.st_mtime_ns)
    return state


def tree_changes(before: dict | None, after: dict | None) -> list[str]:
    """What differs between two ``tree_state``s, one line per path."""
    if before is None or after is None:
        return [] if before == after else [f"the folder was {'created' if before is None else 'removed'}"]
    changes = [f"+ {p}" for p in sorted(after.keys() - before.keys())]
    changes += [f"- {p}" for p in sorted(before.keys() - after.keys())]
    changes += [f"~ {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return changes


def guarded_data_dirs() -> list[Path]:
    """The project's ``data/`` and the data folder of the environment the tests were started from."""
    roots = [PROJECT_DATA]
    if os.environ.get("PIPELINE_DATA_DIR"):
        roots.append(config.resolve(os.environ["PIPELINE_DATA_DIR"]))
    return list(dict.fromkeys(roots))


@pytest.fixture(scope="session", autouse=True)
def project_data_untouched():
    """Fail the session if the user's data folder changed while the tests ran.

    Anything else writing there meanwhile (a real run in this checkout) fails it too: the
    message lists the paths. PIPELINE_TESTS_ALLOW_DATA_CHANGES=1 turns the guard off.
    """
    if os.environ.get("PIPELINE_TESTS_ALLOW_DATA_CHANGES"):
        yield
        return
    roots = guarded_data_dirs()
    before = {root: tree_state(root) for root in roots}
    yield
    problems = []
    for root in roots:
        changes = tree_changes(before[root], tree_state(root))
        if changes:
            shown = "\n  ".join(changes[:20]) + (f"\n  ... {len(changes) - 20} more" if len(changes) > 20 else "")
            problems.append(f"{root} changed during the test session (tests must write only under their "
                            f"temporary folders):\n  {shown}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ----------------------------------------------------------------------------------------------
# The central scheduler, on a free port, every file of it under a temporary folder
# ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_luigid(folder: Path, env: dict | None = None, explicit_paths: bool = True):
    """``python -m tasks.scheduler`` on a free port, its output in ``folder/luigid.out``; yields the port.

    ``explicit_paths``: its state and logs go to ``folder/luigid/state.pickle`` and
    ``folder/luigid-logs`` (``--state-path``, ``--logdir``); otherwise to its defaults,
    under the environment's data folder (``PIPELINE_DATA_DIR``). Task history goes to
    the environment's database (``PIPELINE_DATABASE_URL``, e.g. chain_env's copy of the
    tiny world). On exit it is stopped with SIGTERM, so it saves its state as it would
    on a real shutdown.
    """
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "luigid.out"
    cmd = [sys.executable, "-m", "tasks.scheduler", "--port", str(port)]
    if explicit_paths:
        cmd += ["--state-path", str(folder / "luigid" / "state.pickle"), "--logdir", str(folder / "luigid-logs")]
    with open(out, "w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"luigid did not start: {out.read_text()}")
                time.sleep(0.2)
        yield port
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the process saves its state and exits as on a real shutdown), SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def luigid(chain_env, tmp_path):
    """luigid for the chain's environment (history in its tiny world), files under ``tmp_path/scheduler``."""
    with start_luigid(tmp_path / "scheduler") as port:
        yield port
