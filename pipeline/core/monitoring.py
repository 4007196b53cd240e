"""Daily monitoring of a run: drift of the inputs and of the forecast, realised accuracy, interval coverage.

Pure functions of frames; :mod:`pipeline.stages.monitoring` loads the run date's snapshot, its forecast
and the earlier runs' outputs that exist, and writes what these return. A check compares numbers
(:class:`Measure`) with bounds from :class:`MonitorThresholds`: one outside its bound turns the check
red; a check without data says ``no data`` and is never red. The windows the checks look at are
constants of this module (fixed by definition); docs/monitoring.md describes every check.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.core.days import as_day

OK, RED, NO_DATA = "ok", "red", "no data"
REFERENCE_WEEKS = 4  # zero_share: the same weekday of this many previous weeks
RECENT_DAYS = 7  # new / vanished series: "now" is the last 7 days, the run date included
REGULAR_DAYS = 28  # vanished series: regularity is judged on the 28 days before those
PRICE_WEEKS_BACK = 4  # price_drift: the run date's Walmart week against the week of the date 4 weeks before
YEAR_DAYS = 364  # forecast_vs_last_year: the same weekday 52 weeks earlier
MATURED_RUNS = 28  # accuracy, coverage: the forecasts of run dates date-28 .. date-1
HORIZON_WEEKS = ((1, 7), (8, 14), (15, 21), (22, 28))
TOP = 5  # stores listed as having moved most
LISTED = 10  # series a presence check names


@dataclasses.dataclass(frozen=True)
class MonitorThresholds:
    """The bounds past which a check turns red; defaults in brackets, the check in parentheses."""

    #: (zero_share) largest change, in share points, of the run date's share of series rows with zero
    #: units against the mean share on the same weekday of the 4 weeks before [0.05]
    zero_share_max_change: float = 0.05
    #: (zero_share) ... unless this many binomial standard errors of the share on the run date's rows is more [3]
    zero_share_noise_z: float = 3.0
    #: (price_drift) largest two-sample Kolmogorov-Smirnov statistic between the sell prices of the
    #: run date's Walmart week and of the week 4 weeks before (scipy.stats.ks_2samp) [0.10]
    price_ks_max: float = 0.10
    #: (new_series) largest share of the series with a row in the last 7 days whose first row ever is in them [0.02]
    new_series_max_share: float = 0.02
    #: (vanished_series) a series is regular when it sold >= 1 unit on at least this share of the 28 days before
    #: the last 7 [0.5]
    regular_share: float = 0.5
    #: (vanished_series) largest share of the regular series with no row at all in the last 7 days [0.01]
    vanished_series_max_share: float = 0.01
    #: (forecast_vs_last_year) largest relative change of the forecast's total against the actual total of
    #: the same weekdays 364 days earlier [0.25]
    last_year_max_change: float = 0.25
    #: (forecast_vs_yesterday) largest relative change of the forecast's total against yesterday's run on
    #: the target days both forecast [0.10]
    yesterday_max_change: float = 0.10
    #: (accuracy_h*) largest mean absolute error of the daily total, relative to the mean actual daily total [0.15]
    accuracy_max_relative_mae: float = 0.15
    #: (accuracy_h*) largest relative bias of the daily total: sum(forecast - actual) / sum(actual) [0.10]
    accuracy_max_relative_bias: float = 0.10
    #: (coverage_95) the share of series-level actuals inside [q0.025, q0.975] must be at least this ... [0.90]
    coverage_95_min: float = 0.90
    #: (coverage_95) ... and at most this [0.99]
    coverage_95_max: float = 0.99

    def __post_init__(self):
        shares = ("regular_share", "coverage_95_min", "coverage_95_max", "new_series_max_share",
                  "vanished_series_max_share", "price_ks_max")
        for name, value in dataclasses.asdict(self).items():
            if not isinstance(value, (int, float)) or not 0 <= value <= (1 if name in shares else np.inf):
                raise ValueError(f"monitoring threshold {name}={value!r} must be a number >= 0"
                                 + (" and <= 1 (a share)" if name in shares else ""))
        if self.coverage_95_min > self.coverage_95_max:
            raise ValueError("monitoring thresholds: coverage_95_min is above coverage_95_max")

    @classmethod
    def from_mapping(cls, values: dict) -> "MonitorThresholds":
        """The thresholds from ``name -> value`` (numbers or their text, e.g. a config section); others default."""
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            known = [f.name for f in dataclasses.fields(cls)]
            raise ValueError(f"unknown monitoring thresholds {unknown}; known: {known}")
        return cls(**{k: float(v) for k, v in values.items()})


@dataclasses.dataclass(frozen=True)
class Measure:
    """One number a check compares: red outside [low, high] (bounds on its absolute value when ``absolute``)."""

    name: str
    value: float | None
    low: float | None = None
    high: float | None = None
    absolute: bool = False

    @property
    def status(self) -> str:
        if self.value is None:
            return NO_DATA
        v = abs(self.value) if self.absolute else self.value
        return RED if (self.low is not None and v < self.low) or (self.high is not None and v > self.high) else OK

    def bound(self) -> str:
        x = f"|{self.name}|" if self.absolute else self.name
        return (f"{self.low:.4g} ≤ " if self.low is not None else "") + x + (
            f" ≤ {self.high:.4g}" if self.high is not None else "")

    def as_dict(self) -> dict:
        return {"name": self.name, "value": num(self.value), "status": self.status, "threshold": self.bound(),
                "min": self.low, "max": self.high, "of_absolute_value": self.absolute}


@dataclasses.dataclass(frozen=True)
class Check:
    """A named check: its measures, one readable line, and the numbers behind it (``detail``)."""

    name: str
    group: str
    label: str
    measures: tuple[Measure, ...]
    note: str
    detail: dict = dataclasses.field(default_factory=dict)

    @property
    def status(self) -> str:
        found = [m.status for m in self.measures]
        return RED if RED in found else NO_DATA if all(s == NO_DATA for s in found) else OK

    def as_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in ("name", "group", "label", "status", "note", "detail")},
                "measures": [m.as_dict() for m in self.measures]}


def num(x, digits: int = 6):
    """A JSON number: rounded, None for a missing or non-finite value."""
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def _days(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["date"])


def series_codes(frame: pd.DataFrame) -> tuple[np.ndarray, pd.MultiIndex]:
    """Each row's series as a code into the frame's distinct (item_id, store_id) series; each id column is
    factorized alone (a categorical by its codes), never the pairs as tuples: fast on millions of rows."""
    (ic, items), (sc, stores) = (pd.factorize(frame[c]) for c in ("item_id", "store_id"))
    n = max(len(stores), 1)
    codes, keys = pd.factorize(ic.astype(np.int64) * n + sc)
    return codes, pd.MultiIndex.from_arrays([np.asarray(items).astype(str)[keys // n],
                                             np.asarray(stores).astype(str)[keys % n]], names=["item_id", "store_id"])


def _ids(index: pd.MultiIndex) -> list[str]:
    return [f"{item}/{store}" for item, store in sorted(index)[:LISTED]]


def zero_share(sales: pd.DataFrame, run_date, t: MonitorThresholds) -> Check:
    """The share of the run date's sales rows with zero units against the same weekday of the 4 weeks before.

    The bound is ``zero_share_max_change``, or ``zero_share_noise_z`` binomial standard errors of the
    reference share on the run date's rows when that is wider (a world of a few hundred series).
    """
    run = as_day(run_date)
    refs = [run - pd.Timedelta(weeks=k) for k in range(1, REFERENCE_WEEKS + 1)]
    days = _days(sales)
    on = days.isin([run, *refs])
    shares = (sales["units"][on] == 0).groupby(days[on]).mean()
    n = int((days == run).sum())
    today = float(shares[run]) if n else None
    ref = {d.date().isoformat(): float(shares[d]) for d in refs if d in shares.index}
    mean = float(np.mean(list(ref.values()))) if ref else None
    change = today - mean if today is not None and mean is not None else None
    noise = t.zero_share_noise_z * np.sqrt(mean * (1 - mean) / n) if change is not None else 0.0
    note = ("no sales rows on the run date or on the same weekday before" if change is None else
            f"{today:.1%} of the run date's {n:,} series rows sold nothing; {mean:.1%} on the same weekday of the "
            f"{len(ref)} weeks before ({100 * change:+.1f} points)")
    return Check("zero_share", "data drift", "zero-sale series vs the same weekday, 4 weeks",
                 (Measure("change", change, high=num(max(t.zero_share_max_change, noise)), absolute=True),), note,
                 {"run_date_share": num(today), "rows": n, "reference_shares": {d: num(v) for d, v in ref.items()},
                  "reference_mean": num(mean), "noise_bound": num(noise)})


def price_drift(prices: pd.DataFrame, calendar: pd.DataFrame, run_date, t: MonitorThresholds) -> Check:
    """The sell prices of the run date's Walmart week against those of the week 4 weeks before (KS, Wasserstein)."""
    run = as_day(run_date)
    weeks = pd.Series(calendar["wm_yr_wk"].to_numpy(), index=pd.to_datetime(calendar["date"]))
    week, before = (int(weeks[d]) if d in weeks.index else None
                    for d in (run, run - pd.Timedelta(weeks=PRICE_WEEKS_BACK)))
    now, ref = (prices[prices["wm_yr_wk"] == w] if w is not None else prices.iloc[:0] for w in (week, before))
    detail = {"week": week, "reference_week": before, "prices": len(now), "reference_prices": len(ref)}
    if now.empty or ref.empty:
        missing = week if now.empty else before
        return Check("price_drift", "data drift", "sell prices vs 4 weeks before",
                     (Measure("ks", None, high=t.price_ks_max),), f"no prices of week {missing} in the snapshot", detail)
    a, b = now["sell_price"].to_numpy(np.float64), ref["sell_price"].to_numpy(np.float64)
    ks = stats.ks_2samp(a, b)
    both = pd.concat([pd.Series(v, index=series.take(codes), name=name) for v, (codes, series), name in
                      ((a, series_codes(now), "now"), (b, series_codes(ref), "ref"))], axis=1, join="inner")
    changed = float((~np.isclose(both["now"], both["ref"])).mean()) if len(both) else None
    detail.update({"ks_statistic": num(ks.statistic), "ks_pvalue": num(ks.pvalue, 12),
                   "wasserstein": num(stats.wasserstein_distance(a, b)), "mean_price": num(a.mean()),
                   "reference_mean_price": num(b.mean()), "series_in_both": len(both), "changed_share": num(changed)})
    note = (f"KS {ks.statistic:.3f} between the {len(a):,} prices of week {week} and the {len(b):,} of week {before}; "
            f"mean {a.mean():.2f} vs {b.mean():.2f}; " + (f"{changed:.1%} of the series' prices changed"
                                                         if changed is not None else "no series priced in both"))
    return Check("price_drift", "data drift", "sell prices vs 4 weeks before",
                 (Measure("ks", float(ks.statistic), high=t.price_ks_max),), note, detail)


def new_candidates(window: pd.DataFrame, run_date) -> pd.MultiIndex:
    """Series with a row in the last 7 days and none in the 28 days before (new, unless older rows exist)."""
    recent_start = as_day(run_date) - pd.Timedelta(days=RECENT_DAYS - 1)
    days = _days(window)
    recent = days >= recent_start
    return series_codes(window[recent])[1].difference(series_codes(window[~recent])[1])


def presence(window: pd.DataFrame, run_date, seen_before: pd.MultiIndex, t: MonitorThresholds) -> list[Check]:
    """New series (first row ever in the last 7 days) and vanished ones (regular before, no row in the last 7).

    ``window``: the sales rows of the 35 days up to the run date; ``seen_before``: the series of
    :func:`new_candidates` that have a row before that window.
    """
    run = as_day(run_date)
    recent_start = run - pd.Timedelta(days=RECENT_DAYS - 1)
    days = _days(window)
    window = window[(days > recent_start - pd.Timedelta(days=REGULAR_DAYS + 1)) & (days <= run)]
    days = _days(window)
    recent = days >= recent_start
    active = series_codes(window[recent])[1]
    new = new_candidates(window, run_date).difference(seen_before)
    earlier = window[~recent & (window["units"] >= 1)]
    codes, series = series_codes(earlier)
    back = (run - _days(earlier)).dt.days.to_numpy()  # distinct (series, day) pairs: a duplicate counts once
    sold_days = np.bincount(np.unique(codes.astype(np.int64) * 64 + back) // 64, minlength=len(series))
    regular = series[sold_days >= t.regular_share * REGULAR_DAYS]
    vanished = regular.difference(active)
    new_share = len(new) / len(active) if len(active) else None
    gone_share = len(vanished) / len(regular) if len(regular) else None
    return [
        Check("new_series", "data drift", "new series (first row in the last 7 days)",
              (Measure("share", new_share, high=t.new_series_max_share),),
              f"{len(new):,} of the {len(active):,} series with a row in the last 7 days are new",
              {"new": len(new), "active": len(active), "listed": _ids(new)}),
        Check("vanished_series", "data drift", "vanished series (regular, no row in the last 7 days)",
              (Measure("share", gone_share, high=t.vanished_series_max_share),),
              f"{len(vanished):,} of the {len(regular):,} regular series have no row in the last 7 days",
              {"vanished": len(vanished), "regular": len(regular), "listed": _ids(vanished)}),
    ]


def movers(now: pd.Series, ref: pd.Series, top: int = TOP) -> list[dict]:
    """The ``top`` keys (stores) whose units moved most between ``ref`` and ``now``, by absolute change."""
    both = pd.concat([now.rename("now"), ref.rename("ref")], axis=1).fillna(0.0).pipe(
        lambda b: b.assign(change=b["now"] - b["ref"], key=b.index.astype(str)))
    both = both.assign(size=both["change"].abs()).sort_values(["size", "key"], ascending=[False, True]).head(top)
    return [{"store_id": r.key, "forecast": num(r.now, 3), "reference": num(r.ref, 3), "change": num(r.change, 3),
             "relative_change": num(r.change / r.ref) if r.ref else None} for r in both.itertuples()]


def _drift(name: str, label: str, forecast: pd.DataFrame, reference: pd.DataFrame, limit: float, what: str,
           days: int, empty: str) -> Check:
    f_total, r_total = float(forecast["units"].sum()), float(reference["units"].sum())
    rel = f_total / r_total - 1 if days and r_total > 0 else None
    detail = {"days": days, "forecast_total": num(f_total, 3), "reference_total": num(r_total, 3),
              "relative_change": num(rel)}
    measure = Measure("relative_change", rel, high=limit, absolute=True)
    if rel is None:
        return Check(name, "prediction drift", label, (measure,), empty, detail)
    by_store = [frame.groupby(frame["store_id"].astype(str))["units"].sum().astype(np.float64)
                for frame in (forecast, reference)]
    detail["stores_moved_most"] = movers(*by_store)
    moved = ", ".join(f"{m['store_id']} {m['change']:+,.0f}" for m in detail["stores_moved_most"])
    return Check(name, "prediction drift", label, (measure,), f"{f_total:,.0f} units forecast over {days} days, "
                 f"{r_total:,.0f} {what} ({rel:+.1%}); moved most: {moved}", detail)


def forecast_vs_last_year(forecast: pd.DataFrame, history: pd.DataFrame, t: MonitorThresholds) -> Check:
    """The forecast's total against the actual total of the same weekdays 364 days earlier (all series sold then).

    ``history``: sales rows of (at least) those earlier days. Only target days whose earlier day has
    rows are compared.
    """
    target = _days(forecast)
    earlier = _days(history)
    known = pd.DatetimeIndex(earlier.unique()) + pd.Timedelta(days=YEAR_DAYS)
    days = pd.DatetimeIndex(target.unique()).intersection(known)
    ref = history[earlier.isin(days - pd.Timedelta(days=YEAR_DAYS))]
    return _drift("forecast_vs_last_year", "forecast vs the same days last year", forecast[target.isin(days)], ref,
                  t.last_year_max_change, "sold on the same weekdays 364 days earlier", len(days),
                  "no sales 364 days before the target days in the snapshot")


def forecast_vs_yesterday(forecast: pd.DataFrame, yesterday: pd.DataFrame | None, t: MonitorThresholds) -> Check:
    """The forecast's total against yesterday's run on the target days both forecast (None: no run yesterday)."""
    if yesterday is None:
        yesterday = forecast.iloc[:0]
    days = pd.DatetimeIndex(_days(forecast).unique()).intersection(pd.DatetimeIndex(_days(yesterday).unique()))
    return _drift("forecast_vs_yesterday", "forecast vs yesterday's run", forecast[_days(forecast).isin(days)],
                  yesterday[_days(yesterday).isin(days)], t.yesterday_max_change,
                  "in yesterday's run for the same days", len(days),
                  "no forecast of the day before for these target days")


class Actuals:
    """The units known per (series, day); any (series x days) matrix of them, a missing row being 0 units."""

    def __init__(self, sales: pd.DataFrame):
        self.codes, self.series = series_codes(sales)
        self.days = _days(sales).to_numpy()
        self.units = sales["units"].to_numpy(np.float64)

    def matrix(self, series: pd.MultiIndex, days: pd.DatetimeIndex) -> np.ndarray:
        rows = series.get_indexer(self.series)[self.codes] if len(self.codes) else np.zeros(0, dtype=np.int64)
        cols = days.get_indexer(self.days)
        keep = (rows >= 0) & (cols >= 0)
        out = np.zeros((len(series), len(days)))
        out[rows[keep], cols[keep]] = self.units[keep]
        return out


def accuracy(forecasts: dict[dt.date, pd.DataFrame], actuals: Actuals, run_date, t: MonitorThresholds) -> list[Check]:
    """MAE and bias of the daily total per horizon week, over every matured day of the earlier runs given.

    ``forecasts``: run date -> its forecast rows (item_id, store_id, date, units); each day of a
    run compares the sum of its forecast with the actual sum of the same series on that day.
    """
    run = as_day(run_date)
    rows = []
    for origin, f in sorted(forecasts.items()):
        f = f[_days(f) <= run]
        if f.empty:
            continue
        series = series_codes(f)[1]
        days = pd.DatetimeIndex(sorted(_days(f).unique()))
        forecast = np.bincount(days.get_indexer(_days(f)), weights=f["units"].to_numpy(np.float64),
                               minlength=len(days))
        actual = actuals.matrix(series, days).sum(axis=0)
        rows += [(origin.isoformat(), (d - as_day(origin)).days, forecast[j], actual[j]) for j, d in enumerate(days)]
    table = pd.DataFrame(rows, columns=["run", "horizon", "forecast", "actual"])
    checks = []
    for lo, hi in HORIZON_WEEKS:
        part = table[table["horizon"].between(lo, hi)]
        err = (part["forecast"] - part["actual"]).to_numpy()
        total = float(part["actual"].sum())
        mae = float(np.abs(err).mean()) if len(part) else None
        rel_mae = mae / part["actual"].mean() if mae is not None and total > 0 else None
        rel_bias = float(err.sum()) / total if len(part) and total > 0 else None
        detail = {"pairs": len(part), "runs": sorted(set(part["run"])), "mae": num(mae, 3),
                  "bias": num(err.mean() if len(part) else None, 3), "mean_actual": num(total / max(len(part), 1), 3),
                  "relative_mae": num(rel_mae), "relative_bias": num(rel_bias)}
        note = ("no matured day of an earlier run" if mae is None else
                f"{len(part)} (run, day) pairs of {len(detail['runs'])} runs: MAE {mae:,.1f} units a day "
                f"({rel_mae:.1%} of the mean actual total), bias {err.mean():+,.1f} ({rel_bias:+.1%})")
        checks.append(Check(f"accuracy_h{lo}_{hi}", "realised accuracy", f"daily total, horizons {lo}-{hi}",
                            (Measure("relative_mae", rel_mae, high=t.accuracy_max_relative_mae),
                             Measure("relative_bias", rel_bias, high=t.accuracy_max_relative_bias, absolute=True)),
                            note, detail))
    return checks


def coverage(quantiles: dict[dt.date, pd.DataFrame], actuals: Actuals, run_date, t: MonitorThresholds) -> Check:
    """The share of matured series-level actuals inside [q0.025, q0.975], and at or below each quantile.

    ``quantiles``: run date -> its ``item_store`` rows (item_id, store_id, quantile, F1..F<h>).
    """
    run = as_day(run_date)
    inside, pairs, below, runs = 0, 0, {}, []
    for origin, q in sorted(quantiles.items()):
        columns = [c for c in q.columns if c.startswith("F") and c[1:].isdigit()]
        start = as_day(origin) + pd.Timedelta(days=1)
        days = pd.date_range(start, min(run, start + pd.Timedelta(days=len(columns) - 1)))
        us = sorted(set(q["quantile"].astype(float)))
        lo, hi = (next((k for k, v in enumerate(us) if abs(v - u) < 1e-6), None) for u in (0.025, 0.975))
        if not len(days) or lo is None or hi is None:
            continue
        codes, series = series_codes(q)
        order = np.lexsort((q["quantile"].to_numpy(np.float64), codes))  # by series, then quantile
        if len(q) != len(series) * len(us) or not np.allclose(
                q["quantile"].to_numpy(np.float64)[order].reshape(len(series), -1), us):
            raise ValueError(f"the quantiles of {origin} do not give every quantile of every series once")
        values = q[columns[:len(days)]].to_numpy(np.float64)[order].reshape(len(series), len(us), len(days))
        actual = actuals.matrix(series, days)
        for k, u in enumerate(us):
            below[u] = below.get(u, 0) + int((actual <= values[:, k]).sum())
        inside += int(((actual >= values[:, lo]) & (actual <= values[:, hi])).sum())
        pairs += actual.size
        runs.append(origin.isoformat())
    share = inside / pairs if pairs else None
    shares = {f"{u:g}": num(n / pairs) for u, n in sorted(below.items())} if pairs else {}
    note = ("no matured day of an earlier run's quantiles" if share is None else
            f"{share:.1%} of {pairs:,} matured (series, day) actuals of {len(runs)} runs inside the 95 % interval"
            + (f"; {shares['0.5']:.1%} at or below the median" if "0.5" in shares else ""))
    return Check("coverage_95", "interval coverage", "series-level actuals inside [q0.025, q0.975]",
                 (Measure("inside_95", share, low=t.coverage_95_min, high=t.coverage_95_max),), note,
                 {"pairs": pairs, "runs": runs, "at_or_below": shares})

