"""``decode_events`` decides and answers exactly as ``parse_events`` does, for any body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.events import InvalidBody, InvalidEvents, parse_events
from app.ingest import decode_events
from tests.conftest import EXAMPLES
from tests.test_validation import BAD_EVENTS, GOOD


def _outcome(decode: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "accepted", decode(body)
    except InvalidEvents as err:
        return "invalid_events", (err.problems, err.event_types, str(err))
    except InvalidBody as err:
        return "invalid_body", err.message


def _bodies() -> list[Any]:
    bodies = [pytest.param(path.read_bytes(), id=path.stem) for path in sorted(EXAMPLES.glob("*.json"))]
    for bad in BAD_EVENTS:
        event = bad.values[0]
        bodies.append(pytest.param(json.dumps(event).encode(), id=f"{bad.id}-alone"))
        bodies.append(pytest.param(json.dumps({"events": [GOOD, event]}).encode(), id=f"{bad.id}-in-batch"))
    odd = {
        "not-json": b"{not json",
        "empty": b"",
        "string": b'"events"',
        "list": b"[]",
        "empty-batch": b'{"events": []}',
        "events-not-a-list": b'{"events": {"type": "feedback"}}',
        "batch-with-extra-key": json.dumps({"events": [GOOD], "extra": 1}).encode(),
        "event-with-events-key": json.dumps({**GOOD, "events": [GOOD]}).encode(),
        "event-mentioning-events": json.dumps({**GOOD, "model": "events"}).encode(),
        "batch-spaced": b'{ "events" : [ {"type": "llm_request", "model": "m", "latency_ms": 1} ] }',
        "unix-timestamp": json.dumps({**GOOD, "timestamp": 1764201600}).encode(),
        "nan": b'{"type":"llm_request","model":"m","latency_ms":NaN}',
        "trailing-data": json.dumps(GOOD).encode() + b" x",
    }
    bodies += [pytest.param(body, id=name) for name, body in odd.items()]
    return bodies


@pytest.mark.parametrize("body", _bodies())
def test_same_decision_and_problems_as_parse_events(body: bytes) -> None:
    assert _outcome(decode_events, body) == _outcome(parse_events, body)
