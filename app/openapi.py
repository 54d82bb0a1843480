"""The OpenAPI document: FastAPI's routes, ``POST /v1/events`` from the event contract, and
``POST /v1/traces`` (OTLP/HTTP).

The edge serves ``POST /v1/events`` itself (``app.api.ingest``), so FastAPI knows no route for it;
its operation is written here from the declarations it runs on: the request body from the event
structs of ``app.events``, each answer from the structs ``app.api.ingest`` answers with. Every
field's description and example come from its declaration; each event type's example is made of
its fields' examples and checked by the decoder itself, so the documentation cannot show an event
the exporter refuses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app import otlp
from app.api.ingest import PATH, Accepted, Refusal
from app.custom import CustomMetric, CustomRegistry
from app.decode import EventDecoder, InvalidEvents
from app.events import ACTIONS, EVENTS, Event, MetricValue

Json = Any
_REF = "#/components/schemas/{name}"
# The time the examples are checked at: their timestamps must lie in the accepted window.
_EXAMPLES_AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC).timestamp()


def example(struct: type[Event]) -> dict[str, Json]:
    """An event of ``struct`` made of its fields' declared examples, less those the decoder
    refuses together (a rule across fields), so that the exporter accepts it."""
    event: dict[str, Json] = {"type": struct.type}
    for field in msgspec.structs.fields(struct):
        declared = msgspec.json.schema(field.type).get("examples") or []
        if field.name == "action" and struct.action_name is not None:
            event["action"] = struct.action_name
        elif declared:
            event[field.name] = declared[0]
    decoder = EventDecoder(
        1, 100, 7 * 86400.0, 300.0, lambda: _EXAMPLES_AT, CustomRegistry(declared_for(event))
    )
    required = {field.name for field in msgspec.structs.fields(struct) if field.required}
    while True:
        try:
            decoder.decode(msgspec.json.encode(event))
        except InvalidEvents as err:
            # A problem in a field's part (labels.team) drops the field.
            fields = {problem.field.split(".")[0].split("[")[0] for problem in err.problems}
            dropped = fields - required - {"type", "action"}
            if not dropped:
                raise ValueError(f"the declared examples of {struct.__name__} are refused: {err}") from err
            for name in dropped:
                event.pop(name, None)
            continue
        return event


def declared_for(event: dict[str, Json]) -> dict[str, CustomMetric]:
    """The custom metric a metric event's example names, declared as it names it (what an
    exporter declares is its operator's choice); none for other events."""
    if event["type"] != MetricValue.type:
        return {}
    labels = tuple(event.get("labels", {}))
    return {event["name"]: CustomMetric(kind=event["kind"], help="example", labels=labels)}


def _event_schema(schema: Json, struct: type[Event]) -> Json:
    properties = schema["properties"]
    properties["type"] = {"description": "The event type.", "const": struct.type}
    if struct.action_name is not None:
        properties["action"] = {
            "description": f"The {struct.type} step reported.",
            "const": struct.action_name,
        }
    return {**schema, "additionalProperties": False, "examples": [example(struct)]}


def components() -> dict[str, Json]:
    """The schemas of every event, the batch, and the answers."""
    _, schemas = msgspec.json.schema_components([*EVENTS, Accepted, Refusal], ref_template=_REF)
    for struct in EVENTS:
        schemas[struct.__name__] = _event_schema(schemas[struct.__name__], struct)
    events = [{"$ref": _REF.format(name=struct.__name__)} for struct in EVENTS]
    schemas["Batch"] = {
        "title": "Batch",
        "description": "Several events, applied all or nothing, in order.",
        "type": "object",
        "properties": {"events": {"type": "array", "minItems": 1, "items": {"oneOf": events}}},
        "required": ["events"],
        "additionalProperties": False,
        "examples": [{"events": [example(EVENTS[0]), example(EVENTS[1])]}],
    }
    schemas["Event"] = {
        "title": "Event",
        "description": "One event: a type, and its fields.",
        "oneOf": events,
    }
    return schemas


_ACTIONS_TEXT = "; ".join(f"{event_type}: {', '.join(actions)}" for event_type, actions in ACTIONS.items())


def _answer(description: str, schema: str) -> Json:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(name=schema)}}},
    }


def operation() -> Json:
    """``POST /v1/events`` as an OpenAPI operation."""
    return {
        "summary": "Report events",
        "description": (
            'One event, or a batch {"events": [...]}. Every event of the body is validated before any is '
            "applied, so a refused body changes nothing. Events whose event_id was applied recently are "
            "acknowledged as duplicates and not applied again, so retries are safe. Types with several "
            f"steps name them in action ({_ACTIONS_TEXT}). Gzip bodies are accepted "
            "(Content-Encoding: gzip). A W3C traceparent header gives its trace to events without one."
        ),
        "operationId": "report_events",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [{"$ref": _REF.format(name="Batch")}, {"$ref": _REF.format(name="Event")}]
                    }
                }
            },
        },
        "responses": {
            "200": _answer("Every event was applied (or was a recent duplicate).", "Accepted"),
            "400": _answer("The body is not JSON, or not valid gzip.", "Refusal"),
            "401": _answer("A bearer token is required (ingest_tokens).", "Refusal"),
            "413": _answer("The body, its decoded size or the batch is too large.", "Refusal"),
            "415": _answer("The body is not JSON, or its Content-Encoding is not gzip.", "Refusal"),
            "422": _answer("Events are invalid: the problems name each event's index and field.", "Refusal"),
            "503": _answer("Too many requests at once; retry after Retry-After seconds.", "Refusal"),
        },
    }


def _otlp(description: str, schema: Json) -> Json:
    return {
        "description": description,
        "content": {
            otlp.JSON: {"schema": schema},
            otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
        },
    }


_RPC_STATUS = {
    "type": "object",
    "description": "A google.rpc.Status: the gRPC code and what is wrong.",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}


def traces_operation() -> Json:
    """``POST /v1/traces`` as an OpenAPI operation: the OTLP/HTTP traces endpoint."""
    return {
        "summary": "Receive OpenTelemetry spans (OTLP/HTTP)",
        "description": (
            "An OTLP ExportTraceServiceRequest, as protobuf or OTLP/JSON (gzip accepted). Each span of an "
            "LLM call (GenAI semantic conventions) is applied as an llm_request event; other spans are "
            "ignored. A span with unusable values is refused alone, in partial_success. The answer is in "
            "the request's encoding. See docs/opentelemetry.md."
        ),
        "operationId": "receive_traces",
        "requestBody": {
            "required": True,
            "content": {
                otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                otlp.JSON: {
                    "schema": {
                        "type": "object",
                        "description": "OTLP/JSON: resourceSpans, each with scopeSpans of spans; ids in hex.",
                        "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}},
                    }
                },
            },
        },
        "responses": {
            "200": _otlp(
                "The spans were received: partial_success counts those refused and names them.",
                {
                    "type": "object",
                    "properties": {
                        "partialSuccess": {
                            "type": "object",
                            "properties": {
                                "rejectedSpans": {
                                    "type": "string",
                                    "description": "int64, as OTLP/JSON writes it",
                                },
                                "errorMessage": {"type": "string"},
                            },
                        }
                    },
                },
            ),
            "400": _otlp("The body is not an export request, or not valid gzip.", _RPC_STATUS),
            "401": _otlp("A bearer token is required (ingest_tokens).", _RPC_STATUS),
            "413": _otlp("The body, its decoded size or its number of spans is too large.", _RPC_STATUS),
            "415": _otlp(
                "The body is neither protobuf nor JSON, or its Content-Encoding is not gzip.", _RPC_STATUS
            ),
            "503": _otlp("Too many requests at once; retry after Retry-After seconds.", _RPC_STATUS),
        },
    }


def install(app: FastAPI) -> None:
    """Make ``app`` serve its OpenAPI document with ``POST /v1/events`` (built once, on demand)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            document.setdefault("paths", {}).setdefault(PATH, {})["post"] = operation()
            document["paths"].setdefault(otlp.PATH, {})["post"] = traces_operation()
            document.setdefault("components", {}).setdefault("schemas", {}).update(components())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
