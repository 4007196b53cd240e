"""A seeded, deterministic synthetic retail world in M5's shape, written into the source database.

``generate_world(url, scale, seed)`` fills an empty database (schema from
:mod:`pipeline.data.db`) with ``calendar``, ``items``, ``stores``, ``sell_prices`` and
``sales``: every (store, item, day) from the scale's ``history_start`` to
``CALENDAR_END`` has one original sales row recorded at 23:00 that day, a few
rows are corrected later by an appended row, and prices are recorded at the start
of their Walmart week. The same empty database, scale and seed give identical
table contents.

Demand model, per series (item x store) and day, on the log scale::

    log rate = item base rate + store size + item/store affinity
             + category growth + item and series trends + slow AR(1) level drifts
             + weekday profile + yearly seasonality + SNAP uplift (FOODS)
             + event effects + price response (promotions, regular price moves)
             + store shocks (level shift, disruption) + store-day noise

         + the effects of a set of dynamics (none in ``base``)

then ``units ~ Poisson(rate x Gamma(k, 1/k))`` (over-dispersed), forced to 0
before the item's launch, during stock-outs and on Christmas (stores closed).

Everything is vectorised over a (series x days) array per store; each store draws
from its own ``SeedSequence([seed, STORE_STREAM, store_index])`` stream (items and
states likewise), so no result depends on how the rows are chunked for writing.

Sets of dynamics (``dynamics=`` / ``--dynamics``, :data:`DYNAMICS`): ``base`` is the world above
and nothing more; ``shifted`` and ``reshaped`` add store level shifts, department drifts, a
changed weekly profile, per-department promotion responses and late launches
(:mod:`pipeline.tools.world.dynamics` says what each knob does and why).

Modules: ``scales`` (extent and sizes), ``calendar`` (the calendar table), ``model`` (the demand
model's constants and random streams), ``frame`` (day/week axes, items), ``params`` (item and
state parameters), ``dynamics`` (the knobs and named sets), ``effects`` (their realised values),
``demand`` (one store's units, prices, corrections), ``rows`` (arrays to table rows),
``generate`` (writing it all), ``cli`` (the command line), ``kaggle`` (the world as the Kaggle
M5 files).

Command line: ``python -m pipeline.tools.world --scale demo [--url URL] [--seed 42] [--dynamics base]``;
``python -m pipeline.tools.world.kaggle --scale S --seed N --dynamics D --out DIR`` for the Kaggle files.
"""
from __future__ import annotations

from pipeline.data import db  # noqa: F401  (the schema the world is written in; tests read it here)
from pipeline.tools.world.calendar import SNAP_DAYS, build_calendar
from pipeline.tools.world.cli import main
from pipeline.tools.world.dynamics import DYNAMICS, Drift, Dynamics, LevelShift, Launches, PromoResponse, WeeklyChange
from pipeline.tools.world.generate import generate_world
from pipeline.tools.world.scales import (
    CALENDAR_END, CALENDAR_START, CATEGORIES, DEFAULT_RUN_DATE, DEPARTMENTS, SCALES, STATES, STORES, Scale,
)

__all__ = [
    "CALENDAR_END", "CALENDAR_START", "CATEGORIES", "DEFAULT_RUN_DATE", "DEPARTMENTS", "DYNAMICS", "SCALES", "SNAP_DAYS",
    "STATES", "STORES", "Drift", "Dynamics", "Launches", "LevelShift", "PromoResponse", "Scale", "WeeklyChange",
    "build_calendar", "generate_world", "main",
]
