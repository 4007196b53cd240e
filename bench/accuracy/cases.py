"""The accuracy panel's cases: where each world comes from, its size, seed and dynamics, its origins and its role.

A case is declared, not coded: ``CASES`` below is the whole panel. Roles split it in two:
model experiments are chosen on the ``tune`` half and judged again on the ``confirm`` half,
which they were not chosen on. Every origin is a forecast origin (a run date): the 28 days
after it must be in the world, so a generated world (calendar to 2016-06-19) takes origins up
to 2016-05-22, a world imported from the Kaggle files (sales to d_1941 = 2016-05-22) up to
2016-04-24 (d_1913, M5's validation origin).

Sources:
  world   ``python -m pipeline.tools.world --scale S --seed N --dynamics D`` into SQLite
  kaggle  the same world written as the Kaggle M5 files (``python -m pipeline.tools.world.kaggle``)
          and imported with ``python -m pipeline.tools.m5import`` (what ``make import-m5`` runs)
  m5      the 10 real M5 series of ../shared/data/m5 as a small Kaggle folder, imported the same way
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

Source = Literal["world", "kaggle", "m5"]
Role = Literal["tune", "confirm"]


def origins(*days: str) -> tuple[dt.date, ...]:
    return tuple(dt.date.fromisoformat(d) for d in days)


# rolling origins 28 days apart: the generated calendar ends 2016-06-19, the Kaggle sales on 2016-05-22
WORLD_ORIGINS = origins("2016-03-27", "2016-04-24", "2016-05-22")
KAGGLE_ORIGINS = origins("2016-02-28", "2016-03-27", "2016-04-24")
M5_ORIGINS = origins("2016-04-24")  # the real actuals on hand are d_1914..d_1941


@dataclasses.dataclass(frozen=True)
class Case:
    """One world of the panel and the origins at which the pipeline and the reference forecast it."""

    name: str
    source: Source
    role: Role
    origins: tuple[dt.date, ...]
    scale: str | None = None  # pipeline.tools.world.SCALES (generated sources)
    seed: int | None = None
    dynamics: str = "base"  # pipeline.tools.world's --dynamics (generated sources)

    def world_spec(self) -> dict:
        """What the case's world is made of (its cache key, with the generator's code)."""
        return {"source": self.source, "scale": self.scale, "seed": self.seed, "dynamics": self.dynamics}

    def describe(self) -> str:
        if self.source == "m5":
            return "10 real M5 series (../shared/data/m5), Kaggle files, import"
        how = "Kaggle files, import" if self.source == "kaggle" else "generated"
        return f"{self.scale}, seed {self.seed}, {self.dynamics}, {how}"


CASES: tuple[Case, ...] = (
    # tune: what model experiments are chosen on
    Case("tiny-1-base", "world", "tune", WORLD_ORIGINS, "tiny", 1, "base"),
    Case("tiny-2-shifted", "world", "tune", WORLD_ORIGINS, "tiny", 2, "shifted"),
    Case("demo-42-base", "world", "tune", WORLD_ORIGINS, "demo", 42, "base"),
    Case("kaggle-tiny-5-reshaped", "kaggle", "tune", KAGGLE_ORIGINS, "tiny", 5, "reshaped"),
    # confirm: what they are judged on again, never chosen on
    Case("tiny-3-reshaped", "world", "confirm", WORLD_ORIGINS, "tiny", 3, "reshaped"),
    Case("kaggle-tiny-4-shifted", "kaggle", "confirm", KAGGLE_ORIGINS, "tiny", 4, "shifted"),
    Case("demo-7-shifted", "world", "confirm", WORLD_ORIGINS, "demo", 7, "shifted"),
    Case("m5-real10", "m5", "confirm", M5_ORIGINS),
)
QUICK = ("tiny-1-base",)  # --quick: one tiny case at one origin (QUICK_ORIGIN)
QUICK_ORIGIN = dt.date(2016, 4, 24)


def select(names: str | None = None, quick: bool = False) -> list[Case]:
    """The cases named (comma-separated; all when None); ``quick``: the first QUICK case at QUICK_ORIGIN only."""
    by_name = {c.name: c for c in CASES}
    if quick and not names:
        names = ",".join(QUICK)
    chosen = list(CASES) if not names else []
    for name in (names.split(",") if names else []):
        if name.strip() not in by_name:
            raise SystemExit(f"bench.accuracy: no case {name.strip()!r}; the cases are {', '.join(by_name)}")
        chosen.append(by_name[name.strip()])
    if quick:
        chosen = [dataclasses.replace(c, origins=(QUICK_ORIGIN,)) if QUICK_ORIGIN in c.origins
                  else dataclasses.replace(c, origins=c.origins[-1:]) for c in chosen]
    return chosen
