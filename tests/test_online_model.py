"""The online model's core: its features by hand on a small series, no sale after the anchor seen, and
progressive validation (predict the day first, then learn it) with River."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from pipeline.core.online_model import features as F
from pipeline.core.online_model.learner import LEARNERS, make_learner, new_state, predict, step

DAYS = 200
FIRST_DAY = 16000  # a day number (days since 1970-01-01)


def small_panel(units: np.ndarray, n_weeks: int = 40) -> F.Panel:
    """Two series (rows of ``units``) in one state, one store, one department each; prices per week."""
    n = units.shape[0]
    days = units.shape[1] + 40  # the calendar runs past the sales (forecast days)
    prices = np.tile(np.linspace(2.0, 3.0, n_weeks), (n, 1))
    prices[1] = 5.0
    events = np.full((days, 2), "", dtype=object)
    events[150, 0] = "Sporting"
    events[150, 1] = "Cultural"
    return F.Panel(units=units, first_day=FIRST_DAY, prices=prices,
                   wday=(np.arange(days) % 7) + 1, week=np.arange(days) // 7,
                   events=events.astype(str), snap={"CA": (np.arange(days) % 3 == 0).astype(float)},
                   state=np.array(["CA"] * n), dept=np.array(["FOODS_1", "HOBBIES_1"][:n]),
                   store=np.array(["CA_1"] * n))


def rng_units(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    units = rng.poisson(3.0, size=(2, DAYS)).astype(float)
    units[1, :60] = np.nan  # the second series has no rows before day 60
    units[1, 60:70] = 0.0
    return units


def column(rows: F.Rows, name: str) -> np.ndarray:
    return rows.x[:, rows.names.index(name)]


def test_hand_computed_features_of_a_small_series():
    units = rng_units()
    panel = small_panel(units)
    t = 150  # panel column of the target day; its anchor is column 122
    rows = F.features(panel, np.array([FIRST_DAY + t]), ["FOODS_1", "HOBBIES_1"], ["CA_1"])
    a = t - 28
    u = units[0]
    level = max(u[a - 90:a + 1].mean(), F.LEVEL_FLOOR)
    assert rows.level[0] == pytest.approx(level)
    assert column(rows, "lag_28")[0] == pytest.approx(u[a] / level)
    assert column(rows, "lag_49")[0] == pytest.approx(u[a - 21] / level)
    assert column(rows, "rmean_7")[0] == pytest.approx(u[a - 6:a + 1].mean() / level)
    assert column(rows, "rmean_28")[0] == pytest.approx(u[a - 27:a + 1].mean() / level)
    assert column(rows, "wday_mean_4")[0] == pytest.approx(np.mean([u[a], u[a - 7], u[a - 14], u[a - 21]]) / level)
    assert column(rows, "wday_mean_13")[0] == pytest.approx(np.mean([u[a - 7 * k] for k in range(13)]) / level)
    assert column(rows, "rzero_28")[0] == pytest.approx((u[a - 27:a + 1] == 0).mean())
    assert column(rows, "log_level")[0] == pytest.approx(np.log1p(level))
    # the calendar of the target day itself (known in advance)
    assert column(rows, f"wday_{t % 7 + 1}")[0] == 1.0 and sum(column(rows, f"wday_{d}")[0] for d in range(1, 8)) == 1
    assert column(rows, "event")[0] == 1.0 and column(rows, "event_Sporting")[0] == 1.0
    assert column(rows, "event_Cultural")[0] == 1.0 and column(rows, "event_National")[0] == 0.0
    assert column(rows, "snap")[0] == float(t % 3 == 0)
    # price of the target week against the anchor's week, and against the highest price so far
    p = panel.prices[0]
    assert column(rows, "price_change")[0] == pytest.approx(p[t // 7] / p[a // 7] - 1)
    assert column(rows, "price_norm")[0] == pytest.approx(1.0)  # a rising price is its own maximum
    assert column(rows, "dept=FOODS_1")[0] == 1.0 and column(rows, "dept=HOBBIES_1")[0] == 0.0
    assert column(rows, "dept=HOBBIES_1")[1] == 1.0 and column(rows, "store=CA_1")[1] == 1.0
    assert rows.active.tolist() == [True, True]


def test_a_series_without_sales_in_the_window_is_inactive_and_forecast_zero():
    units = rng_units()
    units[1, :] = np.nan
    units[1, 100:] = 0.0  # rows, but nothing sold
    rows = F.features(small_panel(units), np.array([FIRST_DAY + 150]), ["FOODS_1", "HOBBIES_1"], ["CA_1"])
    assert rows.active.tolist() == [True, False]
    assert rows.level[1] == F.LEVEL_FLOOR  # no division by zero
    state = new_state("linear", 0.01)
    state.model.learn_one(dict(zip(rows.names, rows.x[0])), 5.0)
    assert predict(state, rows)[1] == 0.0 and predict(state, rows)[0] > 0


def test_no_feature_sees_a_sale_after_the_anchor():
    units = rng_units()
    days = np.arange(FIRST_DAY + 130, FIRST_DAY + 170)
    base = F.features(small_panel(units), days, ["FOODS_1", "HOBBIES_1"], ["CA_1"])
    for k, day in enumerate(days):
        a = day - FIRST_DAY - 28
        later = units.copy()
        later[:, a + 1:] += 50.0  # everything after the anchor of day k changes
        changed = F.features(small_panel(later), days[k:k + 1], ["FOODS_1", "HOBBIES_1"], ["CA_1"])
        assert np.array_equal(changed.x, base.x.reshape(2, len(days), -1)[:, k]), day
        at_anchor = units.copy()
        at_anchor[:, a] += 50.0  # the anchor itself is seen
        seen = F.features(small_panel(at_anchor), days[k:k + 1], ["FOODS_1", "HOBBIES_1"], ["CA_1"])
        assert not np.array_equal(seen.x, changed.x)


def test_rows_needing_history_outside_the_panel_are_refused():
    panel = small_panel(rng_units())
    with pytest.raises(ValueError, match="need sales from day"):
        F.features(panel, np.array([FIRST_DAY + 100]), [], [])  # its window starts before the panel
    with pytest.raises(ValueError, match="need sales from day"):
        F.features(panel, np.array([FIRST_DAY + DAYS + 28]), [], [])  # its anchor is after the panel


def day_rows(panel: F.Panel, t: int) -> F.Rows:
    return F.features(panel, np.array([FIRST_DAY + t]), ["FOODS_1", "HOBBIES_1"], ["CA_1"])


def test_step_predicts_with_the_state_before_the_day_then_learns_it():
    units = rng_units()
    panel = small_panel(units)
    state = new_state("linear", 0.01)
    before = pickle.dumps(state.model)
    rows = day_rows(panel, 150)
    expected = predict(state, rows)
    got = step(state, rows, units[:, 150], FIRST_DAY + 150)
    assert np.array_equal(got, expected)  # the day's predictions were made before learning it
    assert pickle.dumps(state.model) != before and state.rows_learnt == 2 and state.days_learnt == 1
    with pytest.raises(ValueError, match="not the next one"):
        step(state, rows, units[:, 150], FIRST_DAY + 150)
    # a series with no row on the day is not learnt
    state2 = new_state("linear", 0.01)
    step(state2, rows, np.array([units[0, 150], np.nan]), FIRST_DAY + 150)
    assert state2.rows_learnt == 1


def test_the_same_days_give_the_same_bytes_and_learning_moves_towards_the_target():
    units = rng_units()
    panel = small_panel(units)

    def run():
        state = new_state("linear", 0.01)
        errors = []
        for t in range(120, DAYS):
            pred = step(state, day_rows(panel, t), units[:, t], FIRST_DAY + t)
            known = ~np.isnan(units[:, t])
            errors.append(np.abs(pred[known] - units[known, t]).mean())
        return pickle.dumps(state), errors

    first, errors = run()
    assert run()[0] == first
    # Poisson(3) around a constant level: after learning, the error is well below predicting zero's
    assert np.mean(errors[-30:]) < 0.6 * np.nanmean(units[:, 170:])


@pytest.mark.parametrize("name", LEARNERS)
def test_every_learner_is_a_river_model_that_learns(name):
    model = make_learner(name, 0.01)
    assert type(model).__module__.startswith("river.")
    units = rng_units()
    panel = small_panel(units)
    state = new_state(name, 0.01)
    for t in range(120, 140):
        step(state, day_rows(panel, t), units[:, t], FIRST_DAY + t)
    assert state.rows_learnt > 0 and np.all(np.isfinite(predict(state, day_rows(panel, 140))))


def test_an_unknown_learner_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="linear, hoeffding"):
        make_learner("svm", 0.01)
