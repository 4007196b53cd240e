"""The prediction service over the tiny world's chain: parity with the published forecast, what-if prices,
errors, the bearer token, and that no request writes anything."""
from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.data.series_history import create_indexes
from tests.conftest import RUN_DATE, tree_state, tree_changes

pytestmark = pytest.mark.prebuilt_chain


@pytest.fixture
def service(chain_env):
    """A TestClient of the service on the prebuilt chain's copy (indexes made first, as `make serve` does)."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    create_indexes(chain_env.engine)
    with TestClient(create_app(token="")) as client:
        client.env = chain_env
        yield client


def published(env) -> pd.DataFrame:
    with env.engine.connect() as conn:
        return pd.read_sql(sa.text("SELECT item_id, store_id, date, horizon, units FROM forecasts WHERE as_of = :d"),
                           conn, params={"d": RUN_DATE.isoformat()})


def test_health_and_version_name_the_serving_model(service):
    health = service.get("/health")
    assert health.status_code == 200
    assert health.json() | {} == {"status": "ok", "database": True, "model_loaded": True,
                                  "model_date": RUN_DATE.isoformat(), "newest_run": RUN_DATE.isoformat(), "detail": None}
    version = service.get("/version").json()
    model = version["model"]
    assert model["training_date"] == RUN_DATE.isoformat() and version["as_of"] == RUN_DATE.isoformat()
    assert model["features"][:3] == ["item_id", "dept_id", "cat_id"] and model["parameters"]["objective"] == "tweedie"
    assert version["serving"]["how"] == "promoted" and version["promotion_decision"]["promoted"] is True
    assert len(model["configuration_fingerprint"]) >= 8 and version["libraries"]["service"]["fastapi"]


def test_forecasts_return_the_published_rows_of_one_series(service):
    rows = published(service.env)
    one = rows[(rows["store_id"] == "TX_2") & (rows["item_id"] == "HOBBIES_1_002")].sort_values("date")
    body = service.get("/forecasts/TX_2/HOBBIES_1_002").json()
    assert body["as_of"] == RUN_DATE.isoformat() and len(body["forecast"]) == 28
    assert [r["units"] for r in body["forecast"]] == one["units"].tolist()
    assert [r["horizon"] for r in body["forecast"]] == list(range(1, 29))
    again = service.get(f"/forecasts/TX_2/HOBBIES_1_002?as_of={RUN_DATE}").json()
    assert again == body


def test_predict_without_prices_equals_the_published_forecast_for_every_series(service):
    rows = published(service.env)
    keys = rows[["store_id", "item_id"]].drop_duplicates()
    assert len(keys) == 140
    requests = [{"store_id": s, "item_id": i, "as_of": RUN_DATE.isoformat()} for s, i in keys.itertuples(index=False)]
    got = []
    for start in range(0, len(requests), 50):
        answer = service.post("/predict/batch", json={"series": requests[start:start + 50]})
        assert answer.status_code == 200, answer.text
        got += [{"store_id": r["store_id"], "item_id": r["item_id"], "date": f["date"], "online": f["units"]}
                for r in answer.json()["results"] for f in r["forecast"]]
    online = pd.DataFrame(got)
    rows["date"] = pd.to_datetime(rows["date"]).dt.date.astype(str)
    both = rows.merge(online, on=["store_id", "item_id", "date"], how="outer", indicator=True)
    assert (both["_merge"] == "both").all() and len(both) == 140 * 28
    # the same features through the same compiled model: the same float32, not merely close
    assert (both["units"] == both["online"]).all(), both[both["units"] != both["online"]].head()


def test_a_price_cut_raises_the_forecast_in_its_week_and_leaves_the_other_weeks_unchanged(service):
    with service.env.engine.connect() as conn:
        foods = [r[0] for r in conn.execute(sa.text("SELECT item_id FROM items WHERE cat_id = 'FOODS' ORDER BY item_id"))]
    before = after = 0.0
    for item in foods:
        ask = {"store_id": "CA_1", "item_id": item, "as_of": RUN_DATE.isoformat()}
        base = service.post("/predict", json=ask).json()["forecast"]
        week = sorted({r["wm_yr_wk"] for r in base})[2]
        price = next(r["sell_price"] for r in base if r["wm_yr_wk"] == week)
        cut = service.post("/predict", json=ask | {"prices": [{"wm_yr_wk": week, "sell_price": round(0.8 * price, 2)}]})
        assert cut.status_code == 200, cut.text
        cut = cut.json()["forecast"]
        for b, c in zip(base, cut):
            if b["wm_yr_wk"] == week:
                before, after = before + b["units"], after + c["units"]
                assert c["sell_price"] == round(0.8 * price, 2)
            else:
                assert c == b  # other weeks: the same features, the same forecast
    assert after > 1.05 * before, (before, after)


@pytest.mark.parametrize("path, status, words", [
    ("/forecasts/ZZ_9/FOODS_1_001", 404, "store 'ZZ_9'"),
    ("/forecasts/CA_1/FOODS_9_999", 404, "item 'FOODS_9_999'"),
    ("/forecasts/CA_1/FOODS_1_001?as_of=2016-05-01", 404, "no forecast was published for the run date 2016-05-01"),
    ("/forecasts/CA_1/FOODS_1_001?as_of=2016-02-30", 422, "as_of"),
    ("/version?as_of=2016-05-01", 404, "no model serves the run date 2016-05-01"),
])
def test_unknown_things_and_bad_dates_get_a_clear_error(service, path, status, words):
    answer = service.get(path)
    assert answer.status_code == status
    assert words in json.dumps(answer.json())


@pytest.mark.parametrize("body, status, words", [
    ({"store_id": "ZZ_9", "item_id": "FOODS_1_001", "as_of": "2016-05-22"}, 404, "store 'ZZ_9'"),
    ({"store_id": "CA_1", "item_id": "NOPE_1_001", "as_of": "2016-05-22"}, 404, "item 'NOPE_1_001'"),
    ({"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": "2030-01-01"}, 422, "no sales are recorded for the run date"),
    ({"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": "22/05/2016"}, 422, "as_of"),
    ({"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": "2016-05-22",
      "prices": [{"wm_yr_wk": 11700, "sell_price": 1.0}]}, 422, "week 11700"),
    ({"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": "2016-05-22",
      "prices": [{"wm_yr_wk": 11617, "sell_price": -1.0}]}, 422, "sell_price"),
    ({"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": "2016-05-22", "extra": 1}, 422, "extra"),
    ({"store_id": "CA_1" * 5, "item_id": "FOODS_1_001", "as_of": "2016-05-22"}, 422, "store_id"),
])
def test_bad_predict_requests_are_refused_naming_what_is_wrong(service, body, status, words):
    answer = service.post("/predict", json=body)
    assert answer.status_code == status, answer.text
    assert words in json.dumps(answer.json())


def test_an_oversized_batch_is_refused(chain_env):
    from fastapi.testclient import TestClient

    from service.app import create_app

    create_indexes(chain_env.engine)
    client = TestClient(create_app(token="", max_batch=3))
    one = {"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": RUN_DATE.isoformat()}
    assert client.post("/predict/batch", json={"series": [one] * 3}).status_code == 200
    refused = client.post("/predict/batch", json={"series": [one] * 4})
    assert refused.status_code == 422 and "at most 3" in refused.json()["detail"]


def test_the_bearer_token_guards_every_endpoint_but_health(chain_env):
    from fastapi.testclient import TestClient

    from service.app import create_app

    create_indexes(chain_env.engine)
    client = TestClient(create_app(token="s3cret-token"))
    assert client.get("/health").status_code == 200
    for path in ("/version", "/forecasts/CA_1/FOODS_1_001", "/metrics", "/", "/docs", "/openapi.json"):
        refused = client.get(path)
        assert refused.status_code == 401 and "s3cret" not in refused.text, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200, path


def test_an_unexpected_failure_answers_500_without_a_trace_or_a_secret(service, monkeypatch):
    secret_url = "postgresql://svc:hunter2-password@db.internal/sales"

    def broken(*_, **__):
        raise RuntimeError(f"could not reach {secret_url}\nTraceback (most recent call last): ...")

    monkeypatch.setattr(service.app.state.backend, "published", broken)
    from pipeline.data import masking

    masking.remember("hunter2-password")
    answer = service.get("/forecasts/CA_1/FOODS_1_001")
    assert answer.status_code == 500
    assert "hunter2" not in answer.text and "Traceback" not in answer.text and "internal error" in answer.text
    assert 'forecast_service_errors_total{endpoint="/forecasts/{store_id}/{item_id}"} 1.0' in service.get("/metrics").text


def test_requests_write_nothing_to_the_database_or_the_data_folder(service):
    env = service.env
    world = env.data.parent / "world.sqlite"
    before_db, before_data = world.read_bytes(), tree_state(env.data)
    service.get("/")
    service.get("/forecasts/CA_1/FOODS_1_001")
    assert service.get("/forecasts/CA_1/FOODS_1_001?model=online").status_code == 200
    assert service.get("/version").status_code == 200
    service.post("/predict", json={"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": RUN_DATE.isoformat(),
                                   "prices": [{"wm_yr_wk": 11617, "sell_price": 0.5}]})
    assert world.read_bytes() == before_db
    assert tree_changes(before_data, tree_state(env.data)) == []


def test_metrics_count_requests_by_endpoint_and_status(service):
    service.get("/forecasts/CA_1/FOODS_1_001")
    service.get("/forecasts/ZZ_9/FOODS_1_001")
    text = service.get("/metrics").text
    assert 'forecast_service_requests_total{endpoint="/forecasts/{store_id}/{item_id}",method="GET",status="200"} 1.0' in text
    assert 'forecast_service_requests_total{endpoint="/forecasts/{store_id}/{item_id}",method="GET",status="404"} 1.0' in text
    assert f'forecast_service_serving_model{{model_date="{RUN_DATE}"}} 1.0' in text
    assert "forecast_service_request_seconds_bucket" in text


def test_a_model_the_online_path_cannot_feed_is_refused_with_501(service, monkeypatch):
    backend = service.app.state.backend
    real = backend.model_for

    def pooled_model(as_of):
        import dataclasses

        model = real(as_of)
        return dataclasses.replace(model, metadata={**model.metadata,
                                                    "features": model.metadata["features"] + ["store_trend"]})

    monkeypatch.setattr(backend, "model_for", pooled_model)
    answer = service.post("/predict", json={"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": "2016-05-22"})
    assert answer.status_code == 501 and "store_trend" in answer.json()["detail"]


def test_the_service_refuses_to_start_without_the_series_indexes(chain_env):
    from pipeline.core.errors import DatabaseError
    from service.backend import Backend

    with pytest.raises(DatabaseError, match="ix_sales_series.*python -m pipeline.tools.series_indexes"):
        Backend(chain_env.url)


def test_reading_one_series_uses_the_indexes_not_a_scan(chain_env):
    create_indexes(chain_env.engine)
    with chain_env.engine.connect() as conn:
        plans = [" ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + q).all()) for q in (
            "SELECT date, units, recorded_at FROM sales WHERE store_id = 'CA_1' AND item_id = 'FOODS_1_001' "
            "AND recorded_at < '2016-05-23 00:00:00.000000' ORDER BY date, recorded_at",
            "SELECT store_id, wm_yr_wk, sell_price, recorded_at FROM sell_prices WHERE item_id = 'FOODS_1_001' "
            "AND recorded_at < '2016-05-23 00:00:00.000000' ORDER BY store_id, wm_yr_wk, recorded_at")]
    assert "USING COVERING INDEX ix_sales_series" in plans[0], plans[0]
    assert "USING COVERING INDEX ix_sell_prices_item" in plans[1], plans[1]


def test_the_status_page_names_the_model_and_lists_the_run(service):
    page = service.get("/")
    assert page.status_code == 200
    assert "Serving the model trained on <strong>2016-05-22</strong>" in page.text
    assert 'data-plot="status-wrmsse"' in page.text and "2016-05-22" in page.text


def test_the_status_page_links_the_runs_report(service):
    from tasks import Report

    assert service.env.build([Report(date=RUN_DATE)]).status.name == "SUCCESS"
    page = service.get("/").text
    link = re.search(r'<a href="(reports/2016-05-22/[^"]+/index.html)">report</a>', page)
    assert link, page[-3000:]
    report = service.get("/" + link.group(1))
    assert report.status_code == 200 and "run of 2016-05-22" in report.text


def test_fuzzed_requests_never_fail_the_service_or_leak_a_trace(service):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    ids = st.sampled_from(["CA_1", "TX_2", "FOODS_1_001", "HOBBIES_2_002", "", "CA_1'; DROP TABLE sales;--", "Ω"])
    dates = st.one_of(st.dates(dt.date(1990, 1, 1), dt.date(2040, 1, 1)).map(str), st.sampled_from(
        ["2016-05-22", "2016-04-24", "2016-02-30", "yesterday", "20160522", ""]))
    price = st.fixed_dictionaries({"wm_yr_wk": st.one_of(st.integers(-10, 20000), st.just(11617), st.text(max_size=3)),
                                   "sell_price": st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                                                           st.text(max_size=3))})
    anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=20))
    body = st.fixed_dictionaries({}, optional={"store_id": st.one_of(ids, anything), "item_id": st.one_of(ids, anything),
                                               "as_of": st.one_of(dates, anything),
                                               "prices": st.one_of(st.lists(price, max_size=7), anything),
                                               "other": anything})

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body)
    def check(payload):
        answer = service.post("/predict", json=payload)
        assert answer.status_code in (200, 404, 422), (payload, answer.status_code, answer.text)
        assert "Traceback" not in answer.text and "File \"" not in answer.text
        if answer.status_code != 200:
            assert answer.json()["detail"]

    check()
    paths = st.tuples(st.one_of(ids, st.text(min_size=1, max_size=12)), st.one_of(ids, st.text(min_size=1, max_size=12)),
                      dates, st.one_of(st.sampled_from(["batch", "online"]), st.text(max_size=8)))

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(paths)
    def check_get(args):
        import urllib.parse

        store, item, as_of, model = (urllib.parse.quote(a, safe="") for a in args)
        answer = service.get(f"/forecasts/{store}/{item}?as_of={as_of}&model={model}")
        assert answer.status_code in (200, 404, 422), (args, answer.status_code, answer.text)
        assert "Traceback" not in answer.text

    check_get()


@pytest.mark.parametrize("number", ["1e309", "-1e309", "NaN", "Infinity"])
def test_a_price_that_is_not_a_finite_number_is_refused(service, number):
    # JSON has no infinity, but Python's parser reads 1e309 as one and accepts NaN / Infinity literals
    body = ('{"store_id": "CA_1", "item_id": "FOODS_1_001", "as_of": "2016-05-22", '
            f'"prices": [{{"wm_yr_wk": 11617, "sell_price": {number}}}]}}')
    answer = service.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "sell_price" in answer.text, answer.text


def test_forecasts_carry_the_runs_quantiles_of_the_series(service):
    from tasks import ForecastQuantiles

    table = pd.read_parquet(ForecastQuantiles(date=RUN_DATE).output().path / "quantiles.parquet")
    mine = table[(table["level"] == "item_store") & (table["item_id"] == "FOODS_2_001") & (table["store_id"] == "WI_2")]
    body = service.get("/forecasts/WI_2/FOODS_2_001").json()["forecast"]
    assert len(body) == 28 and list(body[0]["quantiles"]) == ["0.005", "0.025", "0.165", "0.25", "0.5", "0.75",
                                                              "0.835", "0.975", "0.995"]
    for h, row in enumerate(body, start=1):
        expected = mine.sort_values("quantile")[f"F{h}"].astype(float).tolist()
        assert list(row["quantiles"].values()) == expected


def test_quantiles_written_after_a_first_request_are_served(service):
    from tasks import ForecastQuantiles

    folder = ForecastQuantiles(date=RUN_DATE).output().path
    aside = folder.with_name(folder.name + ".aside")
    folder.rename(aside)
    try:
        assert all(r["quantiles"] is None for r in service.get("/forecasts/WI_2/FOODS_2_001").json()["forecast"])
    finally:
        aside.rename(folder)
    assert all(len(r["quantiles"]) == 9 for r in service.get("/forecasts/WI_2/FOODS_2_001").json()["forecast"])
