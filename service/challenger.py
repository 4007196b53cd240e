"""The online model (the challenger) in the service: its forecast of a run (``ForecastOnline``) and its state.

Both are the chain's own outputs, found by the configuration's fingerprint as the batch model's are:
``ForecastOnline(D)``'s ``forecast.parquet`` (read once per run and kept, a few runs; a miss is not
kept, since the file may be written after a first request) and ``UpdateOnlineModel(D)``'s
``manifest.json`` (its date, learner, days and rows learnt, last progressive-validation MAE and bias).
The online model makes no quantiles, and nothing here predicts: the service only reads what the
chain wrote. Nothing is written.
"""
from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pipeline.data import storage

KEPT_RUNS = 4  # runs' forecast tables kept in memory (one is ~850 k rows at full scale)


class NotCovered(LookupError):
    """No online forecast for a run date; the message says why (before the start date, or not run yet)."""


class OnlineModel:
    """Reads of the online model's outputs under the service's configuration (``tasks.config``)."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._tables: dict[dt.date, tuple[dict, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._states: dict[dt.date, dict] = {}  # manifest of a state found (outputs are immutable)
        self._lock = threading.Lock()

    @staticmethod
    def settings():
        from tasks import config

        return config.online_model()

    # ---- the forecast of a run ----------------------------------------------------------------

    def forecast(self, as_of: dt.date, store_id: str, item_id: str,
                 check_ids: Callable[[str, str], None]) -> list[dict]:
        """The online model's forecast rows (date, horizon, units) of one series from the run of ``as_of``.

        NotCovered when the run has none (``check_ids`` first raises for an unknown store or item), LookupError
        naming the series when the run's forecast does not have it."""
        table = self._table(as_of)
        if table is None:
            check_ids(store_id, item_id)
            raise NotCovered(self.why_none(as_of))
        index, dates, horizons, units = table
        positions = index.get((item_id, store_id))
        if positions is None:
            check_ids(store_id, item_id)
            raise LookupError(f"no online forecast of item {item_id!r} in store {store_id!r} in the run of {as_of}")
        return [{"date": dates[i], "horizon": int(horizons[i]), "units": float(units[i]), "quantiles": None}
                for i in positions]

    def why_none(self, as_of: dt.date) -> str:
        cfg = self.settings()
        if not cfg.covers(as_of):
            return (f"no online forecast for the run date {as_of}: the online model starts on {cfg.start_date} "
                    f"([online_model] start_date)")
        return (f"no online forecast for the run date {as_of} under this configuration (ForecastOnline has not "
                f"run): run DailyForecast --date {as_of}")

    def _table(self, as_of: dt.date):
        """The run's forecast by series: {(item, store): row positions by date}, dates, horizons, units."""
        from tasks.online_model import ForecastOnline

        if as_of in self._tables:
            return self._tables[as_of]
        task = ForecastOnline(as_of)
        # no folder of the date under any configuration: not run, found without computing a fingerprint
        if not self.settings().covers(as_of) or not task.home().is_dir():
            return None
        target = task.output()
        if not target.exists():
            return None
        frame = pd.read_parquet(target.file("forecast.parquet"), columns=["item_id", "store_id", "date", "horizon", "units"])
        frame = frame.sort_values(["item_id", "store_id", "date"], kind="stable").reset_index(drop=True)
        index = {key: positions for key, positions in frame.groupby(["item_id", "store_id"], sort=False).indices.items()}
        table = (index, pd.to_datetime(frame["date"]).dt.date.to_numpy(), frame["horizon"].to_numpy(),
                 frame["units"].to_numpy())
        with self._lock:
            if len(self._tables) >= KEPT_RUNS:
                self._tables.pop(min(self._tables))
            self._tables[as_of] = table
        return table

    # ---- the state --------------------------------------------------------------------------------

    def summary(self, as_of: dt.date | None) -> dict:
        """What ``/version`` and the status page say of it: its settings, and the newest state on or before
        ``as_of`` (its manifest), or None with the reason."""
        cfg = self.settings()
        found = self.newest_state(as_of) if as_of is not None else None
        detail = None
        if found is None:
            detail = (f"the online model starts on {cfg.start_date}" if as_of is None or not cfg.covers(as_of) else
                      f"no state of the online model on or before {as_of} under this configuration yet")
        return {"start_date": cfg.start_date.isoformat(), "learner": cfg.learner, "learning_rate": cfg.learning_rate,
                "warmup_days": cfg.warmup_days, "state": found, "detail": detail,
                "forecasts": "GET /forecasts/{store_id}/{item_id}?model=online"}

    def newest_state(self, as_of: dt.date) -> dict | None:
        """The manifest of the newest ``UpdateOnlineModel`` state dated on or before ``as_of`` under this
        configuration (date, learner, days_learnt, rows_learnt, mae, bias, series), or None."""
        from tasks.online_model import UpdateOnlineModel

        if as_of in self._states:
            return self._states[as_of]
        start = self.settings().start_date
        home = self.data_dir / UpdateOnlineModel.stage
        try:
            names = [p.name for p in home.iterdir()]
        except FileNotFoundError:
            return None
        for day in sorted((d for d in map(_date_or_none, names) if d is not None and start <= d <= as_of), reverse=True):
            target = UpdateOnlineModel(day).output()
            if target.exists():
                manifest = storage.read_json(target.file("manifest.json"))
                if day == as_of:  # nothing newer can come for this date: kept
                    with self._lock:
                        if len(self._states) >= 4096:
                            self._states.clear()
                        self._states[as_of] = manifest
                return manifest
        return None


def _date_or_none(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(name)
    except ValueError:
        return None
