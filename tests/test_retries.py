"""Retries, fallbacks and rate limits: every try is an llm_request event, and its `attempt` and
`fallback_from` tell the tries of one logical call apart, so logical calls and their failures can
be counted; a rate limit is one error type however the client spells it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Exporter
from tests.exposition import SampleKey, key

SERVED = {"provider": "openai", "task_type": "chat"}


def _try(event_id: str, model: str, attempt: int, **more: Any) -> dict[str, Any]:
    return {
        "type": "llm_request",
        "event_id": event_id,
        "model": model,
        "latency_ms": 100,
        "attempt": attempt,
        **SERVED,
        **more,
    }


# One logical call: rate limited twice on the primary model, then answered by the fallback; and a
# second logical call answered on its first try.
CALLS = [
    _try("c1-1", "primary", 1, status="error", error_type="RateLimitError"),
    _try("c1-2", "primary", 2, status="error", error_type="RateLimitError"),
    _try("c1-3", "fallback", 3, fallback_from="primary"),
    _try("c2-1", "primary", 1),
]


def _total(metrics: dict[SampleKey, float], name: str) -> float:
    return sum(value for (sample, _), value in metrics.items() if sample == name)


def test_tries_retries_and_fallbacks_are_counted_apart(exporter: Exporter) -> None:
    assert exporter.post({"events": CALLS}).status_code == 200
    metrics = exporter.scrape()
    assert metrics[key("llmopt_llm_requests_total", model="primary", **SERVED)] == 3
    assert metrics[key("llmopt_llm_requests_total", model="fallback", **SERVED)] == 1
    assert metrics[key("llmopt_llm_retries_total", model="primary", **SERVED)] == 1
    assert metrics[key("llmopt_llm_retries_total", model="fallback", **SERVED)] == 1
    assert metrics[key("llmopt_llm_fallbacks_total", from_model="primary", model="fallback")] == 1
    # Two logical calls, none failed: every failed try was tried again.
    tries, later = _total(metrics, "llmopt_llm_requests_total"), _total(metrics, "llmopt_llm_retries_total")
    failed = _total(metrics, "llmopt_llm_request_errors_total")
    assert (tries - later, max(failed - later, 0)) == (2, 0)


def test_a_logical_call_fails_when_its_last_try_fails(exporter: Exporter) -> None:
    given_up = [
        _try("c3-1", "primary", 1, status="error", error_type="RateLimitError"),
        _try("c3-2", "fallback", 2, fallback_from="primary", status="error", error_type="APIError"),
    ]
    assert exporter.post({"events": given_up}).status_code == 200
    metrics = exporter.scrape()
    tries, later = _total(metrics, "llmopt_llm_requests_total"), _total(metrics, "llmopt_llm_retries_total")
    failed = _total(metrics, "llmopt_llm_request_errors_total")
    assert (tries - later, failed - later) == (1, 1)


def test_a_retried_report_of_the_tries_counts_them_once(exporter: Exporter) -> None:
    exporter.post({"events": CALLS})
    before = exporter.scrape()
    exporter.post({"events": CALLS})
    after = exporter.scrape()
    for name in ("llmopt_llm_requests_total", "llmopt_llm_retries_total", "llmopt_llm_fallbacks_total"):
        assert _total(after, name) == _total(before, name)


def test_a_rate_limit_is_one_error_type_however_spelled(exporter: Exporter) -> None:
    spellings = ("RateLimitError", "rate_limit_error", "429", "TooManyRequests", "RESOURCE_EXHAUSTED")
    failed = [
        _try(f"r{index}", "primary", 1, status="error", error_type=spelling)
        for index, spelling in enumerate((*spellings, "APITimeoutError"))
    ]
    assert exporter.post({"events": failed}).status_code == 200
    metrics = exporter.scrape()
    errors = {
        dict(labels)["error_type"]: value
        for (name, labels), value in metrics.items()
        if name == "llmopt_llm_request_errors_total"
    }
    assert errors == {"rate_limited": len(spellings), "APITimeoutError": 1}
