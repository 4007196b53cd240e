"""The checks of a snapshot by name, in report order, and which of them are hard stops.

A **hard stop** is a failure no operator can accept: the rows cannot be right, or a later stage
cannot use them (LightGBM's tweedie objective refuses a negative label; a duplicated key makes a
series' day ambiguous; a row dated after the run date would leak the future into its features;
a series whose item or store is not in the master tables has no department, category or state;
a price that is not positive, or above ``MAX_SELL_PRICE``, is no price). It is mended in the source (a correction recorded
later replaces the row) and the date is run again. Every other check flags what is unusual but
can be right (a store closed, a late correction, a real price change): an operator who knows the
data is right accepts it with ``accept`` in the ``[quality]`` section of ``luigi.cfg``
(:mod:`pipeline.core.checks.accept`).

=======================  ==========  =========================================
check                    hard stop   module (pipeline.core.checks.…)
=======================  ==========  =========================================
``unknown_ids``          yes         :mod:`~pipeline.core.checks.rows`
``negative_units``       yes         :mod:`~pipeline.core.checks.rows`
``duplicate_keys``       yes         :mod:`~pipeline.core.checks.rows`
``future_dates``         yes         :mod:`~pipeline.core.checks.rows`
``vanished_series``      no          :mod:`~pipeline.core.checks.presence`
``new_from_nothing``     no          :mod:`~pipeline.core.checks.presence`
``daily_total_outlier``  no          :mod:`~pipeline.core.checks.totals`
``history_change``       no          :mod:`~pipeline.core.checks.history`
``price_not_positive``   yes         :mod:`~pipeline.core.checks.prices`
``price_above_max``      yes         :mod:`~pipeline.core.checks.prices`
``price_jump``           no          :mod:`~pipeline.core.checks.prices`
=======================  ==========  =========================================

Each check is a function of that name in its module, taking a
:class:`~pipeline.core.checks.frame.Snap`; :mod:`pipeline.core.checks.run` runs them in this order.
"""
from __future__ import annotations

CHECKS = ("unknown_ids", "negative_units", "duplicate_keys", "future_dates", "vanished_series", "new_from_nothing",
          "daily_total_outlier", "history_change", "price_not_positive", "price_above_max", "price_jump")
HARD_STOPS = frozenset({"unknown_ids", "negative_units", "duplicate_keys", "future_dates", "price_not_positive",
                        "price_above_max"})
OVERRIDABLE = tuple(c for c in CHECKS if c not in HARD_STOPS)
