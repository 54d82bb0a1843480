"""``POST /v1/events``: one event or ``{"events": [...]}``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.events import InvalidBody, InvalidEvents
from app.ingest import TooManyEvents, parse_traceparent
from app.logs import trace_id_var
from app.state import exporter_of

router = APIRouter()

_JSON_TYPES = ("application/json",)


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in _JSON_TYPES or media_type.endswith("+json")


def _refusal(status: int, error: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


@router.post(
    "/v1/events",
    summary="Report events",
    response_description="How many events were accepted, by type.",
    responses={
        400: {"description": "The body is not JSON or not an event/batch."},
        413: {"description": "The body or the batch is too large."},
        415: {"description": "The body is not JSON (Content-Type)."},
        422: {"description": "An event is invalid; the problems name the event index and field."},
    },
)
async def post_events(request: Request) -> JSONResponse:
    """Validate every event of the body, then apply them all; a refused body changes nothing."""
    exporter = exporter_of(request)
    settings = exporter.settings
    if not _is_json(request.headers.get("content-type")):
        exporter.ingestor.reject("unsupported_media_type")
        return _refusal(415, "unsupported_media_type", "Content-Type must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
        exporter.ingestor.reject("too_large")
        return _refusal(413, "too_large", f"body exceeds max_body_bytes ({settings.max_body_bytes})")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_body_bytes:
            exporter.ingestor.reject("too_large")
            return _refusal(413, "too_large", f"body exceeds max_body_bytes ({settings.max_body_bytes})")
    trace = parse_traceparent(request.headers.get("traceparent"))
    if trace is not None:
        trace_id_var.set(trace.trace_id)
    try:
        result = exporter.ingestor.ingest(bytes(body), trace)
    except InvalidBody as err:
        return _refusal(400, "malformed_body", err.message)
    except InvalidEvents as err:
        problems = [problem.as_dict() for problem in err.problems]
        return _refusal(422, "invalid_events", str(err), problems=problems)
    except TooManyEvents as err:
        return _refusal(413, "too_large", str(err))
    return JSONResponse({"accepted": result.accepted, "by_type": result.by_type})
