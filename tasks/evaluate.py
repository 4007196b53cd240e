"""Luigi tasks that score forecasts once the actuals exist, and backtests over date ranges."""
from __future__ import annotations

import datetime as dt
import io

import pandas as pd

import luigi

from pipeline.data import db
from pipeline.stages import evaluate
from tasks import config
from tasks.dates import RunDateParameter
from tasks.forecast import ScoreForecast
from tasks.online_model import ForecastOnline, UpdateOnlineModel
from tasks.quantiles import ForecastQuantiles
from tasks.outputs import DatedTask, Fingerprinted
from tasks.snapshot import ExtractSnapshot


class ActualsRecorded(luigi.ExternalTask):
    """The source database holds the sales of the last forecast day of ``date``.

    Until it does, ``Evaluate(date)`` is not runnable: Luigi reports a missing
    external dependency and runs it on a later invocation; nothing fails.
    """

    date = RunDateParameter()

    def complete(self) -> bool:
        return evaluate.actuals_recorded(db.engine_for(config.database_url()), self.date, config.forecast_spec().horizon)


class Evaluate(DatedTask):
    """WRMSSE, MAE, RMSE and bias of the forecast of ``date``, of the online model's and, when the forecast is
    their blend, of the batch model's alone (from the online model's start date on), and of the baselines,
    on the same series."""

    stage = "metrics"
    files = ("metrics.parquet", "metrics.json", "daily_totals.parquet")

    def requires(self):
        req = {"forecast": ScoreForecast(self.date), "quantiles": ForecastQuantiles(self.date),
               "snapshot": ExtractSnapshot(self.date), "actuals": ActualsRecorded(self.date)}
        if config.online_model().covers(self.date):
            req["online"] = ForecastOnline(self.date)
        return req

    def run(self):
        # the actuals as known at the end of the last forecast day: a dynamic dependency, so the
        # snapshot is only taken once ActualsRecorded says the day is there
        later = yield ExtractSnapshot(config.forecast_spec().last_target_date(self.date))
        forecast = pd.read_parquet(self.input()["forecast"].file("forecast.parquet"))
        quantiles = pd.read_parquet(self.input()["quantiles"].file("quantiles.parquet"))
        online = self.input().get("online")
        others = {evaluate.ONLINE: pd.read_parquet(online.file("forecast.parquet"))} if online else {}
        components = self.input()["forecast"].file("components.parquet")
        if components.exists():  # a blended forecast: its batch part is scored on its own too
            batch = pd.read_parquet(components).rename(columns={"batch": "units"})
            others[evaluate.BATCH] = batch[["item_id", "store_id", "date", "units"]]
        table, totals = evaluate.evaluate_run(forecast, self.input()["snapshot"].path, later.path, self.date,
                                              others=others, quantiles=quantiles)
        with self.writing() as tmp:
            evaluate.write_metrics(table, tmp, totals)
            evaluate.publish_metrics(db.engine_for(config.database_url()), table)


class Backtest(Fingerprinted):
    """The chain and ``Evaluate`` for every date in [start, stop): WRMSSE per date and model, WSPL of the quantiles,
    and the online model's daily progressive-validation error (``progressive.csv``) over the dates it covers."""

    start = RunDateParameter()
    stop = RunDateParameter(description="exclusive, as in Luigi's range tools")
    in_path = ("start", "stop")
    files = ("wrmsse.csv", "wspl.csv", "progressive.csv")

    def home(self):
        return config.data_dir() / "backtests" / f"{self.start}_{self.stop}"

    def dates(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=k) for k in range((self.stop - self.start).days)]

    def requires(self):
        online = config.online_model()
        return {"metrics": [Evaluate(d) for d in self.dates()],
                "online": [UpdateOnlineModel(d) for d in self.dates() if online.covers(d)]}

    def run(self):
        files = {t.date: inp.file("metrics.parquet") for t, inp in zip(self.requires()["metrics"], self.input()["metrics"])}
        tables = {metric: evaluate.backtest_table(files, metric) for metric in ("wrmsse", "wspl")}
        tables["progressive"] = evaluate.progressive_table([inp.file("progressive.parquet") for inp in self.input()["online"]])
        with self.writing() as tmp:
            for name, table in tables.items():
                buf = io.StringIO()
                table.to_csv(buf, index=False, float_format="%.6f", date_format="%Y-%m-%d")
                (tmp / f"{name}.csv").write_text(buf.getvalue())
