"""Daily 28-day forecast of every item × store: domain logic, and the ``luigi --module pipeline`` entry point.

The stage modules (``extract``, ``features``, ``train``, ``compile``, ``score``)
are plain functions of frames and paths. Importing this package also registers
the Luigi tasks of ``tasks`` (and Luigi's range tools), so that
``luigi --module pipeline DailyForecast`` and
``luigi --module pipeline RangeDailyBase --of DailyForecast`` find them.
"""
from pipeline import config as _config  # noqa: F401  (puts the project's luigi.cfg on Luigi's path)
from luigi.tools.range import RangeDaily, RangeDailyBase  # noqa: F401,E402
from tasks import *  # noqa: F401,F403,E402
