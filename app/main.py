"""The application factory: ``create_app(settings)`` builds a fresh exporter; nothing at import."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import prometheus_client
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.api import exposition, health, ingest, landing
from app.config import Settings
from app.ingest import Ingestor
from app.logs import request_id_var
from app.recorder import Recorder
from app.state import Exporter
from app.store import MetricStore

log = logging.getLogger("llmopt_exporter")
access_log = logging.getLogger("llmopt_exporter.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(settings: Settings | None = None, clock: Callable[[], float] = time.time) -> FastAPI:
    """A new exporter with its own registry and state: two apps never share a series.

    ``clock`` gives the time of events that carry no timestamp (tests pin it).
    """
    settings = settings or Settings()
    # `_created` series double the output and no rule or dashboard of ours reads them.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    store = MetricStore(registry)
    recorder = Recorder(store, clock)
    exporter = Exporter(settings, store, recorder, Ingestor(store, recorder, settings.max_batch_events))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        exporter.is_ready = True
        log.info("ready", extra={"context": {"version": __version__}})
        yield
        exporter.is_ready = False

    app = FastAPI(
        title="llmopt-exporter",
        version=__version__,
        description="Event ingest for LLM auto-optimizers; Prometheus metrics at /metrics.",
        lifespan=lifespan,
    )
    app.state.exporter = exporter
    for module in (landing, ingest, exposition, health):
        app.include_router(module.router)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(AccessLogMiddleware, is_enabled=settings.access_log)
    return app


async def _unexpected_error(request: Request, err: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=err)
    return JSONResponse({"error": "internal", "message": "internal error; see the exporter's log"}, 500)


class AccessLogMiddleware:
    """Gives each request an id (``X-Request-ID``, taken from the client when sane) and logs it."""

    def __init__(self, app: ASGIApp, is_enabled: bool = True) -> None:
        self.app = app
        self.is_enabled = is_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.is_enabled:
                access_log.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "context": {
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                            "client": (scope.get("client") or ("", 0))[0],
                        }
                    },
                )
            request_id_var.reset(token)
