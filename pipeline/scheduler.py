"""``python -m pipeline.scheduler``: Luigi's central scheduler (luigid) set up for this project.

* Port, address, state file and log folder come from ``[luigid]`` in luigi.cfg
  (paths relative to the project root); logs go under ``data/logs/``.
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

import luigi
import sqlalchemy as sa

from pipeline import config

logger = logging.getLogger("luigi.server")


class luigid(luigi.Config):  # noqa: N801 - section name in luigi.cfg
    """The ``[luigid]`` section."""

    address = luigi.Parameter(default="127.0.0.1")
    port = luigi.IntParameter(default=8082)
    state_path = luigi.Parameter(default="data/luigid/state.pickle")
    logdir = luigi.Parameter(default="data/logs")


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
    parser.add_argument("--background", action="store_true", help="daemonize (writes data/luigid/luigid.pid)")
    args = parser.parse_args(argv)

    cfg = luigi.configuration.get_config()
    cfg.set("scheduler", "record_task_history", "true")
    cfg.set("task_history", "db_connection", history_url())
    state = config.resolve(settings.state_path)
    logdir = config.resolve(settings.logdir)
    state.parent.mkdir(parents=True, exist_ok=True)
    logdir.mkdir(parents=True, exist_ok=True)
    db_task_history._upgrade_schema = upgrade_schema
    argv = ["--port", str(args.port), "--address", args.address, "--state-path", str(state), "--logdir", str(logdir)]
    if args.background:
        argv += ["--background", "--pidfile", str(state.parent / "luigid.pid")]
    cmdline.luigid(argv)


if __name__ == "__main__":
    main()
