"""Hostile and buggy bodies: refusals cost what the limits allow, never a 500, never a partial
apply, never a counter at +Inf, never state moved by an absurd time.

Each test reproduces a finding of an attack on the exporter, at a size that fits the test suite:
amplification by a small gzip of a million empty events; a 500 after part of a batch was applied;
money that overflows a counter; timestamps in year 9999 or year 1.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CLOCK, Exporter, make_exporter
from tests.exposition import changed, key

GOOD = {"type": "llm_request", "model": "m", "latency_ms": 10, "cost_usd": 0.5}
SELF_METRICS = "llmopt_exporter_"


def domain(samples: dict[Any, float]) -> dict[Any, float]:
    return {sample: value for sample, value in samples.items() if not sample[0].startswith(SELF_METRICS)}


def test_a_million_empty_events_in_a_small_gzip_get_a_small_413() -> None:
    for exporter in make_exporter(max_batch_events=5000):
        body = b'{"events":[' + b",".join([b"{}"] * 1_000_000) + b"]}"
        compressed = gzip.compress(body)
        assert len(compressed) < 10_000
        before = exporter.scrape()
        response = exporter.post(compressed, **{"content-encoding": "gzip"})
        assert response.status_code == 413, response.text[:300]
        assert len(response.content) < 1000, "the answer is bounded, whatever the body"
        after = exporter.scrape()
        assert changed(domain(before), domain(after)) == {}
        refused = after[key("llmopt_exporter_events_rejected_total", type="unknown", reason="too_large")]
        assert refused == 5001, "only the events up to the limit were read"


def test_the_problems_of_a_large_invalid_batch_are_listed_up_to_the_limit() -> None:
    for exporter in make_exporter(max_problems=20):
        response = exporter.post({"events": [{}] * 5000})
        assert response.status_code == 422
        answer = response.json()
        assert len(answer["problems"]) == 20
        assert answer["problem_count"] == 5000
        assert len(response.content) < 20 * 250, "each problem's message is short"


def test_a_batch_with_an_integer_too_large_for_any_counter_applies_nothing_however_often_sent() -> None:
    huge = b'{"type":"llm_request","model":"m","latency_ms":10,"input_tokens":1' + b"0" * 400 + b"}"
    body = b'{"events":[' + json.dumps(GOOD).encode() + b"," + huge + b"]}"
    for exporter in make_exporter():
        before = exporter.scrape()
        for _ in range(3):
            response = exporter.post(body)
            assert response.status_code == 422, response.text
            assert response.json()["problems"][0]["index"] == 1
            assert response.json()["problems"][0]["field"] == "input_tokens"
        after = exporter.scrape()
        assert changed(domain(before), domain(after)) == {}
        assert after[key("llmopt_exporter_events_accepted_total", type="llm_request")] == 0


def test_money_beyond_its_range_is_refused_so_no_counter_reaches_infinity() -> None:
    for exporter in make_exporter():
        for _ in range(2):
            response = exporter.post({**GOOD, "cost_usd": 1e308})
            assert response.status_code == 422
            assert response.json()["problems"][0]["field"] == "cost_usd"
        assert not any(math.isinf(value) for value in exporter.scrape().values())


def test_an_improvement_in_year_9999_is_refused_and_moves_nothing() -> None:
    update = {"type": "parameter_update", "parameter": "t", "value": 1, "improved": True}
    for exporter in make_exporter():
        before = exporter.scrape()
        response = exporter.post({**update, "timestamp": "9999-12-31T23:59:59Z"})
        assert response.status_code == 422
        assert response.json()["problems"][0]["field"] == "timestamp"
        assert changed(domain(before), domain(exporter.scrape())) == {}


def test_an_incident_opened_in_year_1_adds_no_downtime() -> None:
    resolved = {
        "type": "incident",
        "action": "resolved",
        "incident_id": "i",
        "severity": "sev1",
        "opened_at": "0001-01-01T00:00:00Z",
    }
    for exporter in make_exporter():
        before = exporter.scrape()
        response = exporter.post(resolved)
        assert response.status_code == 422
        assert response.json()["problems"][0]["field"] == "opened_at"
        assert changed(domain(before), domain(exporter.scrape())) == {}


# --- Any batch of extreme values ------------------------------------------------------------------

# Values that break naive code: the limits of floats and integers, text that is not a label,
# other JSON types. Written into the body as raw JSON, so also what json.dumps cannot write.
EXTREMES = [
    b"0",
    b"-0.0",
    b"1e-320",
    b"1e308",
    b"-1e308",
    b"1e400",
    b"9007199254740993",
    b"1" + b"0" * 400,
    b"-1",
    b"true",
    b"null",
    b'""',
    b'"a b"',
    b'"\\u0000"',
    b'"' + b"x" * 5000 + b'"',
    b'"9999-12-31T23:59:59Z"',
    b'"0001-01-01T00:00:00Z"',
    b"[]",
    b'{"nested": {"deeper": [1, 2, 3]}}',
]
EVENTS = [
    GOOD,
    {"type": "feedback", "thumbs": "up", "nps": 9, "csat": 4, "model": "m"},
    {"type": "bandit", "action": "reward", "arm_id": "a", "reward": 0.5, "regret": 0.1},
    {
        "type": "bandit",
        "action": "pull",
        "arm_id": "a",
        "explored": True,
        "parameter": "t",
        "parameter_value": 1,
    },
    {"type": "budget", "action": "spend", "category": "compute", "amount_usd": 3},
    {"type": "budget", "action": "limit", "period": "day", "limit_usd": 30},
    {"type": "experiment", "action": "progress", "experiment_id": "e", "sample_size": 5, "confidence": 0.5},
    {
        "type": "experiment",
        "action": "completed",
        "experiment_id": "e",
        "sample_size": 5,
        "duration_seconds": 9,
    },
    {
        "type": "incident",
        "action": "resolved",
        "incident_id": "i",
        "severity": "sev2",
        "opened_at": CLOCK - 60,
    },
    {"type": "model_health", "model": "m", "available": True, "latency_ms": 5, "error_rate": 0.1},
    {"type": "parameter_update", "parameter": "t", "value": 0.5, "performance_gain": 0.1, "improved": True},
    {"type": "business", "baseline_quality": 70, "optimization_cost_usd": 2, "value_derived_usd": 5},
    {"type": "log", "level": "error", "message": "m", "component": "c"},
    {"type": "deployment", "action": "deployed", "version": "1"},
]


@st.composite
def hostile_events(draw: st.DrawFn) -> bytes:
    """An event whose fields may hold any of the extreme values, as raw JSON."""
    event = dict(draw(st.sampled_from(EVENTS)))
    spoiled = draw(st.lists(st.sampled_from(sorted(event)), max_size=3, unique=True))
    raw = {name: json.dumps(value).encode() for name, value in event.items()}
    for name in spoiled:
        raw[name] = draw(st.sampled_from(EXTREMES))
    return b"{" + b",".join(json.dumps(name).encode() + b":" + value for name, value in raw.items()) + b"}"


@given(batch=st.lists(hostile_events(), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_batch_of_extreme_values_gets_a_500_or_changes_anything_unless_accepted(
    batch: list[bytes],
) -> None:
    body = b'{"events":[' + b",".join(batch) + b"]}"
    for exporter in make_exporter():
        before = exporter.scrape()
        response = exporter.post(body)
        after = exporter.scrape()
        assert response.status_code in (200, 400, 413, 422), response.text
        if response.status_code != 200:
            assert changed(domain(before), domain(after)) == {}
        else:
            assert response.json()["accepted"] == len(batch)
        assert not any(math.isinf(value) or math.isnan(value) for value in domain(after).values())
        text = exporter.client.get("/metrics").text
        assert not re.search(r" [+-]?Inf\b", text.replace('le="+Inf"', "")), "no sample is infinite"


def test_extreme_values_are_refused_not_crashed_on(exporter: Exporter) -> None:
    """A spot check of the property above, one extreme value at a time, on the commonest event."""
    for value in EXTREMES:
        body = b'{"type":"llm_request","model":"m","latency_ms":' + value + b"}"
        response = exporter.post(body)
        assert response.status_code in (200, 400, 422), (value, response.text)


@given(raw=hostile_events())
@settings(max_examples=300, deadline=None)
def test_the_one_expression_check_agrees_with_the_check_by_check(raw: bytes) -> None:
    """The decoder's fast check of an event (one generated expression) passes exactly the events
    its check by check finds nothing wrong with."""
    import msgspec

    from app import decode

    try:
        event = decode._SINGLE.decode(raw)
    except msgspec.DecodeError:
        return  # refused by the types: neither check runs
    decoder = decode.EventDecoder(5, 100, 7 * 86400.0, 300.0, lambda: CLOCK)
    window = decoder._window(CLOCK)
    problems: list[decode.Problem] = []
    # First check by check: that also remembers the event's new label values as matched, without
    # which the fast check sends a valid event to the check by check (never an invalid one through).
    checked = decoder._checked(event, 0, window, problems)
    actions = decode._ACTIONS_OF.get(type(event))
    if actions is not None:
        event = actions[event.action].convert(event)
        if event is None:
            assert problems, "a wire struct the converter refuses has a problem"
            return
    checks = decode._CHECKS[type(event)]
    passes = checks.passes(event, CLOCK, window.low, window.high, window.low_time, window.high_time)
    assert passes == (not problems), problems
    if passes:
        assert checked == event
