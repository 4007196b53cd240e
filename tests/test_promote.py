"""No bad model promoted: the gate, the serving model it chooses, and the roll-back switch."""
from __future__ import annotations

import datetime as dt

import luigi
import pytest

from pipeline import promote, storage
from tasks import DailyForecast, PromoteModel
from tests.conftest import RUN_DATE

OK = luigi.execution_summary.LuigiStatusCode.SUCCESS
PREV = RUN_DATE - dt.timedelta(days=7)


def test_decision_rule():
    first = promote.decide(PREV, None, {}, 0.02)
    assert first["promoted"] and first["serving_model"] == PREV.isoformat()
    better = promote.decide(RUN_DATE, PREV, {"candidate": 0.80, "incumbent": 0.81}, 0.02)
    assert better["promoted"] and better["serving_model"] == RUN_DATE.isoformat()
    within = promote.decide(RUN_DATE, PREV, {"candidate": 0.82, "incumbent": 0.81}, 0.02)
    assert within["promoted"]
    worse = promote.decide(RUN_DATE, PREV, {"candidate": 0.90, "incumbent": 0.81}, 0.02)
    assert not worse["promoted"] and worse["serving_model"] == PREV.isoformat()
    assert worse["candidate_wrmsse"] == 0.9 and worse["incumbent_wrmsse"] == 0.81


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
    decision = storage.read_json(chain_env.data / "models" / RUN_DATE.isoformat() / "promotion.json")
    assert decision["incumbent"] == PREV.isoformat()
    assert decision["candidate_wrmsse"] > 0 and decision["incumbent_wrmsse"] > 0
    manifest = storage.read_json(chain_env.data / "forecasts" / RUN_DATE.isoformat() / "manifest.json")
    assert manifest["model_date"] == decision["serving_model"]
    first = storage.read_json(chain_env.data / "models" / PREV.isoformat() / "promotion.json")
    assert first["promoted"] and first["incumbent"] is None  # 2016-05-15 starts the chain


def test_a_worse_model_is_not_promoted(gated):
    """With a margin of -100 % no candidate can pass: the previous model keeps serving."""
    chain_env = gated
    cfg = luigi.configuration.get_config()
    cfg.set("training", "promotion_margin", "-0.999")
    try:
        assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == OK
    finally:
        cfg.set("training", "promotion_margin", "0.02")
    decision = storage.read_json(chain_env.data / "models" / RUN_DATE.isoformat() / "promotion.json")
    assert not decision["promoted"] and decision["serving_model"] == PREV.isoformat()
    manifest = storage.read_json(chain_env.data / "forecasts" / RUN_DATE.isoformat() / "manifest.json")
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
    manifest = storage.read_json(chain_env.data / "forecasts" / RUN_DATE.isoformat() / "manifest.json")
    assert manifest["model_date"] == PREV.isoformat()
    assert not PromoteModel(date=RUN_DATE).complete()  # pinned: no promotion decision was needed


@pytest.mark.parametrize("bad", ["2016-13-01"])
def test_a_bad_pin_is_a_clear_error(chain_env, bad):
    from pipeline import config

    cfg = luigi.configuration.get_config()
    cfg.set("training", "serve_model", bad)
    try:
        with pytest.raises(ValueError):
            config.training().pinned_model()
    finally:
        cfg.remove_option("training", "serve_model")
