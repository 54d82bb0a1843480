"""The application factory: ``create_app(settings)`` builds a fresh exporter; nothing at import."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import prometheus_client
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from app import __version__, openapi
from app import metrics as m
from app.api import admin, exposition, health, landing
from app.api.body import BodyBudget
from app.auth import Authenticator
from app.config import Settings
from app.custom import CustomRegistry
from app.decode import EventDecoder
from app.dedup import RecentIds
from app.dimensions import Dimensions
from app.edge import Edge
from app.ingest import Ingestor
from app.prices import load_prices
from app.recorder import Recorder
from app.render import Exposition
from app.snapshot import CorruptSnapshot, Streamed, read_snapshot
from app.state import Exporter
from app.store import LabelGuard, MetricStore

log = logging.getLogger("llmopt_exporter")
# Where the API docs' scripts, styles and icon are served from.
DOCS_ASSETS = "/docs/assets"


def create_app(settings: Settings | None = None, clock: Callable[[], float] = time.time) -> FastAPI:
    """A new exporter with its own registry and state: two apps never share a series.

    ``clock`` gives the time of events that carry no timestamp and drives expiry (tests pin it).
    """
    settings = settings or Settings()
    # `_created` series double the output and no rule or dashboard of ours reads them.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    runtime = (
        ProcessCollector(registry=registry),
        PlatformCollector(registry=registry),
        GCCollector(registry=registry),
    )
    custom = CustomRegistry(settings.custom_metrics)
    dimensions = Dimensions(settings.declared_dimensions())
    store = MetricStore(
        registry,
        # Each dimension keeps the values declared for it.
        LabelGuard(settings.label_value_limit, {**settings.label_value_limits, **dimensions.caps}),
        max_series=settings.max_series,
        max_series_per_metric=settings.max_series_per_metric,
        clock=clock,
        as_kept=dimensions.spec,
        custom=custom.specs.values(),
    )
    prices = load_prices(settings.prices_file) if settings.prices_file is not None else None
    recorder = Recorder(store, clock, settings.max_state_entries, prices, custom, dimensions)
    recent_ids = RecentIds(settings.dedup_window_size, settings.dedup_window_seconds)
    decoder = EventDecoder(
        settings.max_batch_events,
        settings.max_problems,
        settings.event_max_age_seconds,
        settings.event_max_future_seconds,
        clock,
        custom,
        dimensions,
    )
    ingestor = Ingestor(store, recorder, decoder, recent_ids)
    exporter = Exporter(
        settings,
        store,
        recorder,
        ingestor,
        Authenticator(settings),
        recent_ids,
        BodyBudget(settings.max_pending_body_bytes),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        restore_snapshot(exporter)
        tasks = [asyncio.create_task(_every(_expiry_period(settings), lambda: _expire(exporter)))]
        if settings.snapshot_file is not None:
            tasks.append(
                asyncio.create_task(
                    _every(settings.snapshot_interval_seconds, lambda: save_snapshot(exporter))
                )
            )
        if not settings.is_loopback and exporter.auth.is_ingest_open:
            log.warning(
                "ingest is open to anyone who can reach %s: no ingest token is configured", settings.host
            )
        exporter.is_ready = True
        log.info("ready", extra={"context": {"version": __version__}})
        try:
            yield
        finally:
            exporter.is_ready = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if settings.snapshot_file is not None:
                await save_snapshot(exporter)

    is_api_documented = exporter.auth.is_ingest_open if settings.api_docs is None else settings.api_docs
    # The API docs (Swagger UI at /docs, ReDoc at /redoc) load their scripts and styles from the
    # package's own copy (fastapi-offline), so they render on a machine without internet access.
    documentation: dict[str, Any] = (
        # No validator badge: Swagger UI would ask validator.swagger.io about the schema.
        {
            "docs_url": "/docs",
            "redoc_url": "/redoc",
            "static_url": DOCS_ASSETS,
            "swagger_ui_parameters": {"validatorUrl": None},
        }
        if is_api_documented
        else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    )
    app = (FastAPIOffline if is_api_documented else FastAPI)(
        title="llmopt-exporter",
        **documentation,
        version=__version__,
        description="Event ingest for LLM auto-optimizers; Prometheus metrics at /metrics.",
        lifespan=lifespan,
        # The exporter's telemetry is its own metrics and logs. FastAPI's native OpenTelemetry
        # would otherwise ask, on every request, whether a tracer, meter or logger provider is
        # configured (about 5 µs, a twentieth of a single-event request).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.exporter = exporter
    openapi.install(app)
    app.state.exposition = Exposition(store, runtime)
    for module in (landing, admin, exposition, health):
        app.include_router(module.router)
    app.add_exception_handler(Exception, _unexpected_error)
    # Inside Starlette's error middleware, so an unexpected error is still answered 500 as JSON.
    app.add_middleware(Edge, exporter=exporter)
    return app


def _expiry_period(settings: Settings) -> float:
    return max(1.0, min(60.0, settings.state_ttl_seconds / 10))


async def _every(period: float, job: Callable[[], object]) -> None:
    while True:
        await asyncio.sleep(period)
        outcome = job()
        if asyncio.iscoroutine(outcome):
            await outcome


def _expire(exporter: Exporter) -> None:
    expired = exporter.recorder.expire(exporter.settings.state_ttl_seconds)
    if expired:
        log.info("expired state", extra={"context": {"expired": expired}})


def restore_snapshot(exporter: Exporter) -> None:
    """Load the saved state. A snapshot that cannot be used (unreadable, too large, not a snapshot)
    is set aside when it can be, logged and counted, and the exporter starts empty: nothing of it
    is applied. Start-up never fails for a snapshot."""
    settings = exporter.settings
    path = settings.snapshot_file
    if path is None:
        return
    try:
        snapshot = read_snapshot(path, settings.max_snapshot_bytes, exporter.recorder.dimensions.spec)
    except CorruptSnapshot as err:
        exporter.store.inc(m.SNAPSHOT_RESTORE_FAILURES)
        log.error("snapshot not restored; starting empty", extra={"context": {"reason": str(err)}})
        return
    if snapshot is None:
        return
    exporter.recorder.import_state(snapshot)
    exporter.recent_ids.restore(snapshot.recent_event_ids)
    log.info("snapshot restored", extra={"context": {"path": str(path)}})


async def save_snapshot(exporter: Exporter) -> None:
    settings = exporter.settings
    path = settings.snapshot_file
    if path is None:
        return
    # Taken on the event loop, in one copy of each map: one moment, at a cost bounded by the caps.
    # The recent event ids go along, so a retry that arrives after a restart is still recognised.
    # The document is made, encoded and written in a thread.
    number = exporter.snapshots.take()
    state = exporter.recorder.export_state()
    now, recent_ids = exporter.recent_ids.saved()

    def document() -> dict[str, object]:
        ages = Streamed([event_id, now - seen] for event_id, seen in recent_ids)
        return {**state(), "recent_event_ids": ages}

    try:
        size = await asyncio.to_thread(
            exporter.snapshots.write, number, path, document, settings.max_snapshot_bytes
        )
    except (OSError, ValueError) as err:
        exporter.store.inc(m.SNAPSHOT_WRITES, ("failure",))
        log.error("snapshot not written", extra={"context": {"path": str(path), "reason": str(err)}})
        return
    if size is None:  # a later snapshot was written first
        return
    exporter.store.inc(m.SNAPSHOT_WRITES, ("success",))
    exporter.store.set(m.SNAPSHOT_LAST_SUCCESS, (), time.time())
    exporter.store.set(m.SNAPSHOT_SIZE, (), size)


async def _unexpected_error(request: Request, err: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=err)
    return JSONResponse({"error": "internal", "message": "internal error; see the exporter's log"}, 500)
