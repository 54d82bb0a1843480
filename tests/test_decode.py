"""The decoder, body by body: what it accepts (the structs of each event's action) and, for what it
refuses, the status class, the event index and field it names; its limits apply before the work."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest

from app.decode import EventDecoder, InvalidBody, InvalidEvents, TooManyEvents
from app.events import BanditPull, BanditReward, ExperimentStarted, Feedback, LlmRequest
from tests.conftest import CLOCK

GOOD = {"type": "llm_request", "model": "m", "latency_ms": 10}
PULL = {"type": "bandit", "action": "pull", "arm_id": "a", "explored": True}
DECODER = EventDecoder(5, 3, 7 * 86400.0, 300.0, lambda: CLOCK)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def outcome(body: bytes, decoder: EventDecoder = DECODER) -> Any:
    """What the decoder makes of ``body``: the struct names, or the refusal and what it names."""
    try:
        return [type(event).__name__ for event in decoder.decode(body)]
    except InvalidEvents as err:
        return "invalid", [(problem.index, problem.field) for problem in err.problems]
    except TooManyEvents:
        return "too_many"
    except InvalidBody:
        return "not_json"


ACCEPTED = [
    pytest.param(_json(GOOD), ["LlmRequest"], id="one-event"),
    pytest.param(_json({"events": [GOOD, PULL]}), ["LlmRequest", "BanditPull"], id="batch-of-two-kinds"),
    pytest.param(b'{ "events" : [ {"type": "feedback", "thumbs": "up"} ] }', ["Feedback"], id="batch-spaced"),
    pytest.param(_json({**GOOD, "model": "events"}), ["LlmRequest"], id="event-mentioning-events"),
    pytest.param(
        _json({"type": "log", "level": "error", "message": 'the "events" table'}),
        ["LogEvent"],
        id="quoted-events",
    ),
    pytest.param(
        _json({"type": "experiment", "action": "started", "experiment_id": "e", "variants": ["type", "b"]}),
        ["ExperimentStarted"],
        id="variant-named-type",
    ),
    pytest.param(_json({**GOOD, "timestamp": CLOCK - 3600}), ["LlmRequest"], id="unix-seconds"),
    pytest.param(
        _json({**GOOD, "timestamp": "2026-11-27T11:00:00+01:00"}), ["LlmRequest"], id="rfc3339-zone"
    ),
    pytest.param(
        _json({"type": "bandit", "action": "converged", "convergence_seconds": 5, "arm_id": None}),
        ["BanditConverged"],
        id="null-optional-of-an-action",
    ),
]


@pytest.mark.parametrize(("body", "structs"), ACCEPTED)
def test_accepted_bodies_decode_to_the_struct_of_each_action(body: bytes, structs: list[str]) -> None:
    assert outcome(body) == structs


REFUSED = [
    pytest.param(b"{not json", "not_json", id="not-json"),
    pytest.param(b"", "not_json", id="empty"),
    pytest.param(_json(GOOD) + b" x", "not_json", id="trailing-data"),
    pytest.param(b'{"type":"llm_request","model":"m","latency_ms":NaN}', "not_json", id="nan"),
    pytest.param(b"\xff\xfe{}", "not_json", id="not-utf8"),
    pytest.param(b'"events"', ("invalid", [(None, "(body)")]), id="a-string"),
    pytest.param(b"[]", ("invalid", [(None, "events")]), id="bare-array"),
    pytest.param(_json([GOOD]), ("invalid", [(None, "events")]), id="bare-array-of-events"),
    pytest.param(b'{"events": []}', ("invalid", [(None, "events")]), id="empty-batch"),
    pytest.param(
        b'{"events": {"type": "feedback"}}', ("invalid", [(None, "events")]), id="events-not-a-list"
    ),
    pytest.param(_json({"events": [GOOD], "extra": 1}), ("invalid", [(None, "extra")]), id="batch-extra-key"),
    pytest.param(_json({**GOOD, "events": [GOOD]}), ("invalid", [(0, "events")]), id="event-with-events-key"),
    pytest.param(_json({"model": "m"}), ("invalid", [(0, "type")]), id="no-type"),
    pytest.param(_json({"type": "nope"}), ("invalid", [(0, "type")]), id="unknown-type"),
    pytest.param(_json({"type": "bandit", "arm_id": "a"}), ("invalid", [(0, "action")]), id="no-action"),
    pytest.param(_json({**PULL, "action": "push"}), ("invalid", [(0, "action")]), id="unknown-action"),
    pytest.param(_json({**PULL, "reward": 1}), ("invalid", [(0, "reward")]), id="field-of-another-action"),
    pytest.param(_json({**PULL, "explored": None}), ("invalid", [(0, "explored")]), id="null-required"),
    pytest.param(
        _json({"events": [GOOD, {**GOOD, "latency_ms": -1}, PULL, {"type": "x"}]}),
        ("invalid", [(1, "latency_ms"), (3, "type")]),
        id="every-invalid-event-named",
    ),
    pytest.param(_json({"events": [5]}), ("invalid", [(0, "(event)")]), id="event-not-an-object"),
    pytest.param(
        b'{"events":[{"type":"llm_request","model":"m","latency_ms":1,"input_tokens":1' + b"0" * 400 + b"}]}",
        ("invalid", [(0, "input_tokens")]),
        id="integer-of-400-digits",
    ),
    pytest.param(
        _json({**GOOD, "cost_usd": 1e308}), ("invalid", [(0, "cost_usd")]), id="cost-beyond-its-range"
    ),
    pytest.param(
        b'{"type":"llm_request","model":"m","latency_ms":1e400}',
        ("invalid", [(0, "latency_ms")]),
        id="float-overflow",
    ),
    pytest.param(
        _json({"type": "experiment", "action": "progress", "experiment_id": "e", "sample_size": 2**53 + 1}),
        ("invalid", [(0, "sample_size")]),
        id="integer-beyond-2-53",
    ),
    pytest.param(
        _json({**GOOD, "timestamp": "9999-12-31T23:59:59Z"}), ("invalid", [(0, "timestamp")]), id="year-9999"
    ),
    pytest.param(_json({**GOOD, "timestamp": CLOCK + 301}), ("invalid", [(0, "timestamp")]), id="future"),
    pytest.param(
        _json({**GOOD, "timestamp": CLOCK - 7 * 86400 - 1}),
        ("invalid", [(0, "timestamp")]),
        id="older-than-a-week",
    ),
    pytest.param(
        _json(
            {
                "type": "incident",
                "action": "resolved",
                "incident_id": "i",
                "severity": "sev1",
                "opened_at": "0001-01-01T00:00:00Z",
            }
        ),
        ("invalid", [(0, "opened_at")]),
        id="opened-in-year-1",
    ),
    pytest.param(_json({**GOOD, "event_id": "x\n"}), ("invalid", [(0, "event_id")]), id="newline-ending-id"),
    pytest.param(_json({**GOOD, "model": "m\n"}), ("invalid", [(0, "model")]), id="newline-ending-label"),
    pytest.param(
        _json({"type": "experiment", "action": "started", "experiment_id": "e", "variants": ["a", "b c!"]}),
        ("invalid", [(0, "variants[1]")]),
        id="bad-label-in-a-list",
    ),
]


@pytest.mark.parametrize(("body", "refusal"), REFUSED)
def test_refused_bodies_name_the_event_and_field(body: bytes, refusal: Any) -> None:
    assert outcome(body) == refusal


def test_no_message_shows_python_none() -> None:
    for body in (b"[]", b'{"events": []}', _json({"events": [GOOD], "extra": 1}), _json({"type": "x"})):
        with pytest.raises(InvalidEvents) as refused:
            DECODER.decode(body)
        assert "None" not in str(refused.value)
        assert all("None" not in problem.message for problem in refused.value.problems)


def test_a_bare_array_answer_says_what_a_batch_is() -> None:
    with pytest.raises(InvalidEvents) as refused:
        DECODER.decode(_json([GOOD]))
    assert '{"events": [...]}' in refused.value.problems[0].message


def test_a_missing_type_lists_the_types() -> None:
    with pytest.raises(InvalidEvents) as refused:
        DECODER.decode(_json({"model": "m"}))
    assert "type is required" in refused.value.problems[0].message
    assert "llm_request, feedback" in refused.value.problems[0].message


def test_problems_listed_are_bounded_and_their_total_given() -> None:
    bad = {**GOOD, "latency_ms": -1}
    with pytest.raises(InvalidEvents) as refused:
        DECODER.decode(_json({"events": [bad] * 5}))
    assert len(refused.value.problems) == 3  # max_problems
    assert refused.value.total == 5
    assert refused.value.invalid == frozenset(range(5))
    assert str(refused.value).endswith("(and 4 more problems)")


@pytest.mark.parametrize("item", [b"{}", _json(GOOD)], ids=["empty-objects", "valid-events"])
def test_a_batch_over_the_limit_is_refused_without_decoding_its_events(item: bytes) -> None:
    """A million events in a few MB of JSON: refused for their number, reading at most the limit."""
    decoder = EventDecoder(5000, 20, 7 * 86400.0, 300.0, lambda: CLOCK)
    body = b'{"events":[' + b",".join([item] * 1_000_000) + b"]}"
    assert len(gzip.compress(body)) < len(body) / 100  # what an attacker sends is small
    with pytest.raises(TooManyEvents) as refused:
        decoder.decode(body)
    assert len(refused.value.event_types) == 5001  # the limit and one past it, no more


def test_the_structs_are_those_of_the_contract() -> None:
    events = DECODER.decode(
        _json(
            {
                "events": [
                    GOOD,
                    PULL,
                    {"type": "bandit", "action": "reward", "arm_id": "a", "reward": 0.5},
                    {"type": "feedback", "thumbs": "up"},
                    {"type": "experiment", "action": "started", "experiment_id": "e"},
                ]
            }
        )
    )
    assert [type(event) for event in events] == [
        LlmRequest,
        BanditPull,
        BanditReward,
        Feedback,
        ExperimentStarted,
    ]
    assert events[1] == BanditPull(action="pull", arm_id="a", explored=True)
    assert events[4] == ExperimentStarted(action="started", experiment_id="e", variants=[])


def test_event_times_are_judged_by_the_decoders_clock() -> None:
    now = time.time()
    decoder = EventDecoder(5, 3, 60.0, 5.0, lambda: now)
    assert outcome(_json({**GOOD, "timestamp": now - 59}), decoder) == ["LlmRequest"]
    assert outcome(_json({**GOOD, "timestamp": now - 61}), decoder) == ("invalid", [(0, "timestamp")])
    assert outcome(_json({**GOOD, "timestamp": now + 6}), decoder) == ("invalid", [(0, "timestamp")])
