"""Configuration: one place, read through ``luigi.Config`` classes.

Values come from ``luigi.cfg`` (the project's own file is always read, so the
``luigi`` command works from any directory; a ``luigi.cfg`` in the current
directory or ``LUIGI_CONFIG_PATH`` override it) and, for URLs and secrets, from
the environment:

* ``PIPELINE_DATABASE_URL`` overrides ``[pipeline] database_url``
* ``PIPELINE_DATA_DIR`` overrides ``[pipeline] data_dir``
* ``DASK_SCHEDULER_ADDRESS`` overrides ``[dask] scheduler_address``
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import luigi
from luigi.configuration.cfg_parser import LuigiConfigParser

from pipeline.core.serving import TrainingSchedule
from pipeline.core.spec import ForecastSpec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_CONFIG = PROJECT_ROOT / "luigi.cfg"


def register_project_config() -> None:
    """Put the project's luigi.cfg first on Luigi's search path (lowest priority).

    The ``luigi`` script does not look next to the code, only in /etc/luigi, the
    current directory and ``LUIGI_CONFIG_PATH``; inserting the project file before
    the current-directory entry keeps every user override working.
    """
    paths = LuigiConfigParser._config_paths
    if str(PROJECT_CONFIG) in paths or not PROJECT_CONFIG.exists():
        return
    paths.insert(paths.index("luigi.cfg") if "luigi.cfg" in paths else 0, str(PROJECT_CONFIG))
    LuigiConfigParser.reload()


register_project_config()


def state() -> int:
    """A number that changes whenever any value of the loaded configuration does (for caches keyed on it)."""
    parser = luigi.configuration.get_config()
    sections = tuple((section, tuple(sorted(parser.items(section, raw=True)))) for section in sorted(parser.sections()))
    # the environment's overrides that shape an output (a scheduler address moves training onto a cluster)
    return hash((sections, os.environ.get("DASK_SCHEDULER_ADDRESS")))


def resolve(path: str) -> Path:
    """A configured path: absolute as given, relative ones under the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


class pipeline(luigi.Config):  # noqa: N801 - section name in luigi.cfg
    """The ``[pipeline]`` section."""

    database_url = luigi.Parameter(default="sqlite:///data/world.sqlite")
    data_dir = luigi.Parameter(default="data")
    horizon = luigi.IntParameter(default=28, description="days forecast after the run date (1..28, the shortest lag)")


class training(luigi.Config):  # noqa: N801
    """The ``[training]`` section: when and how models are trained."""

    every_days = luigi.IntParameter(default=7, description="a model is trained every N days")
    anchor_date = luigi.DateParameter(
        default=dt.date(2016, 5, 22), description="one training date; the others are anchor ± k*every_days"
    )
    window_days = luigi.IntParameter(default=365, description="days of history a model learns from")
    num_boost_round = luigi.IntParameter(default=400)
    early_stopping_rounds = luigi.IntParameter(default=30)
    learning_rate = luigi.FloatParameter(default=0.05)
    num_leaves = luigi.IntParameter(default=127)
    min_data_in_leaf = luigi.IntParameter(default=100)
    feature_fraction = luigi.FloatParameter(default=0.8)
    tweedie_variance_power = luigi.FloatParameter(default=1.2)
    num_threads = luigi.IntParameter(default=2, significant=False, description="LightGBM threads (speed only)")
    seed = luigi.IntParameter(default=20160522)
    refit = luigi.BoolParameter(
        default=True, description="after early stopping chose the rounds, train them again on the whole window")
    promotion_start = luigi.DateParameter(
        default=dt.date(2016, 5, 15), description="first training date whose model is gated (it is promoted as is)")
    promotion_lookback = luigi.IntParameter(
        default=3, description="a new model is compared with the models of this many previous training dates; "
                               "a run date needs at most lookback + 1 trainings")
    promotion_margin = luigi.FloatParameter(
        default=0.02, description="a new model may be this much worse (relative WRMSSE) and still be promoted")
    serve_model = luigi.OptionalParameter(
        default=None, description="pin the serving model (a training date) for every run date: the roll-back switch")

    def pinned_model(self) -> dt.date | None:
        """``serve_model`` as a date, or None when models are chosen by promotion."""
        return dt.date.fromisoformat(self.serve_model) if self.serve_model else None

    def schedule(self) -> TrainingSchedule:
        """When models are trained and which earlier ones a new model is compared with."""
        return TrainingSchedule(anchor=self.anchor_date, every_days=self.every_days,
                                promotion_start=self.promotion_start, lookback=self.promotion_lookback)

    def model_settings(self) -> dict:
        """What shapes a model's bytes: the window and LightGBM's parameters (not its thread count)."""
        return {name: getattr(self, name) for name in (
            "window_days", "num_boost_round", "early_stopping_rounds", "learning_rate", "num_leaves",
            "min_data_in_leaf", "feature_fraction", "tweedie_variance_power", "seed")} | (
            {"refit": True} if self.refit else {})  # absent when off: models trained before the knob keep their identity

    def promotion_settings(self) -> dict:
        """What shapes a promotion decision besides the models compared."""
        return {"promotion_margin": self.promotion_margin}


class features(luigi.Config):  # noqa: N801
    """The ``[features]`` section: optional feature groups (``pipeline.core.features``)."""

    pooled = luigi.BoolParameter(
        default=False, description="the store's and the store x department's recent level and trend (POOLED)")


class quantiles(luigi.Config):  # noqa: N801
    """The ``[quantiles]`` section: how the quantile forecasts are made (``pipeline.core.quantiles``)."""

    bins = luigi.IntParameter(
        default=5, description="size bins of the forecast, each level's coefficients fitted per bin (1: one set)")

    def settings(self) -> dict:
        if self.bins < 1:
            raise ValueError(f"[quantiles] bins must be at least 1, not {self.bins}")
        return {"bins": self.bins}


class online_model(luigi.Config):  # noqa: N801
    """The ``[online_model]`` section: the online-learning challenger (``pipeline.core.online_model``)."""

    start_date = luigi.DateParameter(
        default=dt.date(2016, 4, 24), description="the first state's date (warmed up to it); no online model before")
    warmup_days = luigi.IntParameter(default=365, description="days the first state learns, one at a time")
    learner = luigi.Parameter(default="linear", description="a River learner of pipeline.core.online_model.learner")
    learning_rate = luigi.FloatParameter(default=0.0001, description="the learner's step size")
    blend_weight = luigi.FloatParameter(
        default=0.3, description="the online model's share of the published forecast from start_date on (0: none)")

    def settings(self) -> dict:
        from pipeline.core.online_model.features import BASE_FEATURES
        from pipeline.core.online_model.learner import LEARNERS

        if self.learner not in LEARNERS:
            raise ValueError(f"[online_model] learner must be one of {', '.join(LEARNERS)}, not {self.learner!r}")
        if self.warmup_days < 1:
            raise ValueError(f"[online_model] warmup_days must be at least 1, not {self.warmup_days}")
        if not self.learning_rate > 0:
            raise ValueError(f"[online_model] learning_rate must be above 0, not {self.learning_rate}")
        if not 0.0 <= self.blend_weight < 1.0:
            raise ValueError(f"[online_model] blend_weight must be at least 0 and below 1, not {self.blend_weight}")
        return {"start_date": self.start_date.isoformat(), "warmup_days": self.warmup_days, "learner": self.learner,
                "learning_rate": self.learning_rate, "features": BASE_FEATURES}

    def covers(self, date: dt.date) -> bool:
        """Whether the online model has a state for run date ``date`` (on or after its start)."""
        return date >= self.start_date

    def blend_weight_for(self, date: dt.date) -> float:
        """The online model's share of the published forecast of ``date``: ``blend_weight`` from the start date on."""
        self.settings()  # refuses settings out of range
        return self.blend_weight if self.covers(date) else 0.0


class compiler(luigi.Config):  # noqa: N801
    """The ``[compiler]`` section: how TL2cgen builds a model's libraries (speed, not predictions)."""

    trees_per_block = luigi.IntParameter(
        default=8, description="trees per library; scoring runs one block over every row at a time (0: one library)")
    trees_per_unit = luigi.IntParameter(default=4, description="trees per C file (gcc is superlinear in file size)")
    optimization = luigi.Parameter(default="-O1", description="gcc optimisation flag")
    annotate = luigi.BoolParameter(default=False, description="branch annotation from the check sample")
    quantize = luigi.BoolParameter(default=False, description="compare integer bin indices instead of floats")
    nthread = luigi.IntParameter(default=2, description="parallel gcc processes")


def monitoring_thresholds():
    """The ``[monitoring]`` section: any field of ``pipeline.core.monitoring.MonitorThresholds`` by name (the
    rest keep their defaults there, where each is documented); an unknown name is refused."""
    from pipeline.core.monitoring import MonitorThresholds

    parser = luigi.configuration.get_config()
    return MonitorThresholds.from_mapping(dict(parser.items("monitoring")) if parser.has_section("monitoring") else {})


def quality_settings() -> dict:
    """Every significant ``[quality]`` setting: what shapes a check's verdict and report."""
    cfg = quality()
    return {name: getattr(cfg, name) for name, param in quality.get_params() if param.significant}


def check_settings() -> None:
    """Raise ValueError, saying which setting and why, when a setting that shapes outputs is out of range."""
    from pipeline.core.checks.accept import parse_accepted
    from pipeline.core.checks.thresholds import Thresholds

    forecast_spec()
    quantiles().settings()
    online_model().settings()
    monitoring_thresholds()
    training().schedule()
    training().pinned_model()
    if training().refit and scheduler_address() not in ("", "synchronous"):
        raise ValueError("[training] refit is not supported when training on a Dask cluster "
                         "([dask] scheduler_address or DASK_SCHEDULER_ADDRESS is set): set [training] refit = false")
    Thresholds.from_settings(quality())
    parse_accepted(quality().accept)


def forecast_spec() -> ForecastSpec:
    """The forecast spec of ``[pipeline] horizon`` (checked: 1..28 days)."""
    return ForecastSpec(horizon=pipeline().horizon)


def compile_options() -> dict:
    """Keyword arguments of ``pipeline.stages.compile.compile_and_check`` from ``[compiler]``."""
    c = compiler()
    return {"trees_per_block": c.trees_per_block, "trees_per_unit": c.trees_per_unit, "optimization": c.optimization,
            "annotate": c.annotate, "quantize": c.quantize, "nthread": c.nthread}


class dask(luigi.Config):  # noqa: N801
    """The ``[dask]`` section: a local cluster unless a scheduler address is given."""

    scheduler_address = luigi.Parameter(default="")
    n_workers = luigi.IntParameter(default=2)
    threads_per_worker = luigi.IntParameter(default=1)


class quality(luigi.Config):  # noqa: N801
    """The ``[quality]`` section: data-quality thresholds and accepted anomalies.

    ``accept``: comma- or space-separated ``<check>`` (every date) or
    ``<check>:<YYYY-MM-DD>`` (that run date only), see ``pipeline.core.checks.accept``; a hard stop
    cannot be accepted. Every other parameter but ``compare_previous`` is a field of
    ``pipeline.core.checks.thresholds.Thresholds`` of the same name (defaults and meaning there).
    """

    accept = luigi.Parameter(default="", description="accepted anomalies: <check> or <check>:<YYYY-MM-DD>")
    compare_previous = luigi.BoolParameter(default=True, description="compare with the previous day's snapshot")
    regular_days = luigi.IntParameter(default=28, description="vanished_series: days in which regularity is judged")
    regular_share = luigi.FloatParameter(default=0.5, description="vanished_series: share of days sold that is regular")
    outlier_weeks = luigi.IntParameter(default=8, description="day totals: weeks of same-weekday reference totals")
    outlier_k = luigi.FloatParameter(default=6.0, description="day totals: band of median +- k x MAD")
    outlier_min_relative = luigi.FloatParameter(default=0.5, description="day totals: also this share off the median")
    outlier_min_reference = luigi.IntParameter(default=4, description="day totals: fewer reference days: not checked")
    closed_events = luigi.Parameter(default="Christmas", description="day totals: events (comma-separated) closing stores")
    price_jump_factor = luigi.FloatParameter(default=5.0, description="price_jump: factor up or down that is a jump")
    price_jump_weeks = luigi.IntParameter(default=1, description="price_jump: weeks up to the run date's checked, 0 all")
    history_days = luigi.IntParameter(default=56, description="history_change: days giving a series' usual range")
    history_quantile = luigi.FloatParameter(default=0.95, description="history_change: top of the usual range")
    history_factor = luigi.FloatParameter(default=10.0, description="history_change: rise over factor x that top")
    history_min_units = luigi.IntParameter(default=100, description="history_change: and over this on a past day")
    history_run_date_min_units = luigi.IntParameter(default=1000,
                                                    description="history_change: and over this on the run date")
    history_max_changed_days = luigi.FloatParameter(default=1.0,
                                                    description="history_change: days' worth of changed rows allowed")
    max_offending = luigi.IntParameter(default=20, description="offending rows listed per check in the report")


class retry(luigi.Config):  # noqa: N801
    """The ``[retry]`` section: how often a task's transient failure is retried in place (tasks.retry)."""

    attempts = luigi.IntParameter(default=3, description="tries of a task's run, the first included")
    delay_seconds = luigi.FloatParameter(default=20.0, description="wait before each retry")


def database_url() -> str:
    """The source database's SQLAlchemy URL (environment first, then luigi.cfg).

    A relative SQLite path is taken relative to the project root, so the same
    default works from any directory.
    """
    url = os.environ.get("PIPELINE_DATABASE_URL") or pipeline().database_url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        url = prefix + str(resolve(url[len(prefix):]))
    return url


def data_dir() -> Path:
    """Home of every dated output (environment first, then luigi.cfg)."""
    return resolve(os.environ.get("PIPELINE_DATA_DIR") or pipeline().data_dir)


def scheduler_address() -> str:
    """Address of an existing Dask scheduler, or '' for a local cluster."""
    return os.environ.get("DASK_SCHEDULER_ADDRESS") or dask().scheduler_address


class serve(luigi.Config):  # noqa: N801
    """The ``[serve]`` section: the prediction service (``make serve``, package ``service``).

    Its bearer token comes from the environment only (``PIPELINE_SERVE_TOKEN``), never from a file.
    """

    host = luigi.Parameter(default="127.0.0.1", description="address uvicorn listens on")
    port = luigi.IntParameter(default=8000, description="port uvicorn listens on")
    workers = luigi.IntParameter(default=2, description="uvicorn worker processes")
    threads = luigi.IntParameter(default=2, description="requests a worker computes at once (its thread pool)")
    max_batch = luigi.IntParameter(default=100, description="series in one POST /predict/batch at most")
    recent_runs = luigi.IntParameter(default=28, description="runs listed and charted by the status page")


def serve_token() -> str | None:
    """The service's bearer token (``PIPELINE_SERVE_TOKEN``), or None: then no endpoint asks for one."""
    return os.environ.get("PIPELINE_SERVE_TOKEN") or None
