"""``POST /v1/traces``: the OTLP/HTTP traces endpoint, for spans of LLM calls (``app.otlp``).

It passes the same gate as ``POST /v1/events`` (``app.api.ingest``: auth, body limits with their
own sizes, concurrency, turns) and answers as OTLP/HTTP says: 200 with an
ExportTraceServiceResponse (its partial success names the spans refused), or a refusal as a
google.rpc.Status, in the request's encoding (protobuf or JSON); 503 with Retry-After when the
exporter is busy, which OTLP exporters retry.
"""

from __future__ import annotations

from typing import Any

from app import otlp
from app.api.ingest import HeaderLookup, Refusal, Route
from app.decode import InvalidBody
from app.state import Exporter


def _accepts(content_type: str | None) -> bool:
    return otlp.media_type(content_type) is not None


def _media(header: HeaderLookup) -> str:
    return otlp.media_type(header("content-type")) or otlp.JSON


def _apply(exporter: Exporter, body: bytes, header: HeaderLookup) -> tuple[int, Any]:
    try:
        received = otlp.receive(
            body, _media(header), exporter.ingestor, exporter.store, exporter.settings.max_batch_events
        )
    except InvalidBody as err:
        return 400, Refusal("malformed_body", err.message)
    except otlp.TooManySpans as err:
        return 413, Refusal("too_large", str(err))
    return 200, received


def _render(status: int, content: Any, header: HeaderLookup) -> tuple[bytes, bytes]:
    media = _media(header)
    if isinstance(content, Refusal):
        code = otlp.GRPC_CODES.get(status, otlp.GRPC_UNKNOWN)
        return media.encode(), otlp.status(code, content.message, media)
    assert isinstance(content, otlp.Received)
    return media.encode(), otlp.response(content.rejected, content.message, media)


TRACES = Route(
    otlp.PATH,
    _accepts,
    f"{otlp.PROTOBUF} or {otlp.JSON}",
    lambda settings: (settings.max_traces_body_bytes, settings.max_traces_decompressed_bytes),
    _apply,
    _render,
)
