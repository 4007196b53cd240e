"""Secrets never leave the process: database passwords are masked in messages, errors, logs and luigid's state,
whether or not SQLAlchemy can parse the URL that holds them."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.data import db
from tasks import logs
from pipeline.data import masking
from pipeline.core.errors import DatabaseError
from tests.conftest import PROJECT_ROOT as ROOT
from tests.conftest import RUN_DATE, start_luigid

# (text, every spelling of its secret, what the masked text must still show)
SHAPES = [
    ("postgresql://u:s3cret-port@host:notaport/db", ["s3cret-port"], "postgresql://u:***@host:notaport/db"),
    ("postgresql://u:s3cret-nohost@/db", ["s3cret-nohost"], "postgresql://u:***@/db"),
    ("postgresql://u:p@ss:w0rd-at@host:5432x/db", ["p@ss:w0rd-at", "ss:w0rd-at"], "postgresql://u:***@host:5432x/db"),
    ("postgresql://u:s%40cr%3At-pct@:x/db", ["s%40cr%3At-pct", "s@cr:t-pct", "cr%3At-pct"], "postgresql://u:***@:x/db"),
    ("postgresql+psycopg2://u:s3c/ret-slash@127.0.0.1:1/db", ["s3c/ret-slash", "ret-slash"],
     "postgresql+psycopg2://u:***@127.0.0.1:1/db"),
    ("postgresql://u:my s3cret-blank@h:x/db", ["s3cret-blank"], "postgresql://u:***@h:x/db"),
    ("mysql://root:hunter2-x@[::1]:x/db", ["hunter2-x"], "mysql://root:***@[::1]:x/db"),
    ("postgresql://u@127.0.0.1:1/db?password=s3cret-query&sslmode=disable&x=1", ["s3cret-query"],
     "postgresql://u@127.0.0.1:1/db?password=***&sslmode=disable&x=1"),
    ("host=db.internal password=s3cret-dsn user=u", ["s3cret-dsn"], "host=db.internal password=*** user=u"),
    ("host=db.internal password='s3 cret-quoted' user=u", ["s3 cret-quoted", "cret-quoted"],
     "host=db.internal password='***' user=u"),
    ("{'user': 'u', 'password': 's3cret-dict'}", ["s3cret-dict"], "{'user': 'u', 'password': '***'}"),
    ("PGPASSWORD=s3cret-env psql", ["s3cret-env"], "PGPASSWORD=*** psql"),
]


def with_pieces(secrets: list[str]) -> list[str]:
    """The secrets and their pieces of 4 characters or more between delimiters (a parser may show those)."""
    pieces = [p for s in secrets for p in re.split(r"[@:/?#&;=\s]", s) if len(p) >= 4]
    return list(dict.fromkeys(secrets + pieces))


SHAPES = [(text, with_pieces(secrets), shown) for text, secrets, shown in SHAPES]
# texts that hold no secret are left alone
PLAIN = ["sqlite:///data/world.sqlite", "postgresql://u@host:5432/db", "postgresql://u:***@host/db",
         'FATAL: password authentication failed for user "u"', "tcp://127.0.0.1:8786",
         "outcome ExtractSnapshot(date=2016-05-22): DONE"]


@pytest.mark.parametrize("text, secrets, shown", SHAPES, ids=[s[1][0] for s in SHAPES])
def test_mask_hides_the_password_of_every_shape(text, secrets, shown):
    for masked in (masking.mask(text), masking.mask(f"cannot connect to {text}: refused"), db.redact(text)):
        assert not any(s in masked for s in secrets), masked
    assert db.redact(text) == shown


@pytest.mark.parametrize("text", PLAIN)
def test_mask_leaves_texts_without_a_secret_alone(text):
    assert masking.mask(text) == text


def test_a_remembered_password_is_masked_without_its_url():
    db.redact("postgresql://u:rem3mbered%21@host:bad/db")  # redact remembers what it masks
    for spelling in ("rem3mbered!", "rem3mbered%21"):
        assert masking.mask(f'server said: password "{spelling}" is wrong') == 'server said: password "***" is wrong'


URLS = [s for s in SHAPES if "://" in s[0] or s[0].startswith("host=")]


@pytest.mark.parametrize("text, secrets, shown", URLS, ids=[s[1][0] for s in URLS])
def test_engine_for_names_the_masked_url_and_its_traceback_holds_no_password(text, secrets, shown):
    with pytest.raises(DatabaseError) as info:
        db.engine_for(text)
    message = str(info.value)
    # a URL that does not parse is a setting to fix, not a database that may come back
    assert isinstance(info.value, db.DatabaseURLError) == ("is not a valid SQLAlchemy URL" in message)
    assert shown in message and ("is not a valid SQLAlchemy URL" in message or "cannot connect" in message), message
    # what Luigi sends to the scheduler on failure: the whole chain of the traceback
    full = "".join(traceback.format_exception(info.value))
    assert not any(s in full for s in secrets), full


def test_log_records_are_masked_on_every_logger_and_handler(caplog):
    url = "postgresql://u:l0gged-s3cret@host:bad/db"
    caplog.set_level(logging.INFO)
    logging.getLogger("pipeline.child").info("connecting to %s", url)
    logging.getLogger("luigi-interface").warning("connecting to " + url)
    try:
        raise RuntimeError(f"could not reach {url}")
    except RuntimeError:
        logging.getLogger("somebody.else").exception("failed")
    text = "\n".join(caplog.handler.format(r) for r in caplog.records)
    assert "l0gged-s3cret" not in text and text.count("postgresql://u:***@host:bad/db") == 3, text
    assert getattr(logging.getLogRecordFactory(), "masks_secrets", False)


def test_a_record_without_a_secret_is_not_rewritten():
    record = logs.mask_record(logging.LogRecord("pipeline", logging.INFO, __file__, 1, "rows %d", (5,), None))
    assert record.msg == "rows %d" and record.args == (5,) and record.getMessage() == "rows 5"


# ----------------------------------------------------------------------------------------------
# End to end: real `luigi` processes, their console and every file they write
# ----------------------------------------------------------------------------------------------


def run_env(tmp_path: Path, url: str) -> dict:
    """A subprocess environment: data under tmp, ``url`` as the source database, no retries."""
    cfg = tmp_path / "test-luigi.cfg"
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg.write_text("[scheduler]\nretry_count = 1\n[worker]\nkeep_alive = false\n[retry]\nattempts = 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env.update(PIPELINE_DATA_DIR=str(tmp_path / "data"), PIPELINE_DATABASE_URL=url, LUIGI_CONFIG_PATH=str(cfg),
               DASK_SCHEDULER_ADDRESS="synchronous")
    return env


def leaks(folder: Path, secrets: list[str]) -> list[str]:
    """Files under ``folder`` whose bytes hold any of ``secrets``."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {s!r}" for s in secrets if s.encode() in data]
    return found


E2E = [SHAPES[0], SHAPES[2], SHAPES[3], SHAPES[8]]


@pytest.mark.slow
@pytest.mark.parametrize("text, secrets, shown", E2E, ids=[s[1][0] for s in E2E])
def test_a_bad_database_url_fails_the_run_with_the_masked_url_and_leaks_nowhere(text, secrets, shown, tmp_path):
    done = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline", "ExtractSnapshot", "--date",
                           RUN_DATE.isoformat(), "--local-scheduler"], env=run_env(tmp_path, text),
                          capture_output=True, text=True, timeout=300)
    console = done.stdout + done.stderr
    assert done.returncode == 30, console[-3000:]  # [retcode] task_failed
    assert f"source database URL {shown} is not a valid SQLAlchemy URL" in console, console[-3000:]
    assert not [s for s in secrets if s in console], console[-3000:]
    log = tmp_path / "data" / "logs" / "pipeline.log"
    assert f"FAILED: DatabaseURLError: source database URL {shown} is not a valid" in log.read_text()
    assert leaks(tmp_path, secrets) == []


LEAKY = '''
import logging
import os
import re

import luigi

import pipeline  # noqa: F401  (the project: importing it masks every log record)


class Leaky(luigi.Task):
    """Logs a URL with its password on several loggers, then fails quoting it."""

    def complete(self):
        return False

    def run(self):
        url = os.environ["LEAKY_URL"]
        logging.getLogger("luigi-interface").info("connecting to %s", url)
        logging.getLogger("pipeline.leaky").error("connecting to %s", url)
        logging.getLogger("somebody.else").warning("connecting to " + url)
        raise RuntimeError(f"could not reach {url}")
'''


@pytest.mark.slow
def test_log_lines_and_tracebacks_quoting_a_url_are_masked_on_the_console_and_in_the_log_file(tmp_path):
    """Not only the pipeline's own messages: any log record of the process, Luigi's console handler included."""
    (tmp_path / "leaky.py").write_text(LEAKY)
    secret = "tr1cky@pa:ss"
    env = run_env(tmp_path, "sqlite:///nothing.sqlite")  # the secret is not the configured database's
    # this checkout's code, whatever is installed
    env.update(LEAKY_URL=f"postgresql://u:{secret}@host:bad/db", PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = subprocess.run([sys.executable, "-m", "luigi", "--module", "leaky", "Leaky", "--local-scheduler"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    console = done.stdout + done.stderr
    assert done.returncode == 30, console[-3000:]
    masked = "postgresql://u:***@host:bad/db"
    assert "connecting to " + masked in console and "RuntimeError: could not reach " + masked in console, console
    log = (tmp_path / "data" / "logs" / "pipeline.log").read_text()
    assert log.count("connecting to " + masked) == 2 and "could not reach " + masked in log, log
    assert secret not in console and "tr1cky" not in console
    assert leaks(tmp_path / "data", [secret, "tr1cky"]) == []


@pytest.mark.slow
def test_a_run_through_luigid_leaves_no_password_in_its_state_history_or_logs(tmp_path):
    """The failed task's traceback goes to the central scheduler, which pickles it and records history."""
    text, secrets, shown = SHAPES[2]
    history = f"sqlite:///{tmp_path / 'history.sqlite'}"
    with start_luigid(tmp_path / "scheduler", env=run_env(tmp_path / "scheduler", history)) as port:
        done = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline", "ExtractSnapshot", "--date",
                               RUN_DATE.isoformat(), "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port)],
                              env=run_env(tmp_path, text), capture_output=True, text=True, timeout=300)
    console = done.stdout + done.stderr
    assert done.returncode == 30, console[-3000:]
    assert shown in console and not [s for s in secrets if s in console]
    state = tmp_path / "scheduler" / "luigid" / "state.pickle"
    assert state.exists() and shown.encode() in state.read_bytes()  # the explanation is there, masked
    with sa.create_engine(history).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM tasks WHERE name = 'ExtractSnapshot'")).scalar() >= 1
    assert leaks(tmp_path, secrets) == []


@pytest.mark.slow
def test_luigid_refuses_an_unparsable_history_url_in_one_masked_line(tmp_path):
    env = run_env(tmp_path, "postgresql://u:hist-s3cret@h:x/db")
    done = subprocess.run([sys.executable, "-m", "tasks.scheduler", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "task history database URL postgresql://u:***@h:x/db is not a valid SQLAlchemy URL" in done.stderr
    assert "hist-s3cret" not in done.stdout + done.stderr and not (tmp_path / "data").exists()
