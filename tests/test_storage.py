"""Atomic outputs: nothing half-written under a final name."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.data import storage
def test_atomic_dir_publishes_only_on_success(tmp_path):
    final = tmp_path / "out" / "2016-05-22"
    with pytest.raises(RuntimeError):
        with storage.atomic_dir(final) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("crash in the middle")
    assert not final.exists() and list((tmp_path / "out").iterdir()) == []
    with storage.atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("whole")
        assert not final.exists()
    assert (final / "a.txt").read_text() == "whole"


def test_atomic_dir_replaces_an_incomplete_folder(tmp_path):
    final = tmp_path / "d"
    final.mkdir()
    (final / "stale.txt").write_text("left over")
    with storage.atomic_dir(final) as tmp:
        (tmp / "new.txt").write_text("x")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_parquet_and_hash_are_deterministic(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": pd.Categorical(["x", "y", "x"]), "c": [0.5, 1.5, None]})
    storage.write_parquet(frame, tmp_path / "1.parquet")
    storage.write_parquet(frame.copy(), tmp_path / "2.parquet")
    assert storage.file_hash(tmp_path / "1.parquet") == storage.file_hash(tmp_path / "2.parquet")
    assert storage.frame_hash(frame) == storage.frame_hash(frame.copy())
    changed = frame.copy()
    changed.loc[1, "a"] = 5
    assert storage.frame_hash(changed) != storage.frame_hash(frame)


def test_atomic_file_leaves_no_temporary_file(tmp_path):
    storage.atomic_file(tmp_path / "f.csv", b"a,b\n")
    assert [p.name for p in tmp_path.iterdir()] == ["f.csv"]


def test_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path):
    import errno

    from pipeline.core.errors import PipelineError

    final = tmp_path / "out" / "2016-05-22"
    with pytest.raises(PipelineError, match=r"cannot write the output folder .*2016-05-22.*No space left.*ENOSPC"):
        with storage.atomic_dir(final) as tmp:
            (tmp / "part.parquet").write_bytes(b"x" * 10)
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list((tmp_path / "out").iterdir()) == []


def test_unwritable_data_folder_is_a_clear_error(tmp_path):
    from pipeline.core.errors import PipelineError

    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(PipelineError, match="cannot write the output folder.*data folder"):
        with storage.atomic_dir(blocker / "snapshots" / "2016-05-22"):
            pass


def test_temporaries_of_dead_processes_are_cleaned(tmp_path):
    import subprocess

    proc = subprocess.Popen(["true"])  # its pid is that of a process that has exited
    proc.wait()
    stale = tmp_path / f".d.tmp-{proc.pid}-abc"
    stale.mkdir()
    mine = tmp_path / f".d.tmp-{__import__('os').getpid()}-xyz"  # a live writer's folder is kept
    mine.mkdir()
    with storage.atomic_dir(tmp_path / "d") as tmp:
        (tmp / "f").write_text("x")
    assert not stale.exists() and mine.exists()


def test_a_complete_folder_published_by_another_run_is_kept(tmp_path):
    final = tmp_path / "d"
    final.mkdir()
    (final / "f.txt").write_text("first writer")
    inode = final.stat().st_ino
    with storage.atomic_dir(final) as tmp:
        (tmp / "f.txt").write_text("first writer")
    assert final.stat().st_ino == inode  # never renamed away, so never missing for readers
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
