"""Random parameters shared across stores: per item (one stream for all items) and per state."""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.tools.world.frame import Frame
from pipeline.tools.world.model import (
    DEPT_PRICE, DEPT_RATE, ITEM_STREAM, LATE_LAUNCH_SHARE, PRICE_ENDING_WEIGHTS, PRICE_ENDINGS, RATE_SIGMA,
    SNAP_UPLIFT, STATE_STREAM, WEEKLY, YEARLY, stream_rng,
)
from pipeline.tools.world.scales import STATES

def ar1(rng: np.random.Generator, n: int, w: int, phi: float, sigma: float) -> np.ndarray:
    """(n, w) stationary AR(1) paths: slow drifts of a level (loop over weeks, vectorised over n)."""
    eps = rng.normal(0.0, sigma, size=(n, w))
    out = np.empty((n, w))
    out[:, 0] = eps[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, w):
        out[:, t] = phi * out[:, t - 1] + eps[:, t]
    return out


def round_price(raw: np.ndarray, ending: np.ndarray) -> np.ndarray:
    """Prices with the given cents ending (e.g. 3.41 with ending .98 -> 2.98 or 3.98, the nearer)."""
    raw = np.clip(raw, 0.45, 30.5)
    dollars = np.maximum(np.floor(raw - ending + 0.5), 0.0)
    price = dollars + ending
    return np.round(np.where(price < 0.2, 1.0, price), 2)


def promo_weeks(rng: np.random.Generator, n: int, w: int, p_start: float) -> np.ndarray:
    """(n, w) promotion depth (0 = none): starts with probability p_start a week, lasts 1-3 weeks.

    The depth (10-40 % off) is that of the promotion's first week, carried over its run.
    """
    start = rng.random((n, w)) < p_start
    length = rng.integers(1, 4, size=(n, w))
    depth = rng.uniform(0.10, 0.40, size=(n, w))
    rows, cols = np.nonzero(start)
    diff = np.zeros((n, w + 1), dtype=np.int32)
    np.add.at(diff, (rows, cols), 1)
    np.add.at(diff, (rows, np.minimum(cols + length[rows, cols], w)), -1)
    active = np.cumsum(diff[:, :w], axis=1) > 0
    last_start = np.maximum.accumulate(np.where(start, np.arange(w), 0), axis=1)
    return np.where(active, np.take_along_axis(depth, last_start, axis=1), 0.0)


@dataclasses.dataclass
class Items:
    log_rate: np.ndarray  # (n,) log of median daily units in an average store
    base_price: np.ndarray  # (n,) unrounded launch list price
    log_price_path: np.ndarray  # (n, W) regular price drift (inflation steps), log scale
    ending: np.ndarray  # (n,) cents ending of regular prices
    elasticity: np.ndarray  # (n,) promotion price elasticity (-3 .. -1.5)
    dispersion: np.ndarray  # (n,) gamma shape k: variance = mean + mean^2 / k
    log_weekly: np.ndarray  # (n, 7) weekday profile by wday-1
    yearly_cos: np.ndarray  # (n,) coefficients of cos / sin of the day of year
    yearly_sin: np.ndarray
    trend: np.ndarray  # (n,) log change per year
    level: np.ndarray  # (n, W) slow AR(1) level drift
    launch: np.ndarray  # (n,) day index of first sale (0: before history_start)
    ramp_days: np.ndarray  # (n,) time constant of the post-launch ramp-up
    snap_uplift: np.ndarray  # (n,)


def item_params(frame: Frame, seed: int) -> Items:
    """Item-level parameters, the same for every store; one stream for all items."""
    rng = stream_rng(seed, ITEM_STREAM)
    n, w, d = len(frame.items), len(frame.week_start), len(frame.days)
    depts = frame.items["dept_id"].to_numpy()
    cats = frame.items["cat_id"].to_numpy()
    med_rate = np.array([DEPT_RATE[x] for x in depts])
    med_price = np.array([DEPT_PRICE[x] for x in depts])
    log_price = np.log(med_price) + rng.normal(0.0, 0.6, n)
    # dearer items of a department sell slower
    log_rate = np.log(med_rate) + RATE_SIGMA * rng.standard_normal(n).clip(-3, 3) - 0.35 * (log_price - np.log(med_price))
    # regular price moves: ~0.6 a year, mostly increases of a few percent
    n_changes = rng.poisson(0.6 * w / 52, n)
    rows = np.repeat(np.arange(n), n_changes)
    steps = np.zeros((n, w + 1))
    np.add.at(steps, (rows, rng.integers(1, w + 1, rows.size)), rng.normal(0.04, 0.07, rows.size))
    log_price_path = np.cumsum(steps[:, :w], axis=1)

    weekly = np.array([WEEKLY[c] for c in cats])
    log_weekly = np.log(weekly / weekly.mean(axis=1, keepdims=True)) + rng.normal(0.0, 0.05, (n, 7))
    # yearly: the category's wave plus an item wave; ~8 % of items strongly seasonal
    cat_amp = np.array([YEARLY[c][0] for c in cats])
    cat_peak = np.array([YEARLY[c][1] for c in cats])
    item_amp = np.abs(rng.normal(0.0, 0.08, n))
    strong = rng.random(n) < 0.08
    item_amp[strong] = rng.uniform(0.5, 1.1, strong.sum())
    item_peak = rng.uniform(0, 365.25, n)
    phase_c, phase_i = 2 * np.pi * cat_peak / 365.25, 2 * np.pi * item_peak / 365.25
    yearly_cos = cat_amp * np.cos(phase_c) + item_amp * np.cos(phase_i)
    yearly_sin = cat_amp * np.sin(phase_c) + item_amp * np.sin(phase_i)

    # launches: a fixed share of items (at least one) starts after history_start
    late = np.zeros(n, dtype=bool)
    late[rng.permutation(n)[: max(1, round(LATE_LAUNCH_SHARE * n))]] = True
    launch_week = rng.integers(2, max(3, w - 12), n)  # not in the last quarter: they need some history
    launch = np.where(late, (frame.week_start[launch_week] - frame.days[0]).astype(np.int64) + rng.integers(0, 7, n), 0)
    snap_lo = np.array([SNAP_UPLIFT[c][0] for c in cats])
    snap_hi = np.array([SNAP_UPLIFT[c][1] for c in cats])
    return Items(
        log_rate=log_rate,
        base_price=np.exp(log_price),
        log_price_path=log_price_path,
        ending=rng.choice(PRICE_ENDINGS, size=n, p=PRICE_ENDING_WEIGHTS / PRICE_ENDING_WEIGHTS.sum()),
        elasticity=rng.uniform(-3.0, -1.5, n),
        dispersion=np.exp(rng.normal(np.log(5.0), 0.6, n)).clip(0.8, 40.0),
        log_weekly=log_weekly,
        yearly_cos=yearly_cos,
        yearly_sin=yearly_sin,
        trend=rng.normal(0.0, 0.10, n),
        level=ar1(rng, n, w, 0.98, 0.03),
        launch=np.clip(launch, 0, d - 1),
        ramp_days=rng.uniform(7, 45, n),
        snap_uplift=rng.uniform(snap_lo, snap_hi),
    )


@dataclasses.dataclass
class State:
    log_price: np.ndarray  # (n,) state price level of the item
    promo: np.ndarray  # (n, W) state-wide promotion depth
    affinity: np.ndarray  # (n,) regional taste for the item


def state_params(frame: Frame, seed: int, state: str) -> State:
    """Parameters shared by the stores of ``state`` (regional prices, promotions, tastes)."""
    rng = stream_rng(seed, STATE_STREAM, STATES.index(state))
    n, w = len(frame.items), len(frame.week_start)
    return State(
        log_price=rng.normal(0.0, 0.03, n),
        promo=promo_weeks(rng, n, w, 0.010),
        affinity=rng.normal(0.0, 0.25, n),
    )

