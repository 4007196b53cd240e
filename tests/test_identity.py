"""An output's identity is its date and the settings that shaped it: a changed setting recomputes, a rerun does not."""
from __future__ import annotations

import datetime as dt

import luigi
import pandas as pd
import pytest

from pipeline.core import identity
from pipeline.data import storage
from tasks import DailyForecast, Evaluate, ScoreForecast, config
from tests.conftest import RUN_DATE
from tests.outputs import out

OK = luigi.execution_summary.LuigiStatusCode.SUCCESS


def test_the_fingerprint_is_canonical_and_sensitive():
    a = {"settings": {"learning_rate": 0.05, "window": 365, "start": dt.date(2016, 5, 15)}, "inputs": {"x": "ab"}}
    reordered = {"inputs": {"x": "ab"}, "settings": {"start": dt.date(2016, 5, 15), "window": 365, "learning_rate": 0.05}}
    assert identity.fingerprint(a) == identity.fingerprint(reordered)
    assert len(identity.fingerprint(a)) == identity.CHARS
    changed = {**a, "settings": {**a["settings"], "learning_rate": 0.05000000000000001}}
    assert identity.fingerprint(changed) != identity.fingerprint(a)
    with pytest.raises(TypeError, match="plain data"):
        identity.fingerprint({"x": object()})
    with pytest.raises(ValueError):
        identity.fingerprint({"x": float("nan")})


def homes(data, date) -> dict[str, list[str]]:
    """The configuration folders under each stage's folder of ``date``."""
    found = {}
    for stage in ("snapshots", "quality", "features/{d}/train", "features/{d}/score", "models", "compiled",
                  "promotions", "forecasts"):
        home = data / stage.format(d=date) if "{d}" in stage else data / stage / str(date)
        found[stage.split("/")[0] + ("/" + stage.split("/")[-1] if "{d}" in stage else "")] = sorted(
            p.name for p in home.iterdir() if not p.name.startswith(".")) if home.exists() else []
    return found


def set_option(section, key, value):
    cfg = luigi.configuration.get_config()
    old = cfg.get(section, key, None)
    cfg.set(section, key, value)
    return old


def restore(section, key, old):
    cfg = luigi.configuration.get_config()
    if old is None:
        cfg.remove_option(section, key)
    else:
        cfg.set(section, key, old)


def test_a_changed_learning_rate_makes_a_new_model_and_forecast_beside_the_old_ones(chain_env):
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == OK
    before = homes(chain_env.data, RUN_DATE)
    assert all(len(v) == 1 for v in before.values()), before
    old_forecast = out(chain_env.data, "forecasts", RUN_DATE)
    old_bytes = storage.file_hash(old_forecast / "forecast.parquet")

    old = set_option("training", "learning_rate", "0.2")
    try:
        assert not DailyForecast(date=RUN_DATE).complete()
        assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == OK
        after = homes(chain_env.data, RUN_DATE)
        new_forecast = ScoreForecast(date=RUN_DATE).output().path
        settings = storage.read_json(new_forecast / "settings.json")
    finally:
        restore("training", "learning_rate", old)
    # what the learning rate shapes is new, beside the old; what it does not shape is untouched
    for stage in ("models", "compiled", "promotions", "forecasts"):
        assert len(after[stage]) == 2 and set(before[stage]) < set(after[stage]), (stage, after)
    for stage in ("snapshots", "quality", "features/train", "features/score"):
        assert after[stage] == before[stage], (stage, after)
    assert storage.file_hash(old_forecast / "forecast.parquet") == old_bytes
    assert new_forecast != old_forecast
    assert not pd.read_parquet(new_forecast / "forecast.parquet").equals(pd.read_parquet(old_forecast / "forecast.parquet"))
    assert settings["fingerprint"] == new_forecast.name and settings["task"] == "ScoreForecast"
    # back to the first configuration: its outputs are complete again, nothing is recomputed
    assert DailyForecast(date=RUN_DATE).complete()
    assert ScoreForecast(date=RUN_DATE).output().path == old_forecast


@pytest.mark.prebuilt_chain
def test_operational_knobs_recompute_nothing(chain_env):
    assert chain_env.build([Evaluate(date=RUN_DATE)]).status == OK
    before = homes(chain_env.data, RUN_DATE)
    knobs = [("training", "num_threads", "1"), ("dask", "n_workers", "1"), ("compiler", "trees_per_block", "16"),
             ("compiler", "optimization", "-O2"), ("compiler", "nthread", "1"), ("retry", "attempts", "2")]
    saved = [(s, k, set_option(s, k, v)) for s, k, v in knobs]
    try:
        assert Evaluate(date=RUN_DATE).complete()
        result = chain_env.build([Evaluate(date=RUN_DATE)])
        assert result.status == OK and "ran successfully" not in result.summary_text, result.summary_text
    finally:
        for s, k, old in saved:
            restore(s, k, old)
    assert homes(chain_env.data, RUN_DATE) == before


@pytest.mark.prebuilt_chain
def test_a_quality_threshold_recomputes_the_check_and_everything_after_it(chain_env):
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == OK
    before = homes(chain_env.data, RUN_DATE)
    old = set_option("quality", "outlier_k", "7.5")
    try:
        assert not DailyForecast(date=RUN_DATE).complete()
    finally:
        restore("quality", "outlier_k", old)
    # accepting an anomaly on another date shapes nothing of this one
    old = set_option("quality", "accept", f"daily_total_outlier:{RUN_DATE - dt.timedelta(days=3)}")
    try:
        assert DailyForecast(date=RUN_DATE).complete()
    finally:
        restore("quality", "accept", old)
    assert homes(chain_env.data, RUN_DATE) == before


def test_a_horizon_of_14_days_works_end_to_end(chain_env):
    old = set_option("pipeline", "horizon", "14")
    try:
        assert config.forecast_spec().horizon == 14
        assert chain_env.build([Evaluate(date=RUN_DATE)]).status == OK
        folder = ScoreForecast(date=RUN_DATE).output().path
        metrics_folder = Evaluate(date=RUN_DATE).output().path
    finally:
        restore("pipeline", "horizon", old)
    forecast = pd.read_parquet(folder / "forecast.parquet")
    assert sorted(forecast["horizon"].unique()) == list(range(1, 15))
    assert forecast["date"].max() == pd.Timestamp(RUN_DATE + dt.timedelta(days=14))
    submission = pd.read_csv(folder / "submission.csv")
    assert list(submission.columns) == ["id"] + [f"F{h}" for h in range(1, 15)]
    table = pd.read_parquet(metrics_folder / "metrics.parquet")
    assert set(table["model"]) >= {"model", "seasonal_naive"}
    wrmsse = table[(table.metric == "wrmsse") & (table.level == "all")].set_index("model")["value"]
    assert (wrmsse > 0).all()
    # the 28-day forecast of the same date is another output, not overwritten
    assert not ScoreForecast(date=RUN_DATE).complete()


def test_a_horizon_past_the_shortest_lag_is_refused_clearly(chain_env):
    old = set_option("pipeline", "horizon", "29")
    try:
        with pytest.raises(ValueError, match="horizon must be between 1 and 28"):
            config.forecast_spec()
    finally:
        restore("pipeline", "horizon", old)


def test_a_person_finds_the_forecast_of_a_date_by_its_date(chain_env, capsys):
    from tasks import show

    assert show.main(["--date", RUN_DATE.isoformat()]) == 1  # nothing made yet
    assert chain_env.build([DailyForecast(date=RUN_DATE)]).status == OK
    assert show.main(["--date", RUN_DATE.isoformat()]) == 0
    printed = capsys.readouterr().out
    assert str(out(chain_env.data, "forecasts", RUN_DATE) / "forecast.parquet") in printed
    assert "model of 2016-05-22 (promoted" in printed
    # the test chain's run date blends in the online model: said, with both parts' totals from the manifest
    blend = storage.read_json(out(chain_env.data, "forecasts", RUN_DATE) / "manifest.json")["blend"]
    assert f"blended: 0.7 x the batch model ({blend['batch_total_units']:,.0f} units) + 0.3 x the online model" in printed
