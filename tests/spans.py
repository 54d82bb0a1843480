"""Spans as OpenTelemetry's SDK makes them, and export bodies as its OTLP exporter encodes them
(protobuf), or as OTLP/JSON writes them (the protobuf JSON mapping, with ids in hex)."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from tests.conftest import CLOCK

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
_SPAN_IDS = itertools.count(0xB7AD6B7169203331)
# When the spans of a test end: a minute before the in-process exporters' clock.
END = CLOCK - 60


def span(
    attributes: Mapping[str, Any],
    *,
    name: str = "chat gpt-4o",
    seconds: float = 0.5,
    span_id: int | None = None,
    parent: int | None = None,
    trace_id: int = TRACE_ID,
    failed: bool = False,
    events: Sequence[tuple[str, Mapping[str, Any]]] = (),
    resource: Mapping[str, Any] | None = None,
    end: float = END,
) -> ReadableSpan:
    """A finished client span of ``seconds``, ending at ``end``."""
    context = SpanContext(trace_id, span_id if span_id is not None else next(_SPAN_IDS), is_remote=False)
    return ReadableSpan(
        name,
        context=context,
        parent=SpanContext(trace_id, parent, is_remote=False) if parent is not None else None,
        resource=Resource.create(dict(resource or {})),
        attributes=dict(attributes),
        events=[Event(event_name, dict(event_attributes)) for event_name, event_attributes in events],
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR) if failed else Status(StatusCode.UNSET),
        start_time=round((end - seconds) * 1e9),
        end_time=round(end * 1e9),
        instrumentation_scope=InstrumentationScope("tests"),
    )


def body(spans: Iterable[ReadableSpan], media: str = "application/x-protobuf") -> bytes:
    """An export request of ``spans`` in ``media``: protobuf as the SDK's exporter sends it, or
    OTLP/JSON."""
    request = encode_spans(list(spans))
    if media == "application/x-protobuf":
        encoded: bytes = request.SerializeToString()
        return encoded
    document = json_format.MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for one in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in one:
                        one[key] = _hex(one[key])
    return json.dumps(document).encode()


def _hex(base64_id: str) -> str:
    return base64.b64decode(base64_id).hex()


# GenAI spans of the shapes instrumentations send, by convention version.
def current(model: str = "gpt-4o", **more: Any) -> dict[str, Any]:
    """An openai-v2 instrumentation's chat span (the current conventions)."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": f"{model}-2024-08-06",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "server.address": "api.openai.com",
        **more,
    }


def older(model: str = "gpt-4o", **more: Any) -> dict[str, Any]:
    """A span of the older conventions: gen_ai.system, prompt and completion tokens, no operation."""
    return {
        "gen_ai.system": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 30,
        "llm.usage.total_tokens": 150,
        **more,
    }
