"""Daily 28-day forecast of every item × store, in layers (imports go only downward):

* ``pipeline.core``   pure: keys, dates, the forecast spec, features, metrics, checks, the serving rule
* ``pipeline.data``   data access: the source database, the snapshot dataset, atomic storage
* ``pipeline.stages`` one module per stage: load, call the core, write (Dask mapping here)
* ``pipeline.tools``  beside the chain: the world generator, the M5 importer
* ``tasks``           the Luigi layer on top: tasks, configuration, backfill, the scheduler launcher

This package is also the ``luigi --module pipeline`` entry point. Luigi imports it after
importing itself, and only then are the tasks registered (with Luigi's range tools, for
``RangeDailyBase --of DailyForecast``). A process without Luigi (a Dask worker, a notebook
importing ``pipeline.core.metrics``) imports no Luigi, LightGBM or SQLAlchemy from here.
"""
import sys as _sys

if "luigi" in _sys.modules:
    import tasks as _tasks  # noqa: F401  (registers the task classes with Luigi)
    from luigi.tools import range as _range  # noqa: F401  (RangeDaily, RangeDailyBase)
