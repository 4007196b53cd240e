"""The online model's learners (River) and its day step: predict the day first, then learn it.

A state is a River model and the count of what it learnt. :func:`step` is progressive
validation, one day at a time: every active row of the day is predicted with the state of the
day before (those predictions are what the day's progressive-validation error is made of), then
the model learns the rows one at a time (``learn_one``), in an order drawn from the day number,
so that a store's series do not come in one block and a rerun learns in the same order.

The learners are River's own (https://riverml.xyz); nothing here is a hand-written learner.
Pure: no I/O; River is imported when a learner is made.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from pipeline.core.online_model.features import Rows

LEARNERS = ("linear", "hoeffding")


def make_learner(name: str, learning_rate: float):
    """A fresh River regressor of the target ``units / level`` by name (``LEARNERS``).

    * ``linear``: linear regression with Adam's steps (the features are already scale-free ratios,
      indicators and a log level, so no standard scaler: its first rows' tiny variances blew SGD up);
    * ``hoeffding``: a Hoeffding adaptive tree whose leaves are such linear models (slower: River
      has no vectorised prediction for it).

    Plain SGD, AdaGrad and Adam at several rates were compared by progressive validation
    (docs/online-model.md); Adam at a small rate was the only stable and accurate one.
    """
    from river import linear_model, optim, tree

    def linear():
        return linear_model.LinearRegression(optimizer=optim.Adam(learning_rate), intercept_lr=learning_rate, l2=0.0)

    if name == "linear":
        return linear()
    if name == "hoeffding":
        return tree.HoeffdingAdaptiveTreeRegressor(grace_period=200, leaf_model=linear(), seed=0)
    raise ValueError(f"[online_model] learner must be one of {', '.join(LEARNERS)}, not {name!r}")


@dataclasses.dataclass
class OnlineState:
    """The online model as of the end of a day: the River model and what it has learnt."""

    learner: str
    model: object
    last_day: int | None = None  # day number of the last day learnt
    days_learnt: int = 0
    rows_learnt: int = 0


def new_state(learner: str, learning_rate: float) -> OnlineState:
    return OnlineState(learner=learner, model=make_learner(learner, learning_rate))


def predict(state: OnlineState, rows: Rows) -> np.ndarray:
    """Units of every row: 0 for inactive rows, else the model's ``units / level`` (at least 0) × level."""
    out = np.zeros(len(rows.level))
    act = np.flatnonzero(rows.active)
    if len(act):
        x = rows.x[act]
        if state.learner == "linear":  # vectorised
            ratio = state.model.predict_many(pd.DataFrame(x, columns=rows.names)).to_numpy(dtype=np.float64)
        else:
            ratio = np.array([state.model.predict_one(dict(zip(rows.names, r))) for r in x.tolist()])
        out[act] = np.maximum(ratio, 0.0) * rows.level[act]
    return out


def step(state: OnlineState, rows: Rows, units: np.ndarray, day: int) -> np.ndarray:
    """Progressive validation of one day: the rows' predictions by ``state`` as it was, then ``state``
    learns every active row whose units are known, each weighing the square root of its level (NaN: no row recorded for the day). Returns the
    predictions; ``state`` is updated in place. Days must come in order, each once."""
    if state.last_day is not None and day != state.last_day + 1:
        raise ValueError(f"online model: the state learnt day {state.last_day} last; day {day} is not the next one")
    predictions = predict(state, rows)
    learn = np.flatnonzero(rows.active & ~np.isnan(units))
    order = learn[np.random.default_rng(day).permutation(len(learn))]
    names, model = rows.names, state.model
    target = units[order] / rows.level[order]
    # a row weighs the square root of its level (normalised to a mean of 1 over the day): the loss is on
    # units / level, and without weights a slow mover's noise moves the model as much as a fast mover's
    # sales, which the WRMSSE weighs by their dollars (measured: docs/online-model.md)
    weight = np.sqrt(rows.level[order])
    weight = weight / weight.mean() if len(weight) else weight
    weighted = state.learner == "linear"  # River's Hoeffding trees take no sample weight
    for x, y, w in zip(rows.x[order].tolist(), target.tolist(), weight.tolist()):
        if weighted:
            model.learn_one(dict(zip(names, x)), y, w)
        else:
            model.learn_one(dict(zip(names, x)), y)
    state.last_day = day
    state.days_learnt += 1
    state.rows_learnt += len(order)
    return predictions
