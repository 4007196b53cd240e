"""The realised effects of a set of dynamics: drawn from the seed, one random stream per effect, and applied.

``draw_effects(frame, seed, dynamics)`` turns the knobs of a :class:`Dynamics` into arrays (which
store, department, state or category, from which day, by how much) and a JSON-ready summary of
them. Each effect draws from ``SeedSequence([seed, DYNAMICS_STREAM, EFFECT_INDEX[effect]])``, a
stream no other effect and nothing of the base world uses: turning one on or off changes no
other draw. :func:`add_effects` adds them to one store's log demand; the promotion scale and
the launch days are used where the base model uses the item's elasticity and launch day.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from pipeline.tools.world.dynamics import Dynamics, Window
from pipeline.tools.world.frame import Frame
from pipeline.tools.world.model import DYNAMICS_STREAM, stream_rng
from pipeline.tools.world.params import Items
from pipeline.tools.world.scales import CATEGORIES, DEPARTMENTS, STATES, STORES

# stream index per effect; fixed forever, or old seeds change meaning
EFFECT_INDEX = {"level_shift": 0, "drift": 1, "weekly": 2, "promo": 3, "launches": 4}


@dataclasses.dataclass
class Effects:
    """What a set of dynamics does to one world, as arrays over its days (``d``) and items (``n``)."""

    store_log: dict[str, np.ndarray]  # store -> (d,) log multiplier of all its demand
    item_log: list[tuple[np.ndarray, np.ndarray]]  # (item rows, (d,) log multiplier), in every store
    promo_scale: np.ndarray | None  # (n,) factor on the promotion elasticity
    launch: tuple[np.ndarray, np.ndarray] | None  # (item rows, launch day index) replacing the base launch
    summary: dict  # name and, per active effect, its realised values (JSON: ISO dates, floats)


def _day(frame: Frame, date: dt.date) -> int:
    return int((np.datetime64(date, "D") - frame.days[0]).astype(np.int64))


def _check_window(frame: Frame, window: Window, what: str) -> tuple[int, int]:
    """Day indices of ``window``; ValueError unless it lies inside the history (after its first day)."""
    a, b = _day(frame, window[0]), _day(frame, window[1])
    if not 1 <= a <= b < len(frame.days):
        raise ValueError(f"{what} {window[0]}..{window[1]} is not inside the world's history "
                         f"{frame.days[1]}..{frame.days[-1]} (after its first day)")
    return a, b


def _check_range(values: tuple[float, float], lo: float, what: str) -> None:
    if not lo <= values[0] <= values[1]:
        raise ValueError(f"{what} range {values} must be increasing and at least {lo}")


def _check_count(count: int, most: int, what: str) -> None:
    if not 1 <= count <= most:
        raise ValueError(f"{what} must be 1..{most}, got {count}")


def _iso(frame: Frame, day: int) -> str:
    return str(frame.days[day])


def draw_effects(frame: Frame, seed: int, dynamics: Dynamics) -> Effects:
    """Draw the effects of ``dynamics`` for the world of ``frame`` and ``seed``; ValueError for a knob out of range."""
    n, d = len(frame.items), len(frame.days)
    depts = frame.items["dept_id"].to_numpy()
    out = Effects({}, [], None, None, {"name": dynamics.name})

    def rng(effect: str) -> np.random.Generator:
        return stream_rng(seed, DYNAMICS_STREAM, EFFECT_INDEX[effect])

    def add_store(store: str, curve: np.ndarray) -> None:
        out.store_log[store] = out.store_log.get(store, np.zeros(d)) + curve

    if (ls := dynamics.level_shift) is not None:
        _check_count(ls.stores, len(STORES), "level_shift stores")
        _check_range(ls.factor, 1e-9, "level_shift factor")
        a, b = _check_window(frame, ls.window, "level_shift window")
        r = rng("level_shift")
        stores = r.choice(len(STORES), size=ls.stores, replace=False)
        days = r.integers(a, b + 1, size=ls.stores)
        factors = r.uniform(*ls.factor, size=ls.stores)
        for s, t, f in zip(stores, days, factors):
            curve = np.zeros(d)
            curve[t:] = np.log(f)
            add_store(STORES[s], curve)
        out.summary["level_shift"] = [{"store_id": STORES[s], "from": _iso(frame, t), "factor": round(float(f), 6)}
                                      for s, t, f in sorted(zip(stores, days, factors))]

    if (dr := dynamics.drift) is not None:
        _check_count(dr.depts, len(DEPARTMENTS), "drift depts")
        _check_range(dr.per_90_days, 0.0, "drift per_90_days")
        t0, _ = _check_window(frame, (dr.start, dr.start), "drift start")
        r = rng("drift")
        picks = r.choice(len(DEPARTMENTS), size=dr.depts, replace=False)
        rates = r.choice(np.array([-1.0, 1.0]), size=dr.depts) * r.uniform(*dr.per_90_days, size=dr.depts)
        elapsed = np.maximum(np.arange(d) - t0, 0) / 90.0
        for k, rate in zip(picks, rates):
            out.item_log.append((np.flatnonzero(depts == DEPARTMENTS[k]), rate * elapsed))
        out.summary["drift"] = [{"dept_id": DEPARTMENTS[k], "from": _iso(frame, t0), "log_per_90_days": round(float(x), 6)}
                                for k, x in sorted(zip(picks, rates))]

    if (wk := dynamics.weekly) is not None:
        if wk.scope not in ("state", "category") or not wk.sigma >= 0:
            raise ValueError(f"weekly scope must be 'state' or 'category' and sigma >= 0, got {wk.scope!r}, {wk.sigma}")
        a, b = _check_window(frame, wk.window, "weekly window")
        r = rng("weekly")
        groups = STATES if wk.scope == "state" else CATEGORIES
        key = groups[int(r.integers(len(groups)))]
        t = int(r.integers(a, b + 1))
        mult = np.exp(r.normal(0.0, wk.sigma, 7))
        mult /= mult.mean()
        curve = np.zeros(d)
        curve[t:] = np.log(mult)[frame.wday[t:] - 1]
        if wk.scope == "state":
            for store in STORES:
                if store[:2] == key:
                    add_store(store, curve)
        else:
            out.item_log.append((np.flatnonzero(frame.items["cat_id"].to_numpy() == key), curve))
        out.summary["weekly"] = {"state_id" if wk.scope == "state" else "cat_id": key, "from": _iso(frame, t),
                                 "multiplier_by_wday": [round(float(m), 6) for m in mult]}  # wday 1 (Saturday)..7

    if (pr := dynamics.promo) is not None:
        _check_range(pr.scale, 0.0, "promo scale")
        scale = rng("promo").uniform(*pr.scale, size=len(DEPARTMENTS))
        out.promo_scale = scale[np.array([DEPARTMENTS.index(x) for x in depts], dtype=np.int64)]
        out.summary["promo"] = {dep: round(float(s), 6) for dep, s in zip(DEPARTMENTS, scale)}

    if (la := dynamics.launches) is not None:
        if not 0.0 < la.share <= 1.0:
            raise ValueError(f"launches share must be in (0, 1], got {la.share}")
        a, b = _check_window(frame, la.window, "launches window")
        r = rng("launches")
        rows = np.sort(r.permutation(n)[: max(1, round(la.share * n))])
        days = r.integers(a, b + 1, size=rows.size)
        out.launch = (rows, days)
        ids = frame.items["item_id"].to_numpy()
        out.summary["launches"] = [{"item_id": ids[i], "from": _iso(frame, t)} for i, t in zip(rows, days)]
    return out


def with_launches(items: Items, effects: Effects) -> Items:
    """``items`` with the launch days the effects replace (the same object when there are none)."""
    if effects.launch is None:
        return items
    launch = items.launch.copy()
    launch[effects.launch[0]] = effects.launch[1]
    return dataclasses.replace(items, launch=launch)


def promo_elasticity(items: Items, effects: Effects | None) -> np.ndarray:
    """The elasticity of demand to promotions: the item's, times its department's scale if the dynamics set one."""
    if effects is None or effects.promo_scale is None:
        return items.elasticity
    return items.elasticity * effects.promo_scale


def add_effects(log_lam: np.ndarray, effects: Effects | None, store: str) -> None:
    """Add the store-wide and item-group log multipliers to one store's (n, d) log demand, in place."""
    if effects is None:
        return
    if store in effects.store_log:
        log_lam += effects.store_log[store][None, :]
    for rows, curve in effects.item_log:
        log_lam[rows] += curve[None, :]
