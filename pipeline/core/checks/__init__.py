"""Data-quality checks of a run date's snapshot, pure functions of its frames (no file is read here).

Find a check by its name: :mod:`~pipeline.core.checks.catalog` lists every check, its module and
whether it is a hard stop; each check is a function of that name in its module.

``catalog``       the checks by name, in report order; which are hard stops
``rows``          unknown_ids, negative_units, duplicate_keys, future_dates
``presence``      vanished_series, new_from_nothing
``totals``        daily_total_outlier (and the weekday band history_change shares)
``history``       history_change (its key machinery: ``history_keys``)
``prices``        price_not_positive, price_above_max, price_jump
``thresholds``    every knob of the checks (also the ``[quality]`` section of luigi.cfg)
``accept``        the one override: ``accept`` entries, validated
``report``        CheckResult, QualityReport (JSON, markdown, the error)
``frame``         the snapshot's columns as integer arrays, shared by the checks
``text``          how values are spelled in messages
``run``           check_frames: every check, acceptances applied

:mod:`pipeline.stages.quality` reads the snapshot files, calls :func:`run.check_frames` and writes the report.
"""
