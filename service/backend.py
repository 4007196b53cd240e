"""What the service reads and computes, without HTTP: published forecasts, the serving model, online predictions.

Which model serves a date is the chain's own answer (``tasks.forecast.ScoreForecast.serving``,
i.e. :func:`pipeline.core.serving.serving_model` over the recorded promotion decisions), and the
model's folders are the chain's (``TrainModel`` / ``CompileModel`` of the same configuration), so a
prediction for ``as_of`` D is made by the model that made the published forecast of D. A compiled
model is loaded once per process and kept; a model that starts serving (a new run, a promotion) is
loaded when first asked for. The online model's (the challenger's) forecasts and state are read by
:mod:`service.challenger`. Nothing here writes: the source database and ``data/`` are only read.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.core import online
from pipeline.core.errors import PipelineError
from pipeline.core.blend import blend_units
from pipeline.data import db, storage
from pipeline.data.series_history import UnknownSeries, check_indexes, read_calendar, read_series, series_ids
from pipeline.data.source_state import missing_run_date
from pipeline.stages.compile import CompiledModel
from service import challenger


class NotFound(LookupError):
    """A store, item, series, run or model that does not exist; the message names it (HTTP 404)."""


class BadRequest(ValueError):
    """A well-formed request the data cannot answer (a date without data, a week outside the forecast; HTTP 422)."""


class Unsupported(RuntimeError):
    """The serving model needs what the online path does not compute (HTTP 501)."""


@dataclasses.dataclass(frozen=True)
class ServingModel:
    """The model serving a run date, loaded: its choice, metadata, folders and compiled libraries."""

    choice: dict
    metadata: dict
    model_dir: Path
    compiled_dir: Path
    compiled: CompiledModel
    lock: threading.Lock
    codes: dict  # categorical feature -> {value: its position in the model's vocabulary}

    @property
    def date(self) -> str:
        return self.metadata["date"]

    def matrix(self, rows: list[dict]) -> np.ndarray:
        """The float32 model matrix of online feature rows: what ``pipeline.stages.train.encode`` makes of the
        batch rows (a category's position in the vocabulary, NaN when unknown or absent; numbers cast to
        float32), built from the rows directly: 28 rows do not need a DataFrame."""
        names = self.metadata["features"]
        X = np.empty((len(rows), len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            codes = self.codes.get(name)
            if codes is None:
                X[:, j] = [r[name] for r in rows]
            else:
                X[:, j] = [codes.get(r[name], np.nan) if r[name] is not None else np.nan for r in rows]
        return X

    def predict(self, X: np.ndarray) -> np.ndarray:
        with self.lock:  # one call at a time into a TL2cgen predictor
            return np.clip(self.compiled.predict(X), 0.0, None).astype(np.float32)


class Backend:
    """The service's reads. ``url``: the source database; the configuration is the chain's (``tasks.config``)."""

    def __init__(self, url: str):
        from tasks import config

        self.engine = db.engine_for(url)
        db.check_schema(self.engine)
        check_indexes(self.engine)
        self.horizon = config.forecast_spec().horizon
        self.data_dir = config.data_dir()
        self._models: dict[Path, ServingModel] = {}
        # a run date's serving model never changes once its promotion decision is recorded (outputs are
        # immutable); a new configuration means a new service process
        self._serving: dict[dt.date, ServingModel] = {}
        self._lock = threading.Lock()
        self._calendar: tuple | None = None
        self._tables: set[str] = set()  # the pipeline's own tables seen to exist (made by the first run)
        self._quantile_tables: dict[dt.date, dict] = {}
        self.online = challenger.OnlineModel(self.data_dir)  # the challenger's forecasts and state

    # ---- the published forecasts -------------------------------------------------------------

    def _has_table(self, name: str) -> bool:
        if name not in self._tables and sa.inspect(self.engine).has_table(name):
            self._tables.add(name)
        return name in self._tables

    def newest_run(self) -> dt.date | None:
        """The newest run date with a published forecast, or None."""
        if not self._has_table("forecasts"):
            return None
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.max(db.forecasts.c.as_of))).scalar()

    def published(self, store_id: str, item_id: str, as_of: dt.date | None) -> tuple[dt.date, list[dict]]:
        """The published forecast rows (date, horizon, units) of one series from the run of ``as_of``."""
        as_of = as_of or self.newest_run()
        if as_of is None:
            self.check_series_ids(store_id, item_id)
            raise NotFound("no forecast has been published yet: run `make run` (DailyForecast) first")
        f = db.forecasts.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(f.date, f.horizon, f.units).where(
                f.as_of == as_of, f.item_id == item_id, f.store_id == store_id).order_by(f.date)).all()
            if not rows:  # say why: an unknown id, a date never run, or a series the run did not forecast
                self.check_series_ids(store_id, item_id)
                run = conn.execute(sa.select(f.as_of).where(f.as_of == as_of).limit(1)).first()
                raise NotFound(f"no forecast of item {item_id!r} in store {store_id!r} in the run of {as_of}" if run else
                               f"no forecast was published for the run date {as_of}: run DailyForecast --date {as_of}")
        return as_of, [{"date": d, "horizon": h, "units": u} for d, h, u in rows]

    def online_forecast(self, store_id: str, item_id: str, as_of: dt.date | None) -> tuple[dt.date, list[dict]]:
        """The online model's forecast rows (date, horizon, units; no quantiles) of one series from the run of
        ``as_of`` (default: the newest published run); NotFound saying why when that run has none."""
        as_of = as_of or self.newest_run()
        if as_of is None:
            self.check_series_ids(store_id, item_id)
            raise NotFound("no forecast has been published yet: run `make run` (DailyForecast) first")
        try:
            return as_of, self.online.forecast(as_of, store_id, item_id, self.check_series_ids)
        except NotFound:
            raise
        except LookupError as exc:
            raise NotFound(str(exc)) from None

    def quantiles(self, as_of: dt.date, store_id: str, item_id: str) -> list[dict] | None:
        """The series' nine quantiles per forecast day from the run of ``as_of`` (``ForecastQuantiles``), or None
        when that run has none under this configuration. One file per run, read once and kept (a few)."""
        table = self._quantile_table(as_of)
        if table is None:
            return None
        found = table.get((item_id, store_id))
        if found is None:
            return None
        us, values = found
        return [{f"{u:g}": float(v) for u, v in zip(us, day)} for day in values.T]

    def _quantile_table(self, as_of: dt.date) -> dict | None:
        """The run's item × store quantiles by series; kept once read (the last few runs), never a miss: a
        run's quantiles may be written after a first request for them."""
        from tasks.quantiles import ForecastQuantiles

        if as_of in self._quantile_tables:
            return self._quantile_tables[as_of]
        target = ForecastQuantiles(as_of).output()
        if not target.exists():
            return None
        frame = pd.read_parquet(target.file("quantiles.parquet"), filters=[("level", "==", "item_store")])
        days = [c for c in frame.columns if c.startswith("F")]
        out = {}
        for (item, store), part in frame.groupby(["item_id", "store_id"], sort=False):
            part = part.sort_values("quantile")
            out[(item, store)] = (part["quantile"].tolist(), part[days].to_numpy(dtype=np.float64))
        with self._lock:
            if len(self._quantile_tables) >= 4:  # a few runs' tables in memory (one is ~30 MB at full scale)
                self._quantile_tables.pop(min(self._quantile_tables))
            self._quantile_tables[as_of] = out
        return out

    def recent_runs(self, n: int) -> list[dict]:
        """The ``n`` newest published runs: run date, rows, total units (newest first)."""
        if not self._has_table("forecasts"):
            return []
        f = db.forecasts.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(f.as_of, sa.func.count(), sa.func.sum(f.units)).group_by(f.as_of)
                                .order_by(f.as_of.desc()).limit(n)).all()
        return [{"as_of": r[0], "rows": int(r[1]), "total_units": float(r[2])} for r in rows]

    def accuracy_history(self, n: int) -> pd.DataFrame:
        """WRMSSE (all levels) of the model and the baselines for the ``n`` newest evaluated runs."""
        if not self._has_table("forecast_metrics"):
            return pd.DataFrame(columns=["as_of", "model", "value"])
        m = db.forecast_metrics.c
        with self.engine.connect() as conn:
            dates = sa.select(m.as_of).where(m.metric == "wrmsse").distinct().order_by(m.as_of.desc()).limit(n)
            rows = conn.execute(sa.select(m.as_of, m.model, m.value).where(
                m.metric == "wrmsse", m.level == "all", m.as_of.in_(dates.scalar_subquery())).order_by(m.as_of)).all()
        return pd.DataFrame(rows, columns=["as_of", "model", "value"])

    # ---- the serving model -------------------------------------------------------------------

    def model_for(self, as_of: dt.date) -> ServingModel:
        """The model serving the run date ``as_of``, loaded (NotFound when the chain has not made it)."""
        found = self._serving.get(as_of)
        if found is None:
            found = self._load_model_for(as_of)
            with self._lock:
                if len(self._serving) >= 4096:
                    self._serving.clear()
                self._serving[as_of] = found
        return found

    def _load_model_for(self, as_of: dt.date) -> ServingModel:
        from tasks.forecast import ScoreForecast
        from tasks.model import CompileModel, TrainModel

        try:
            choice = ScoreForecast(as_of).serving()
        except (FileNotFoundError, PipelineError) as exc:
            raise NotFound(f"no model serves the run date {as_of} yet (its promotion decision is not recorded: "
                           f"run DailyForecast --date {as_of}): {exc}") from None
        model_date = choice.model_date
        model, compiled = TrainModel(model_date), CompileModel(model_date)
        if not (model.output().exists() and compiled.output().exists()):
            raise NotFound(f"the model of {model_date}, which serves {as_of}, is not trained and compiled under this "
                           f"configuration: run DailyForecast --date {as_of}")
        folder = compiled.folder()
        with self._lock:
            if folder not in self._models:
                metadata = storage.read_json(model.folder() / "metadata.json")
                self._models[folder] = ServingModel(choice.as_dict(), metadata, model.folder(), folder,
                                                    CompiledModel(folder), threading.Lock(),
                                                    {k: {v: i for i, v in enumerate(vals)}
                                                     for k, vals in metadata["vocab"].items()})
            loaded = self._models[folder]
        return dataclasses.replace(loaded, choice=choice.as_dict())

    def loaded_models(self) -> list[ServingModel]:
        with self._lock:
            return list(self._models.values())

    # ---- online predictions --------------------------------------------------------------------

    def calendar(self) -> online.Calendar:
        """The calendar, read again only when the table's row count or last date changed."""
        with self.engine.connect() as conn:
            stamp = tuple(conn.execute(sa.select(sa.func.count(), sa.func.max(db.calendar.c.date))).one())
            if self._calendar is None or self._calendar[0] != stamp:
                self._calendar = (stamp, read_calendar(conn))
        return self._calendar[1]

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one Backend per process; keys are small
    def checked_date(self, as_of: dt.date) -> dt.date:
        """``as_of`` when its sales were recorded (a run date the chain could forecast), else BadRequest."""
        why = missing_run_date(self.engine, as_of)
        if why:
            raise BadRequest(f"as_of {as_of}: {why}")
        return as_of

    def check_series_ids(self, store_id: str, item_id: str) -> None:
        with self.engine.connect() as conn:
            try:
                series_ids(conn, item_id, store_id)
            except UnknownSeries as exc:
                raise NotFound(str(exc)) from None

    def features(self, store_id: str, item_id: str, as_of: dt.date, prices: dict[int, float] | None = None,
                 calendar: online.Calendar | None = None) -> list[dict]:
        """The online feature rows of one series for the forecast of ``as_of`` (one per target day)."""
        self.checked_date(as_of)
        calendar = calendar or self.calendar()
        with self.engine.connect() as conn:
            try:
                history = read_series(conn, item_id, store_id, as_of)
            except UnknownSeries as exc:
                raise NotFound(str(exc)) from None
        try:
            return online.series_features(history, calendar, as_of, self.horizon, prices)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    @staticmethod
    def blend_weight(as_of: dt.date) -> float:
        """The online model's share of the published forecast of ``as_of`` (``[online_model] blend_weight``)."""
        from tasks.forecast import ScoreForecast

        return ScoreForecast(as_of).blend_weight()

    def predict(self, store_id: str, item_id: str, as_of: dt.date,
                prices: dict[int, float] | None = None) -> tuple[ServingModel, list[dict]]:
        """The serving model's forecast of one series from online features: date, horizon, units, week, price.

        Where the published forecast of ``as_of`` blends the batch model's with the online model's, so do
        these units, with the online model's published forecast of the series (what-if prices move the
        batch model's part only: the online model's features are not computed per series here)."""
        model = self.model_for(self.checked_date(as_of))
        beyond = [c for c in model.metadata["features"] if c not in online.COLUMNS]
        if beyond:
            raise Unsupported(f"the model of {model.date} uses features the online path does not compute: "
                              f"{', '.join(beyond)} ([features] pooled needs every series of the store)")
        calendar = self.calendar()
        rows = self.features(store_id, item_id, as_of, prices, calendar)
        units = model.predict(model.matrix(rows))
        weight = self.blend_weight(as_of)
        if weight:  # the published forecast of as_of blends in the online model's: so does the prediction
            try:
                part = self.online.forecast(as_of, store_id, item_id, self.check_series_ids)
            except challenger.NotCovered as exc:
                raise NotFound(str(exc)) from None
            units = blend_units(units, [r["units"] for r in part], weight)
        return model, [{"date": r["date"], "horizon": h, "units": float(u), "wm_yr_wk": calendar.day(r["date"]).wm_yr_wk,
                        "sell_price": None if r["sell_price"] != r["sell_price"] else r["sell_price"]}
                       for h, (r, u) in enumerate(zip(rows, units), start=1)]
