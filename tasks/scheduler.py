"""``python -m tasks.scheduler``: Luigi's central scheduler (luigid) set up for this project.

* Port, address, state file and log folder come from ``[luigid]`` in luigi.cfg, or
  from ``--state-path`` / ``--logdir``. The state file and log folder belong to the
  data folder: a relative path is under the data folder (``PIPELINE_DATA_DIR`` or
  ``[pipeline] data_dir``, see ``state_file``), so a luigid started for another data
  folder (a test's temporary one) neither reads nor writes the project's ``data/``.
* Task history is recorded through SQLAlchemy into the project's database
  (``[task_history] db_connection``, default: the source database URL, i.e.
  ``PIPELINE_DATABASE_URL`` or ``[pipeline] database_url``), so the visualiser's
  ``/history`` pages work.

Why a launcher and not plain ``luigid``: Luigi 3.8's task history cannot start on
SQLite with SQLAlchemy 2.x (spotify/luigi#3227). Its schema check
``luigi.db_task_history._upgrade_schema`` runs ``conn.execute("PRAGMA ...")`` with
a plain string (SQLAlchemy 2 requires ``text()``) and reads rows by column name
(SQLAlchemy 2 rows are tuples). We replace that one function, before the server
starts, with the same logic written for SQLAlchemy 2; everything else is Luigi's
own. Remove this when Luigi ships the fix upstream.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import luigi
import sqlalchemy as sa

from tasks import config  # noqa: F401  (logs: log records are masked)
from pipeline.data import db
from tasks import logs

logger = logging.getLogger("luigi.server")


class luigid(luigi.Config):  # noqa: N801 - section name in luigi.cfg
    """The ``[luigid]`` section."""

    address = luigi.Parameter(default="127.0.0.1")
    port = luigi.IntParameter(default=8082)
    state_path = luigi.Parameter(default="luigid/state.pickle",
                                 description="relative: under the data folder")
    logdir = luigi.Parameter(default="logs", description="relative: under the data folder")


def in_data_dir(path: str) -> Path:
    """A ``[luigid]`` path: absolute as given; relative ones under the data folder (``config.data_dir()``).

    A relative path that starts with the configured data folder's own relative name
    (``data/luigid/state.pickle`` with ``[pipeline] data_dir = data``, as luigi.cfg has
    always spelled it) means the same place: that prefix is dropped, so the path follows
    ``PIPELINE_DATA_DIR`` instead of staying in the project's ``data/``.
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    default = Path(config.pipeline().data_dir)
    if not default.is_absolute() and p.parts[:len(default.parts)] == default.parts:
        p = Path(*p.parts[len(default.parts):])
    return config.data_dir() / p


def upgrade_schema(engine: sa.Engine) -> None:
    """``luigi.db_task_history._upgrade_schema`` with SQLAlchemy 2 statements (same checks, same effects)."""
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        if "task_id" not in [c["name"] for c in inspector.get_columns("tasks")]:
            logger.warning("Upgrading DbTaskHistory schema: Adding tasks.task_id")
            conn.execute(sa.text("ALTER TABLE tasks ADD COLUMN task_id VARCHAR(200)"))
            conn.execute(sa.text("CREATE INDEX ix_task_id ON tasks (task_id)"))
        value_type = str(next(c for c in inspector.get_columns("task_parameters") if c["name"] == "value")["type"])
        if engine.dialect.name == "postgresql" and value_type != "TEXT":
            conn.execute(sa.text("ALTER TABLE task_parameters ALTER COLUMN value TYPE TEXT"))
        elif engine.dialect.name in ("mysql", "mariadb"):
            conn.execute(sa.text("ALTER TABLE task_parameters MODIFY COLUMN value TEXT"))
        elif engine.dialect.name == "sqlite" and value_type != "TEXT":
            logger.warning("SQLite can not change column types. Please use a new database to pickup column type changes.")


def history_url() -> str:
    """Where task history goes: ``[task_history] db_connection``, else the project's database."""
    cfg = luigi.configuration.get_config()
    return cfg.get("task_history", "db_connection", None) or config.database_url()


def main(argv=None) -> None:
    from luigi import cmdline, db_task_history

    settings = luigid()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--address", default=settings.address)
    parser.add_argument("--state-path", default=settings.state_path,
                        help="pickled scheduler state; relative: under the data folder (default: %(default)s)")
    parser.add_argument("--logdir", default=settings.logdir,
                        help="folder of luigi-server.log; relative: under the data folder (default: %(default)s)")
    parser.add_argument("--background", action="store_true", help="daemonize (writes luigid.pid next to the state)")
    args = parser.parse_args(argv)

    url = history_url()
    try:
        sa.engine.make_url(url)
    except Exception as exc:  # noqa: BLE001 - luigid would die later with a traceback
        parser.exit(2, f"tasks.scheduler: task history database URL {db.redact(url)} is not a valid "
                       f"SQLAlchemy URL ({exc.__class__.__name__}); check [task_history] db_connection, "
                       "PIPELINE_DATABASE_URL or [pipeline] database_url\n")
    cfg = luigi.configuration.get_config()
    cfg.set("scheduler", "record_task_history", "true")
    cfg.set("task_history", "db_connection", url)
    state = in_data_dir(args.state_path)
    logdir = in_data_dir(args.logdir)
    state.parent.mkdir(parents=True, exist_ok=True)
    logdir.mkdir(parents=True, exist_ok=True)
    db_task_history._upgrade_schema = upgrade_schema
    argv = ["--port", str(args.port), "--address", args.address, "--state-path", str(state), "--logdir", str(logdir)]
    if args.background:
        argv += ["--background", "--pidfile", str(state.parent / "luigid.pid")]
    cmdline.luigid(argv)


if __name__ == "__main__":
    main()
