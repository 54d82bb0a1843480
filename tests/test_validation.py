"""Bad input gets a clear 4xx naming the event index and field, is counted, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Exporter, make_exporter
from tests.exposition import changed, key

GOOD = {"type": "llm_request", "model": "m", "latency_ms": 10}


def llm(**fields: Any) -> dict[str, Any]:
    return {**GOOD, **fields}


BAD_EVENTS = [
    pytest.param({"type": "llm_call", "model": "m"}, "type", id="unknown-type"),
    pytest.param({"model": "m", "latency_ms": 1}, "type", id="missing-type"),
    pytest.param({"type": "llm_request", "model": "m"}, "latency_ms", id="missing-field"),
    pytest.param(llm(latency_ms="fast"), "latency_ms", id="mistyped-number"),
    pytest.param(llm(input_tokens=1.5), "input_tokens", id="fractional-tokens"),
    pytest.param(llm(input_tokens="10"), "input_tokens", id="number-as-string"),
    pytest.param(llm(latency_ms=-1), "latency_ms", id="negative-latency"),
    pytest.param(llm(input_tokens=-5), "input_tokens", id="negative-tokens"),
    pytest.param(llm(cost_usd=-0.01), "cost_usd", id="negative-cost"),
    pytest.param(llm(baseline_cost_usd=-1), "baseline_cost_usd", id="negative-baseline-cost"),
    pytest.param(llm(quality=100.5), "quality", id="quality-over-100"),
    pytest.param(llm(accuracy=-1), "accuracy", id="accuracy-below-0"),
    pytest.param(llm(status="timeout"), "status", id="unknown-status"),
    pytest.param(llm(error_type="Timeout"), "error_type", id="error-type-on-success"),
    pytest.param(llm(input_tokens=10, cached_tokens=11), "cached_tokens", id="cached-over-input"),
    pytest.param(
        llm(input_tokens=10, cached_tokens=6, cache_write_tokens=5),
        "cache_write_tokens",
        id="cache-over-input",
    ),
    pytest.param(llm(output_tokens=10, reasoning_tokens=11), "reasoning_tokens", id="reasoning-over-output"),
    pytest.param(
        llm(latency_ms=100, stream=True, time_to_first_token_ms=101),
        "time_to_first_token_ms",
        id="first-token-after-the-end",
    ),
    pytest.param(llm(time_to_first_token_ms=10), "time_to_first_token_ms", id="first-token-not-streamed"),
    pytest.param(llm(finish_reason="max_tokens"), "finish_reason", id="unknown-finish-reason"),
    pytest.param(llm(operation="chat.completions"), "operation", id="unknown-operation"),
    pytest.param(llm(experiment_id="e"), "variant_id", id="experiment-without-variant"),
    pytest.param(llm(attempt=0), "attempt", id="attempt-zero"),
    pytest.param(llm(fallback_from="m0"), "fallback_from", id="fallback-on-a-first-try"),
    pytest.param(llm(parameter_value=0.7, parameter="temperature"), "arm_id", id="parameter-without-arm"),
    pytest.param(llm(model=""), "model", id="empty-label-value"),
    pytest.param(llm(model="m" * 129), "model", id="overlong-label-value"),
    pytest.param(llm(model="a\nb"), "model", id="control-char-in-label"),
    pytest.param(llm(model='gpt"4'), "model", id="quote-in-label"),
    pytest.param(llm(model="gpt-4{o}"), "model", id="braces-in-label"),
    pytest.param(llm(task_type=" padded"), "task_type", id="leading-space-in-label"),
    pytest.param(llm(error_type="Time\u00e9out"), "error_type", id="non-ascii-in-label"),
    pytest.param(llm(colour="blue"), "colour", id="unknown-field"),
    pytest.param(llm(timestamp="2026-11-27T10:00:00"), "timestamp", id="timestamp-without-zone"),
    pytest.param(llm(timestamp="yesterday"), "timestamp", id="timestamp-unreadable"),
    pytest.param(llm(timestamp="1795737600"), "timestamp", id="timestamp-number-in-a-string"),
    pytest.param(llm(timestamp=1795737600000), "timestamp", id="timestamp-in-milliseconds"),
    pytest.param(llm(timestamp=-1), "timestamp", id="timestamp-negative"),
    pytest.param(llm(timestamp=True), "timestamp", id="timestamp-boolean"),
    pytest.param(llm(trace_id="XYZ"), "trace_id", id="bad-trace-id"),
    pytest.param(llm(trace_id="0" * 32), "trace_id", id="all-zero-trace-id"),
    pytest.param(llm(span_id="abc"), "span_id", id="bad-span-id"),
    pytest.param({"type": "feedback", "model": "m"}, "thumbs", id="feedback-without-answer"),
    pytest.param({"type": "feedback", "nps": 11}, "nps", id="nps-over-10"),
    pytest.param({"type": "feedback", "csat": 0}, "csat", id="csat-below-1"),
    pytest.param({"type": "feedback", "thumbs": "sideways"}, "thumbs", id="thumbs-unknown"),
    pytest.param({"type": "experiment", "experiment_id": "e"}, "action", id="experiment-without-action"),
    pytest.param(
        {"type": "experiment", "action": "paused", "experiment_id": "e"},
        "action",
        id="experiment-unknown-action",
    ),
    pytest.param(
        {"type": "experiment", "action": "progress", "experiment_id": "e", "confidence": 1.2},
        "confidence",
        id="confidence-over-1",
    ),
    pytest.param(
        {"type": "experiment", "action": "completed", "experiment_id": "e", "winner": "b", "sample_size": 3},
        "improvement",
        id="winner-without-improvement",
    ),
    pytest.param(
        {"type": "bandit", "action": "reward", "arm_id": "a", "reward": -0.5}, "reward", id="negative-reward"
    ),
    pytest.param({"type": "bandit", "action": "pull", "arm_id": "a"}, "explored", id="pull-without-explored"),
    pytest.param(
        {"type": "budget", "action": "spend", "category": "token", "amount_usd": 1},
        "category",
        id="token-spend-counted-twice",
    ),
    pytest.param(
        {"type": "budget", "action": "limit", "period": "week", "limit_usd": 1},
        "period",
        id="unknown-budget-period",
    ),
    pytest.param(
        {"type": "model_health", "model": "m", "available": "yes"}, "available", id="available-not-boolean"
    ),
    pytest.param(
        {"type": "model_health", "model": "m", "available": True, "error_rate": 2},
        "error_rate",
        id="error-rate-over-1",
    ),
    pytest.param({"type": "business"}, "baseline_quality", id="business-without-values"),
    pytest.param(
        {
            "type": "incident",
            "action": "resolved",
            "incident_id": "i",
            "severity": "sev1",
            "timestamp": "2026-11-27T10:00:00Z",
            "opened_at": "2026-11-27T11:00:00Z",
        },
        "opened_at",
        id="resolved-before-opened",
    ),
    pytest.param(
        {"type": "incident", "action": "opened", "incident_id": "i", "severity": "sev9"},
        "severity",
        id="unknown-severity",
    ),
    pytest.param({"type": "deployment", "action": "deployed"}, "version", id="deployment-without-version"),
    pytest.param({"type": "log", "level": "warn", "message": "m"}, "level", id="log-below-error"),
    pytest.param(
        {"type": "log", "level": "error", "message": "m" * 1025}, "message", id="log-overlong-message"
    ),
    pytest.param(
        {"type": "log", "level": "critical", "message": "m", "component": "a b\n"},
        "component",
        id="log-component-not-a-label-value",
    ),
]


@pytest.mark.parametrize(("event", "field"), BAD_EVENTS)
def test_bad_event_is_refused_naming_the_field(exporter: Exporter, event: dict[str, Any], field: str) -> None:
    before = exporter.scrape()
    response = exporter.post(event)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_events"
    assert [(p["index"], p["field"]) for p in body["problems"]][:1] == [(0, field)]
    after = exporter.scrape()
    assert changed(before, after) == {}
    rejected = [
        k for k in after if k[0] == "llmopt_exporter_events_rejected_total" and after[k] != before.get(k)
    ]
    assert len(rejected) == 1 and dict(rejected[0][1])["reason"] == "invalid_event"
    assert after[rejected[0]] == 1


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_not_json_and_the_answer_shows_where(exporter: Exporter, value: str) -> None:
    response = exporter.post(f'{{"type":"llm_request","model":"m","latency_ms":{value}}}'.encode())
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_body"
    assert f'"latency_ms":{value}' in response.json()["message"]


@pytest.mark.parametrize("value", ["1e400", "-1e400", "1" * 400])
def test_numbers_beyond_a_float_are_refused_naming_the_field(exporter: Exporter, value: str) -> None:
    response = exporter.post(f'{{"type":"llm_request","model":"m","latency_ms":{value}}}'.encode())
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "latency_ms"


def test_batch_is_all_or_nothing(exporter: Exporter) -> None:
    before = exporter.scrape()
    response = exporter.post(
        {"events": [GOOD, GOOD, llm(latency_ms=-3), {"type": "feedback", "thumbs": "up"}]}
    )
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {"index": 2, "field": "latency_ms", "message": "Expected `float` >= 0.0"}
    ]
    assert response.json()["problem_count"] == 1
    after = exporter.scrape()
    assert changed(before, after) == {}
    rejected = "llmopt_exporter_events_rejected_total"
    assert after[key(rejected, type="llm_request", reason="batch_rejected")] == 2
    assert after[key(rejected, type="llm_request", reason="invalid_event")] == 1
    assert after[key(rejected, type="feedback", reason="batch_rejected")] == 1
    assert after[key("llmopt_exporter_events_accepted_total", type="llm_request")] == 0


def test_every_problem_of_a_batch_is_reported(exporter: Exporter) -> None:
    response = exporter.post({"events": [llm(quality=101), GOOD, {"type": "nope"}]})
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [(0, "quality"), (2, "type")]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        pytest.param(b"{not json", 400, "malformed_body", id="malformed-json"),
        pytest.param(b"", 400, "malformed_body", id="empty-body"),
        pytest.param(b'"just a string"', 422, "invalid_events", id="not-an-object"),
        pytest.param(b'{"events": []}', 422, "invalid_events", id="empty-batch"),
        pytest.param(b'{"events": {"type": "feedback"}}', 422, "invalid_events", id="events-not-a-list"),
    ],
)
def test_bodies_that_are_not_events(exporter: Exporter, body: bytes, status: int, error: str) -> None:
    before = exporter.scrape()
    response = exporter.post(body)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert changed(before, exporter.scrape()) == {}


def test_empty_batch_names_the_events_field(exporter: Exporter) -> None:
    problems = exporter.post({"events": []}).json()["problems"]
    assert [(p["index"], p["field"]) for p in problems] == [(None, "events")]


def test_malformed_body_is_counted(exporter: Exporter) -> None:
    exporter.post(b"{")
    after = exporter.scrape()
    assert after[key("llmopt_exporter_events_rejected_total", type="unknown", reason="malformed_body")] == 1


def test_wrong_content_type_is_415(exporter: Exporter) -> None:
    response = exporter.client.post(
        "/v1/events", content=json.dumps(GOOD), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert "Content-Type" in response.json()["message"]
    reason = key("llmopt_exporter_events_rejected_total", type="unknown", reason="unsupported_media_type")
    assert exporter.scrape()[reason] == 1


def test_body_over_the_limit_is_413() -> None:
    for exporter in make_exporter(max_body_bytes=2048):
        body = json.dumps({"events": [GOOD] * 100}).encode()
        assert len(body) > 2048
        before = exporter.scrape()
        response = exporter.post(body)
        assert response.status_code == 413
        assert "max_body_bytes" in response.json()["message"]
        assert changed(before, exporter.scrape()) == {}


def test_batch_over_the_event_limit_is_413() -> None:
    for exporter in make_exporter(max_batch_events=3):
        before = exporter.scrape()
        response = exporter.post({"events": [GOOD] * 4})
        assert response.status_code == 413
        assert "max_batch_events" in response.json()["message"]
        after = exporter.scrape()
        assert changed(before, after) == {}
        assert (
            after[key("llmopt_exporter_events_rejected_total", type="llm_request", reason="too_large")] == 4
        )


@pytest.mark.parametrize(
    "timestamp", [1795737600, 1795737600.5, "2026-11-27T00:00:00Z", "2026-11-27T01:00:00+01:00"]
)
def test_timestamps_are_unix_seconds_or_rfc3339(exporter: Exporter, timestamp: object) -> None:
    event = {"type": "model_health", "model": "m", "available": True, "timestamp": timestamp}
    assert exporter.post(event).status_code == 200
    seen = exporter.scrape()[key("llmopt_model_last_check_timestamp_seconds", model="m", provider="unknown")]
    assert int(seen) == 1795737600
