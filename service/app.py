"""The prediction service's HTTP face: FastAPI routes over :class:`service.backend.Backend`.

Every error is JSON with a ``detail`` that says what is wrong (404 names the unknown store, item,
series or run; 422 what a field or date should be); an unexpected failure answers 500 with no
stack trace and no secret, and is logged (masked) on the server. With ``PIPELINE_SERVE_TOKEN`` set,
every endpoint but ``/health`` asks for ``Authorization: Bearer <token>``.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging

import anyio.to_thread
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.data import masking
from service import backend as be
from service import models, page
from service.guard import Guard
from service.metrics import Metrics

log = logging.getLogger("service")


def create_app(backend: be.Backend | None = None, token: str | None = None, max_batch: int | None = None,
               recent_runs: int | None = None, threads: int | None = None) -> FastAPI:
    """The app. Without arguments (``uvicorn --factory``), everything comes from the configuration."""
    from tasks import config

    backend = backend or be.Backend(config.database_url())
    token = token if token is not None else config.serve_token()
    max_batch = max_batch or config.serve().max_batch
    recent_runs = recent_runs or config.serve().recent_runs
    threads = threads or config.serve().threads
    metrics = Metrics()
    @contextlib.asynccontextmanager
    async def lifespan(_):
        # the endpoints are plain functions run in anyio's thread pool: this many at once per worker
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(title="Daily forecast service", version="1", lifespan=lifespan,
                  description="Published forecasts, online predictions with what-if prices, the serving model.")
    app.state.backend, app.state.metrics = backend, metrics
    newest = backend.newest_run()
    if newest is not None:  # the model serving the newest run is loaded before the first request
        try:
            metrics.serving(backend.model_for(newest).date)
        except be.NotFound as exc:
            log.warning("no model loaded at start-up: %s", exc)
    reports = backend.data_dir / "reports"
    app.mount("/reports", StaticFiles(directory=reports, check_dir=False, html=True), name="reports")

    app.add_middleware(Guard, token=token or None, metrics=metrics)

    @app.exception_handler(be.NotFound)
    async def not_found(_, exc):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(be.BadRequest)
    async def bad_request(_, exc):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(be.Unsupported)
    async def unsupported(_, exc):
        return JSONResponse({"detail": str(exc)}, status_code=501)

    @app.exception_handler(RequestValidationError)
    async def invalid(_, exc):
        # the fields and what they should be; the values given are not echoed back
        return JSONResponse({"detail": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                                        for e in exc.errors()]}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_, exc):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.get("/health", response_model=models.Health)
    def health():
        try:
            newest = backend.newest_run()
        except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
            log.warning("health: database: %s", masking.mask(str(exc)))
            return JSONResponse(models.Health(status="unavailable", database=False, model_loaded=False,
                                              model_date=None, newest_run=None,
                                              detail="the source database cannot be read").model_dump(mode="json"),
                                status_code=503)
        loaded = backend.loaded_models()
        try:
            current = backend.model_for(newest) if newest else None
        except be.NotFound as exc:
            current, detail = None, str(exc)
        else:
            detail = None if current else "no forecast published yet"
        body = models.Health(status="ok" if current else "unavailable", database=True, model_loaded=bool(loaded),
                             model_date=current.date if current else None, newest_run=newest, detail=detail)
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if current else 503)

    @app.get("/version")
    def version(as_of: dt.date | None = Query(None, description="run date (default: the newest published run)")):
        return page.version_info(backend, as_of)

    @app.get("/forecasts/{store_id}/{item_id}", response_model=models.ForecastResponse)
    def forecasts(store_id: str, item_id: str, as_of: dt.date | None = Query(None, description="run date"),
                  model: models.ModelName = Query("batch", description="batch (the published forecast, with the "
                                                  "run's quantiles) or online (the online model's, from its start date)")):
        if model == "online":
            run, rows = backend.online_forecast(store_id, item_id, as_of)
        else:
            run, rows = backend.published(store_id, item_id, as_of)
            quantiles = backend.quantiles(run, store_id, item_id)
            if quantiles is not None and len(quantiles) == len(rows):
                rows = [{**r, "quantiles": q} for r, q in zip(rows, quantiles)]
        return {"store_id": store_id, "item_id": item_id, "as_of": run, "model": model, "forecast": rows}

    def predicted(req: models.PredictRequest) -> dict:
        prices = {p.wm_yr_wk: p.sell_price for p in req.prices}
        model, rows = backend.predict(req.store_id, req.item_id, req.as_of, prices)
        metrics.series.inc()
        return {"store_id": req.store_id, "item_id": req.item_id, "as_of": req.as_of,
                "model": {"model_date": model.date, "how": model.choice["how"], "reason": model.choice["reason"]},
                "prices": req.prices, "forecast": rows}

    @app.post("/predict", response_model=models.PredictResponse)
    def predict(req: models.PredictRequest):
        return predicted(req)

    @app.post("/predict/batch", response_model=models.BatchResponse)
    def predict_batch(req: models.BatchRequest):
        if len(req.series) > max_batch:
            raise be.BadRequest(f"{len(req.series)} series in one batch: at most {max_batch} ([serve] max_batch)")
        return {"results": [predicted(r) for r in req.series]}

    @app.get("/metrics")
    def metrics_page():
        body, kind = metrics.page()
        return Response(body, media_type=kind)

    @app.get("/", response_class=HTMLResponse)
    def status_page():
        return page.status_page(backend, recent_runs)

    return app

