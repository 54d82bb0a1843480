"""``POST /v1/events``: one event or ``{"events": [...]}``.

:func:`answer` is the whole endpoint without HTTP objects: headers in, status and JSON content
out. :class:`IngestEndpoint` serves it as a bare ASGI handler, which the edge (``app.edge``) calls
for exactly this method and path, so ingest skips FastAPI's routing and request objects. The
answers are the structs below, which ``app.openapi`` documents with the endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from app import metrics as m
from app.api.body import BodyRefused, read_body
from app.config import Settings
from app.decode import InvalidBody, InvalidEvents, TooManyEvents
from app.events import doc
from app.ingest import parse_traceparent
from app.logs import refusal_var, trace_id_var
from app.state import Exporter

PATH = "/v1/events"
# The status the access log gives a request whose client went away before it was answered (as nginx).
CLIENT_CLOSED_REQUEST = 499
# A request header by its lowercase name (the first one sent), None when absent.
HeaderLookup = Callable[[str], str | None]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ingest"'}


class Accepted(msgspec.Struct):
    """Every event of the body was applied (or was a duplicate of one applied before)."""

    accepted: Annotated[int, doc("Events applied.", 2)]
    by_type: Annotated[dict[str, int], doc("Events applied, by type.", {"llm_request": 1, "feedback": 1})]
    duplicates: Annotated[
        int, doc("Events not applied again: their event_id was applied recently (a retry).", 0)
    ]


class ProblemBody(msgspec.Struct):
    """One thing wrong with the body."""

    index: Annotated[
        int | None,
        doc("The event's position in the batch (0 for a single event); null for the body itself.", 2),
    ]
    field: Annotated[str, doc("The field to fix.", "latency_ms")]
    message: Annotated[str, doc("What is wrong with it.", "Expected `float` >= 0.0")]


class Refusal(msgspec.Struct, omit_defaults=True):
    """Nothing of the body was applied, and why."""

    error: Annotated[
        str,
        doc(
            "What kind of refusal: malformed_body, unauthorized, too_large, unsupported_media_type, "
            "invalid_events, overloaded.",
            "invalid_events",
        ),
    ]
    message: Annotated[
        str, doc("What is wrong, for people.", "events[2].latency_ms: Expected `float` >= 0.0")
    ]
    problems: Annotated[
        list[ProblemBody] | None,
        doc("invalid_events: the first problems (max_problems), each with its event and field.", []),
    ] = None
    problem_count: Annotated[int | None, doc("invalid_events: how many problems there are in all.", 1)] = None


Content = Accepted | Refusal


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def refusal(status: int, error: str, message: str) -> JSONResponse:
    """A refusal as a JSON response, for the routes FastAPI serves (the admin API)."""
    headers = _CHALLENGE if status == 401 else None
    refusal_var.set({"error": error})
    return JSONResponse(msgspec.to_builtins(Refusal(error, message)), status_code=status, headers=headers)


@dataclass(frozen=True)
class Route:
    """What one ingest route has of its own; the gate before it (auth, body limits, concurrency,
    turns) is common. ``apply`` turns a body that passed the gate into the status and content of
    the answer, and ``render`` that content (or a Refusal) into the answer's media type and body."""

    path: str
    accepts: Callable[[str | None], bool]
    media_types: str  # for the 415 answer
    body_limits: Callable[[Settings], tuple[int, int]]  # max_body_bytes, max_decompressed_bytes
    apply: Callable[[Exporter, bytes, HeaderLookup], tuple[int, Any]]
    render: Callable[[int, Any, HeaderLookup], tuple[bytes, bytes]]


async def answer(
    exporter: Exporter, header: HeaderLookup, chunks: AsyncIterator[bytes], route: Route | None = None
) -> tuple[int, Any]:
    """Validate every event of the body, then apply them all; a refused body changes nothing.

    Returns the status and the content of the answer. ``chunks`` is the body as it arrives;
    ``route`` says what the body is (default: events, POST /v1/events).
    """
    route = route or EVENTS
    settings = exporter.settings
    if not exporter.auth.allows_ingest(header("authorization")):
        exporter.store.inc(m.AUTH_FAILURES, ("ingest",))
        return 401, Refusal("unauthorized", "a valid bearer token is required")
    if not route.accepts(header("content-type")):
        exporter.ingestor.reject("unsupported_media_type")
        return 415, Refusal("unsupported_media_type", f"Content-Type must be {route.media_types}")
    max_body_bytes, max_decompressed_bytes = route.body_limits(settings)
    try:
        body = await read_body(
            chunks,
            header("content-encoding"),
            header("content-length"),
            max_body_bytes,
            max_decompressed_bytes,
            exporter.body_budget,
        )
    except BodyRefused as err:
        if err.status == 503:
            return _shed(exporter, err.message)
        exporter.ingestor.reject(err.reason)
        return err.status, Refusal(err.reason, err.message)
    if exporter.requests_applying >= settings.max_concurrent_requests:
        return _shed(exporter, "too many requests at once (max_concurrent_requests); retry")
    budget = exporter.body_budget
    if not budget.has_room(len(body)):
        return _shed(exporter, "too many request bodies held at once (max_pending_body_bytes); retry")
    # Until applied, the body counts against both limits.
    exporter.requests_applying += 1
    budget.held += len(body)
    try:
        if not await exporter.turns.wait(settings.max_wait_seconds):
            return _shed(exporter, "ingest has fallen behind (max_wait_seconds); retry")
        return route.apply(exporter, body, header)
    finally:
        exporter.requests_applying -= 1
        budget.held -= len(body)


def _shed(exporter: Exporter, message: str) -> tuple[int, Content]:
    """503 overloaded, counted as shed: the client retries after Retry-After."""
    exporter.store.inc(m.REQUESTS_SHED)
    return 503, Refusal("overloaded", message)


def _apply(exporter: Exporter, body: bytes, header: HeaderLookup) -> tuple[int, Content]:
    trace = parse_traceparent(header("traceparent"))
    if trace is not None:
        trace_id_var.set(trace.trace_id)
    try:
        result = exporter.ingestor.ingest(body, trace)
    except InvalidBody as err:
        return 400, Refusal("malformed_body", err.message)
    except InvalidEvents as err:
        problems = [ProblemBody(p.index, p.field, p.message) for p in err.problems]
        return 422, Refusal("invalid_events", str(err), problems, err.total)
    except TooManyEvents as err:
        return 413, Refusal("too_large", str(err))
    return 200, Accepted(result.accepted, result.by_type, result.duplicates)


def note_refusal(content: Refusal) -> None:
    """Give the access log line the refusal's error code and first problem."""
    noted: dict[str, object] = {"error": content.error}
    if content.problems:
        noted["problem_index"] = content.problems[0].index
        noted["problem_field"] = content.problems[0].field
    refusal_var.set(noted)


def render(status: int, content: Content, header: HeaderLookup) -> tuple[bytes, bytes]:
    """The answer as compact UTF-8 JSON."""
    return b"application/json", msgspec.json.encode(content)


EVENTS = Route(
    PATH,
    _is_json,
    "application/json",
    lambda settings: (settings.max_body_bytes, settings.max_decompressed_bytes),
    _apply,
    render,
)


class IngestEndpoint:
    """An ingest route (default: ``POST /v1/events``) as a bare ASGI handler, which the edge calls
    for that method and path."""

    def __init__(self, exporter: Exporter, route: Route = EVENTS) -> None:
        self.exporter = exporter
        self.route = route

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, extra_headers: list[tuple[bytes, bytes]]
    ) -> int:
        """Serve one request, adding ``extra_headers`` to the answer; return its status."""
        # The first of repeated headers wins, as with Starlette's request.headers.
        headers: Mapping[bytes, bytes] = dict(reversed(scope["headers"]))

        def header(name: str) -> str | None:
            value = headers.get(name.encode("latin-1"))
            return None if value is None else value.decode("latin-1")

        chunks = _chunks(receive)
        try:
            status, content = await answer(self.exporter, header, chunks, self.route)
            if status != 200:
                await drain(chunks, self.exporter.settings.max_drain_bytes)
        except ClientDisconnect:
            # Gone mid-body: nothing to answer and nothing applied. The access log says 499.
            self.exporter.ingestor.reject("client_disconnect")
            refusal_var.set({"error": "client_disconnect"})
            return CLIENT_CLOSED_REQUEST
        if isinstance(content, Refusal):
            note_refusal(content)
        media_type, body = self.route.render(status, content, header)
        self.exporter.requests_applying += 1
        try:
            return await self._send(send, status, media_type, body, extra_headers)
        finally:
            self.exporter.requests_applying -= 1

    async def _send(
        self,
        send: Send,
        status: int,
        media_type: bytes,
        body: bytes,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> int:
        raw = [(b"content-length", str(len(body)).encode()), (b"content-type", media_type)]
        if status == 503:
            raw.append((b"retry-after", b"1"))
        if status == 401:
            raw.insert(0, (b"www-authenticate", _CHALLENGE["WWW-Authenticate"].encode()))
        await send({"type": "http.response.start", "status": status, "headers": [*raw, *extra_headers]})
        await send({"type": "http.response.body", "body": body})
        return status


async def drain(chunks: AsyncIterator[bytes], limit: int) -> None:
    """Read and discard what is left of a refused body, up to ``limit`` bytes: a client still
    sending its body when the answer comes would otherwise see the connection reset, not the
    answer. Past ``limit`` the connection is closed with the answer (the server does not keep a
    connection whose request body it has not read)."""
    drained = 0
    async for chunk in chunks:
        drained += len(chunk)
        if drained > limit:
            return


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (as Starlette's ``request.stream()``)."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
