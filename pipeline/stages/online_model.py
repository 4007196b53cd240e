"""The online model's stage: a snapshot read into the feature panel, a state updated by days, written.

``warm_up`` makes the first state: a fresh learner walks the ``warmup_days`` days up to the start
date one day at a time, each day's rows built from the start date's snapshot (a row of day t sees
sales up to t − 28 only). ``update`` makes the state of a later date from the day before's: the
run date's rows, built from the run date's own snapshot (the rows in force at its end). ``forecast``
predicts the 28 days after a date with that date's state. A state folder holds ``state.pkl`` (the
River model, pickled), ``progressive.parquet`` (per day learnt: rows, MAE, RMSE, bias, totals of
the predictions made before learning, over the last ``PROGRESSIVE_DAYS`` days, so one state's file
is its recent history) and ``predictions.parquet`` (the last day's, per series).
"""
from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.core.days import as_day, day_number
from pipeline.core.errors import DataError
from pipeline.core.features import price_panel, weeks_of
from pipeline.core.online_model import features as online_features
from pipeline.core.online_model.learner import OnlineState, new_state, predict, step
from pipeline.core.series import SeriesIndexer, series_keys
from pipeline.data import storage
from pipeline.data.snapshot import read_snapshot

STATE_FILES = ("state.pkl", "progressive.parquet", "predictions.parquet", "manifest.json")
FORECAST_FILES = ("forecast.parquet", "manifest.json")
PICKLE_PROTOCOL = 5
CHUNK_DAYS = 7  # warm-up days whose rows are built at once (memory: series × days × features floats)
PROGRESSIVE_DAYS = 365  # days of progressive validation a state carries (its own and the days before)


class Data:
    """A snapshot's series and feature panel from ``first`` (a day) to ``last`` (a day, the calendar's)."""

    def __init__(self, snapshot_dir: Path, first: dt.date, last: dt.date):
        snapshot_dir = Path(snapshot_dir)
        first_ts, last_ts = as_day(first), as_day(last)
        ids = pq.read_table(snapshot_dir / "sales.parquet", columns=["item_id", "store_id"]).to_pandas()
        self.keys = series_keys(ids)
        del ids
        sales = read_snapshot(snapshot_dir, "sales", filters=[("date", ">=", first_ts)])
        cal = read_snapshot(snapshot_dir, "calendar").sort_values("date").reset_index(drop=True)
        items = read_snapshot(snapshot_dir, "items").astype(str)
        stores = read_snapshot(snapshot_dir, "stores").astype(str)
        days = pd.date_range(first_ts, last_ts, freq="D")
        cal = cal.set_index("date")
        missing = days.difference(cal.index)
        if len(missing):
            raise DataError(f"the calendar table has no row for {missing[0].date()}, a day the online model needs "
                            f"(its features from {first} to {last})")
        cal = cal.loc[days]
        n = len(self.keys)
        units = np.full((n, len(days)), np.nan)
        if len(sales):
            row = SeriesIndexer(self.keys).codes(sales)
            col = ((sales["date"] - first_ts).dt.days).to_numpy()
            ok = (row >= 0) & (col >= 0) & (col < len(days))
            units[row[ok], col[ok]] = sales["units"].to_numpy(dtype=np.float64)[ok]
        weeks = weeks_of(cal.reset_index())
        prices = read_snapshot(snapshot_dir, "prices", filters=[("wm_yr_wk", ">=", int(weeks[0]))])
        hierarchy = self.keys.merge(items, on="item_id", how="left").merge(stores, on="store_id", how="left")
        if hierarchy["dept_id"].isna().any() or hierarchy["state_id"].isna().any():
            bad = hierarchy[hierarchy["dept_id"].isna() | hierarchy["state_id"].isna()].iloc[0]
            raise DataError(f"series item_id={bad['item_id']} store_id={bad['store_id']} has sales but is not in "
                            "the items or stores table")
        events = np.stack([cal[c].astype(object).where(cal[c].notna(), "").astype(str).to_numpy()
                           for c in ("event_type_1", "event_type_2")], axis=1)
        snap = {c.removeprefix("snap_"): cal[c].to_numpy(dtype=np.float64) for c in cal.columns if c.startswith("snap_")}
        self.first_day = day_number(first_ts)
        self.depts = sorted(items["dept_id"].unique())
        self.stores = sorted(stores["store_id"].unique())
        self.panel = online_features.Panel(
            units=units, first_day=self.first_day, prices=price_panel(prices, self.keys, weeks),
            wday=cal["wday"].to_numpy(dtype=np.int64), week=pd.Index(weeks).get_indexer(cal["wm_yr_wk"].astype(int)),
            events=events, snap=snap, state=hierarchy["state_id"].to_numpy(), dept=hierarchy["dept_id"].to_numpy(),
            store=hierarchy["store_id"].to_numpy())

    def rows(self, days: np.ndarray) -> online_features.Rows:
        return online_features.features(self.panel, days, self.depts, self.stores)

    def units_of(self, day: int) -> np.ndarray:
        """Every series' recorded units of a day (NaN: no row)."""
        return self.panel.units[:, day - self.first_day]


def first_needed(day: dt.date) -> dt.date:
    """The first day of sales the rows of target day ``day`` read."""
    return day - dt.timedelta(days=online_features.MIN_LAG + online_features.HISTORY_DAYS - 1)


def _progress_row(day: int, predictions: np.ndarray, units: np.ndarray) -> dict:
    known = ~np.isnan(units)
    err = predictions[known] - units[known]
    return {"date": pd.Timestamp(np.datetime64(day, "D")).as_unit("ns"), "series": int(known.sum()),
            "mae": float(np.abs(err).mean()) if known.any() else np.nan,
            "rmse": float(np.sqrt((err ** 2).mean())) if known.any() else np.nan,
            "bias": float(err.mean()) if known.any() else np.nan,
            "predicted": float(predictions[known].sum()), "actual": float(units[known].sum())}


def warm_up(snapshot_dir: Path, start: dt.date, warmup_days: int, learner: str, learning_rate: float,
            progress=None) -> tuple[OnlineState, list[dict], pd.DataFrame]:
    """The state as of the end of ``start``: a fresh learner stepped through the ``warmup_days`` days up to it."""
    if warmup_days < 1:
        raise ValueError(f"[online_model] warmup_days must be at least 1, not {warmup_days}")
    first = start - dt.timedelta(days=warmup_days - 1)
    data = Data(snapshot_dir, first_needed(first), start)
    state = new_state(learner, learning_rate)
    days = np.arange(day_number(as_day(first)), day_number(as_day(start)) + 1)
    log, predictions = [], None
    for k in range(0, len(days), CHUNK_DAYS):
        chunk = days[k:k + CHUNK_DAYS]
        rows = data.rows(chunk)  # series-major: one (series x day) block per array
        x = rows.x.reshape(len(data.keys), len(chunk), -1)
        level, active = rows.level.reshape(-1, len(chunk)), rows.active.reshape(-1, len(chunk))
        for j, day in enumerate(chunk):
            day_rows = online_features.Rows(rows.names, x[:, j], level[:, j], active[:, j])
            units = data.units_of(int(day))
            predictions = step(state, day_rows, units, int(day))
            log.append(_progress_row(int(day), predictions, units))
        if progress:
            progress((k + len(chunk)) / len(days))
    return state, log, _predictions_frame(data, predictions, data.units_of(int(days[-1])))


def update(state: OnlineState, snapshot_dir: Path, date: dt.date,
           progressive: pd.DataFrame | None = None) -> tuple[OnlineState, list[dict], pd.DataFrame]:
    """The state of the day before, stepped through ``date`` with the rows of ``date``'s snapshot.

    ``progressive``: the day before's progressive-validation rows, continued by the date's.
    """
    data = Data(snapshot_dir, first_needed(date), date)
    day = day_number(as_day(date))
    units = data.units_of(day)
    predictions = step(state, data.rows(np.array([day])), units, day)
    earlier = [] if progressive is None else progressive.to_dict("records")
    return state, earlier + [_progress_row(day, predictions, units)], _predictions_frame(data, predictions, units)


def _predictions_frame(data: Data, predictions: np.ndarray, units: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"item_id": data.keys["item_id"].to_numpy(), "store_id": data.keys["store_id"].to_numpy(),
                         "prediction": predictions.astype(np.float32), "units": units.astype(np.float32)})


def forecast(state: OnlineState, snapshot_dir: Path, date: dt.date, horizon: int) -> pd.DataFrame:
    """The forecast of the ``horizon`` days after ``date`` by the state of ``date``: as_of, item_id,
    store_id, date, horizon, units (float32), series sorted as the batch model's forecast."""
    last = date + dt.timedelta(days=horizon)
    data = Data(snapshot_dir, first_needed(date + dt.timedelta(days=1)), last)
    start = day_number(as_day(date))
    days = np.arange(start + 1, start + horizon + 1)
    units = predict(state, data.rows(days))
    n = len(data.keys)
    frame = pd.DataFrame({
        "as_of": as_day(date),
        "item_id": np.repeat(data.keys["item_id"].to_numpy(), horizon),
        "store_id": np.repeat(data.keys["store_id"].to_numpy(), horizon),
        "date": np.tile(pd.date_range(as_day(date) + pd.Timedelta(days=1), periods=horizon).to_numpy(), n),
        "horizon": np.tile(np.arange(1, horizon + 1, dtype=np.int16), n),
        "units": units.astype(np.float32),
    })
    frame = frame.sort_values(["item_id", "store_id", "date"], ignore_index=True)
    return frame.astype({"as_of": "datetime64[ns]", "date": "datetime64[ns]"})


def write_state(state: OnlineState, log: list[dict], predictions: pd.DataFrame, out_dir: Path, date: dt.date) -> dict:
    """``state.pkl``, ``progressive.parquet``, ``predictions.parquet`` and ``manifest.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "state.pkl").write_bytes(pickle.dumps(state, protocol=PICKLE_PROTOCOL))
    progress = pd.DataFrame(log).tail(PROGRESSIVE_DAYS).reset_index(drop=True).astype({"date": "datetime64[ns]"})
    storage.write_parquet(progress, out_dir / "progressive.parquet")
    storage.write_parquet(predictions, out_dir / "predictions.parquet")
    last = log[-1]
    manifest = {"date": date.isoformat(), "learner": state.learner, "days_learnt": state.days_learnt,
                "rows_learnt": state.rows_learnt, "mae": _num(last["mae"]), "bias": _num(last["bias"]),
                "series": last["series"]}
    storage.write_json(out_dir / "manifest.json", manifest)
    return manifest


def read_state(state_dir: Path) -> OnlineState:
    return pickle.loads((Path(state_dir) / "state.pkl").read_bytes())


def read_progressive(state_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(state_dir) / "progressive.parquet")


def write_forecast(frame: pd.DataFrame, out_dir: Path, state_manifest: dict) -> dict:
    storage.write_parquet(frame, Path(out_dir) / "forecast.parquet")
    manifest = {"as_of": frame["as_of"].iloc[0].date().isoformat(), "rows": len(frame),
                "total_units": float(frame["units"].astype(np.float64).sum()), "state": state_manifest}
    storage.write_json(Path(out_dir) / "manifest.json", manifest)
    return manifest


def _num(v: float) -> float | None:
    return None if v is None or np.isnan(v) else round(float(v), 6)


def read_manifest(state_dir: Path) -> dict:
    return storage.read_json(Path(state_dir) / "manifest.json")
