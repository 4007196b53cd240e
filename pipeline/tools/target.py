"""The database a tool writes into: an engine for a URL, creating a SQLite file's folder when missing."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa


def engine_creating_file(url: str) -> sa.Engine:
    """An engine for ``url``; a SQLite file (and its folder) is created when missing."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        Path(engine.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return engine
