"""No bad model promoted: the gate, the serving model it chooses, and the roll-back switch."""
from __future__ import annotations

import datetime as dt

import luigi
import pytest

from tasks import config
from pipeline.core import serving
from pipeline.data import storage
from tasks import DailyForecast, PromoteModel, ScoreForecast, TrainModel
from tests.outputs import out
from tests.conftest import RUN_DATE

OK = luigi.execution_summary.LuigiStatusCode.SUCCESS
PREV = RUN_DATE - dt.timedelta(days=7)


def test_decision_rule():
    first = serving.decide(PREV, {}, 0.02)
    assert first["promoted"] and first["serving_model"] == PREV.isoformat() and first["incumbent"] is None
    better = serving.decide(RUN_DATE, {RUN_DATE: 0.80, PREV: 0.81}, 0.02)
    assert better["promoted"] and better["serving_model"] == RUN_DATE.isoformat()
    within = serving.decide(RUN_DATE, {RUN_DATE: 0.82, PREV: 0.81}, 0.02)
    assert within["promoted"]
    worse = serving.decide(RUN_DATE, {RUN_DATE: 0.90, PREV: 0.81}, 0.02)
    assert not worse["promoted"] and worse["serving_model"] == PREV.isoformat()
    assert worse["candidate_wrmsse"] == 0.9 and worse["incumbent_wrmsse"] == 0.81
    # several previous models: the best of them on the candidate's window is the one to beat, and serves
    older = PREV - dt.timedelta(days=7)
    three = serving.decide(RUN_DATE, {RUN_DATE: 0.90, PREV: 0.95, older: 0.85}, 0.02)
    assert not three["promoted"] and three["serving_model"] == older.isoformat()
    assert three["previous"] == {older.isoformat(): 0.85, PREV.isoformat(): 0.95}
    assert serving.decide(RUN_DATE, {RUN_DATE: 0.86, PREV: 0.95, older: 0.85}, 0.02)["promoted"]
    tie = serving.decide(RUN_DATE, {RUN_DATE: 0.99, PREV: 0.85, older: 0.85}, 0.02)
    assert tie["serving_model"] == PREV.isoformat()  # on a tie, the newer


def training_dates_needed(task) -> set[dt.date]:
    """Every TrainModel a task needs, from its static requirements (nothing is run)."""
    seen, stack, dates = set(), [task], set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        if isinstance(t, TrainModel):
            dates.add(t.date)
        stack.extend(luigi.task.flatten(t.requires()))
    return dates


@pytest.mark.parametrize("start", ["2011-01-29", "2016-05-08", "2016-05-22"])
@pytest.mark.parametrize("date", ["2016-05-22", "2016-05-25", "2030-01-01"])
def test_a_run_date_needs_a_bounded_number_of_trainings(chain_env, start, date):
    cfg = luigi.configuration.get_config()
    cfg.set("training", "promotion_start", start)
    try:
        # ScoreForecast: the chain itself (DailyForecast stands in one failing task for a date without data)
        needed = training_dates_needed(ScoreForecast(date=dt.date.fromisoformat(date)))
        lookback = config.training().promotion_lookback
    finally:
        cfg.set("training", "promotion_start", RUN_DATE.isoformat())
    assert 1 <= len(needed) <= lookback + 1
    assert all(d >= dt.date.fromisoformat(start) for d in needed)
    assert max(needed) <= dt.date.fromisoformat(date)


@pytest.fixture
def gated(chain_env):
    """The chain with promotion starting a week before the run date: 2016-05-22 is gated against 2016-05-15."""
    cfg = luigi.configuration.get_config()
    cfg.set("training", "promotion_start", PREV.isoformat())
    yield chain_env
    cfg.set("training", "promotion_start", RUN_DATE.isoformat())


def test_the_chain_serves_the_promoted_model_and_records_both_numbers(gated):
    chain_env = gated
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == OK
    decision = storage.read_json(out(chain_env.data, "promotions", RUN_DATE.isoformat()) / "decision.json")
    assert decision["incumbent"] == PREV.isoformat()
    assert decision["candidate_wrmsse"] > 0 and decision["incumbent_wrmsse"] > 0
    manifest = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    assert manifest["model_date"] == decision["serving_model"]
    assert manifest["serving"]["model_date"] == decision["serving_model"] and manifest["serving"]["training_date"] == RUN_DATE.isoformat()
    assert decision["previous"] == {PREV.isoformat(): decision["incumbent_wrmsse"]}
    # the decision of 2016-05-22 did not need the one of 2016-05-15 (no chain of decisions)
    assert not (chain_env.data / "promotions" / PREV.isoformat()).exists()
    assert chain_env.build([PromoteModel(date=PREV)]).status == OK
    first = storage.read_json(out(chain_env.data, "promotions", PREV.isoformat()) / "decision.json")
    assert first["promoted"] and first["incumbent"] is None  # 2016-05-15 is the first model of the window


def test_a_worse_model_is_not_promoted(gated):
    """With a margin of -100 % no candidate can pass: the previous model keeps serving."""
    chain_env = gated
    cfg = luigi.configuration.get_config()
    cfg.set("training", "promotion_margin", "-0.999")
    try:
        assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == OK
    finally:
        cfg.set("training", "promotion_margin", "0.02")
    decision = storage.read_json(out(chain_env.data, "promotions", RUN_DATE.isoformat()) / "decision.json")
    assert not decision["promoted"] and decision["serving_model"] == PREV.isoformat()
    manifest = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    assert manifest["model_date"] == PREV.isoformat()
    assert not (chain_env.data / "compiled" / RUN_DATE.isoformat()).exists()  # the rejected model is never compiled


def test_roll_back_by_pinning_a_model(gated):
    chain_env = gated
    cfg = luigi.configuration.get_config()
    cfg.set("training", "serve_model", PREV.isoformat())
    try:
        assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == OK
    finally:
        cfg.remove_option("training", "serve_model")
    manifest = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE.isoformat()) / "manifest.json")
    assert manifest["model_date"] == PREV.isoformat() and manifest["serving"]["how"] == "pinned"
    assert not PromoteModel(date=RUN_DATE).complete()  # pinned: no promotion decision was needed


@pytest.mark.parametrize("bad", ["2016-13-01"])
def test_a_bad_pin_is_a_clear_error(chain_env, bad):
    from tasks import config
    cfg = luigi.configuration.get_config()
    cfg.set("training", "serve_model", bad)
    try:
        with pytest.raises(ValueError):
            config.training().pinned_model()
    finally:
        cfg.remove_option("training", "serve_model")
