"""``POST /v1/events``: one event or ``{"events": [...]}``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app import metrics as m
from app.api.body import BodyRefused, read_body
from app.events import InvalidBody, InvalidEvents
from app.ingest import TooManyEvents, parse_traceparent
from app.logs import trace_id_var
from app.state import exporter_of

router = APIRouter()


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def refusal(status: int, error: str, message: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="ingest"'} if status == 401 else None
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status, headers=headers)


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
    exporter = exporter_of(request)
    settings = exporter.settings
    if not exporter.auth.allows_ingest(request.headers.get("authorization")):
        exporter.store.inc(m.AUTH_FAILURES, ("ingest",))
        return refusal(401, "unauthorized", "a valid bearer token is required")
    if not _is_json(request.headers.get("content-type")):
        exporter.ingestor.reject("unsupported_media_type")
        return refusal(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        body = await read_body(request, settings.max_body_bytes, settings.max_decompressed_bytes)
    except BodyRefused as err:
        exporter.ingestor.reject(err.reason)
        return refusal(err.status, err.reason, err.message)
    trace = parse_traceparent(request.headers.get("traceparent"))
    if trace is not None:
        trace_id_var.set(trace.trace_id)
    try:
        result = exporter.ingestor.ingest(body, trace)
    except InvalidBody as err:
        return refusal(400, "malformed_body", err.message)
    except InvalidEvents as err:
        return refusal(422, "invalid_events", str(err), problems=[p.as_dict() for p in err.problems])
    except TooManyEvents as err:
        return refusal(413, "too_large", str(err))
    return JSONResponse(
        {"accepted": result.accepted, "by_type": result.by_type, "duplicates": result.duplicates}
    )
