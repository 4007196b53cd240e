"""The model's life cycle: the schedule, the promotion decisions and the pin decide which model serves a date."""
from __future__ import annotations

import datetime as dt

import pytest

from pipeline.core.serving import TrainingSchedule, serving_model

ANCHOR = dt.date(2016, 5, 22)


def schedule(every: int = 7, start: dt.date = dt.date(2016, 5, 1), lookback: int = 3) -> TrainingSchedule:
    return TrainingSchedule(anchor=ANCHOR, every_days=every, promotion_start=start, lookback=lookback)


@pytest.mark.parametrize("every", [1, 7, 14])
def test_newest_training_date_on_or_before(every):
    s = schedule(every)
    for offset in range(-60, 60):
        date = ANCHOR + dt.timedelta(days=offset)
        chosen = s.training_date(date)
        assert chosen <= date and (date - chosen).days < every
        assert (chosen - ANCHOR).days % every == 0
        assert s.is_training_date(chosen)


def test_examples_and_bad_settings():
    s = schedule()
    assert s.training_date(dt.date(2016, 5, 21)) == dt.date(2016, 5, 15)
    assert s.training_date(dt.date(2016, 6, 1)) == dt.date(2016, 5, 29)
    with pytest.raises(ValueError, match="every_days"):
        schedule(every=0)
    with pytest.raises(ValueError, match="promotion_lookback"):
        schedule(lookback=-1)


def test_a_candidate_is_compared_with_at_most_lookback_models_since_the_start():
    s = schedule(start=dt.date(2016, 5, 8))
    assert s.compared_with(dt.date(2016, 5, 29)) == [dt.date(2016, 5, 22), dt.date(2016, 5, 15), dt.date(2016, 5, 8)]
    assert s.compared_with(dt.date(2016, 5, 15)) == [dt.date(2016, 5, 8)]
    assert s.compared_with(dt.date(2016, 5, 8)) == []
    assert schedule(lookback=0).compared_with(ANCHOR) == []


def decision(candidate: dt.date, serving: dt.date) -> dict:
    return {"candidate": candidate.isoformat(), "serving_model": serving.isoformat(),
            "promoted": candidate == serving, "reason": "test"}


def test_the_decision_of_the_training_date_decides_every_run_date_until_the_next():
    s = schedule()
    may15, may22 = dt.date(2016, 5, 15), dt.date(2016, 5, 22)
    decisions = {may15: decision(may15, may15), may22: decision(may22, may15)}  # the 22nd's model was worse
    for day in range(15, 29):
        run = dt.date(2016, 5, day)
        choice = serving_model(run, s, decisions)
        assert choice.model_date == may15
        assert choice.training_date == (may15 if day < 22 else may22)
        assert choice.how == ("promoted" if day < 22 else "kept")


def test_a_pin_wins_and_a_pin_after_the_run_date_is_refused():
    s = schedule()
    asked = []
    choice = serving_model(dt.date(2016, 5, 25), s, lambda d: asked.append(d), pin=dt.date(2016, 5, 8))
    assert (choice.model_date, choice.how, asked) == (dt.date(2016, 5, 8), "pinned", [])
    with pytest.raises(ValueError, match="after the run date"):
        serving_model(dt.date(2016, 5, 25), s, {}, pin=dt.date(2016, 5, 29))


def test_a_decision_of_another_date_is_refused():
    s = schedule()
    with pytest.raises(ValueError, match="decision of"):
        serving_model(dt.date(2016, 5, 23), s, {dt.date(2016, 5, 22): decision(dt.date(2016, 5, 15), dt.date(2016, 5, 15))})
