"""Tests never touch the user's data: the scheduler fixture and a run against it write only under tmp folders."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tasks import config
from tasks import scheduler
from tests.outputs import out
from tests.conftest import PROJECT_DATA, RUN_DATE, start_luigid, tree_changes, tree_state


def test_luigid_paths_are_under_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = scheduler.luigid()
    # luigi.cfg's own spelling (data/luigid/state.pickle, data/logs) follows the data folder
    assert scheduler.in_data_dir(settings.state_path) == tmp_path / "elsewhere" / "luigid" / "state.pickle"
    assert scheduler.in_data_dir(settings.logdir) == tmp_path / "elsewhere" / "logs"
    assert scheduler.in_data_dir("data/luigid/state.pickle") == tmp_path / "elsewhere" / "luigid" / "state.pickle"
    assert scheduler.in_data_dir("luigid/state.pickle") == tmp_path / "elsewhere" / "luigid" / "state.pickle"
    assert scheduler.in_data_dir(str(tmp_path / "abs.pickle")) == tmp_path / "abs.pickle"
    monkeypatch.delenv("PIPELINE_DATA_DIR")
    assert scheduler.in_data_dir(settings.state_path) == config.PROJECT_ROOT / "data" / "luigid" / "state.pickle"


def test_tree_changes_sees_new_changed_and_removed_files(tmp_path):
    root = tmp_path / "data"
    assert tree_state(root) is None and tree_changes(None, tree_state(root)) == []
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "a.log").write_text("a")
    before = tree_state(root)
    assert tree_changes(before, tree_state(root)) == []
    time.sleep(0.05)  # file times have the kernel's coarse clock (a few ms)
    (root / "logs" / "a.log").write_text("ab")
    (root / "new").write_text("x")
    changes = tree_changes(before, tree_state(root))
    assert "+ new" in changes and "~ logs/a.log" in changes
    (root / "new").unlink()  # created and removed again: its folder's mtime still shows it
    assert "~ ." in tree_changes(before, tree_state(root))
    assert tree_changes(None, before) == ["the folder was created"]


def run_against(port: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline", "ExtractSnapshot", "--date",
                           RUN_DATE.isoformat(), "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port)],
                          capture_output=True, text=True, timeout=600)


def test_the_luigid_fixture_and_a_run_against_it_leave_the_project_data_alone(chain_env, tmp_path):
    before = tree_state(PROJECT_DATA)  # the project's data/ (it may not exist)
    with start_luigid(tmp_path / "scheduler") as port:
        done = run_against(port)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert tree_changes(before, tree_state(PROJECT_DATA)) == []
    # everything went to the temporary folders: luigid's state and log, the run's output and log
    assert (tmp_path / "scheduler" / "luigid" / "state.pickle").stat().st_size > 0
    assert "Scheduler starting up" in (tmp_path / "scheduler" / "luigid-logs" / "luigi-server.log").read_text()
    assert (out(chain_env.data, "snapshots", RUN_DATE.isoformat()) / "manifest.json").exists()
    assert (chain_env.data / "logs" / "pipeline.log").exists()


def test_luigid_by_default_keeps_its_state_and_logs_in_the_configured_data_folder(chain_env, tmp_path):
    before = tree_state(PROJECT_DATA)
    with start_luigid(tmp_path / "scheduler", explicit_paths=False):  # PIPELINE_DATA_DIR is chain_env's
        pass
    assert tree_changes(before, tree_state(PROJECT_DATA)) == []
    assert (chain_env.data / "luigid" / "state.pickle").exists()
    assert (chain_env.data / "logs" / "luigi-server.log").exists()


LEAKY_TEST = '''
import os
from pathlib import Path


def test_writes_into_the_users_data_folder():
    (Path(os.environ["PIPELINE_DATA_DIR"]) / "leak.txt").write_text("oops")
'''


@pytest.mark.slow
def test_the_session_guard_fails_a_session_that_writes_into_the_users_data_folder(tmp_path):
    """The autouse guard of tests/conftest.py, in a pytest of its own whose "user's" data folder is a tmp one."""
    users = tmp_path / "users-data"
    users.mkdir()
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    env = {**os.environ, "PIPELINE_DATA_DIR": str(users)}
    env.pop("PIPELINE_TESTS_ALLOW_DATA_CHANGES", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           str(tmp_path / "test_leaky.py")], cwd=config.PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "1 passed, 1 error" in out and f"{users} changed during the test session" in out and "+ leak.txt" in out, out
