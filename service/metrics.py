"""``GET /metrics``: requests, latency histograms, errors and the serving model, in Prometheus text format.

With several uvicorn workers (``[serve] workers``) each process counts its own requests;
``python -m service`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder so that the page sums
every worker (prometheus_client's multiprocess mode).
"""
from __future__ import annotations

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

# latency buckets around the aims (20 ms for /forecasts, 100 ms for /predict)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's instruments, in a registry of their own (several apps in one process stay apart)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("forecast_service_requests_total", "HTTP requests", ["endpoint", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("forecast_service_request_seconds", "request latency", ["endpoint"],
                                 buckets=BUCKETS, registry=self.registry)
        self.errors = Counter("forecast_service_errors_total", "requests answered 5xx", ["endpoint"],
                              registry=self.registry)
        self.series = Counter("forecast_service_predicted_series_total", "series predicted online",
                              registry=self.registry)
        self.model = Gauge("forecast_service_serving_model", "the model serving the newest run (1), by training date",
                           ["model_date"], registry=self.registry, multiprocess_mode="max")

    def observe(self, endpoint: str, method: str, status: int, started: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(time.perf_counter() - started)
        if status >= 500:
            self.errors.labels(endpoint).inc()

    def serving(self, model_date: str | None) -> None:
        if model_date:
            self.model.labels(model_date).set(1)

    def page(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
