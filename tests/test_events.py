"""Each example event changes exactly the expected series by exactly the expected amount."""

from __future__ import annotations

import math

import pytest
from prometheus_client.utils import floatToGoString

from app import metrics as m
from tests.conftest import CLOCK, Exporter, ts
from tests.exposition import SampleKey, changed, key

LLM = {"model": "gpt-4o-mini", "provider": "openai", "task_type": "summarization"}
LLM_ERR = {"model": "claude-3-5-haiku", "provider": "anthropic", "task_type": "classification"}
VARIANT = {"experiment": "prompt-optimization-v5", "variant": "variant-b"}
FEEDBACK = {"model": "gpt-4o-mini", **VARIANT}


def histogram(spec: m.MetricSpec, labels: dict[str, str], *values: float) -> dict[SampleKey, float]:
    """The samples a fresh histogram has after observing ``values`` (only the non-zero buckets)."""
    expected: dict[SampleKey, float] = {}
    for bound in (*spec.buckets, math.inf):
        count = sum(1 for value in values if value <= bound)
        if count:
            expected[key(f"{spec.name}_bucket", **labels, le=_le(bound))] = count
    # Buckets that stay at zero are new series too.
    for bound in spec.buckets:
        expected.setdefault(key(f"{spec.name}_bucket", **labels, le=_le(bound)), 0)
    expected[key(f"{spec.name}_count", **labels)] = len(values)
    expected[key(f"{spec.name}_sum", **labels)] = sum(values)
    return expected


def _le(bound: float) -> str:
    return floatToGoString(bound)


def summary(name: str, labels: dict[str, str], *values: float) -> dict[SampleKey, float]:
    return {key(f"{name}_count", **labels): len(values), key(f"{name}_sum", **labels): sum(values)}


EXPECTED: dict[str, dict[SampleKey, float]] = {
    "llm_request": {
        key("llmopt_llm_requests_total", **LLM): 1,
        # At 0 from the label set's first call, so that rate() sees the first failure and retry.
        key("llmopt_llm_request_failures_total", **LLM): 0,
        key("llmopt_llm_retries_total", **LLM): 0,
        **histogram(m.LLM_REQUEST_DURATION, LLM, 0.8425),
        key("llmopt_llm_tokens_total", **LLM, direction="input"): 1200,
        key("llmopt_llm_tokens_total", **LLM, direction="output"): 350,
        key("llmopt_llm_cached_tokens_total", **LLM): 800,
        key("llmopt_llm_cache_write_tokens_total", **LLM): 200,
        key("llmopt_llm_reasoning_tokens_total", **LLM): 120,
        **histogram(m.LLM_REQUEST_TOKENS, {"model": "gpt-4o-mini", "provider": "openai"}, 1550),
        **histogram(m.LLM_INPUT_TOKENS, {"model": "gpt-4o-mini", "provider": "openai"}, 1200),
        **histogram(m.LLM_OUTPUT_TOKENS, {"model": "gpt-4o-mini", "provider": "openai"}, 350),
        key("llmopt_llm_operations_total", model="gpt-4o-mini", provider="openai", operation="chat"): 1,
        key("llmopt_llm_finish_reasons_total", **LLM, finish_reason="stop"): 1,
        # A streamed call: first token after 310 ms, the other 349 tokens in the remaining 532.5 ms.
        **histogram(m.LLM_TIME_TO_FIRST_TOKEN, LLM, 0.31),
        **histogram(m.LLM_TIME_PER_OUTPUT_TOKEN, LLM, (0.8425 - 0.31) / 349),
        key("llmopt_llm_cost_usd_total", **LLM): 0.00039,
        key("llmopt_spend_usd_total", category="token"): 0.00039,
        key("llmopt_llm_baseline_cost_usd_total", **LLM): 0.0065,
        **histogram(m.LLM_QUALITY, LLM, 86.5),
        **summary(
            "llmopt_llm_quality_dimension_score",
            {"model": "gpt-4o-mini", "provider": "openai", "dimension": "accuracy"},
            90,
        ),
        **summary(
            "llmopt_llm_quality_dimension_score",
            {"model": "gpt-4o-mini", "provider": "openai", "dimension": "relevance"},
            88,
        ),
        **summary(
            "llmopt_llm_quality_dimension_score",
            {"model": "gpt-4o-mini", "provider": "openai", "dimension": "coherence"},
            85,
        ),
        **summary(
            "llmopt_llm_quality_dimension_score",
            {"model": "gpt-4o-mini", "provider": "openai", "dimension": "completeness"},
            83,
        ),
        key("llmopt_experiment_variant_requests_total", **VARIANT): 1,
        key("llmopt_experiment_variant_errors_total", **VARIANT): 0,
        key("llmopt_experiment_variant_cost_usd_total", **VARIANT): 0.00039,
        **summary("llmopt_experiment_variant_quality_score", VARIANT, 86.5),
        key("llmopt_experiment_variant_quality_score_squares_total", **VARIANT): 86.5**2,
        key("llmopt_experiment_variant_cost_usd_squares_total", **VARIANT): 0.00039**2,
        **histogram(m.VARIANT_DURATION, VARIANT, 0.8425),
        key("llmopt_experiment_variant_request_duration_seconds_squares_total", **VARIANT): 0.8425**2,
        **histogram(m.VARIANT_TIME_TO_FIRST_TOKEN, VARIANT, 0.31),
        **histogram(m.VARIANT_TIME_PER_OUTPUT_TOKEN, VARIANT, (0.8425 - 0.31) / 349),
        key(
            "llmopt_bandit_arm_parameter_value", bandit="temperature", arm="t0.7", parameter="temperature"
        ): 0.7,
    },
    "llm_request_error": {
        key("llmopt_llm_requests_total", **LLM_ERR): 1,
        key("llmopt_llm_request_errors_total", **LLM_ERR, error_type="rate_limited"): 1,
        key("llmopt_llm_request_failures_total", **LLM_ERR): 1,
        key("llmopt_llm_retries_total", **LLM_ERR): 0,
        **histogram(m.LLM_REQUEST_DURATION, LLM_ERR, 0.12),
        key("llmopt_llm_cost_usd_total", **LLM_ERR): 0,
        key("llmopt_llm_baseline_cost_usd_total", **LLM_ERR): 0,
        key(
            "llmopt_llm_operations_total", model="claude-3-5-haiku", provider="anthropic", operation="chat"
        ): 1,
    },
    "feedback": {
        key("llmopt_feedback_thumbs_total", **FEEDBACK, rating="up"): 1,
        key("llmopt_feedback_nps_responses_total", **FEEDBACK, category="promoter"): 1,
        key("llmopt_feedback_csat_responses_total", **FEEDBACK): 1,
        key("llmopt_feedback_csat_satisfied_total", **FEEDBACK): 1,
    },
    "experiment": {
        key("llmopt_experiments_started_total"): 3,
        key("llmopt_experiments_completed_total", outcome="won"): 1,
        key("llmopt_experiments_rolled_back_total"): 1,
        key("llmopt_experiments_active"): 1,
        key("llmopt_experiment_progress_ratio", experiment="prompt-optimization-v5"): 0.73,
        key("llmopt_experiment_confidence_ratio", experiment="prompt-optimization-v5"): 0.87,
        key("llmopt_experiment_leader_lead_ratio", experiment="prompt-optimization-v5"): 0.082,
        key("llmopt_experiment_leader_info", **VARIANT): 1,
        key("llmopt_experiment_samples", experiment="prompt-optimization-v5"): 7300,
        key("llmopt_experiment_start_timestamp_seconds", experiment="prompt-optimization-v5"): ts(
            "2026-11-25T09:00:00Z"
        ),
        **summary("llmopt_experiment_winner_improvement_ratio", {}, 0.12),
        **summary("llmopt_experiment_sample_size", {}, 10000),
        **summary("llmopt_experiment_duration_seconds", {}, 86400),
        key("llmopt_optimization_last_improvement_timestamp_seconds"): ts("2026-11-27T09:00:00Z"),
        # When the winner was received, for the rules that check it.
        key(
            "llmopt_experiment_winner_timestamp_seconds", experiment="summary-style-v2", variant="concise"
        ): CLOCK,
    },
    "bandit": {
        key("llmopt_bandit_pulls_total", bandit="temperature", arm="t0.7", decision="exploit"): 1,
        key("llmopt_bandit_pulls_total", bandit="temperature", arm="t1.0", decision="explore"): 1,
        **summary("llmopt_bandit_reward", {"bandit": "temperature", "arm": "t0.7"}, 0.8, 0.6),
        key("llmopt_bandit_reward_squares_total", bandit="temperature", arm="t0.7"): 0.8**2 + 0.6**2,
        key("llmopt_bandit_regret_total", bandit="temperature"): 0.3,
        key("llmopt_bandit_convergence_duration_seconds", bandit="temperature"): 12600,
        key(
            "llmopt_bandit_arm_parameter_value", bandit="temperature", arm="t0.7", parameter="temperature"
        ): 0.7,
        key(
            "llmopt_bandit_arm_parameter_value", bandit="temperature", arm="t1.0", parameter="temperature"
        ): 1.0,
    },
    "parameter_update": {
        key("llmopt_parameter_updates_total", parameter="temperature"): 1,
        key("llmopt_parameter_improvements_total", parameter="temperature"): 1,
        key("llmopt_parameter_value", parameter="temperature"): 0.7,
        key("llmopt_parameter_stability_ratio", parameter="temperature"): 0.92,
        key("llmopt_parameter_performance_gain_ratio", parameter="temperature"): 0.034,
        key("llmopt_optimization_last_improvement_timestamp_seconds"): ts("2026-11-27T09:20:00Z"),
    },
    "budget": {
        key("llmopt_budget_limit_usd", period="day"): 1000,
        key("llmopt_spend_usd_total", category="compute"): 12.5,
        key("llmopt_spend_usd_total", category="infrastructure"): 4.25,
        key("llmopt_budget_violations_total", period="day"): 1,
        key("llmopt_model_switches_total", from_model="gpt-4o", to_model="gpt-4o-mini", reason="cost"): 1,
    },
    "model_health": {
        key("llmopt_model_available", model="gpt-4o-mini", provider="openai"): 1,
        key("llmopt_model_probe_latency_seconds", model="gpt-4o-mini", provider="openai"): 0.31,
        key("llmopt_model_error_ratio", model="gpt-4o-mini", provider="openai"): 0.004,
        key("llmopt_model_last_check_timestamp_seconds", model="gpt-4o-mini", provider="openai"): ts(
            "2026-11-27T09:21:00Z"
        ),
        key(
            "llmopt_model_health_checks_total", model="gpt-4o-mini", provider="openai", result="available"
        ): 1,
    },
    "business": {
        key("llmopt_quality_baseline_score"): 78,
        key("llmopt_optimization_cost_usd_total"): 25,
        key("llmopt_value_derived_usd_total"): 310,
        key("llmopt_cost_savings_confidence_ratio"): 0.95,
        key("llmopt_quality_improvement_confidence_ratio"): 0.9,
    },
    "incident": {
        key("llmopt_incidents_total", severity="sev2"): 1,
        key("llmopt_incidents_total", severity="sev3"): 1,
        key("llmopt_incidents_resolved_total", severity="sev2"): 1,
        key("llmopt_incident_downtime_seconds_total", severity="sev2"): 1800,
        key("llmopt_incidents_open", severity="sev3"): 1,
    },
    "deployment": {
        key("llmopt_deployments_total", component="optimizer", action="deployed"): 1,
        key("llmopt_deployment_timestamp_seconds", component="optimizer"): ts("2026-11-27T06:00:00Z"),
    },
    "log": {
        key("llmopt_log_events_total", level="error", component="bandit"): 1,
        key("llmopt_log_events_total", level="critical", component="optimizer"): 1,
        # Receive time (the test clock), not the event's timestamp.
        key("llmopt_log_last_event_timestamp_seconds", level="error", component="bandit"): CLOCK,
        key("llmopt_log_last_event_timestamp_seconds", level="critical", component="optimizer"): CLOCK,
    },
}

EVENT_COUNTS = {
    "llm_request": ("llm_request", 1),
    "llm_request_error": ("llm_request", 1),
    "feedback": ("feedback", 1),
    "experiment": ("experiment", 6),
    "bandit": ("bandit", 5),
    "parameter_update": ("parameter_update", 1),
    "budget": ("budget", 5),
    "model_health": ("model_health", 1),
    "business": ("business", 1),
    "incident": ("incident", 3),
    "deployment": ("deployment", 1),
    "log": ("log", 2),
}


@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example_changes_exactly_the_expected_series(exporter: Exporter, example: str) -> None:
    before = exporter.scrape()
    response = exporter.post_example(example)
    event_type, count = EVENT_COUNTS[example]
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": count, "by_type": {event_type: count}, "duplicates": 0}
    after = exporter.scrape()
    assert changed(before, after) == pytest.approx(EXPECTED[example])
    accepted = key("llmopt_exporter_events_accepted_total", type=event_type)
    assert after[accepted] - before[accepted] == count


def test_every_example_file_is_covered() -> None:
    from tests.conftest import EXAMPLES

    assert {path.stem for path in EXAMPLES.glob("*.json")} == set(EXPECTED)


def test_ingest_self_metrics_count_batches(exporter: Exporter) -> None:
    exporter.post_example("bandit")
    exporter.post_example("deployment")
    after = exporter.scrape()
    assert after[key("llmopt_exporter_batch_size_events_count")] == 2
    assert after[key("llmopt_exporter_batch_size_events_sum")] == 6
    assert after[key("llmopt_exporter_ingest_duration_seconds_count")] == 2


def test_event_without_timestamp_uses_the_clock(exporter: Exporter) -> None:
    exporter.post({"type": "model_health", "model": "m", "available": False})
    after = exporter.scrape()
    assert after[key("llmopt_model_last_check_timestamp_seconds", model="m", provider="unknown")] == CLOCK
    assert after[key("llmopt_model_available", model="m", provider="unknown")] == 0


def test_finished_experiment_leaves_no_state_series(exporter: Exporter) -> None:
    experiment = "exp-1"
    exporter.post(
        {
            "events": [
                {"type": "experiment", "action": "started", "experiment_id": experiment},
                {
                    "type": "experiment",
                    "action": "progress",
                    "experiment_id": experiment,
                    "leader": "a",
                    "confidence": 0.5,
                    "lead": 0.1,
                    "progress": 0.2,
                    "sample_size": 10,
                },
                {"type": "experiment", "action": "progress", "experiment_id": experiment, "leader": "b"},
            ]
        }
    )
    during = exporter.scrape()
    assert during[key("llmopt_experiment_leader_info", experiment=experiment, variant="b")] == 1
    assert key("llmopt_experiment_leader_info", experiment=experiment, variant="a") not in during
    exporter.post(
        {"type": "experiment", "action": "completed", "experiment_id": experiment, "sample_size": 10}
    )
    after = exporter.scrape()
    assert not [
        name
        for name, labels in after
        if ("experiment", experiment) in labels
        and name.startswith(
            (
                "llmopt_experiment_progress",
                "llmopt_experiment_leader",
                "llmopt_experiment_confidence",
                "llmopt_experiment_samples",
            )
        )
    ]
    assert after[key("llmopt_experiments_active")] == 0
    assert after[key("llmopt_experiments_completed_total", outcome="no_winner")] == 1
    # Started at the clock (no timestamp), completed at the clock: it ran for 0 s.
    assert after[key("llmopt_experiment_duration_seconds_sum")] == 0


def test_progress_after_restart_revives_the_experiment(exporter: Exporter) -> None:
    exporter.post({"type": "experiment", "action": "progress", "experiment_id": "x", "progress": 0.5})
    after = exporter.scrape()
    assert after[key("llmopt_experiments_active")] == 1
    assert after[key("llmopt_experiments_started_total")] == 0


def test_late_improvement_does_not_move_the_timestamp_back(exporter: Exporter) -> None:
    update = {"type": "parameter_update", "parameter": "p", "value": 1, "improved": True}
    exporter.post({**update, "timestamp": "2026-11-27T10:00:00Z"})
    exporter.post({**update, "timestamp": "2026-11-27T08:00:00Z"})
    after = exporter.scrape()
    assert after[key("llmopt_optimization_last_improvement_timestamp_seconds")] == ts("2026-11-27T10:00:00Z")


def test_traceparent_header_gives_exemplars_to_events_without_trace_id(exporter: Exporter) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    exporter.post(
        {"type": "llm_request", "model": "m", "latency_ms": 2000},
        traceparent=f"00-{trace}-b7ad6b7169203331-01",
    )
    text = exporter.client.get(
        "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
    ).text
    from tests.exposition import openmetrics_samples

    exemplars = [
        s.exemplar
        for s in openmetrics_samples(text)
        if s.name == "llmopt_llm_request_duration_seconds_bucket" and s.exemplar
    ]
    assert [e.labels for e in exemplars] == [{"trace_id": trace, "span_id": "b7ad6b7169203331"}]
    assert exemplars[0].value == 2.0


def test_a_log_event_goes_to_the_log_and_never_to_a_label(
    exporter: Exporter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("ERROR", logger="llmopt_exporter.optimizer"):
        exporter.post_example("log")
    lines = [
        (record.levelname, record.getMessage(), getattr(record, "context", None))
        for record in caplog.records
        if record.name == "llmopt_exporter.optimizer"
    ]
    assert lines == [
        (
            "ERROR",
            "Optimization failed",
            {
                "component": "bandit",
                "event_timestamp": ts("2026-11-27T09:30:00Z"),
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id": "00f067aa0ba902b7",
                "service": "optimizer-api",
                "logger": "optimizer.bandit",
                "request_id": "req-7f3a",
                "experiment_id": "prompt-optimization-v5",
                "error": {
                    "name": "ProviderTimeout",
                    "message": "the provider did not answer in time",
                    "stack": "Traceback (most recent call last):\n  ...\n"
                    "ProviderTimeout: the provider did not answer in time",
                },
            },
        ),
        (
            "CRITICAL",
            "Performance degradation detected; initiating rollback",
            {
                "component": "optimizer",
                "event_timestamp": ts("2026-11-27T09:31:00Z"),
                "service": "optimizer-api",
            },
        ),
    ]
    labels = {value for (_, series) in exporter.scrape() for _, value in series}
    assert not labels & {"Optimization failed", "req-7f3a", "ProviderTimeout", "optimizer-api"}
