"""Named sets of dynamics: what the world does beyond the base demand model, so that no single world's habits decide.

The base demand model (:mod:`pipeline.tools.world.demand`) already has store shocks, item trends
and late launches drawn at random. A set of dynamics adds effects a forecaster meets in real
retail data and that a model tuned on one world may not follow: a store whose level jumps, a
department drifting away, a weekly rhythm that changes, departments that answer promotions
differently, items launched late in history. Each effect is a knob below (``None``: off); its
realised values (which store, from which day, by how much) are drawn by
:mod:`pipeline.tools.world.effects`, deterministic in the seed, each from a random stream of its
own: turning one effect on or off never changes what another draws, nor anything of the base world.

``DYNAMICS`` holds the named sets (``--dynamics NAME``); ``base`` is the world without any of
them, byte for byte the world generated before the sets existed.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

Window = tuple[dt.date, dt.date]  # first and last day (inclusive) a date is drawn from, uniformly


@dataclasses.dataclass(frozen=True)
class LevelShift:
    """``stores`` stores' demand (every item) times a factor drawn from ``factor``, from a day drawn in ``window`` on.

    Why: a competitor opening or closing nearby, a remodel, a new road: the store's level
    changes at once and stays. Unlike the base world's store shocks (phased in over 4 weeks,
    mostly smaller), the step is abrupt and large, and may lie close before a forecast origin.
    """

    stores: int = 1
    factor: tuple[float, float] = (1.3, 1.5)
    window: Window = (dt.date(2015, 10, 1), dt.date(2016, 2, 29))


@dataclasses.dataclass(frozen=True)
class Drift:
    """``depts`` departments whose demand drifts linearly on the log scale from ``start`` to the calendar's end.

    The log change per 90 days is drawn from ``per_90_days`` (its size) with a random sign, per
    department, in every store. Why: a department gaining or losing shelf space or favour
    drifts steadily; a model that averages the last year lags behind. The default start is
    90 days before 2016-04-24 (d_1913, the Kaggle validation origin): the drift covers the
    last ~90 days of history and goes on through the forecast horizons.
    """

    depts: int = 1
    per_90_days: tuple[float, float] = (0.2, 0.35)
    start: dt.date = dt.date(2016, 1, 25)


@dataclasses.dataclass(frozen=True)
class WeeklyChange:
    """The weekday profile of one state's stores (``scope="state"``) or one category's items changes on a drawn day.

    From a day drawn in ``window`` on, demand on weekday ``wday`` is multiplied by ``m[wday]``:
    ``m = exp(z) / mean(exp(z))`` with ``z ~ Normal(0, sigma)`` per weekday, so the shape changes
    and the weekly mean stays. Why: new opening hours, a payday moved, a changed delivery day:
    the weekly profile a model learnt from years of history no longer holds.
    """

    scope: Literal["state", "category"] = "state"
    sigma: float = 0.2
    window: Window = (dt.date(2015, 9, 1), dt.date(2016, 2, 29))


@dataclasses.dataclass(frozen=True)
class PromoResponse:
    """Each department's promotion price elasticity times a factor drawn from ``scale`` (whole history).

    The base world gives every item an elasticity in -3..-1.5 whatever its department; here
    a department's promotions lift demand more (factor > 1) or less (< 1; 0: not at all).
    Regular price moves keep the base response. Why: the price response is what a model
    must learn from the price features; a world where it is the same everywhere does not
    test that.
    """

    scale: tuple[float, float] = (0.3, 2.0)


@dataclasses.dataclass(frozen=True)
class Launches:
    """A share ``share`` of the items (at least one) is launched on a day drawn in ``window`` (chain-wide).

    Before its launch an item sells nothing and has no price, then its demand ramps up as
    the base world's late items do (stores may list it up to 8 weeks later). This replaces the
    item's base launch day. Why: new items near a forecast origin have short histories (cold
    starts), which the base world's launches, spread over the whole history, rarely give.
    """

    share: float = 0.1
    window: Window = (dt.date(2015, 10, 1), dt.date(2016, 3, 31))


@dataclasses.dataclass(frozen=True)
class Dynamics:
    """A named set of effects on top of the base world; each ``None`` is off."""

    name: str
    level_shift: LevelShift | None = None
    drift: Drift | None = None
    weekly: WeeklyChange | None = None
    promo: PromoResponse | None = None
    launches: Launches | None = None

    def active(self) -> tuple[str, ...]:
        """Names of the effects that are on."""
        return tuple(f.name for f in dataclasses.fields(self) if f.name != "name" and getattr(self, f.name) is not None)


DYNAMICS: dict[str, Dynamics] = {
    # the project's own world, unchanged
    "base": Dynamics("base"),
    # one store jumps up, one department drifts over the last ~90 days, one state's weekly profile
    # changes, departments answer promotions from weakly to strongly, a tenth of the items launch late
    "shifted": Dynamics(
        "shifted",
        level_shift=LevelShift(),
        drift=Drift(),
        weekly=WeeklyChange(),
        promo=PromoResponse(),
        launches=Launches(),
    ),
    # other values: two stores drop, two departments drift from earlier and more slowly, a
    # category's weekly profile changes, promotions lift less, a fifth of the items launch late
    "reshaped": Dynamics(
        "reshaped",
        level_shift=LevelShift(stores=2, factor=(0.6, 0.8), window=(dt.date(2015, 6, 1), dt.date(2016, 3, 15))),
        drift=Drift(depts=2, per_90_days=(0.1, 0.2), start=dt.date(2015, 11, 1)),
        weekly=WeeklyChange(scope="category", sigma=0.25, window=(dt.date(2015, 8, 1), dt.date(2016, 3, 15))),
        promo=PromoResponse(scale=(0.0, 1.0)),
        launches=Launches(share=0.2, window=(dt.date(2015, 6, 1), dt.date(2016, 4, 10))),
    ),
}


def resolve(dynamics: str | Dynamics) -> Dynamics:
    """The set named ``dynamics`` (a key of DYNAMICS), or ``dynamics`` itself; ValueError naming the choices."""
    if isinstance(dynamics, Dynamics):
        return dynamics
    if dynamics not in DYNAMICS:
        raise ValueError(f"unknown dynamics {dynamics!r}; choose one of {', '.join(DYNAMICS)}")
    return DYNAMICS[dynamics]
