"""One store's world drawn from its own stream: daily units (the demand model), weekly prices, later corrections."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from pipeline.tools.world.effects import Effects, add_effects, promo_elasticity
from pipeline.tools.world.frame import Frame
from pipeline.tools.world.model import CORRECTION_SHARE, GROWTH, PROMO_ENDINGS, STORE_SIZE, STORE_STREAM, TREND_ORIGIN, stream_rng
from pipeline.tools.world.params import Items, State, ar1, promo_weeks, round_price
from pipeline.tools.world.scales import CALENDAR_END, CATEGORIES, STORES


@dataclasses.dataclass
class StoreWorld:
    """One store's generated data: units (n, D) int16, weekly prices (n, W), first priced week."""

    units: np.ndarray
    price: np.ndarray
    first_week: np.ndarray
    corrections: pd.DataFrame  # item (index), day (index), units, recorded_at (datetime64[s])


def _mask_runs(rng: np.random.Generator, n: int, d: int, per_year: float, mean_len: float, max_len: int) -> np.ndarray:
    """(n, d) bool: random runs of days (e.g. stock-outs), ``per_year`` runs a year per row."""
    counts = rng.poisson(per_year * d / 365.25, n)
    rows = np.repeat(np.arange(n), counts)
    starts = rng.integers(0, d, rows.size)
    lengths = np.minimum(2 + rng.geometric(1.0 / (mean_len - 1), rows.size), max_len)
    diff = np.zeros((n, d + 1), dtype=np.int32)
    np.add.at(diff, (rows, starts), 1)
    np.add.at(diff, (rows, np.minimum(starts + lengths, d)), -1)
    return np.cumsum(diff[:, :d], axis=1) > 0


def _store_shock(rng: np.random.Generator, d: int) -> np.ndarray:
    """(d,) log multiplier of store-wide events: a lasting level shift and a few-week disruption."""
    shock = np.zeros(d)
    if rng.random() < 0.7:  # competitor opening / remodel: lasting shift, phased in over 4 weeks
        at = int(rng.integers(d // 10, d - d // 10))
        size = rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.30)
        shock += size * np.clip((np.arange(d) - at) / 28.0, 0.0, 1.0)
    if rng.random() < 0.6:  # construction, flooding, system outage: a dip of 1-6 weeks
        at = int(rng.integers(0, d))
        shock[at : at + int(rng.integers(7, 43))] += np.log(rng.uniform(0.3, 0.75))
    return shock


def generate_store(frame: Frame, items: Items, state: State, seed: int, store: str,
                   effects: Effects | None = None) -> StoreWorld:
    """Draw one store's daily units, weekly prices and corrections from its own stream.

    ``effects`` (a set of dynamics, :mod:`pipeline.tools.world.effects`) change the promotion
    response and add their log multipliers to the demand; they draw nothing from the store's
    stream, so without them (or with none active) the store is the base world's.
    """
    rng = stream_rng(seed, STORE_STREAM, STORES.index(store))
    n, d, w = len(frame.items), len(frame.days), len(frame.week_start)
    week = frame.week

    # launch: some stores list a late item a few weeks after the others
    lag = np.where((items.launch > 0) & (rng.random(n) < 0.35), rng.integers(7, 57, n), 0)
    launch = np.minimum(items.launch + lag, d - 1)
    first_week = week[launch]

    # prices: item path x state and store levels, rounded to the item's ending; promotions on top
    store_log_price = rng.normal(0.0, 0.01, n)
    ref_price = items.base_price * np.exp(state.log_price + store_log_price)
    regular = round_price(ref_price[:, None] * np.exp(items.log_price_path), items.ending[:, None])
    depth = np.maximum(state.promo, promo_weeks(rng, n, w, 0.008))
    promo_ending = rng.choice(PROMO_ENDINGS, size=(n, w))
    promo_price = round_price(regular * (1 - depth), promo_ending)
    promo_price = np.where(promo_price < regular, promo_price, np.round(regular * (1 - depth), 2))
    price = np.where(depth > 0, np.maximum(promo_price, 0.01), regular)

    # log demand, built in place to bound memory at full scale
    t = (frame.days - TREND_ORIGIN).astype(np.float64) / 365.25
    growth = np.array([GROWTH[c] for c in CATEGORIES])[frame.cat]
    log_lam = np.empty((n, d))
    log_lam[:] = (items.log_rate + np.log(STORE_SIZE[store]) + state.affinity + rng.normal(0.0, 0.4, n))[:, None]
    log_lam += (growth + items.trend + rng.normal(0.0, 0.08, n))[:, None] * t
    log_lam += (items.level + ar1(rng, n, w, 0.9, 0.05))[:, week]
    log_lam += (items.log_weekly + rng.normal(0.0, 0.03, 7))[:, frame.wday - 1]
    omega = 2 * np.pi * frame.doy / 365.25
    log_lam += items.yearly_cos[:, None] * np.cos(omega) + items.yearly_sin[:, None] * np.sin(omega)
    log_lam += np.log1p(items.snap_uplift)[:, None] * frame.snap[store[:2]]
    log_lam += np.log(frame.event_mult)[frame.cat]
    # promotions move demand by the full elasticity, regular price changes by half of it
    log_lam += (promo_elasticity(items, effects)[:, None] * np.log(price / regular))[:, week]
    log_lam += (0.5 * items.elasticity[:, None] * np.log(regular / ref_price[:, None]))[:, week]
    log_lam += (_store_shock(rng, d) + rng.normal(0.0, 0.06, d))[None, :]
    add_effects(log_lam, effects, store)
    lam = np.exp(log_lam, out=log_lam)
    # a new item's demand builds up over its first weeks
    since = np.arange(d)[None, :] - launch[:, None]
    lam *= np.where(launch[:, None] > 0, -np.expm1(-np.maximum(since + 1, 0) / items.ramp_days[:, None]), 1.0)
    # rare bulk purchases: a heavy right tail
    n_spikes = rng.binomial(n * d, 0.0005)
    flat = lam.reshape(-1)
    flat[rng.integers(0, n * d, n_spikes)] *= rng.uniform(2, 5, n_spikes)

    # over-dispersed counts: gamma-Poisson (negative binomial) with item-specific shape
    k = items.dispersion[:, None]
    lam *= rng.standard_gamma(np.broadcast_to(k, (n, d))) / k
    units = np.minimum(rng.poisson(lam), np.iinfo(np.int16).max).astype(np.int16)
    del lam, log_lam
    prelaunch = since < 0
    closed = prelaunch | frame.christmas[None, :] | _mask_runs(rng, n, d, per_year=0.7, mean_len=10.0, max_len=60)
    units[closed] = 0  # not yet listed, store closed, or out of stock

    return StoreWorld(units, price, first_week, _corrections(rng, frame, units, prelaunch))


def _corrections(rng: np.random.Generator, frame: Frame, units: np.ndarray, prelaunch: np.ndarray) -> pd.DataFrame:
    """Later corrections of ~0.3 % of the store's sales rows (not before launch, not on Christmas).

    Each is recorded 1-5 days after its date at a random time of day, never after
    CALENDAR_END, and changes the units by a small non-zero amount (never below 0).
    """
    n, d = units.shape
    pick = np.unique(rng.choice(n * d, size=rng.binomial(n * d, CORRECTION_SHARE), replace=False))
    item, day = np.divmod(pick, d)
    delay = rng.integers(1, 6, pick.size)
    seconds = rng.integers(0, 24 * 3600 // 60, pick.size) * 60
    delta = rng.choice(np.array([-3, -2, -1, -1, 1, 1, 2, 3, 5]), size=pick.size)
    last_day = (np.datetime64(CALENDAR_END) - frame.days[0]).astype(np.int64)
    keep = (day + delay <= last_day) & ~prelaunch[item, day] & ~frame.christmas[day]
    item, day, delay, seconds, delta = item[keep], day[keep], delay[keep], seconds[keep], delta[keep]
    old = units[item, day].astype(np.int64)
    new = np.where(old + delta >= 0, old + delta, old - delta)  # stays non-negative and != old
    recorded = (frame.days[day] + delay.astype("timedelta64[D]")).astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    return pd.DataFrame({"item": item, "day": day, "units": new, "recorded_at": recorded})

