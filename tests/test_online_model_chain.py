"""The online model in the chain: the state of a date is the warm-up plus the daily updates replayed, a
rerun writes the same bytes, a correction recorded later changes only later states, and the challenger
is scored by Evaluate and Backtest beside the model."""
from __future__ import annotations

import datetime as dt
import json
import pickle
import shutil

import luigi
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.data import db
from pipeline.stages import evaluate, online_model
from tests.conftest import RUN_DATE

START = RUN_DATE - dt.timedelta(days=3)
WARMUP = 60
LAST = START + dt.timedelta(days=3)


def set_online(**values) -> None:
    cfg = luigi.configuration.get_config()
    for key, value in values.items():
        cfg.set("online_model", key, str(value))


def files_of(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def build_online(env, date=LAST):
    from tasks import ForecastOnline

    result = env.build([ForecastOnline(date=date)])
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text


def state_dirs(dates):
    from tasks import UpdateOnlineModel

    return {d: UpdateOnlineModel(date=d).output().path for d in dates}


DATES = [START + dt.timedelta(days=k) for k in range(4)]


@pytest.mark.slow
def test_the_state_is_the_warm_up_and_the_daily_updates_replayed_and_a_rerun_is_the_same_bytes(chain_env):
    from tasks import ExtractSnapshot, ForecastOnline

    set_online(start_date=START, warmup_days=WARMUP)
    build_online(chain_env)
    dirs = state_dirs(DATES)
    snap = {d: ExtractSnapshot(date=d).output().path for d in DATES}

    # replayed by hand from the stage's functions: warm-up on the start date, then one update per day
    state, log, _ = online_model.warm_up(snap[START], START, WARMUP, "linear", 0.0001)
    assert pickle.dumps(state, protocol=online_model.PICKLE_PROTOCOL) == (dirs[START] / "state.pkl").read_bytes()
    assert len(log) == WARMUP
    progressive = pd.DataFrame(log)
    for d in DATES[1:]:
        state, log, _ = online_model.update(state, snap[d], d, progressive)
        progressive = pd.DataFrame(log)
        assert pickle.dumps(state, protocol=online_model.PICKLE_PROTOCOL) == (dirs[d] / "state.pkl").read_bytes(), d
    written = online_model.read_progressive(dirs[LAST])
    pd.testing.assert_frame_equal(written, progressive.tail(online_model.PROGRESSIVE_DAYS).reset_index(drop=True)
                                  .astype({"date": "datetime64[ns]"}))
    assert written["date"].iloc[-1] == pd.Timestamp(LAST) and len(written) == WARMUP + 3
    assert state.days_learnt == WARMUP + 3 and state.last_day is not None

    # the forecast: 28 days of every series of the snapshot, the replayed state's predictions
    forecast_dir = ForecastOnline(date=LAST).output().path
    forecast = pd.read_parquet(forecast_dir / "forecast.parquet")
    again = online_model.forecast(state, snap[LAST], LAST, 28)
    pd.testing.assert_frame_equal(forecast, again)
    assert len(forecast) == 140 * 28 and (forecast["units"] >= 0).all() and forecast["units"].sum() > 0

    # a rerun of the last date (its folders gone) writes the same bytes
    before = {d: files_of(p) for d, p in dirs.items()} | {"forecast": files_of(forecast_dir)}
    shutil.rmtree(dirs[LAST])
    shutil.rmtree(forecast_dir)
    build_online(chain_env)
    after = {d: files_of(p) for d, p in state_dirs(DATES).items()} | {"forecast": files_of(forecast_dir)}
    assert after == before


@pytest.mark.slow
def test_a_correction_recorded_later_changes_only_the_states_from_its_day_on(chain_env, monkeypatch, tmp_path):
    set_online(start_date=START, warmup_days=WARMUP)
    build_online(chain_env)
    first = {d: files_of(p) for d, p in state_dirs(DATES).items()}

    # a correction of a day inside the feature window of the day START + 2 learns (its anchor is 28 days
    # earlier, its window 91 days up to that), recorded during START + 2: unknown to the states before
    corrected_day = START + dt.timedelta(days=2 - 28 - 10)
    recorded = dt.datetime.combine(START + dt.timedelta(days=2), dt.time(12))
    with chain_env.engine.begin() as conn:
        series = conn.execute(sa.select(db.sales.c.store_id, db.sales.c.item_id, db.sales.c.units)
                              .where(db.sales.c.date == corrected_day).order_by(sa.desc(db.sales.c.units))
                              .limit(1)).one()
        conn.execute(db.sales.insert(), [{"store_id": series.store_id, "item_id": series.item_id,
                                          "date": corrected_day, "units": series.units + 40, "recorded_at": recorded}])
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data-after-correction"))
    build_online(chain_env)
    second = {d: files_of(p) for d, p in state_dirs(DATES).items()}
    for d in DATES[:2]:
        assert second[d] == first[d], f"the state of {d} changed by a row recorded after it"
    for d in DATES[2:]:
        assert second[d]["state.pkl"] != first[d]["state.pkl"], f"the state of {d} did not learn from the correction"


@pytest.mark.slow
def test_before_its_start_date_there_is_no_online_state(chain_env):
    from tasks import UpdateOnlineModel

    set_online(start_date=RUN_DATE, warmup_days=WARMUP)
    result = chain_env.build([UpdateOnlineModel(date=RUN_DATE - dt.timedelta(days=1))])
    assert result.status != luigi.execution_summary.LuigiStatusCode.SUCCESS
    assert not (chain_env.data / "online_model").exists()


@pytest.mark.prebuilt_chain
def test_the_online_model_is_scored_beside_the_model_and_in_the_backtest(chain_env):
    from tasks import Backtest, Evaluate, ForecastOnline

    assert ForecastOnline(date=RUN_DATE).complete()  # DailyForecast made it (the test start covers RUN_DATE)
    table = pd.read_parquet(Evaluate(date=RUN_DATE).output().file("metrics.parquet"))
    online = table[table["model"] == evaluate.ONLINE]
    assert set(online["metric"]) == {"wrmsse", "mae", "rmse", "bias"}
    assert len(online[online["metric"] == "wrmsse"]) == 13  # all and the 12 levels
    wrmsse = table[(table["metric"] == "wrmsse") & (table["level"] == "all")].set_index("model")["value"]
    assert np.isfinite(wrmsse[evaluate.ONLINE]) and wrmsse[evaluate.ONLINE] != wrmsse[evaluate.MODEL]

    result = chain_env.build([Backtest(start=RUN_DATE, stop=RUN_DATE + dt.timedelta(days=1))])
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    folder = Backtest(start=RUN_DATE, stop=RUN_DATE + dt.timedelta(days=1)).output()
    backtest = pd.read_csv(folder.file("wrmsse.csv"))
    assert list(backtest.columns[:4]) == ["date", evaluate.MODEL, evaluate.BATCH, evaluate.ONLINE]
    assert backtest[evaluate.ONLINE].iloc[0] == pytest.approx(wrmsse[evaluate.ONLINE], abs=1e-6)
    progressive = pd.read_csv(folder.file("progressive.csv"))
    assert progressive["date"].tolist() == [RUN_DATE.isoformat()]
    state_mae = online_model.read_manifest(state_dirs([RUN_DATE])[RUN_DATE])["mae"]
    assert progressive["mae"].iloc[0] == pytest.approx(state_mae, abs=1e-6)


def test_a_state_long_after_the_start_date_has_a_fingerprint_without_walking_back(chain_env):
    from tasks import UpdateOnlineModel

    set_online(start_date=dt.date(2011, 2, 1), warmup_days=WARMUP)
    far = UpdateOnlineModel(date=dt.date(2016, 5, 22))  # ~1,900 days of states: one recursion level each before
    near = UpdateOnlineModel(date=dt.date(2011, 2, 2))
    assert far.fingerprint() == near.fingerprint()  # the same settings; the date is in the folder's path
    assert "previous" not in far.identity()["inputs"] and "snapshot" in far.identity()["inputs"]


@pytest.mark.prebuilt_chain
def test_the_published_forecast_blends_the_batch_and_online_forecasts(chain_env):
    from pipeline.core.blend import blend_units
    from tasks import Evaluate, ForecastOnline, ScoreForecast
    from tasks import config

    weight = config.online_model().blend_weight
    assert 0 < weight < 1
    folder = ScoreForecast(date=RUN_DATE).output()
    forecast = pd.read_parquet(folder.file("forecast.parquet"))
    components = pd.read_parquet(folder.file("components.parquet"))
    online = pd.read_parquet(ForecastOnline(date=RUN_DATE).output().file("forecast.parquet"))
    keys = ["item_id", "store_id", "date"]
    assert components[keys].equals(forecast[keys])
    again = components[keys].merge(online, on=keys, how="left")
    assert np.array_equal(components["online"].to_numpy(), again["units"].to_numpy())
    assert np.array_equal(forecast["units"].to_numpy(),
                          blend_units(components["batch"].to_numpy(), components["online"].to_numpy(), weight))
    manifest = json.loads(folder.file("manifest.json").read_text())
    assert manifest["blend"]["weight"] == weight
    # Evaluate scores the blend (the model), and its two parts on their own
    table = pd.read_parquet(Evaluate(date=RUN_DATE).output().file("metrics.parquet"))
    wrmsse = table[(table["metric"] == "wrmsse") & (table["level"] == "all")].set_index("model")["value"]
    assert {evaluate.MODEL, evaluate.BATCH, evaluate.ONLINE} <= set(wrmsse.index)
    assert len({wrmsse[evaluate.MODEL], wrmsse[evaluate.BATCH], wrmsse[evaluate.ONLINE]}) == 3


@pytest.mark.slow
def test_with_no_blend_the_forecast_is_the_batch_model_s_under_its_old_identity(chain_env):
    from tasks import ScoreForecast

    # (Luigi hands out one instance per task id: its fingerprint follows the configuration, so keep the values)
    blended = ScoreForecast(date=RUN_DATE)
    assert blended.settings() == {"blend_weight": 0.3} and "online" in blended.requires()
    assert "components.parquet" in blended.output().files
    blended_fp = blended.fingerprint()
    set_online(blend_weight=0.0)
    plain = ScoreForecast(date=RUN_DATE)
    assert plain.settings() == {} and "online" not in plain.requires()
    assert "components.parquet" not in plain.output().files
    plain_fp = plain.fingerprint()
    assert plain_fp != blended_fp
    # the identity of the batch model's forecast alone is what it was before the blend existed: its settings
    # are empty and it has no online input
    assert plain.identity()["settings"] == {} and set(plain.identity()["inputs"]) == {"features", "snapshot", "promotion"}
    set_online(start_date=RUN_DATE + dt.timedelta(days=1), blend_weight=0.3)  # a date before the start: no blend
    assert ScoreForecast(date=RUN_DATE).fingerprint() == plain_fp
