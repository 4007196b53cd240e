"""Luigi tasks that write the HTML reports: one per evaluated run date, one per backtest."""
from __future__ import annotations

import datetime as dt

import pandas as pd

import luigi

from pipeline.data import storage
from pipeline.stages import report
from tasks import config
from tasks.dates import RunDateParameter
from tasks.forecast import ScoreForecast
from tasks.model import TrainModel
from tasks.monitoring import Monitor
from tasks.online_model import UpdateOnlineModel
from tasks.outputs import DatedTask, Fingerprinted
from tasks.quantiles import ForecastQuantiles
from tasks.snapshot import ExtractSnapshot
from tasks.evaluate import Backtest, Evaluate


class Report(DatedTask):
    """``data/reports/<date>/index.html``: forecast vs actuals, the quantiles' fan charts, metrics against the
    baselines (and the online model's), feature importance, the online model's progressive validation (from its
    start date on), the run date's monitoring checks."""

    stage = "reports"
    files = ("index.html",)

    def settings(self) -> dict:
        # Before its start date the page says when the online model starts, and no input carries that date.
        online = config.online_model()
        return {} if online.covers(self.date) else {"online_model_start": online.start_date.isoformat()}

    def requires(self):
        req = {"metrics": Evaluate(self.date), "forecast": ScoreForecast(self.date),
               "snapshot": ExtractSnapshot(self.date), "monitoring": Monitor(self.date),
               "quantiles": ForecastQuantiles(self.date)}
        if config.online_model().covers(self.date):
            req["online"] = UpdateOnlineModel(self.date)
        return req

    def run(self):
        # Both are done by now, so these dynamic dependencies only name them: the snapshot of the last
        # forecast day (the actuals, which Evaluate took; not a static requirement, so that a date whose
        # actuals are not recorded yet waits instead of failing), and the model that served the forecast
        # (its manifest says which: the promoted or pinned one, not always ScoreForecast.model_date()).
        served = storage.read_json(self.input()["forecast"].file("manifest.json"))["model_date"]
        later, model = yield [ExtractSnapshot(config.forecast_spec().last_target_date(self.date)),
                              TrainModel(dt.date.fromisoformat(served))]
        inputs = report.load_run_inputs(self.input()["forecast"].path, self.input()["snapshot"].path, later.path,
                                        self.input()["metrics"].path, model.path, self.date,
                                        monitoring_dir=self.input()["monitoring"].path,
                                        quantiles_dir=self.input()["quantiles"].path,
                                        online_start=config.online_model().start_date,
                                        online_dir=self.input()["online"].path if "online" in self.input() else None)
        page = report.render_run_report(**inputs)
        with self.writing() as tmp:
            report.write_page(tmp / "index.html", page)


class BacktestReport(Fingerprinted):
    """``data/reports/backtest_<start>_<stop>/<fingerprint>/index.html``: WRMSSE over the run dates, model, online model
    and baselines, and the online model's progressive validation per run date."""

    start = RunDateParameter()
    stop = RunDateParameter(description="exclusive, as in Luigi's range tools")
    in_path = ("start", "stop")
    files = ("index.html",)

    def home(self):
        return config.data_dir() / "reports" / f"backtest_{self.start}_{self.stop}"

    def settings(self) -> dict:
        # When the online model covers none of the dates the page says when it starts, and no input carries that date.
        online = config.online_model()
        last = self.stop - dt.timedelta(days=1)
        return {} if online.covers(last) else {"online_model_start": online.start_date.isoformat()}

    def requires(self):
        return Backtest(start=self.start, stop=self.stop)

    def run(self):
        table = pd.read_csv(self.input().file("wrmsse.csv"))
        progressive = pd.read_csv(self.input().file("progressive.csv"))
        page = report.render_backtest_report(table, self.start, self.stop, progressive=progressive,
                                             online_start=config.online_model().start_date)
        with self.writing() as tmp:
            report.write_page(tmp / "index.html", page)
