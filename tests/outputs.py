"""Where the tests find a task's output: ``<data>/<stage>/<date>/[<kind>/]<fingerprint>/``."""
from __future__ import annotations

from pathlib import Path

SETTINGS_FILE = "settings.json"


def out(data: Path, stage: str, date, *kind: str) -> Path:
    """The one configuration's output folder of ``stage`` for ``date`` (fails if there are none or several)."""
    home = Path(data, stage, str(date), *kind)
    found = sorted(p for p in home.iterdir() if (p / SETTINGS_FILE).exists()) if home.is_dir() else []
    assert len(found) == 1, f"expected one configuration's output under {home}, found {[p.name for p in found]}"
    return found[0]
