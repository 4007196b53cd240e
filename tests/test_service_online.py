"""The prediction service's answers for the online model (the challenger): ``GET /forecasts?model=online`` is the
chain's ``ForecastOnline`` forecast of the run, row for row; ``/version`` and the status page name its state."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline.data import storage
from tests.conftest import RUN_DATE
from tests.test_service import service  # noqa: F401  (the TestClient fixture on the prebuilt chain's copy)

pytestmark = pytest.mark.prebuilt_chain


def online_forecast(date: dt.date = RUN_DATE) -> pd.DataFrame:
    from tasks import ForecastOnline

    frame = pd.read_parquet(ForecastOnline(date=date).output().path / "forecast.parquet")
    frame["date"] = pd.to_datetime(frame["date"]).dt.date.astype(str)
    return frame


def state_manifest(date: dt.date) -> dict:
    from tasks import UpdateOnlineModel

    return storage.read_json(UpdateOnlineModel(date=date).output().path / "manifest.json")


def test_model_online_returns_the_online_forecast_of_every_series_exactly(service):
    frame = online_forecast()
    keys = frame[["store_id", "item_id"]].drop_duplicates()
    assert len(keys) == 140 and len(frame) == 140 * 28
    got = []
    for store, item in keys.itertuples(index=False):
        answer = service.get(f"/forecasts/{store}/{item}?as_of={RUN_DATE}&model=online")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["store_id"], body["item_id"], body["as_of"], body["model"]) == (store, item, RUN_DATE.isoformat(),
                                                                                     "online")
        assert [r["horizon"] for r in body["forecast"]] == list(range(1, 29))
        assert all(r["quantiles"] is None for r in body["forecast"])  # the quantiles are the batch model's
        got += [{"store_id": store, "item_id": item, "date": r["date"], "horizon": r["horizon"], "served": r["units"]}
                for r in body["forecast"]]
    both = frame.merge(pd.DataFrame(got), on=["store_id", "item_id", "date", "horizon"], how="outer", indicator=True)
    assert (both["_merge"] == "both").all() and len(both) == 140 * 28
    # the file's float32, not merely close
    assert (both["units"].astype(float) == both["served"]).all(), both[both["units"] != both["served"]].head()


def test_the_online_forecast_is_not_the_batch_models_and_the_default_is_the_batch_model(service):
    default = service.get("/forecasts/TX_2/HOBBIES_1_002")
    assert default.status_code == 200
    batch = service.get(f"/forecasts/TX_2/HOBBIES_1_002?as_of={RUN_DATE}&model=batch").json()
    assert default.json() == batch and batch["model"] == "batch"
    assert all(len(r["quantiles"]) == 9 for r in batch["forecast"])
    online = service.get("/forecasts/TX_2/HOBBIES_1_002?model=online").json()  # the newest run by default too
    assert online["as_of"] == batch["as_of"] == RUN_DATE.isoformat()
    assert [r["date"] for r in online["forecast"]] == [r["date"] for r in batch["forecast"]]
    mine = online_forecast().query("store_id == 'TX_2' and item_id == 'HOBBIES_1_002'").sort_values("horizon")
    assert [r["units"] for r in online["forecast"]] == mine["units"].astype(float).tolist()
    assert [r["units"] for r in online["forecast"]] != [r["units"] for r in batch["forecast"]]
    # over the whole run, the two models agree on (almost) no row
    total = same = 0
    for store, item in (("CA_1", "FOODS_1_001"), ("WI_2", "FOODS_2_001"), ("TX_2", "HOBBIES_1_002")):
        a = service.get(f"/forecasts/{store}/{item}?model=online").json()["forecast"]
        b = service.get(f"/forecasts/{store}/{item}").json()["forecast"]
        total, same = total + len(a), same + sum(x["units"] == y["units"] for x, y in zip(a, b))
    assert total == 84 and same <= 2, same


def test_an_unknown_model_is_refused_naming_the_allowed_ones(service):
    answer = service.get("/forecasts/CA_1/FOODS_1_001?model=lightgbm")
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail[0]["loc"] == ["query", "model"] and "'batch'" in detail[0]["msg"] and "'online'" in detail[0]["msg"]
    assert "lightgbm" not in answer.text  # the value given is not echoed back


def test_a_run_date_before_the_online_models_start_gets_404_naming_the_start(service):
    from tasks import config

    start = config.online_model().start_date
    assert start == RUN_DATE - dt.timedelta(days=2)  # tests/conftest.py FAST_ONLINE
    before = start - dt.timedelta(days=1)
    answer = service.get(f"/forecasts/CA_1/FOODS_1_001?as_of={before}&model=online")
    assert answer.status_code == 404
    assert answer.json()["detail"] == (f"no online forecast for the run date {before}: the online model starts on "
                                       f"{start} ([online_model] start_date)")


def test_a_run_date_whose_online_forecast_is_not_made_gets_404_saying_so(service):
    from tasks import ForecastOnline, UpdateOnlineModel

    day = RUN_DATE - dt.timedelta(days=1)  # the state of that day exists (the chain stepped through it), its forecast not
    assert UpdateOnlineModel(date=day).output().exists() and not ForecastOnline(date=day).output().exists()
    answer = service.get(f"/forecasts/CA_1/FOODS_1_001?as_of={day}&model=online")
    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert f"run date {day}" in detail and "ForecastOnline has not run" in detail and "starts on" not in detail
    unknown = service.get(f"/forecasts/ZZ_9/FOODS_1_001?as_of={day}&model=online")
    assert unknown.status_code == 404 and "store 'ZZ_9'" in unknown.json()["detail"]
    unknown = service.get("/forecasts/CA_1/FOODS_9_999?model=online")
    assert unknown.status_code == 404 and "item 'FOODS_9_999'" in unknown.json()["detail"]


def test_an_online_forecast_written_after_a_first_request_is_served(service):
    from tasks import ForecastOnline

    folder = ForecastOnline(date=RUN_DATE).output().path
    aside = folder.with_name(folder.name + ".aside")
    folder.rename(aside)
    try:
        assert service.get("/forecasts/CA_1/FOODS_1_001?model=online").status_code == 404
    finally:
        aside.rename(folder)
    assert service.get("/forecasts/CA_1/FOODS_1_001?model=online").status_code == 200


def test_version_names_the_online_model_and_its_newest_state(service):
    from tasks import UpdateOnlineModel, config

    cfg, state = config.online_model(), state_manifest(RUN_DATE)
    day_before = state_manifest(RUN_DATE - dt.timedelta(days=1))
    assert isinstance(state["mae"], float) and day_before["mae"] != state["mae"]
    # without the run date's state (not written yet), the newest one before it
    folder = UpdateOnlineModel(date=RUN_DATE).output().path
    aside = folder.with_name(folder.name + ".aside")
    folder.rename(aside)
    try:
        earlier = service.get("/version").json()["online_model"]
    finally:
        aside.rename(folder)
    assert earlier["state"] == day_before and earlier["state"]["date"] == (RUN_DATE - dt.timedelta(days=1)).isoformat()
    # once it is written, the run date's own (a miss is not kept)
    online = service.get("/version").json()["online_model"]
    assert online["start_date"] == cfg.start_date.isoformat() and online["learner"] == cfg.learner
    assert online["learning_rate"] == cfg.learning_rate and online["warmup_days"] == cfg.warmup_days
    assert online["state"] == state and online["state"]["date"] == RUN_DATE.isoformat() and online["detail"] is None


def test_the_status_page_shows_the_online_models_state_and_mae(service):
    from tasks import config

    state = state_manifest(RUN_DATE)
    page = service.get("/").text
    assert "Online model (challenger)" in page
    assert f"<td>{config.online_model().learner} (learning rate" in page
    assert f"<td>{RUN_DATE} ({state['days_learnt']:,} days learnt)</td>" in page
    assert f"<td>{state['mae']:.4f} (its last day" in page
