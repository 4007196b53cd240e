"""Atomic, deterministic file outputs shared by every stage.

Each stage writes a whole dated folder at once: files go into a hidden sibling
temporary folder, which is renamed onto the final name only when everything in
it is written. A crash leaves at most a hidden ``.*.tmp-*`` folder, never a
half-written file under a final name.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.errors import PipelineError

# errors that mean "this folder cannot take our output", not a bug: reported as such
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


@contextlib.contextmanager
def atomic_dir(final: Path | str) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes ``final`` on success.

    On an exception the temporary folder is removed and ``final`` is untouched.
    If ``final`` already exists with every file we wrote (another run of the
    same task published first), ours is discarded: both are the same bytes,
    because every output is a function of (code, date, configuration), and the
    published folder never disappears, even for a moment. If ``final`` exists
    but lacks a file (an earlier run's folder was damaged by hand), it is replaced.
    Temporary folders of killed processes (``.<name>.tmp-<pid>-*`` whose pid is
    gone) are removed on the way. A full disk or an unwritable folder raises
    PipelineError naming the folder.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the published folder follows the umask
    except OSError as exc:
        raise _storage_error(final, exc) from exc
    try:
        yield tmp
        _fsync_tree(tmp)
        try:
            # atomic when nothing is published yet; a folder already there makes it fail (not empty)
            os.rename(tmp, final)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR) or not final.exists():
                raise
        if _holds_all(final, tmp):
            # a concurrent run of the same task published first: its folder has every file ours has,
            # with the same bytes (determinism); replacing it would make it vanish for a moment
            shutil.rmtree(tmp, ignore_errors=True)
            return
        if final.exists():  # a damaged earlier folder: replaced
            stale = final.with_name(f".{final.name}.old-{os.getpid()}-{tmp.name[-8:]}")
            try:
                os.rename(final, stale)
            except FileNotFoundError:  # another writer moved it away first
                pass
            else:
                shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            # a concurrent run of the same task won the race; keep its identical result
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in _STORAGE_ERRNOS:
            raise _storage_error(final, exc) from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _holds_all(final: Path, tmp: Path) -> bool:
    """Whether ``final`` has a file for every file written in ``tmp``."""
    return all((final / p.relative_to(tmp)).exists() for p in tmp.rglob("*") if p.is_file())


def _storage_error(final: Path, exc: OSError) -> PipelineError:
    return PipelineError(f"cannot write the output folder {final}: {exc.strerror or exc} "
                         f"({errno.errorcode.get(exc.errno, exc.errno)}); check that the data folder "
                         "(PIPELINE_DATA_DIR or [pipeline] data_dir) is writable and has free space")


def _remove_stale_temporaries(final: Path) -> None:
    """Remove temporary folders for ``final`` left by processes that no longer exist (e.g. SIGKILL)."""
    for path in final.parent.glob(f".{final.name}.tmp-*-*"):
        pid = path.name[len(f".{final.name}.tmp-"):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_file(final: Path | str, data: bytes) -> None:
    """Write ``data`` to ``final`` through a temporary file and a rename."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def write_json(path: Path | str, obj) -> None:
    """Write ``obj`` as stable, human-readable JSON (sorted keys)."""
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path | str):
    return json.loads(Path(path).read_text())


def write_parquet(frame: pd.DataFrame, path: Path | str) -> None:
    """Write ``frame`` to parquet deterministically (same frame ⇒ same bytes)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd", write_statistics=True, row_group_size=1 << 20)


def frame_hash(frame: pd.DataFrame) -> str:
    """A content hash of a frame's values, column names and dtypes (not of file bytes)."""
    h = hashlib.sha256()
    h.update(json.dumps([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def file_hash(path: Path | str) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
