"""The HTTP edge: what every request passes before any route.

Each request gets an id (``X-Request-ID``, taken from the client when sane) and one JSON access
log line. The ingest routes, ``POST /v1/events`` and ``POST /v1/traces``, are served here by the
bare ASGI :class:`~app.api.ingest.IngestEndpoint` (other methods get 405); everything else goes on
to the FastAPI app.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.ingest import EVENTS, IngestEndpoint
from app.api.traces import TRACES
from app.logs import info_writer, refusal_var, request_id_var
from app.state import Exporter

access_log = logging.getLogger("llmopt_exporter.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ROUTES = (EVENTS, TRACES)


def _not_allowed(path: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": "method_not_allowed", "message": f"POST to {path}"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"allow", b"POST"),
        (b"content-length", str(len(body)).encode()),
    ]
    return headers, body


_NOT_ALLOWED = {route.path: _not_allowed(route.path) for route in _ROUTES}


class Edge:
    """ASGI middleware: request id, access log, the ingest endpoint."""

    def __init__(self, app: ASGIApp, exporter: Exporter) -> None:
        self.app = app
        self.exporter = exporter
        self.endpoints = {route.path: IngestEndpoint(exporter, route) for route in _ROUTES}
        self.is_logged = exporter.settings.access_log
        # Straight to the JSON lines when that is where the access log goes (see app.logs).
        self.write_access = info_writer(access_log) if self.is_logged else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value  # the last one sent, as a dict of the headers would keep
        request_id = given.decode("latin-1")
        if not _REQUEST_ID.match(request_id):
            # 128 random bits as 32 hex digits, as uuid4().hex gives (less its fixed version bits)
            # in a fifth of the time.
            request_id = os.urandom(16).hex()
        id_header = (b"x-request-id", request_id.encode())
        token = request_id_var.set(request_id)
        refused = refusal_var.set(None)
        started = time.perf_counter()
        status = 500  # what the log says when the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is None:
                await self.app(scope, receive, send_with_id)
            elif scope["method"] == "POST":
                status = await endpoint(scope, receive, send, [id_header])
            else:
                refusal_var.set({"error": "method_not_allowed"})
                headers, body = _NOT_ALLOWED[scope["path"]]
                await send_with_id({"type": "http.response.start", "status": 405, "headers": headers})
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            if self.is_logged:
                _log_access(scope, status, started, self.write_access, refusal_var.get())
            refusal_var.reset(refused)
            request_id_var.reset(token)


def _log_access(
    scope: Scope,
    status: int,
    started: float,
    write: Callable[[str, dict[str, Any]], None] | None,
    refusal: dict[str, Any] | None,
) -> None:
    """One access log line, with the refusal's error code and first problem when refused: through
    ``write`` when given; else a record made directly, without ``Logger.info`` looking up the
    caller's file and line, which no line of ours shows."""
    method, path = scope["method"], scope["path"]
    context = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "client": (scope.get("client") or ("", 0))[0],
    }
    if refusal is not None:
        context.update(refusal)
    if write is not None:
        write(f"{method} {path} {status}", context)
        return
    if not access_log.isEnabledFor(logging.INFO):
        return
    record = access_log.makeRecord(
        access_log.name,
        logging.INFO,
        "",
        0,
        "%s %s %d",
        (method, path, status),
        None,
        extra={"context": context},
    )
    access_log.handle(record)
