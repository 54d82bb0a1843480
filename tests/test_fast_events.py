"""``app.fast_events`` accepts no body the contract (``app.events``) refuses, reads every accepted
event to the same values, and ingest through it changes the metrics exactly as the contract's
models do."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from unittest import mock

import msgspec
import pytest
from fastapi.testclient import TestClient

from app import fast_events
from app.config import Settings
from app.events import InvalidBody, InvalidEvents, parse_events
from app.main import create_app
from bench import workload
from tests.conftest import CLOCK
from tests.exposition import samples
from tests.test_decode import _bodies

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
COMMON = {"event_id": "ev-1", "timestamp": "2026-11-27T09:15:02.120Z", "trace_id": TRACE, "span_id": SPAN}
# Every kind app.fast_events reads, with all its fields, and with only the required ones.
BASES: dict[str, dict[str, Any]] = {
    "llm_request": {
        **COMMON,
        "type": "llm_request",
        "model": "gpt-4o",
        "provider": "openai",
        "task_type": "chat",
        "status": "error",
        "error_type": "Timeout",
        "latency_ms": 812.5,
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_tokens": 100,
        "cost_usd": 0.01,
        "baseline_cost_usd": 0.03,
        "quality": 88,
        "accuracy": 90.5,
        "relevance": 70,
        "coherence": 99,
        "completeness": 100,
        "experiment_id": "prompt-v5",
        "variant_id": "control",
        "bandit_id": "temperature",
        "arm_id": "t0.7",
        "parameter": "temperature",
        "parameter_value": 0.7,
    },
    "llm_request-minimal": {"type": "llm_request", "model": "m", "latency_ms": 1},
    "feedback": {
        **COMMON,
        "type": "feedback",
        "model": "gpt-4o",
        "experiment_id": "e",
        "variant_id": "v",
        "thumbs": "up",
        "nps": 9,
        "csat": 4,
    },
    "feedback-minimal": {"type": "feedback", "csat": 1},
    "bandit-pull": {
        **COMMON,
        "type": "bandit",
        "action": "pull",
        "bandit_id": "temperature",
        "arm_id": "t0.2",
        "explored": True,
        "parameter": "temperature",
        "parameter_value": 0.2,
    },
    "bandit-pull-minimal": {"type": "bandit", "action": "pull", "arm_id": "a", "explored": False},
    "bandit-reward": {
        **COMMON,
        "type": "bandit",
        "action": "reward",
        "bandit_id": "top_p",
        "arm_id": "p0.8",
        "reward": 0.5,
        "regret": 0.01,
    },
    "bandit-reward-minimal": {"type": "bandit", "action": "reward", "arm_id": "a", "reward": 0},
    "parameter_update": {
        **COMMON,
        "type": "parameter_update",
        "parameter": "top_p",
        "value": -2,
        "stability_score": 0.5,
        "performance_gain": -0.25,
        "improved": True,
    },
    "model_health": {
        **COMMON,
        "type": "model_health",
        "model": "gpt-4o",
        "provider": "openai",
        "available": False,
        "latency_ms": 300,
        "error_rate": 1,
    },
    "budget-spend": {**COMMON, "type": "budget", "action": "spend", "category": "compute", "amount_usd": 2.5},
    "experiment-progress": {
        **COMMON,
        "type": "experiment",
        "action": "progress",
        "experiment_id": "prompt-v5",
        "leader": "variant-b",
        "lead": 0.05,
        "confidence": 0.9,
        "progress": 0.4,
        "sample_size": 1000,
    },
    "business": {
        **COMMON,
        "type": "business",
        "baseline_quality": 80,
        "optimization_cost_usd": 1,
        "value_derived_usd": 10.5,
        "cost_savings_confidence": 0.5,
        "quality_improvement_confidence": 0,
    },
    "business-minimal": {"type": "business", "value_derived_usd": 0},
    "deployment": {
        **COMMON,
        "type": "deployment",
        "action": "rolled_back",
        "component": "router",
        "version": "v1.2.3",
    },
    "deployment-minimal": {"type": "deployment", "action": "deployed", "version": "7"},
    "log": {
        **COMMON,
        "type": "log",
        "level": "critical",
        "component": "router",
        "message": 'upstream failed: ünïcode "quoted"\n',
        "service": "svc",
        "logger": "app.router",
        "error_name": "TimeoutError",
        "error_message": "timed out",
        "error_stack": "Traceback...\n" * 100,
        "request_id": "req 1",
        "experiment_id": "any text at all",
    },
    "log-minimal": {"type": "log", "level": "error", "message": ""},
}
# Values every field is set to in turn: right and wrong types, bounds, label shapes, id shapes,
# timestamp shapes, and the values of other fields' literals.
VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    0.5,
    -0.0,
    1.0,
    5,
    10,
    11,
    100,
    100.5,
    101,
    1e308,
    2**63,
    2**64,
    2**70,
    "",
    "m",
    "m\n",
    " m",
    "m ",
    "a b",
    "a/b:c@d+e=f.g-h",
    "a" * 128,
    "a" * 129,
    "é" * 1024,
    "é" * 1025,
    "x" * 16384,
    "x" * 16385,
    "critical",
    "deployed",
    "rolled_back",
    "é",
    "ünïcode",
    "up",
    "down",
    "error",
    "success",
    "pull",
    "reward",
    "converged",
    "spend",
    "limit",
    "progress",
    "started",
    "compute",
    "token",
    "0" * 32,
    "0" * 16,
    TRACE,
    SPAN,
    TRACE.upper(),
    TRACE + "0",
    "2026-11-27T09:15:02Z",
    "2026-11-27T09:15:02.123456+05:30",
    "2026-11-27T09:15:02.1234567Z",
    "2026-11-27T09:15:02-00:00",
    "2026-11-27t09:15:02z",
    "2026-11-27 09:15:02Z",
    "2026-11-27T09:15:02",
    "2026-11-27T09:15:60Z",
    "2026-02-30T09:15:02Z",
    "0999-11-27T09:15:02Z",
    "2026-11-27T24:00:00Z",
    "2026-11-27T09:15:02+24:00",
    "1764201600",
    "-5",
    1764201600,
    1764201600.25,
    4_102_444_800,
    4_102_444_801,
    [],
    ["a"],
    {},
]


def _mutations() -> list[tuple[str, dict[str, Any]]]:
    """Each base event with each field of its type (and an unknown one) set to each value, or
    removed."""
    made = []
    for base_name, base in BASES.items():
        made.append((base_name, base))
        kin = [other for other in BASES.values() if other["type"] == base["type"]]
        fields = sorted({name for other in kin for name in other} | {"extra", "type", "action"})
        for field in fields:
            made.append((f"{base_name}-without-{field}", {k: v for k, v in base.items() if k != field}))
            for index, value in enumerate(VALUES):
                made.append((f"{base_name}-{field}-{index}", {**base, field: value}))
    return made


def _outcome(body: bytes) -> tuple[str, Any]:
    try:
        return "accepted", parse_events(body)
    except (InvalidEvents, InvalidBody) as err:
        return "refused", str(err)


def _same(fast: Any, model: Any) -> bool:
    """The struct has the model's attributes, each with the same value and type (and any other
    attribute it has is unset: a bandit pull has no reward)."""
    fields = type(model).model_fields
    if fast.type != model.type:
        return False
    if any(getattr(fast, name) is not msgspec.UNSET for name in fast.__struct_fields__ if name not in fields):
        return False
    for name in type(model).model_fields:
        ours, theirs = getattr(fast, name), getattr(model, name)
        if isinstance(theirs, datetime):
            if not isinstance(ours, datetime) or (ours, ours.utcoffset()) != (theirs, theirs.utcoffset()):
                return False
        elif (type(ours), repr(ours)) != (type(theirs), repr(theirs)):
            return False
    return True


def _disagreements(bodies: list[tuple[str, bytes]]) -> list[str]:
    found = []
    for name, body in bodies:
        fast = fast_events.decode(body)
        if fast is None:
            continue
        verdict, events = _outcome(body)
        if verdict != "accepted":
            found.append(f"{name}: accepted here, refused by the contract: {events}")
        elif len(fast) != len(events) or not all(map(_same, fast, events)):
            found.append(f"{name}: read differently: {fast!r} against {events!r}")
    return found


def test_every_base_event_takes_the_fast_path_alone_and_in_a_batch() -> None:
    for base in BASES.values():
        assert fast_events.decode(json.dumps(base).encode()) is not None, base
    assert fast_events.decode(json.dumps({"events": list(BASES.values())}).encode()) is not None


def test_no_mutated_event_is_accepted_or_read_otherwise_than_by_the_contract() -> None:
    mutations = _mutations()
    bodies = [(name, json.dumps(event).encode()) for name, event in mutations]
    bodies += [
        (f"{name}-in-batch", json.dumps({"events": [BASES["feedback"], event]}).encode())
        for name, event in mutations
    ]
    accepted = sum(fast_events.decode(body) is not None for _, body in bodies)
    # Both ways are exercised: many mutations stay valid, many do not.
    assert 1000 < accepted < len(bodies) - 1000
    assert _disagreements(bodies) == []


@pytest.mark.parametrize("body", _bodies())
def test_examples_and_refused_bodies_agree(body: bytes) -> None:
    assert _disagreements([("body", body)]) == []


ODD = {
    "duplicate-key-last-wins": b'{"type":"feedback","thumbs":"up","thumbs":"sideways"}',
    "duplicate-type": b'{"type":"feedback","thumbs":"up","type":"llm_request"}',
    "duplicate-type-other-order": b'{"type":"llm_request","model":"m","latency_ms":1,"type":"feedback"}',
    "type-last": b'{"thumbs":"up","type":"feedback"}',
    "lone-surrogate": b'{"type":"feedback","thumbs":"up","model":"\\ud800"}',
    "escaped-label": b'{"type":"feedback","thumbs":"up","model":"\\u0061b"}',
    "nul-in-label": b'{"type":"feedback","thumbs":"up","model":"a\\u0000"}',
    "batch-and-extra": b'{"events":[{"type":"feedback","thumbs":"up"}],"more":1}',
    "batch-empty": b'{"events":[]}',
    "batch-null": b'{"events":null}',
    "events-in-event": b'{"type":"feedback","thumbs":"up","events":[]}',
    "bom": b'\xef\xbb\xbf{"type":"feedback","thumbs":"up"}',
    "whitespace": b' \n{ "type" : "feedback" , "thumbs" : "up" }\n ',
    "exponent-int": b'{"type":"llm_request","model":"m","latency_ms":1,"input_tokens":1e3}',
    "float-for-int": b'{"type":"llm_request","model":"m","latency_ms":1,"input_tokens":3.0}',
    "huge-float": b'{"type":"llm_request","model":"m","latency_ms":1e999}',
    "timestamp-bool": b'{"type":"feedback","thumbs":"up","timestamp":true}',
    "utf8-invalid": b'{"type":"feedback","thumbs":"up","model":"\xff"}',
}


@pytest.mark.parametrize("body", [pytest.param(body, id=name) for name, body in ODD.items()])
def test_odd_bodies_agree(body: bytes) -> None:
    assert _disagreements([("body", body)]) == []


def test_ingest_through_the_fast_path_changes_the_metrics_as_the_contract_does() -> None:
    bodies = [workload.body(workload.events(400, seed=seed)) for seed in range(5)]
    bodies += [json.dumps(event).encode() for event in BASES.values()]

    def exposition() -> dict[Any, float]:
        app = create_app(Settings(), clock=lambda: CLOCK)
        with TestClient(app) as client:
            for body in bodies:
                response = client.post(
                    "/v1/events", content=body, headers={"content-type": "application/json"}
                )
                assert response.status_code == 200, response.text
            return {
                sample_key: value
                for sample_key, value in samples(client.get("/metrics").text).items()
                if sample_key[0].startswith("llmopt_") and "ingest_duration" not in sample_key[0]
            }

    decoded: list[bool] = []
    decode = fast_events.decode

    def counted(body: bytes) -> list[Any] | None:
        events = decode(body)
        decoded.append(events is not None)
        return events

    with mock.patch.object(fast_events, "decode", counted):
        ours = exposition()
    assert decoded == [True] * len(bodies)
    with mock.patch.object(fast_events, "decode", return_value=None):
        theirs = exposition()
    assert ours == theirs
