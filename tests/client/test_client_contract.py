"""The client's events mirror the server's wire contract: same events, fields and defaults."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

import pytest
from client_support import REPO
from llmopt_client import ALL_EVENTS, Event
from pydantic import BaseModel

from app import events as server

REQUIRED = "(required)"
BY_WIRE_NAME: dict[tuple[str, str | None], type[Event]] = {
    (cls.EVENT_TYPE, cls.ACTION): cls for cls in ALL_EVENTS
}


def server_models() -> dict[str, type[BaseModel]]:
    """Every concrete event model of the server (the leaves under its event base class)."""
    found: dict[str, type[BaseModel]] = {}
    pending: list[type[BaseModel]] = [server._Event]
    while pending:
        model = pending.pop()
        subclasses = model.__subclasses__()
        if not subclasses and not model.__name__.startswith("_"):
            found[model.__name__] = model
        pending.extend(subclasses)
    return found


def test_every_server_event_has_a_client_event() -> None:
    assert sorted(cls.__name__ for cls in ALL_EVENTS) == sorted(server_models())


@pytest.mark.parametrize("event_class", ALL_EVENTS, ids=lambda cls: cls.__name__)
def test_a_client_event_has_the_server_fields_and_defaults(event_class: type[Event]) -> None:
    model = server_models()[event_class.__name__]
    server_fields = dict(model.model_fields)
    assert get_args(server_fields.pop("type").annotation) == (event_class.EVENT_TYPE,)
    if event_class.ACTION is not None:
        assert get_args(server_fields.pop("action").annotation) == (event_class.ACTION,)

    def server_default(name: str) -> object:
        info = server_fields[name]
        if info.is_required():
            return REQUIRED
        default = info.get_default(call_default_factory=True)
        return tuple(default) if isinstance(default, list) else default

    client_defaults = {
        field.name: REQUIRED if field.default is MISSING else field.default for field in fields(event_class)
    }
    assert client_defaults == {name: server_default(name) for name in server_fields}


def example_events() -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for path in sorted((REPO / "examples").glob("*.json")):
        document = json.loads(Path(path).read_text())
        events.extend(document.get("events", [document]))
    return events


@pytest.mark.parametrize("example", example_events(), ids=lambda e: f"{e['type']}-{e.get('action', '')}")
def test_a_client_event_sends_what_the_server_reads(example: dict[str, object]) -> None:
    event_class = (
        BY_WIRE_NAME.get((str(example["type"]), None))
        or BY_WIRE_NAME[(str(example["type"]), str(example["action"]))]
    )
    names = {field.name for field in fields(event_class)}
    arguments: dict[str, Any] = {}
    for name, value in example.items():
        if name not in names:
            continue
        if name in ("timestamp", "opened_at"):
            value = datetime.fromisoformat(str(value))
        elif isinstance(value, list):
            value = tuple(value)
        arguments[name] = value
    event = event_class(**arguments)

    sent = server.parse_events(json.dumps(event.to_wire()).encode())
    assert sent == server.parse_events(json.dumps(example).encode())
