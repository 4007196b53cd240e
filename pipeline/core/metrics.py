"""Forecast accuracy: the M5 WRMSSE (as the organisers define it), MAE, RMSE and bias.

Vocabulary
----------
* A *series* is one ``(item_id, store_id)`` pair: the bottom of the hierarchy.
  Its hierarchy columns are ``dept_id`` and ``cat_id`` (from the item) and
  ``state_id`` (from the store).
* All frames are *long*: one row per series and day, columns
  ``item_id, store_id, date, units`` (``date`` a real calendar day).
* ``LEVELS`` are the 12 M5 aggregation levels. On the M5 hierarchy (3,049 items,
  10 stores, 3 states, 3 categories, 7 departments) they hold 42,840 series.

WRMSSE (M5 Competitors' Guide, section 4)
-----------------------------------------
For every aggregated series ``s`` of every level, with ``h`` forecast days::

    RMSSE_s = sqrt( mean_t (y_t - f_t)^2 / scale_s )
    scale_s = 1/(n-1) * sum_{t=2..n} (y_t - y_{t-1})^2   over the in-sample days
              counted from the series' first non-zero sale up to the origin
    weight_s = dollar sales of s over the last 28 days up to the origin,
               divided by the dollar sales of the whole level (so each level sums to 1)
    WRMSSE  = sum_levels 1/12 * sum_{s in level} weight_s * RMSSE_s

Rules this module adds where M5 is silent (M5's own data never hits them):

* **Missing price.** A series-day whose week has no ``sell_price`` row counts as
  0 dollars in the weights (M5's data has a price on every day an item sold; the
  count of such days *with positive units* is kept in
  ``WrmsseSetup.missing_price_days``).
* **Zero or undefined scale.** A series that never sold up to the origin (no
  non-zero day), or whose first sale is on the origin itself (one active day, no
  one-step difference), has an undefined scale (stored as NaN); a series that is
  constant from its first sale on has scale 0. RMSSE is not defined for either,
  so such a series **contributes 0** to the WRMSSE and the other weights are
  **not** renormalised. A series that never sold in the 28-day window has weight
  0, so nothing is lost in the usual case (a product not launched yet); when a
  series with positive weight is dropped, a ``RuntimeWarning`` is emitted and the
  dropped weight is reported in ``WrmsseResult.excluded_weight``.
* **float32 prices** (as in a parquet copy of ``sell_prices``) are widened through
  their shortest decimal text, so 9.58f counts as 9.58 dollars, not 9.5799999237.
* **Missing history rows.** Inside the history's date range (its first date to
  the origin) a missing ``(series, date)`` row means 0 units; a long sales table
  that starts each series at its launch is therefore read correctly (leading zeros
  do not enter the scale anyway).

The m5-wrmsse PyPI package (used by the tests as an oracle for the WRMSSE
formula) differs in one respect: its scales use ``np.trim_zeros``, which also
drops *trailing* zeros; M5 (and this module) drop only leading zeros.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline.core.series import SeriesIndexer

__all__ = [
    "LEVELS",
    "LevelSetup",
    "WrmsseSetup",
    "WrmsseResult",
    "level_series",
    "wrmsse_weights_scales",
    "wrmsse",
    "point_metrics",
]

ITEM, STORE, DATE, UNITS = "item_id", "store_id", "date", "units"
SERIES_KEY = [ITEM, STORE]
HIERARCHY_COLUMNS = [ITEM, STORE, "dept_id", "cat_id", "state_id"]
LONG_COLUMNS = [ITEM, STORE, DATE, UNITS]

#: The 12 M5 aggregation levels, in the organisers' order: (name, group-by columns).
LEVELS: list[tuple[str, list[str]]] = [
    ("total", []),
    ("state", ["state_id"]),
    ("store", ["store_id"]),
    ("category", ["cat_id"]),
    ("department", ["dept_id"]),
    ("state_category", ["state_id", "cat_id"]),
    ("state_department", ["state_id", "dept_id"]),
    ("store_category", ["store_id", "cat_id"]),
    ("store_department", ["store_id", "dept_id"]),
    ("item", ["item_id"]),
    ("item_state", ["item_id", "state_id"]),
    ("item_store", ["item_id", "store_id"]),
]

# Rows of a dense (series x days) block handled at once when computing scales:
# bounds the temporaries (diff, mask) to ~4M floats whatever the history length.
_SCALE_BLOCK_CELLS = 4_000_000


# --------------------------------------------------------------------------- hierarchy


def _check_hierarchy(hierarchy: pd.DataFrame) -> pd.DataFrame:
    """Validated copy of the hierarchy: str columns, one row per series, sorted by (item, store).

    Sorting makes the bottom order equal to the ``item_store`` level's order, so that
    level is the identity and never needs a copy of the bottom matrix.
    """
    missing = [c for c in HIERARCHY_COLUMNS if c not in hierarchy.columns]
    if missing:
        raise ValueError(f"hierarchy lacks columns {missing}; it needs {HIERARCHY_COLUMNS}")
    h = hierarchy[HIERARCHY_COLUMNS]
    if h.isna().any().any():
        bad = h.columns[h.isna().any()].tolist()
        raise ValueError(f"hierarchy has missing values in {bad}")
    # Plain strings: categorical columns would sort by category order and carry unused
    # categories into group-bys; strings make every key comparable with any input.
    h = pd.DataFrame({c: h[c].astype(str).to_numpy() for c in HIERARCHY_COLUMNS})
    dup = h.duplicated(SERIES_KEY)
    if dup.any():
        first = h.loc[dup, SERIES_KEY].iloc[0].tolist()
        raise ValueError(f"hierarchy has {int(dup.sum())} duplicate (item_id, store_id) rows, e.g. {first}")
    if h.empty:
        raise ValueError("hierarchy is empty")
    return h.sort_values(SERIES_KEY, ignore_index=True)


def level_series(hierarchy: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The aggregated series of each level.

    In: one row per series with ``item_id, store_id, dept_id, cat_id, state_id``.
    Out: ``{level name: DataFrame}`` in ``LEVELS`` order, each frame holding the
    level's group-by columns (as str), one row per aggregated series, sorted by those
    columns (the ``total`` frame has no columns and one row).
    """
    h = _check_hierarchy(hierarchy)
    return {name: _level_codes(h, cols)[1] for name, cols in LEVELS}


def _level_codes(h: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """(bottom series -> aggregated row, keys of the aggregated rows sorted by ``cols``)."""
    if not cols:
        return np.zeros(len(h), dtype=np.int64), pd.DataFrame(index=pd.RangeIndex(1))
    grouped = h.groupby(cols, sort=True)
    keys = grouped.size().index.to_frame(index=False)[cols]
    return grouped.ngroup().to_numpy(dtype=np.int64), keys


def _indicator(rows: np.ndarray, n_rows: int) -> sparse.csr_matrix:
    """Sparse 0/1 matrix S (n_rows x len(rows)) with S[rows[j], j] = 1: ``S @ X`` sums rows of X."""
    n = len(rows)
    return sparse.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(n_rows, n))


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True, eq=False)
class LevelSetup:
    """One aggregation level: its series, their weights and scales.

    ``keys``: one row per aggregated series (the level's group-by columns);
    ``codes[i]``: row of ``keys`` that bottom series ``i`` (row ``i`` of
    ``WrmsseSetup.series``) belongs to; ``weights``: sum to 1 over the level;
    ``scales``: in-sample mean squared naive error (NaN where undefined).
    """

    name: str
    columns: tuple[str, ...]
    keys: pd.DataFrame
    codes: np.ndarray
    weights: np.ndarray
    scales: np.ndarray

    @property
    def n_series(self) -> int:
        return len(self.keys)


@dataclass(frozen=True, eq=False)
class WrmsseSetup:
    """Everything WRMSSE needs besides forecast and actuals: hierarchy, weights, scales.

    Build it with :func:`wrmsse_weights_scales` (from history and prices) or
    :meth:`from_arrays` (from weights and scales computed elsewhere).

    ``series``: the bottom series (hierarchy columns), sorted by item then store;
    ``levels``: ``{name: LevelSetup}`` in ``LEVELS`` order; ``origin``: the last
    in-sample day (forecast days must be later), or None when unknown;
    ``missing_price_days``: series-days in the weight window with units > 0 but no
    price (they count as 0 dollars).
    """

    series: pd.DataFrame
    levels: dict[str, LevelSetup]
    origin: pd.Timestamp | None = None
    missing_price_days: int = 0
    _plan: list[tuple[str, str | None, Any]] = field(init=False, repr=False)
    _indexer: SeriesIndexer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Derived lookups (cheap: sizes of the hierarchy, not of the data).
        object.__setattr__(self, "_indexer", SeriesIndexer(self.series))
        object.__setattr__(self, "_plan", _aggregation_plan(self.levels, len(self.series)))

    @property
    def n_series(self) -> int:
        """Number of aggregated series over all levels (42,840 for the M5 hierarchy)."""
        return sum(level.n_series for level in self.levels.values())

    def table(self) -> pd.DataFrame:
        """All aggregated series as one long frame: ``level``, the hierarchy columns
        (NaN where the level does not group by them), ``weight`` (within level) and ``scale``."""
        parts = [
            level.keys.assign(level=name, weight=level.weights, scale=level.scales)
            for name, level in self.levels.items()
        ]
        cols = ["level", "state_id", "store_id", "cat_id", "dept_id", "item_id", "weight", "scale"]
        return pd.concat(parts, ignore_index=True).reindex(columns=cols)

    def aggregate(self, bottom: np.ndarray) -> dict[str, np.ndarray]:
        """Sum a (series x days) matrix, rows in ``series`` order, up every level.

        Out: ``{level: (level.n_series x days) array}``. Coarse levels are summed from
        the finest level already computed that nests them (e.g. department from
        store x department), so the bottom matrix is read only about twice.
        """
        out: dict[str, np.ndarray] = {}
        for name, source, op in self._plan:
            x = bottom if source is None else out[source]
            out[name] = x if op is None else np.asarray(op @ x)
        return {name: out[name] for name in self.levels}

    @classmethod
    def from_arrays(
        cls,
        hierarchy: pd.DataFrame,
        weights: Mapping[str, pd.Series],
        scales: Mapping[str, pd.Series],
        origin: Any = None,
    ) -> "WrmsseSetup":
        """A setup from weights and scales given per aggregated series.

        In: ``hierarchy`` (one row per series, ``item_id, store_id, dept_id, cat_id,
        state_id``); ``weights[level]`` and ``scales[level]`` for every level name in
        ``LEVELS``: a Series indexed by the level's group-by columns (a MultiIndex
        for two columns, matched by level names when they are the column names, else
        in ``LEVELS`` order; for ``total`` a one-element Series whose index is ignored). Weights are *within-level* (each level sums to 1, checked to
        1e-6; not renormalised); scales are mean squared naive errors (0 or NaN
        follow the zero-scale rule). ``origin`` (optional) is the last in-sample day.
        Out: a ``WrmsseSetup``. Raises ``ValueError`` when a level is missing, a level
        series has no value, or a value is not a level series.
        """
        h = _check_hierarchy(hierarchy)
        levels = {}
        for name, cols in LEVELS:
            codes, keys = _level_codes(h, cols)
            arrays = []
            for what, given in (("weights", weights), ("scales", scales)):
                if name not in given:
                    raise ValueError(f"{what} lacks level {name!r}")
                arrays.append(_align_to_keys(given[name], keys, cols, f"{what}[{name!r}]"))
            w, s = arrays
            if not np.all(np.isfinite(w)) or (w < 0).any() or abs(w.sum() - 1.0) > 1e-6:
                raise ValueError(f"weights[{name!r}] must be finite, >= 0 and sum to 1 (sum is {w.sum()!r})")
            if (s < 0).any():
                raise ValueError(f"scales[{name!r}] has negative values")
            levels[name] = LevelSetup(name, tuple(cols), keys, codes, w, s)
        return cls(series=h, levels=levels, origin=None if origin is None else _as_day(origin))


def _align_to_keys(values: pd.Series, keys: pd.DataFrame, cols: list[str], what: str) -> np.ndarray:
    """Values of a Series indexed by level keys, reordered to ``keys``' rows (float64)."""
    values = pd.Series(values)
    if not cols:
        if len(values) != 1:
            raise ValueError(f"{what} must have exactly one value (the total), got {len(values)}")
        return values.to_numpy(dtype=np.float64)
    idx = values.index
    if idx.nlevels != len(cols):
        raise ValueError(f"{what} must be indexed by {cols}, got {idx.nlevels} index level(s)")
    # Index levels named like the level's columns are taken by name, else by position.
    order = cols if set(idx.names) == set(cols) else list(range(len(cols)))
    given = pd.MultiIndex.from_arrays([idx.get_level_values(i).astype(str) for i in order])
    wanted = pd.MultiIndex.from_frame(keys[cols])
    if given.has_duplicates:
        raise ValueError(f"{what} has duplicate index entries")
    pos = given.get_indexer(wanted)
    if (pos < 0).any():
        example = tuple(wanted[np.flatnonzero(pos < 0)[0]])
        raise ValueError(f"{what} lacks {int((pos < 0).sum())} series of the level, e.g. {example}")
    if len(given) != len(wanted):
        extra = given.difference(wanted)
        raise ValueError(f"{what} has {len(extra)} entries that are not series of the level, e.g. {tuple(extra[0])}")
    return values.to_numpy(dtype=np.float64)[pos]


def _aggregation_plan(levels: Mapping[str, LevelSetup], n_bottom: int) -> list[tuple[str, str | None, Any]]:
    """Order and sources for summing the bottom up every level.

    Each level is summed from the smallest already-planned level whose groups nest in
    it (codes constant within each source group), else from the bottom; ``op`` is a
    sparse indicator, or None when the level *is* the bottom (identity).
    """
    plan: list[tuple[str, str | None, Any]] = []
    done: list[LevelSetup] = []
    for level in sorted(levels.values(), key=lambda lv: -lv.n_series):
        if level.n_series == n_bottom and np.array_equal(level.codes, np.arange(n_bottom)):
            plan.append((level.name, None, None))
            done.append(level)
            continue
        source, rows = None, level.codes
        for cand in sorted(done, key=lambda lv: lv.n_series):
            mapping = np.zeros(cand.n_series, dtype=np.int64)
            mapping[cand.codes] = level.codes
            if np.array_equal(mapping[cand.codes], level.codes):
                source, rows = cand.name, mapping
                break
        plan.append((level.name, source, _indicator(rows, level.n_series)))
        done.append(level)
    return plan


def _as_day(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ValueError("origin must be a date")
    if ts.tz is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def _day_numbers(dates: pd.Series | np.ndarray, what: str) -> np.ndarray:
    """Calendar days as int64 days since 1970-01-01 (time of day dropped)."""
    values = np.asarray(dates)
    if values.dtype.kind != "M":
        # Strings, date objects or tz-aware values: let pandas parse (slower, but general).
        parsed = pd.to_datetime(pd.Series(dates))
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        values = parsed.to_numpy()
    days = values.astype("datetime64[D]")
    if np.isnat(days).any():
        raise ValueError(f"{what} has missing dates")
    return days.view(np.int64)


def _day_number(ts: pd.Timestamp) -> int:
    return int(np.datetime64(ts.date(), "D").astype(np.int64))


def _read_long(frame: pd.DataFrame, what: str, indexer: SeriesIndexer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series position, day number, units) arrays of a long frame, validated.

    Raises ``ValueError`` on missing columns, NaN/infinite/negative units, or series
    the hierarchy does not know.
    """
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it needs {LONG_COLUMNS}")
    col = frame[UNITS]
    n_na = int(col.isna().sum())
    if n_na:
        raise ValueError(f"{what} has {n_na} NaN units")
    # Plain numpy numbers are used as they are (no float copy of a large int16 column);
    # anything else (nullable, object) is converted.
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iuf":
        units = col.to_numpy()
    else:
        units = pd.to_numeric(col).to_numpy(dtype=np.float64)
    if units.dtype.kind == "f" and not np.isfinite(units).all():
        raise ValueError(f"{what} has {int((~np.isfinite(units)).sum())} infinite units")
    if units.dtype.kind != "u" and (units < 0).any():
        raise ValueError(f"{what} has {int((units < 0).sum())} negative units")
    if frame[SERIES_KEY].isna().any().any():
        raise ValueError(f"{what} has missing item_id/store_id")
    series = indexer.codes(frame)
    unknown = series < 0
    if unknown.any():
        example = frame.loc[frame.index[np.flatnonzero(unknown)[0]], SERIES_KEY].tolist()
        raise ValueError(
            f"{what} has {int(unknown.sum())} rows of series not in the hierarchy, e.g. {example}"
        )
    return series, _day_numbers(frame[DATE], what), units


# --------------------------------------------------------------------------- scales and weights


def _naive_scales(y: np.ndarray) -> np.ndarray:
    """Per row of a (series x days) matrix: mean squared one-step naive error from the
    first non-zero value on (M5's scale). NaN for rows with fewer than two active days."""
    n, t = y.shape
    out = np.full(n, np.nan)
    if t < 2:
        return out
    step = max(1, _SCALE_BLOCK_CELLS // t)
    lag_pos = np.arange(t - 1)
    for start in range(0, n, step):  # blocks of rows, vectorised within each block
        block = y[start : start + step]
        nonzero = block != 0
        first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), t)
        sq = np.diff(block, axis=1) ** 2  # column j: (y[j+1] - y[j])^2
        # Difference j is in-sample once both of its days are at or after the first sale.
        sq[lag_pos[None, :] < first[:, None]] = 0.0
        count = t - 1 - first
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = np.where(count > 0, sq.sum(axis=1) / count, np.nan)
    return out


def wrmsse_weights_scales(
    history: pd.DataFrame,
    prices: pd.DataFrame,
    calendar: pd.DataFrame,
    hierarchy: pd.DataFrame,
    origin: Any,
    *,
    weight_days: int = 28,
) -> WrmsseSetup:
    """M5 weights and scales of every aggregated series, as of a forecast origin.

    In:
      ``history``: sales, long (``item_id, store_id, date, units``); rows after
      ``origin`` are ignored; a missing row inside [first history date, origin] means
      0 units. ``prices``: ``store_id, item_id, wm_yr_wk, sell_price`` (rows of other
      series or weeks are ignored). ``calendar``: ``date, wm_yr_wk``, covering the
      weight window. ``hierarchy``: one row per series (``item_id, store_id,
      dept_id, cat_id, state_id``); every history series must be in it, and a
      hierarchy series absent from the history never sold. ``origin``: last
      in-sample day. ``weight_days``: length of the dollar-sales window (M5: 28).
    Out: a ``WrmsseSetup``. Scale = mean squared one-step naive error from the
    series' first non-zero day to the origin (NaN if fewer than two such days).
    Weight = dollar sales (units x that day's week price; missing price -> 0) over
    the last ``weight_days`` days up to the origin, divided by the level total.
    Raises ``ValueError`` for bad input or when all dollar sales in the window are 0
    (weights undefined).
    """
    h = _check_hierarchy(hierarchy)
    origin_ts = _as_day(origin)
    origin_day = _day_number(origin_ts)
    indexer = SeriesIndexer(h)
    n = len(h)

    series, days, units = _read_long(history, "history", indexer)
    keep = days <= origin_day
    if not keep.all():
        series, days, units = series[keep], days[keep], units[keep]
    if len(days) == 0:
        raise ValueError(f"history has no rows on or before the origin {origin_ts.date()}")
    first_day = int(days.min())
    t = origin_day - first_day + 1
    # flat = series * t + (days - first_day), computed in place (history can be ~60M rows).
    flat = series
    flat *= t
    flat += days
    flat -= first_day
    del series, days
    # Duplicates: a history sorted by (series, date) is strictly increasing in flat,
    # checked in one pass; otherwise count.
    if not (flat[1:] > flat[:-1]).all():
        counts = np.bincount(flat, minlength=n * t)
        if counts.max() > 1:
            pos = int(np.argmax(counts))
            raise ValueError(
                f"history has duplicate (series, date) rows, e.g. {h.loc[pos // t, SERIES_KEY].tolist()} on "
                f"{np.datetime64(first_day + pos % t, 'D')}"
            )
        del counts
    y = np.zeros(n * t)
    y[flat] = units
    y = y.reshape(n, t)
    del flat, units

    # Dollar sales per bottom series over the weight window.
    window = min(int(weight_days), t)
    if window < 1:
        raise ValueError("weight_days must be at least 1")
    window_days = np.arange(origin_day - window + 1, origin_day + 1)
    revenue, missing_price_days = _window_revenue(y[:, t - window :], window_days, prices, calendar, indexer)
    total_revenue = revenue.sum()
    if not total_revenue > 0:
        raise ValueError(
            f"dollar sales over the {window} days up to {origin_ts.date()} are 0 for every series: weights undefined"
        )
    bottom_weight = revenue / total_revenue

    levels = {}
    for name, cols in LEVELS:
        codes, keys = _level_codes(h, cols)
        weights = np.bincount(codes, weights=bottom_weight, minlength=len(keys))
        levels[name] = LevelSetup(name, tuple(cols), keys, codes, weights, np.empty(0))

    # Scales level by level, coarse levels summed from finer aggregates (see
    # WrmsseSetup.aggregate); the item x store level is the history matrix itself.
    sums: dict[str, np.ndarray] = {}
    scales: dict[str, np.ndarray] = {}
    for name, source, op in _aggregation_plan(levels, n):
        x = y if source is None else sums[source]
        sums[name] = x if op is None else np.asarray(op @ x)
        scales[name] = _naive_scales(sums[name])
    del sums, y
    levels = {name: replace(level, scales=scales[name]) for name, level in levels.items()}
    return WrmsseSetup(series=h, levels=levels, origin=origin_ts, missing_price_days=missing_price_days)


def _window_revenue(
    y_window: np.ndarray,
    window_days: np.ndarray,
    prices: pd.DataFrame,
    calendar: pd.DataFrame,
    indexer: SeriesIndexer,
) -> tuple[np.ndarray, int]:
    """(dollar sales per bottom series, count of sold series-days without a price)."""
    for what, frame, cols in (
        ("prices", prices, [STORE, ITEM, "wm_yr_wk", "sell_price"]),
        ("calendar", calendar, [DATE, "wm_yr_wk"]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{what} lacks columns {missing}; it needs {cols}")
    cal_days = _day_numbers(calendar[DATE], "calendar")
    week_of = pd.Series(calendar["wm_yr_wk"].to_numpy(), index=cal_days)
    if week_of.index.has_duplicates:
        raise ValueError("calendar has duplicate dates")
    weeks = week_of.reindex(window_days)
    if weeks.isna().any():
        lacking = np.datetime64(int(window_days[np.flatnonzero(weeks.isna().to_numpy())[0]]), "D")
        raise ValueError(f"calendar lacks weight-window dates, e.g. {lacking}")
    week_values = weeks.to_numpy()
    week_index = pd.Index(np.unique(week_values))

    # Only price rows of the window's weeks and of known series matter.
    p = prices.loc[prices["wm_yr_wk"].isin(week_index), [STORE, ITEM, "wm_yr_wk", "sell_price"]]
    s = indexer.codes(p)
    known = s >= 0
    p, s = p.loc[known], s[known]
    w = week_index.get_indexer(p["wm_yr_wk"])
    raw_price = pd.to_numeric(p["sell_price"])
    if raw_price.dtype == np.float32:
        # float32 9.58 is 9.579999923706055 as float64; prices are decimal (cents), so widen
        # through the shortest decimal text (9.58 -> 9.58), as M5's CSV prices read.
        price = raw_price.to_numpy().astype(str).astype(np.float64)
    else:
        price = raw_price.to_numpy(dtype=np.float64, na_value=np.nan)
    if (price < 0).any():
        raise ValueError("prices has negative sell_price")
    n = y_window.shape[0]
    key = s * len(week_index) + w
    if len(np.unique(key)) != len(key):
        raise ValueError("prices has duplicate (store_id, item_id, wm_yr_wk) rows")
    table = np.full(n * len(week_index), np.nan)
    table[key] = price
    day_price = table.reshape(n, len(week_index))[:, week_index.get_indexer(week_values)]
    no_price = np.isnan(day_price)
    missing_price_days = int(((y_window > 0) & no_price).sum())
    revenue = np.where(no_price, 0.0, y_window * day_price).sum(axis=1)
    return revenue, missing_price_days


# --------------------------------------------------------------------------- evaluation


def _align(
    forecast: pd.DataFrame, actuals: pd.DataFrame, indexer: SeriesIndexer
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forecast and actuals matched row for row.

    Out: (series position, day index, forecast units, actual units, sorted unique day
    numbers), one entry per (series, date) pair, sorted by series then day. Raises
    ``ValueError`` on duplicates or when the two frames do not cover the same pairs.
    """
    fs, fd, fu = _read_long(forecast, "forecast", indexer)
    as_, ad, au = _read_long(actuals, "actuals", indexer)
    days = np.unique(np.concatenate([fd, ad]))
    nd = len(days)
    fk = fs * nd + np.searchsorted(days, fd)
    ak = as_ * nd + np.searchsorted(days, ad)
    f_order, a_order = np.argsort(fk, kind="stable"), np.argsort(ak, kind="stable")
    fk, ak = fk[f_order], ak[a_order]

    for what, k in (("forecast", fk), ("actuals", ak)):
        dup = k[1:] == k[:-1]
        if dup.any():
            raise ValueError(f"{what} has {int(dup.sum())} duplicate (item_id, store_id, date) rows")
    if len(fk) != len(ak) or not np.array_equal(fk, ak):
        only_f = np.setdiff1d(fk, ak, assume_unique=True)
        only_a = np.setdiff1d(ak, fk, assume_unique=True)
        examples = []
        for what, keys in (("forecast", only_f), ("actuals", only_a)):
            if len(keys):
                examples.append(f"{len(keys)} only in {what}, e.g. {_pair_text(indexer, keys[0], days)}")
        raise ValueError("forecast and actuals do not cover the same series x days: " + "; ".join(examples))
    return fk // nd, fk % nd, fu[f_order], au[a_order], days


def _pair_text(indexer: SeriesIndexer, key: int, days: np.ndarray) -> str:
    nd = len(days)
    pos = int(key // nd)
    item, store = np.argwhere(indexer.table == pos)[0]
    return f"({indexer.items[item]}, {indexer.stores[store]}, {np.datetime64(int(days[key % nd]), 'D')})"


@dataclass(frozen=True, eq=False)
class WrmsseResult:
    """Outcome of :func:`wrmsse`.

    ``total``: the WRMSSE (mean of ``per_level`` over the 12 levels);
    ``per_level``: ``{level: sum over its series of weight x RMSSE}`` (weights sum
    to 1 within the level); ``rmsse``: ``{level: RMSSE per aggregated series}``,
    aligned with ``setup.levels[level].keys`` (NaN where the scale is 0/undefined);
    ``excluded_weight``: ``{level: weight of series left out for a 0/undefined
    scale}`` (0.0 on M5's data).
    """

    total: float
    per_level: dict[str, float]
    rmsse: dict[str, np.ndarray] = field(repr=False)
    excluded_weight: dict[str, float] = field(repr=False)
    setup: WrmsseSetup = field(repr=False)

    def table(self) -> pd.DataFrame:
        """Every aggregated series with ``level``, hierarchy columns, ``weight``,
        ``scale``, ``rmsse`` and ``contribution`` (weight x RMSSE / number of levels)."""
        out = self.setup.table()
        out["rmsse"] = np.concatenate([self.rmsse[name] for name in self.setup.levels])
        out["contribution"] = np.nan_to_num(out["weight"] * out["rmsse"]) / len(self.setup.levels)
        return out


def wrmsse(forecast: pd.DataFrame, actuals: pd.DataFrame, setup: WrmsseSetup) -> WrmsseResult:
    """Weighted root mean squared scaled error of a forecast, M5 style.

    In: ``forecast`` and ``actuals``, long (``item_id, store_id, date, units``), both
    covering exactly the same (series, date) pairs: every series of
    ``setup.series`` on every one of the h forecast days (all after
    ``setup.origin`` when known); no NaN, no negative units. ``setup`` from
    :func:`wrmsse_weights_scales` or :meth:`WrmsseSetup.from_arrays`.
    Out: a ``WrmsseResult``. Series with zero or undefined scale contribute 0
    (see the module docstring). Raises ``ValueError`` on any input violation.
    """
    series, day_idx, f, a, days = _align(forecast, actuals, setup._indexer)
    n, h = len(setup.series), len(days)
    if len(series) != n * h:
        full = np.zeros(n * h, dtype=bool)
        full[series * h + day_idx] = True
        gap = int(np.flatnonzero(~full)[0])
        raise ValueError(
            f"forecast/actuals must hold every series on every day ({n} x {h} = {n * h} rows), "
            f"got {len(series)}; e.g. missing {_pair_text(setup._indexer, gap, days)}"
        )
    if setup.origin is not None and days[0] <= _day_number(setup.origin):
        raise ValueError(
            f"forecast days must be after the origin {setup.origin.date()}, got {np.datetime64(int(days[0]), 'D')}"
        )
    # Rows are sorted by (series, day), so a reshape gives the (series x days) matrices.
    err = (f - a).reshape(n, h)
    # Aggregation is linear: summing the errors equals the error of the sums.
    sq_err = {name: np.mean(m**2, axis=1) for name, m in setup.aggregate(err).items()}

    per_level, rmsse, excluded = {}, {}, {}
    dropped = []
    for name, level in setup.levels.items():
        valid = level.scales > 0  # False for 0 and NaN
        r = np.full(level.n_series, np.nan)
        r[valid] = np.sqrt(sq_err[name][valid] / level.scales[valid])
        rmsse[name] = r
        per_level[name] = float(np.dot(level.weights[valid], r[valid]))
        excluded[name] = float(level.weights[~valid].sum())
        if excluded[name] > 0:
            dropped.append(f"{name}: {int((~valid & (level.weights > 0)).sum())} series, weight {excluded[name]:.3g}")
    if dropped:
        warnings.warn(
            "WRMSSE leaves out series with positive weight but zero/undefined scale ("
            + "; ".join(dropped)
            + ")",
            RuntimeWarning,
            stacklevel=2,
        )
    total = float(np.mean(list(per_level.values())))
    return WrmsseResult(total=total, per_level=per_level, rmsse=rmsse, excluded_weight=excluded, setup=setup)


def point_metrics(forecast: pd.DataFrame, actuals: pd.DataFrame) -> dict[str, float]:
    """MAE, RMSE and bias on the bottom level (one value per series-day).

    In: ``forecast`` and ``actuals``, long (``item_id, store_id, date, units``),
    covering the same (series, date) pairs (any set of them); no NaN or negative
    units. Out: ``{"mae", "rmse", "bias"}`` with bias = mean(forecast - actual)
    (positive: over-forecast). Raises ``ValueError`` on mismatched coverage,
    duplicates, or bad values.
    """
    for what, frame in (("forecast", forecast), ("actuals", actuals)):
        missing = [c for c in SERIES_KEY if c not in frame.columns]
        if missing:
            raise ValueError(f"{what} lacks columns {missing}; it needs {LONG_COLUMNS}")
    pairs = pd.concat(
        [
            pd.DataFrame({c: frame[c].astype(str).to_numpy() for c in SERIES_KEY}).drop_duplicates()
            for frame in (forecast, actuals)
        ],
        ignore_index=True,
    ).drop_duplicates()
    if pairs.empty:
        raise ValueError("forecast and actuals are empty")
    _, _, f, a, _ = _align(forecast, actuals, SeriesIndexer(pairs))
    e = f - a
    return {
        "mae": float(np.mean(np.abs(e))),
        "rmse": float(np.sqrt(np.mean(e**2))),
        "bias": float(np.mean(e)),
    }
