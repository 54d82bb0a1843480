"""The OpenAPI document, with the event contract as the request body of ``POST /v1/events``.

The ingest route reads the raw body (size limits, gzip), so FastAPI cannot derive its schema; it is
added here from the same pydantic models that validate it.
"""

from __future__ import annotations

from typing import Any, Union

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from app.events import Batch, Event

Json = Any


def request_body_schema() -> tuple[Json, Json]:
    """The wire contract (app/events.py) as an OpenAPI request body, and the components it uses.

    Two adjustments to what pydantic derives: nested discriminated unions come out with discriminator
    mappings to schemas rather than to references (invalid OpenAPI), so discriminators are dropped
    (the ``const`` of ``type`` and ``action`` already pick the one matching schema); and timestamps,
    derived as date-time strings only, are RFC 3339 strings or Unix seconds.
    """
    derived = TypeAdapter(Union[Batch, Event]).json_schema(ref_template="#/components/schemas/{model}")
    body = _as_openapi(derived)
    components = body.pop("$defs")
    return {"required": True, "content": {"application/json": {"schema": body}}}, components


def _as_openapi(node: Json) -> Json:
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            return {
                "anyOf": [
                    {"type": "string", "format": "date-time"},
                    {"type": "number", "minimum": 0, "maximum": 4_102_444_800},
                ],
                "description": "RFC 3339 with a zone, or Unix seconds",
            }
        return {name: _as_openapi(value) for name, value in node.items() if name != "discriminator"}
    if isinstance(node, list):
        return [_as_openapi(item) for item in node]
    return node


def install(app: FastAPI) -> None:
    """Make ``app`` serve its OpenAPI document with the event request body (built once, on demand)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            body, components = request_body_schema()
            document["paths"]["/v1/events"]["post"]["requestBody"] = body
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
