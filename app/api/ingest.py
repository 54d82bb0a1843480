"""``POST /v1/events``: one event or ``{"events": [...]}``.

:func:`answer` is the whole endpoint without HTTP objects: headers in, status and JSON content
out. :class:`IngestEndpoint` serves it as a bare ASGI handler, which the edge (``app.edge``) calls
for exactly this method and path, so ingest skips FastAPI's routing and request objects. The
FastAPI route below declares the endpoint for the OpenAPI document, and answers through the same
:func:`answer` when the router is served without the edge (tests compare the two).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from app import metrics as m
from app.api.body import BodyRefused, read_body
from app.events import InvalidBody, InvalidEvents
from app.ingest import TooManyEvents, parse_traceparent
from app.logs import trace_id_var
from app.state import Exporter, exporter_of

router = APIRouter()

# A request header by its lowercase name (the first one sent), None when absent.
HeaderLookup = Callable[[str], str | None]
Content = dict[str, object]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ingest"'}


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _refused(error: str, message: str, **extra: object) -> Content:
    return {"error": error, "message": message, **extra}


def refusal(status: int, error: str, message: str, **extra: object) -> JSONResponse:
    headers = _CHALLENGE if status == 401 else None
    return JSONResponse(_refused(error, message, **extra), status_code=status, headers=headers)


async def answer(
    exporter: Exporter, header: HeaderLookup, chunks: AsyncIterator[bytes]
) -> tuple[int, Content]:
    """Validate every event of the body, then apply them all; a refused body changes nothing.

    Returns the status and the JSON content of the answer. ``chunks`` is the body as it arrives.
    """
    settings = exporter.settings
    if not exporter.auth.allows_ingest(header("authorization")):
        exporter.store.inc(m.AUTH_FAILURES, ("ingest",))
        return 401, _refused("unauthorized", "a valid bearer token is required")
    if not _is_json(header("content-type")):
        exporter.ingestor.reject("unsupported_media_type")
        return 415, _refused("unsupported_media_type", "Content-Type must be application/json")
    try:
        body = await read_body(
            chunks,
            header("content-encoding"),
            header("content-length"),
            settings.max_body_bytes,
            settings.max_decompressed_bytes,
        )
    except BodyRefused as err:
        exporter.ingestor.reject(err.reason)
        return err.status, _refused(err.reason, err.message)
    trace = parse_traceparent(header("traceparent"))
    if trace is not None:
        trace_id_var.set(trace.trace_id)
    try:
        result = exporter.ingestor.ingest(body, trace)
    except InvalidBody as err:
        return 400, _refused("malformed_body", err.message)
    except InvalidEvents as err:
        return 422, _refused("invalid_events", str(err), problems=[p.as_dict() for p in err.problems])
    except TooManyEvents as err:
        return 413, _refused("too_large", str(err))
    return 200, {"accepted": result.accepted, "by_type": result.by_type, "duplicates": result.duplicates}


def render(content: Content) -> bytes:
    """JSON as FastAPI's JSONResponse writes it (compact, UTF-8), written by msgspec: faster."""
    return msgspec.json.encode(content)


@router.post(
    "/v1/events",
    summary="Report events",
    response_description="How many events were applied, by type, and how many were duplicates.",
    responses={
        400: {"description": "The body is not JSON (or not valid gzip)."},
        401: {"description": "A bearer token is required (ingest_tokens)."},
        413: {"description": "The body, its decoded size or the batch is too large."},
        415: {"description": "The body is not JSON, or its Content-Encoding is not gzip."},
        422: {"description": "An event is invalid; the problems name the event index and field."},
        503: {"description": "Too many requests at once; retry after Retry-After seconds."},
    },
)
async def post_events(request: Request) -> JSONResponse:
    """Validate every event of the body, then apply them all; a refused body changes nothing.

    Events whose ``event_id`` was applied recently are acknowledged and counted as duplicates,
    not applied again, so retries are safe.
    """
    status, content = await answer(exporter_of(request), request.headers.get, request.stream())
    return JSONResponse(content, status_code=status, headers=_CHALLENGE if status == 401 else None)


class IngestEndpoint:
    """``POST /v1/events`` as a bare ASGI handler: the same answers as the route, in fewer steps."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, extra_headers: list[tuple[bytes, bytes]]
    ) -> int:
        """Serve one request, adding ``extra_headers`` to the answer; return its status."""
        # The first of repeated headers wins, as with Starlette's request.headers.
        headers: Mapping[bytes, bytes] = dict(reversed(scope["headers"]))

        def header(name: str) -> str | None:
            value = headers.get(name.encode("latin-1"))
            return None if value is None else value.decode("latin-1")

        status, content = await answer(self.exporter, header, _chunks(receive))
        body = render(content)
        raw = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        if status == 401:
            raw.insert(0, (b"www-authenticate", _CHALLENGE["WWW-Authenticate"].encode()))
        await send({"type": "http.response.start", "status": status, "headers": [*raw, *extra_headers]})
        await send({"type": "http.response.body", "body": body})
        return status


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
