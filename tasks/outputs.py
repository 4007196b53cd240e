"""Where a task's output lives, and what makes it complete: its date and a fingerprint of what shaped it.

A dated task writes ``<data_dir>/<stage>/<date>/<fingerprint>/``. The fingerprint
(``pipeline.core.identity``) hashes the task's own significant settings
(``settings()``) and the fingerprints of the tasks it requires, so a changed
setting writes new outputs beside the old ones, for that task and everything
downstream, while a pure rerun finds its outputs complete. Operational knobs
(threads, Dask workers, compiler speed options) are not settings of any output.
Every folder holds ``settings.json``: the identity that was hashed, so a person
finds which configuration made which folder.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import luigi

from pipeline.core import identity
from pipeline.data import storage
from tasks import config
from tasks.base import PipelineTask
from tasks.dates import RunDateParameter

SETTINGS_FILE = "settings.json"


class FolderTarget(luigi.Target):
    """An output folder; it exists when every listed file in it exists."""

    def __init__(self, path: Path, files: tuple[str, ...]):
        self.path = Path(path)
        self.files = files

    def exists(self) -> bool:
        return all((self.path / f).exists() for f in self.expected_files())

    def expected_files(self) -> list[str]:
        return list(self.files)

    def file(self, name: str) -> Path:
        return self.path / name


def _required_tasks(requires, prefix: str = "") -> dict[str, luigi.Task]:
    """``requires()``'s tasks by a stable name (dict keys, list positions)."""
    if requires is None:
        return {}
    if isinstance(requires, luigi.Task):
        return {prefix or "input": requires}
    items = requires.items() if isinstance(requires, dict) else enumerate(requires)
    found = {}
    for key, value in items:
        found.update(_required_tasks(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


class Fingerprinted(PipelineTask):
    """A task whose output folder carries the fingerprint of its settings and inputs."""

    stage: str = ""
    files: tuple[str, ...] = ()
    in_path: tuple[str, ...] = ()  # parameters spelled in the folder's path, so not hashed again
    unhashed_inputs: tuple[str, ...] = ()  # names of required tasks whose fingerprints are not hashed (a chain of dates)

    def settings(self) -> dict:
        """The settings that shape this task's bytes (besides its parameters and inputs)."""
        return {}

    def identity(self) -> dict:
        inputs = {name: task.fingerprint() for name, task in _required_tasks(self.requires()).items()
                  if isinstance(task, Fingerprinted) and name not in self.unhashed_inputs}
        parameters = {k: v for k, v in self.to_str_params(only_significant=True).items() if k not in self.in_path}
        return {"task": self.get_task_family(), "parameters": parameters, "settings": self.settings(), "inputs": inputs}

    def fingerprint(self) -> str:
        # Luigi hands out one instance per task id, also after the configuration changed (a test, a
        # notebook): the fingerprint is remembered per state of the configuration, not per instance
        state = config.state()
        if getattr(self, "_fingerprint", (None, None))[0] != state:
            self._fingerprint = (state, identity.fingerprint(self.identity()))
        return self._fingerprint[1]

    def home(self) -> Path:
        """The folder holding this task's outputs of every configuration."""
        raise NotImplementedError

    def folder(self) -> Path:
        return self.home() / self.fingerprint()

    def output(self) -> FolderTarget:
        return FolderTarget(self.folder(), (*self.files, SETTINGS_FILE))

    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """The output folder, written atomically, with ``settings.json`` (the identity hashed)."""
        with storage.atomic_dir(self.folder()) as tmp:
            storage.write_json(tmp / SETTINGS_FILE, {"fingerprint": self.fingerprint(), **self.identity()})
            yield tmp


class DatedTask(Fingerprinted):
    """A task of one run date writing ``<data_dir>/<stage>/<date>/<fingerprint>/``."""

    date = RunDateParameter()
    in_path = ("date",)

    def home(self) -> Path:
        return config.data_dir() / self.stage / self.date.isoformat()

    def report_progress(self, fraction: float, message: str) -> None:
        """Show progress in the visualiser (percentage bar and status message)."""
        self.set_progress_percentage(int(100 * min(max(fraction, 0.0), 1.0)))
        self.set_status_message(message)

    def dask_options(self) -> dict:
        opts = config.dask()
        return {"address": config.scheduler_address(), "n_workers": opts.n_workers,
                "threads_per_worker": opts.threads_per_worker}


def current_output(stage: str, date, data_dir: Path | None = None) -> Path | None:
    """The one output folder of ``stage`` for ``date`` when only one configuration made it, else None."""
    home = (data_dir or config.data_dir()) / stage / str(date)
    found = sorted(p for p in home.glob("*") if (p / SETTINGS_FILE).exists()) if home.is_dir() else []
    return found[0] if len(found) == 1 else None
