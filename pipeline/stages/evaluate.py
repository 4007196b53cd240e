"""Stage 6: score a run's forecast against actuals, next to the classic baselines.

The actuals of run date D are the sales of D+1..D+28 as known at the end of
D+28 (the snapshot of D+28), so an evaluation is as reproducible as a forecast.
Weights and scales of the WRMSSE come from the snapshot of D (what was known at
the forecast origin). The baselines are computed in the same run on the same
series: seasonal naive (the same weekday of the last week), the 28-day moving
average, and zero.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipeline.core.baselines import BASELINES, baselines
from pipeline.core.days import as_day
from pipeline.core.errors import DataError
from pipeline.core.metrics import metric_table
from pipeline.core.series import SERIES_KEY
from pipeline.data import db, storage
from pipeline.data.snapshot import read_snapshot
from pipeline.stages.evaluate_quantiles import quantile_metrics
from pipeline.stages.scoring_setup import snapshot_scoring

# BASELINES and baselines (pipeline.core.baselines) are named here too: the report draws the
# baselines this stage scores.
__all__ = ["MODEL", "ONLINE", "BATCH", "ACTUAL", "progressive_table", "BASELINES", "baselines", "actuals_for", "evaluate", "evaluate_run", "write_metrics", "publish_metrics",
           "actuals_recorded", "backtest_table"]

MODEL = "model"
ONLINE = "online"  # the online model (the challenger), scored beside the model when it covers the run date
BATCH = "batch"  # the batch model alone, where the published forecast (MODEL) is its blend with the online model
ACTUAL = "actual"
IDS_AS_STR = {"item_id": str, "store_id": str}


def actuals_for(forecast: pd.DataFrame, later_sales: pd.DataFrame) -> pd.DataFrame:
    """The actual units of every (series, day) of ``forecast``, from a later snapshot's sales.

    Raises DataError naming a missing (series, day) when the actuals are incomplete.
    """
    want = forecast[SERIES_KEY + ["date"]].astype(IDS_AS_STR)
    have = later_sales.astype(IDS_AS_STR)
    have = have[have["date"].between(want["date"].min(), want["date"].max())]
    merged = want.merge(have[SERIES_KEY + ["date", "units"]], on=SERIES_KEY + ["date"], how="left")
    missing = merged["units"].isna()
    if missing.any():
        first = merged[missing].iloc[0]
        raise DataError(f"actuals are incomplete: {int(missing.sum())} (series, day) pairs of the forecast have no "
                        f"sales row, e.g. item_id={first['item_id']} store_id={first['store_id']} date={first['date'].date()}")
    return merged.astype({"units": np.float64})


def evaluate(forecast: pd.DataFrame, snapshot_dir: Path, later_snapshot_dir: Path, run_date: dt.date,
             others: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Metrics of the model and of every baseline: as_of, model, metric, level, value (see ``evaluate_run``)."""
    return evaluate_run(forecast, snapshot_dir, later_snapshot_dir, run_date, others)[0]


def evaluate_run(forecast: pd.DataFrame, snapshot_dir: Path, later_snapshot_dir: Path, run_date: dt.date,
                 others: dict[str, pd.DataFrame] | None = None,
                 quantiles: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metric table of the model and of every baseline, and each one's units per day over all series.

    The table: as_of, model, metric, level, value; ``metric`` is wrmsse (level ``all``
    and each of the 12 levels), mae, rmse and bias (level ``item_store``). The daily
    totals (model, date, units; ``actual`` included) are what the report draws, so it
    never recomputes a baseline. ``others``: further forecasts of the same (series,
    day) pairs by name, scored in the same pass, so that the weights, scales, actuals
    and baselines are computed once (comparisons of several models); a name may not
    be ``model``, ``actual`` or a baseline's. ``quantiles``: the run's quantile table
    (``pipeline.stages.quantiles``), scored by WSPL and coverage beside the seasonal-naive
    quantiles (``pipeline.stages.evaluate_quantiles``).
    """
    others = others or {}
    taken = sorted(set(others) & {MODEL, ACTUAL, *BASELINES})
    if taken:
        raise ValueError(f"evaluate: forecast names {taken} are taken by the model, the actuals and the baselines")
    setup, history = snapshot_scoring(snapshot_dir, forecast, run_date)
    actual = actuals_for(forecast, read_snapshot(later_snapshot_dir, "sales"))
    candidates = {name: f[SERIES_KEY + ["date", "units"]].astype({**IDS_AS_STR, "units": np.float64})
                  for name, f in {MODEL: forecast, **others}.items()}
    candidates.update(baselines(history, setup.series, run_date, horizon=forecast["horizon"].max()))
    table = metric_table(candidates, actual, setup)
    if quantiles is not None:
        days = pd.DatetimeIndex(sorted(actual["date"].unique()))
        bottom = np.zeros((len(setup.series), len(days)))
        bottom[setup.indexer.codes(actual), days.get_indexer(actual["date"])] = actual["units"].to_numpy()
        rows = quantile_metrics(quantiles, bottom, setup, history, MODEL, "seasonal_naive")
        table = pd.concat([table, pd.DataFrame(rows, columns=table.columns)], ignore_index=True)
    table.insert(0, "as_of", as_day(run_date))
    totals = pd.concat([f.groupby("date", as_index=False)["units"].sum().assign(model=name)
                        for name, f in {**candidates, ACTUAL: actual}.items()], ignore_index=True)
    return table, totals[["model", "date", "units"]]


def write_metrics(table: pd.DataFrame, out_dir: Path, totals: pd.DataFrame | None = None) -> dict:
    """``metrics.parquet`` (the whole table), ``metrics.json`` (WRMSSE and point metrics per model) and,
    given, ``daily_totals.parquet`` (each model's and the actuals' units per day over all series)."""
    storage.write_parquet(table, Path(out_dir) / "metrics.parquet")
    if totals is not None:
        storage.write_parquet(totals, Path(out_dir) / "daily_totals.parquet")
    # WRMSSE over all levels; the point metrics are on the bottom level (item_store)
    top = table[(table["level"] == "all") | ~table["metric"].isin(["wrmsse", "wspl"])]
    summary = {
        "as_of": table["as_of"].iloc[0].date().isoformat(),
        "models": {m: {r.metric: round(float(r.value), 6) for r in g.itertuples()} for m, g in top.groupby("model")},
    }
    storage.write_json(Path(out_dir) / "metrics.json", summary)
    return summary


def publish_metrics(engine: sa.Engine, table: pd.DataFrame) -> int:
    """Replace the run date's rows of ``forecast_metrics`` with ``table``, in one transaction."""
    db.forecast_metrics.create(engine, checkfirst=True)
    as_of = table["as_of"].iloc[0].date()
    with engine.begin() as conn:
        conn.execute(sa.delete(db.forecast_metrics).where(db.forecast_metrics.c.as_of == as_of))
        db.bulk_insert(conn, db.forecast_metrics, table)
    return len(table)


def actuals_recorded(engine: sa.Engine, run_date: dt.date, horizon: int = 28) -> bool:
    """Whether the source holds sales of the last forecast day (the actuals can be scored)."""
    last = run_date + dt.timedelta(days=horizon)
    with engine.connect() as conn:
        found = conn.execute(sa.select(db.sales.c.date).where(db.sales.c.date == last).limit(1)).first()
    return found is not None


def backtest_table(metric_files: dict[dt.date, Path], metric: str = "wrmsse") -> pd.DataFrame:
    """``metric`` over all levels per run date (rows) and model (columns) from each date's ``metrics.parquet``.

    ``wrmsse``: the model, the online model where it was scored, and every baseline; ``wspl``: the model's quantiles and seasonal naive's, with
    the model's series-level 95 % coverage (``coverage_95``) beside them.
    """
    frames = [pd.read_parquet(p) for _, p in sorted(metric_files.items())]
    table = pd.concat(frames, ignore_index=True)
    wide = table[(table["metric"] == metric) & (table["level"] == "all")].pivot(index="as_of", columns="model", values="value")
    if metric == "wspl":
        cover = table[(table["metric"] == "coverage_95") & (table["model"] == MODEL)].set_index("as_of")["value"]
        wide = wide[[MODEL, "seasonal_naive"]].assign(coverage_95=cover)
    else:
        wide = wide[[MODEL, *[m for m in (BATCH, ONLINE) if m in wide], *BASELINES]]
    return wide.rename_axis(None, axis=1).reset_index().rename(columns={"as_of": "date"})


PROGRESSIVE_COLUMNS = ["date", "series", "mae", "rmse", "bias", "predicted", "actual"]


def progressive_table(progressive_files: list[Path]) -> pd.DataFrame:
    """The online model's progressive validation, one row per state: each state's ``progressive.parquet``'s last
    row (the state's own date; the file also carries the days before)."""
    rows = [pd.read_parquet(p).tail(1) for p in progressive_files]
    if not rows:
        return pd.DataFrame(columns=PROGRESSIVE_COLUMNS)
    return pd.concat(rows, ignore_index=True)[PROGRESSIVE_COLUMNS]
