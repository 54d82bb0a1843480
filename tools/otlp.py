"""Spans sent to a trace backend (Grafana Tempo, Jaeger, an OpenTelemetry Collector) as OTLP/HTTP
JSON, with the standard library only, so that the trace ids of the exporter's exemplars lead to a
trace. ``post(url, service, spans)`` sends them to ``{url}/v1/traces``.

The encoding follows the OTLP specification's JSON mapping: ids are hex strings, times are Unix
nanoseconds as decimal strings, attributes are typed ``AnyValue`` objects.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

AttributeValue = str | bool | int | float

# OTLP's SpanKind and StatusCode values.
KIND_INTERNAL = 1
KIND_CLIENT = 3
STATUS_UNSET = 0
STATUS_ERROR = 2


@dataclass(frozen=True)
class Span:
    """One finished span."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str | None = None
    kind: int = KIND_INTERNAL
    is_error: bool = False
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


def _value(value: AttributeValue) -> dict[str, object]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value}


def _attributes(attributes: Mapping[str, AttributeValue]) -> list[dict[str, object]]:
    return [{"key": key, "value": _value(value)} for key, value in attributes.items()]


def encode(service: str, spans: Sequence[Span], scope: str = "llmopt") -> bytes:
    """An OTLP ``ExportTraceServiceRequest`` of ``spans`` from ``service``, as JSON."""
    encoded = []
    for span in spans:
        item: dict[str, object] = {
            "traceId": span.trace_id,
            "spanId": span.span_id,
            "name": span.name,
            "kind": span.kind,
            "startTimeUnixNano": str(span.start_ns),
            "endTimeUnixNano": str(span.end_ns),
            "attributes": _attributes(span.attributes),
            "status": {"code": STATUS_ERROR if span.is_error else STATUS_UNSET},
        }
        if span.parent_span_id:
            item["parentSpanId"] = span.parent_span_id
        encoded.append(item)
    request = {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes({"service.name": service})},
                "scopeSpans": [{"scope": {"name": scope}, "spans": encoded}],
            }
        ]
    }
    return json.dumps(request, separators=(",", ":")).encode()


def post(url: str, service: str, spans: Sequence[Span], timeout: float = 5.0) -> None:
    """Send ``spans`` to the OTLP/HTTP endpoint at ``url`` (e.g. http://localhost:4318).

    Raises ``OSError`` (``urllib.error.URLError``, ``HTTPError``) when they do not arrive."""
    if not spans:
        return
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/traces",
        data=encode(service, spans),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
