"""The client's counter(), gauge() and histogram() against a real exporter that declares custom
metrics in its environment (LLMOPT_CUSTOM_METRICS, JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from client_support import Exporter, key
from llmopt_client import Client

DECLARED = {
    "cache_lookups": {"kind": "counter", "help": "Prompt cache lookups by result.", "labels": ["result"]},
    "queue_depth": {"kind": "gauge", "help": "Requests waiting."},
    "judge_score": {"kind": "histogram", "help": "Judge scores.", "labels": ["judge"], "buckets": [0.5, 0.9]},
}


def test_counter_gauge_and_histogram_reach_the_declared_metrics(
    new_exporter: Callable[..., Exporter], new_client: Callable[..., Client]
) -> None:
    exporter = new_exporter(env={"LLMOPT_CUSTOM_METRICS": json.dumps(DECLARED)})
    exporter.start()
    client = new_client(exporter.url)
    client.counter("cache_lookups", result="hit")
    client.counter("cache_lookups", 2, result="hit")
    client.gauge("queue_depth", 12)
    for score in (0.4, 0.7, 0.95):
        client.histogram("judge_score", score, judge="gpt-4o")
    # Undeclared, and a label the metric does not have: refused by the exporter, never retried.
    client.counter("cache_misses")
    client.counter("cache_lookups", result="hit", team="search")
    assert client.flush(timeout=10)
    stats = client.stats
    assert (stats.sent, stats.failed, stats.retried) == (6, 2, 0)

    custom = {
        sample: value for sample, value in exporter.samples().items() if sample[0].startswith("llmopt_custom")
    }
    judge = {"judge": "gpt-4o"}
    assert custom == {
        key("llmopt_custom_cache_lookups_total", result="hit"): 3.0,
        key("llmopt_custom_queue_depth"): 12.0,
        key("llmopt_custom_judge_score_bucket", **judge, le="0.5"): 1.0,
        key("llmopt_custom_judge_score_bucket", **judge, le="0.9"): 2.0,
        key("llmopt_custom_judge_score_bucket", **judge, le="+Inf"): 3.0,
        key("llmopt_custom_judge_score_count", **judge): 3.0,
        key("llmopt_custom_judge_score_sum", **judge): pytest.approx(2.05),
    }
