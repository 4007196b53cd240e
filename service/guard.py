"""The service's one middleware (plain ASGI, no per-request Request objects): the bearer token, the
request metrics, and a 500 without a trace for anything unexpected."""
from __future__ import annotations

import hmac
import logging
import time

from fastapi.responses import JSONResponse

from pipeline.data import masking
from service.metrics import Metrics

log = logging.getLogger("service")
OPEN = {"/health"}  # the one endpoint a load balancer asks without a token


class Guard:
    """Wraps the app: refuses requests without the token (when one is set), counts and times every request."""

    def __init__(self, app, token: str | None, metrics: Metrics):
        self.app, self.metrics = app, metrics
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, method, path = time.perf_counter(), scope["method"], scope["path"]
        if self.expected is not None and path not in OPEN:
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                await JSONResponse({"detail": "missing or wrong bearer token (Authorization: Bearer ...)"},
                                   status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                self.metrics.observe("unauthorised", method, 401, started)
                return
        state = {"status": 500, "started": False}

        async def sending(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 - the client gets no trace; the log gets a masked one
            log.error("%s %s failed: %s", method, path, masking.mask(f"{type(exc).__name__}: {exc}"))
            if not state["started"]:
                await JSONResponse({"detail": "internal error: the service log says more"},
                                   status_code=500)(scope, receive, send)
            state["status"] = 500
        route = scope.get("route")
        self.metrics.observe(getattr(route, "path", "other"), method, state["status"], started)
