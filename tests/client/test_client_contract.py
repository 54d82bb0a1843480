"""A client event says to the exporter what the same event written as JSON says: for every example
event, the client's class (generated from the exporter's contract) sends what the exporter reads
from the example."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from client_support import REPO
from llmopt_client import ALL_EVENTS, Event

from app.decode import EventDecoder

BY_WIRE_NAME: dict[tuple[str, str | None], type[Event]] = {
    (cls.EVENT_TYPE, cls.ACTION): cls for cls in ALL_EVENTS
}
# After every time of the examples.
NOON = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()
DECODER = EventDecoder(10, 10, 7 * 86400.0, 300.0, lambda: NOON)


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

    sent = DECODER.decode(json.dumps(event.to_wire()).encode())
    assert sent == DECODER.decode(json.dumps(example).encode())
