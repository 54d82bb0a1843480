"""Custom metrics: declared in the settings, updated by metric events, exposed under llmopt_custom_."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from app.config import ConfigError, Settings, load_settings
from app.main import create_app
from tests.conftest import CLOCK, Exporter, make_exporter
from tests.exposition import key

DECLARED: dict[str, Any] = {
    "cache_lookups": {"kind": "counter", "help": "Prompt cache lookups by result.", "labels": ["result"]},
    "queue_depth": {"kind": "gauge", "help": "Requests waiting in the optimizer's queue."},
    "judge_score": {
        "kind": "histogram",
        "help": "Scores an LLM judge gave, by judge.",
        "labels": ["judge"],
        "buckets": [0.25, 0.5, 0.75, 1],
    },
}


def metric(name: str, kind: str, value: float, **labels: str) -> dict[str, Any]:
    return {"type": "metric", "name": name, "kind": kind, "value": value, "labels": labels}


@pytest.fixture
def custom() -> Iterator[Exporter]:
    yield from make_exporter(custom_metrics=DECLARED)


def custom_samples(exporter: Exporter) -> dict[Any, float]:
    return {
        sample: value for sample, value in exporter.scrape().items() if sample[0].startswith("llmopt_custom_")
    }


def test_declared_metrics_are_exposed_with_their_kind_help_and_buckets(custom: Exporter) -> None:
    text = custom.client.get("/metrics").text
    assert "# HELP llmopt_custom_cache_lookups_total Prompt cache lookups by result.\n" in text
    assert "# TYPE llmopt_custom_cache_lookups_total counter\n" in text
    assert "# TYPE llmopt_custom_queue_depth gauge\n" in text
    assert "# TYPE llmopt_custom_judge_score histogram\n" in text
    # Nothing posted yet: no series (a gauge has no value until one is set).
    assert custom_samples(custom) == {}


def test_metric_events_update_counters_gauges_and_histograms_exactly(custom: Exporter) -> None:
    events = [
        metric("cache_lookups", "counter", 3, result="hit"),
        metric("cache_lookups", "counter", 1.5, result="hit"),
        metric("cache_lookups", "counter", 1, result="miss"),
        metric("queue_depth", "gauge", 12),
        metric("queue_depth", "gauge", -4.5),
        *(metric("judge_score", "histogram", score, judge="gpt-4o") for score in (0.1, 0.25, 0.6, 0.9, 7)),
    ]
    response = custom.post({"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["by_type"] == {"metric": len(events)}
    judge = {"judge": "gpt-4o"}
    assert custom_samples(custom) == {
        key("llmopt_custom_cache_lookups_total", result="hit"): 4.5,
        key("llmopt_custom_cache_lookups_total", result="miss"): 1.0,
        key("llmopt_custom_queue_depth"): -4.5,
        # Cumulative buckets over the declared bounds, +Inf added.
        key("llmopt_custom_judge_score_bucket", **judge, le="0.25"): 2.0,
        key("llmopt_custom_judge_score_bucket", **judge, le="0.5"): 2.0,
        key("llmopt_custom_judge_score_bucket", **judge, le="0.75"): 3.0,
        key("llmopt_custom_judge_score_bucket", **judge, le="1.0"): 4.0,
        key("llmopt_custom_judge_score_bucket", **judge, le="+Inf"): 5.0,
        key("llmopt_custom_judge_score_count", **judge): 5.0,
        key("llmopt_custom_judge_score_sum", **judge): pytest.approx(8.85),
    }


def test_a_histogram_without_buckets_gets_prometheus_client_defaults() -> None:
    declared = {"step_seconds": {"kind": "histogram", "help": "Optimizer steps."}}
    for exporter in make_exporter(custom_metrics=declared):
        assert exporter.post(metric("step_seconds", "histogram", 0.3)).status_code == 200
        bounds = [
            dict(labels)["le"]
            for (name, labels), _ in exporter.scrape().items()
            if name == "llmopt_custom_step_seconds_bucket"
        ]
        assert bounds == [
            *(
                [
                    "0.005",
                    "0.01",
                    "0.025",
                    "0.05",
                    "0.075",
                    "0.1",
                    "0.25",
                    "0.5",
                    "0.75",
                    "1.0",
                    "2.5",
                    "5.0",
                    "7.5",
                    "10.0",
                ]
            ),
            "+Inf",
        ]


@pytest.mark.parametrize(
    ("event", "field", "says"),
    [
        pytest.param(
            metric("cache_misses", "counter", 1), "name", "not a declared custom metric", id="undeclared"
        ),
        pytest.param(
            metric("cache_lookups", "gauge", 1, result="hit"), "kind", "is a counter", id="wrong-kind"
        ),
        pytest.param(
            metric("cache_lookups", "counter", -1, result="hit"), "value", "negative", id="negative"
        ),
        pytest.param(
            metric("cache_lookups", "counter", 1, result="hit", team="a"),
            "labels.team",
            "not a label",
            id="extra",
        ),
        pytest.param(metric("cache_lookups", "counter", 1), "labels.result", "needs a value", id="missing"),
        pytest.param(
            metric("cache_lookups", "counter", 1, result="a\nb"),
            "labels.result",
            "label value",
            id="bad-value",
        ),
        pytest.param(metric("queue_depth", "gauge", 1e300), "value", "", id="out-of-range"),
        pytest.param(
            {**metric("queue_depth", "gauge", 1), "labels": {"9x": "a"}},
            "labels",
            "each key",
            id="bad-label-name",
        ),
    ],
)
def test_invalid_metric_events_are_refused_naming_the_field_and_change_nothing(
    custom: Exporter, event: dict[str, Any], field: str, says: str
) -> None:
    before = custom.scrape()
    # With a valid event before it: the batch is refused whole.
    response = custom.post({"events": [metric("cache_lookups", "counter", 1, result="hit"), event]})
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert [(p["index"], p["field"].split("[")[0]) for p in problems] == [(1, field)]
    assert says in problems[0]["message"]
    after = custom.scrape()
    for reason in ("invalid_event", "batch_rejected"):  # the invalid event, and the valid one with it
        rejected = key("llmopt_exporter_events_rejected_total", reason=reason, type="metric")
        assert after.get(rejected, 0) == before.get(rejected, 0) + 1
    assert {k: v for k, v in after.items() if k[0].startswith("llmopt_custom_")} == {
        k: v for k, v in before.items() if k[0].startswith("llmopt_custom_")
    }


def test_without_declarations_every_metric_event_is_refused(exporter: Exporter) -> None:
    response = exporter.post(metric("anything", "counter", 1))
    assert response.status_code == 422
    assert "custom_metrics: none" in response.json()["message"]


def test_each_custom_label_has_its_own_value_cap_and_the_series_budget_applies() -> None:
    declared = {"tool_calls": {"kind": "counter", "help": "Tool calls.", "labels": ["model", "tool"]}}
    for exporter in make_exporter(custom_metrics=declared, label_value_limit=2):
        # The built-in model label's values do not use up the custom metric's.
        for model in ("m1", "m2"):
            exporter.post({"type": "llm_request", "model": model, "latency_ms": 10})
        events = [metric("tool_calls", "counter", 1, model=model, tool="search") for model in ("a", "b", "c")]
        assert exporter.post({"events": events}).status_code == 200
        after = exporter.scrape()
        assert {
            labels: value
            for (name, labels), value in after.items()
            if name == "llmopt_custom_tool_calls_total"
        } == {
            (("model", "a"), ("tool", "search")): 1.0,
            (("model", "b"), ("tool", "search")): 1.0,
            (("model", "__overflow__"), ("tool", "search")): 1.0,
        }
        overflow = key(
            "llmopt_exporter_label_overflow_total", metric="llmopt_custom_tool_calls_total", label="model"
        )
        assert after[overflow] == 1
    for exporter in make_exporter(custom_metrics=declared, max_series_per_metric=2):
        events = [
            metric("tool_calls", "counter", 1, model="a", tool=tool) for tool in ("t1", "t2", "t3", "t4")
        ]
        assert exporter.post({"events": events}).status_code == 200
        after = exporter.scrape()
        assert (
            after[key("llmopt_exporter_series", metric="llmopt_custom_tool_calls_total")] == 3
        )  # 2 + overflow
        assert after[key("llmopt_custom_tool_calls_total", model="__overflow__", tool="__overflow__")] == 2
        limit = key(
            "llmopt_exporter_series_overflow_total",
            metric="llmopt_custom_tool_calls_total",
            limit="max_series_per_metric",
        )
        assert after[limit] == 2


def test_a_custom_gauge_nobody_updates_expires_and_counters_stay() -> None:
    now = [CLOCK]
    app = create_app(Settings(custom_metrics=DECLARED, state_ttl_seconds=3600), clock=lambda: now[0])
    with TestClient(app) as client:
        exporter = Exporter(client)
        exporter.post(
            {
                "events": [
                    metric("queue_depth", "gauge", 7),
                    metric("cache_lookups", "counter", 2, result="hit"),
                ]
            }
        )
        recorder = app.state.exporter.recorder
        now[0] += 1800
        assert recorder.expire(3600) == 0
        now[0] += 1801
        assert recorder.expire(3600) == 1
        after = exporter.scrape()
        assert key("llmopt_custom_queue_depth") not in after
        assert after[key("llmopt_custom_cache_lookups_total", result="hit")] == 2
        assert after[key("llmopt_exporter_state_expired_total", kind="custom_gauge")] == 1
        # A new value brings it back.
        exporter.post(metric("queue_depth", "gauge", 3))
        assert exporter.scrape()[key("llmopt_custom_queue_depth")] == 3


@pytest.mark.parametrize(
    ("declared", "says"),
    [
        pytest.param({"lookups_total": {"kind": "counter", "help": "x"}}, "suffix", id="reserved-suffix"),
        pytest.param({"9lives": {"kind": "gauge", "help": "x"}}, "not a name", id="bad-name"),
        pytest.param({"a": {"kind": "summary", "help": "x"}}, "kind", id="bad-kind"),
        pytest.param({"a": {"kind": "gauge", "help": "x", "labels": ["le"]}}, "reserved", id="le-label"),
        pytest.param({"a": {"kind": "gauge", "help": "x", "labels": ["__x"]}}, "reserved", id="dunder-label"),
        pytest.param(
            {"a": {"kind": "gauge", "help": "x", "labels": ["t", "t"]}}, "twice", id="duplicate-label"
        ),
        pytest.param(
            {"a": {"kind": "counter", "help": "x", "buckets": [1]}}, "histograms", id="counter-buckets"
        ),
        pytest.param(
            {"a": {"kind": "histogram", "help": "x", "buckets": [2, 1]}}, "rise", id="falling-buckets"
        ),
        pytest.param({"a": {"kind": "gauge", "help": "x", "unit": "s"}}, "unit", id="unknown-key"),
        pytest.param({"a": {"kind": "gauge"}}, "help", id="no-help"),
    ],
)
def test_bad_declarations_stop_the_start_naming_the_setting(
    tmp_path: Path, declared: dict[str, Any], says: str
) -> None:
    config = tmp_path / "settings.yml"
    config.write_text(yaml.safe_dump({"custom_metrics": declared}), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "custom_metrics" in str(raised.value)
    assert says in str(raised.value)


def test_declarations_load_from_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_text(yaml.safe_dump({"custom_metrics": DECLARED}), encoding="utf-8")
    settings = load_settings(config)
    assert settings.custom_metrics["judge_score"].buckets == (0.25, 0.5, 0.75, 1.0)
    assert settings.custom_metrics["cache_lookups"].labels == ("result",)
