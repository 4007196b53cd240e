"""What the WRMSSE needs besides forecast and actuals: every aggregated series with its weight and scale.

:func:`pipeline.core.wrmsse_weights.wrmsse_weights_scales` computes a setup from
sales and prices as M5 defines it; :meth:`WrmsseSetup.from_arrays` takes weights
and scales computed elsewhere (e.g. the organisers' own values).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from pipeline.core.days import as_day
from pipeline.core.hierarchy import LEVELS, aggregation_plan, check_hierarchy, level_codes, sum_up
from pipeline.core.series import SeriesIndexer

__all__ = ["LevelSetup", "WrmsseSetup"]


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
    indexer: SeriesIndexer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Derived lookups (cheap: sizes of the hierarchy, not of the data).
        object.__setattr__(self, "indexer", SeriesIndexer(self.series))
        object.__setattr__(self, "_plan", aggregation_plan(list(self.levels.values()), len(self.series)))

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

        Out: ``{level: (level.n_series x days) array}`` in ``levels`` order (see
        :func:`pipeline.core.hierarchy.aggregation_plan`).
        """
        out = sum_up(bottom, self._plan)
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
        in ``LEVELS`` order; for ``total`` a one-element Series whose index is ignored).
        Weights are *within-level* (each level sums to 1, checked to 1e-6; not
        renormalised); scales are mean squared naive errors (0 or NaN follow the
        zero-scale rule of :func:`pipeline.core.wrmsse.wrmsse`). ``origin``
        (optional) is the last in-sample day.
        Out: a ``WrmsseSetup``. Raises ``ValueError`` when a level is missing, a level
        series has no value, or a value is not a level series.
        """
        h = check_hierarchy(hierarchy)
        levels = {}
        for name, cols in LEVELS:
            codes, keys = level_codes(h, cols)
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
        return cls(series=h, levels=levels, origin=None if origin is None else as_day(origin, "origin"))


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
