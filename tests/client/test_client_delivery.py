"""Events sent through the client arrive in the real exporter's /metrics with exact values."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from client_support import Exporter, SampleKey, key
from llmopt_client import (
    BanditConverged,
    BanditPull,
    BanditReward,
    BudgetLimit,
    BudgetSpend,
    BudgetViolation,
    Business,
    Client,
    Deployment,
    Event,
    ExperimentCompleted,
    ExperimentProgress,
    ExperimentRolledBack,
    ExperimentStarted,
    Feedback,
    IncidentOpened,
    IncidentResolved,
    LlmRequest,
    ModelHealth,
    ModelSwitch,
    ParameterUpdate,
)

LLM = {"model": "delivery-llm", "provider": "openai", "task_type": "chat"}
VARIANT = {"experiment": "delivery-exp", "variant": "b"}
FEEDBACK = {"model": "delivery-fb", "experiment": "", "variant": ""}
ARM = {"bandit": "delivery-bandit", "arm": "t0.7"}
HEALTH = {"model": "delivery-health", "provider": "acme"}

# Each case: the events sent, then how much each series changes (it must exist afterwards).
# A whole second an hour ago: event times must be recent for the exporter to accept them.
T0 = int(time.time()) - 3600

CASES = [
    pytest.param(
        [
            LlmRequest(
                model="delivery-llm",
                provider="openai",
                task_type="chat",
                latency_ms=250,
                input_tokens=100,
                output_tokens=20,
                cached_tokens=40,
                cost_usd=0.002,
                baseline_cost_usd=0.01,
                quality=85,
                accuracy=90,
                experiment_id="delivery-exp",
                variant_id="b",
                bandit_id="delivery-bandit",
                arm_id="t0.7",
                parameter="temperature",
                parameter_value=0.7,
            ),
            LlmRequest(
                model="delivery-llm",
                provider="openai",
                task_type="chat",
                latency_ms=100,
                status="error",
                error_type="RateLimitError",
            ),
        ],
        {
            key("llmopt_llm_requests_total", **LLM): 2,
            key("llmopt_llm_request_errors_total", **LLM, error_type="rate_limited"): 1,
            key("llmopt_llm_request_duration_seconds_count", **LLM): 2,
            key("llmopt_llm_request_duration_seconds_sum", **LLM): 0.35,
            key("llmopt_llm_request_duration_seconds_bucket", **LLM, le="0.16"): 1,
            key("llmopt_llm_request_duration_seconds_bucket", **LLM, le="0.32"): 2,
            key("llmopt_llm_tokens_total", **LLM, direction="input"): 100,
            key("llmopt_llm_tokens_total", **LLM, direction="output"): 20,
            key("llmopt_llm_cached_tokens_total", **LLM): 40,
            key("llmopt_llm_cost_usd_total", **LLM): 0.002,
            key("llmopt_llm_baseline_cost_usd_total", **LLM): 0.01,
            key("llmopt_llm_quality_score_sum", **LLM): 85,
            key(
                "llmopt_llm_quality_dimension_score_sum",
                model="delivery-llm",
                provider="openai",
                dimension="accuracy",
            ): 90,
            key("llmopt_experiment_variant_requests_total", **VARIANT): 1,
            key("llmopt_experiment_variant_cost_usd_total", **VARIANT): 0.002,
            key("llmopt_bandit_arm_parameter_value", **ARM, parameter="temperature"): 0.7,
            key("llmopt_exporter_events_accepted_total", type="llm_request"): 2,
        },
        id="llm_request",
    ),
    pytest.param(
        [Feedback(model="delivery-fb", thumbs="up", nps=9, csat=5)],
        {
            key("llmopt_feedback_thumbs_total", **FEEDBACK, rating="up"): 1,
            key("llmopt_feedback_nps_responses_total", **FEEDBACK, category="promoter"): 1,
            key("llmopt_feedback_csat_responses_total", **FEEDBACK): 1,
            key("llmopt_feedback_csat_satisfied_total", **FEEDBACK): 1,
            key("llmopt_exporter_events_accepted_total", type="feedback"): 1,
        },
        id="feedback",
    ),
    pytest.param(
        [
            ExperimentStarted(experiment_id="delivery-running", variants=("control", "b")),
            ExperimentProgress(
                experiment_id="delivery-running",
                leader="b",
                lead=0.25,
                confidence=0.5,
                progress=0.75,
                sample_size=750,
            ),
            ExperimentStarted(experiment_id="delivery-won"),
            ExperimentCompleted(
                experiment_id="delivery-won",
                winner="b",
                improvement=0.125,
                sample_size=1000,
                duration_seconds=3600,
            ),
            ExperimentStarted(experiment_id="delivery-rolled-back"),
            ExperimentRolledBack(experiment_id="delivery-rolled-back", reason="quality dropped"),
        ],
        {
            key("llmopt_experiments_started_total"): 3,
            key("llmopt_experiments_active"): 1,
            key("llmopt_experiment_progress_ratio", experiment="delivery-running"): 0.75,
            key("llmopt_experiment_confidence_ratio", experiment="delivery-running"): 0.5,
            key("llmopt_experiment_leader_lead_ratio", experiment="delivery-running"): 0.25,
            key("llmopt_experiment_leader_info", experiment="delivery-running", variant="b"): 1,
            key("llmopt_experiment_samples", experiment="delivery-running"): 750,
            key("llmopt_experiments_completed_total", outcome="won"): 1,
            key("llmopt_experiment_winner_improvement_ratio_sum"): 0.125,
            key("llmopt_experiment_sample_size_sum"): 1000,
            key("llmopt_experiment_duration_seconds_sum"): 3600,
            key("llmopt_experiments_rolled_back_total"): 1,
            key("llmopt_exporter_events_accepted_total", type="experiment"): 6,
        },
        id="experiment",
    ),
    pytest.param(
        [
            BanditPull(bandit_id="delivery-bandit", arm_id="t1.0", explored=True),
            BanditPull(
                bandit_id="delivery-bandit",
                arm_id="t0.7",
                explored=False,
                parameter="temperature",
                parameter_value=0.7,
            ),
            BanditReward(bandit_id="delivery-bandit", arm_id="t0.7", reward=0.5, regret=0.25),
            BanditConverged(bandit_id="delivery-bandit", arm_id="t0.7", convergence_seconds=12600),
        ],
        {
            key("llmopt_bandit_pulls_total", bandit="delivery-bandit", arm="t1.0", decision="explore"): 1,
            key("llmopt_bandit_pulls_total", **ARM, decision="exploit"): 1,
            key("llmopt_bandit_reward_count", **ARM): 1,
            key("llmopt_bandit_reward_sum", **ARM): 0.5,
            key("llmopt_bandit_reward_squares_total", **ARM): 0.25,
            key("llmopt_bandit_regret_total", bandit="delivery-bandit"): 0.25,
            key("llmopt_bandit_convergence_duration_seconds", bandit="delivery-bandit"): 12600,
            key("llmopt_exporter_events_accepted_total", type="bandit"): 4,
        },
        id="bandit",
    ),
    pytest.param(
        [
            ParameterUpdate(
                parameter="delivery-top-p",
                value=0.9,
                stability_score=0.75,
                performance_gain=0.125,
                improved=True,
            )
        ],
        {
            key("llmopt_parameter_updates_total", parameter="delivery-top-p"): 1,
            key("llmopt_parameter_improvements_total", parameter="delivery-top-p"): 1,
            key("llmopt_parameter_value", parameter="delivery-top-p"): 0.9,
            key("llmopt_parameter_stability_ratio", parameter="delivery-top-p"): 0.75,
            key("llmopt_parameter_performance_gain_ratio", parameter="delivery-top-p"): 0.125,
            key("llmopt_exporter_events_accepted_total", type="parameter_update"): 1,
        },
        id="parameter_update",
    ),
    pytest.param(
        [
            BudgetLimit(period="month", limit_usd=1000),
            BudgetSpend(category="compute", amount_usd=12.5),
            BudgetSpend(category="infrastructure", amount_usd=4.25),
            BudgetViolation(period="month", spend_usd=1012.5, limit_usd=1000),
            ModelSwitch(from_model="delivery-big", to_model="delivery-small", reason="budget"),
        ],
        {
            key("llmopt_budget_limit_usd", period="month"): 1000,
            key("llmopt_spend_usd_total", category="compute"): 12.5,
            key("llmopt_spend_usd_total", category="infrastructure"): 4.25,
            key("llmopt_budget_violations_total", period="month"): 1,
            key(
                "llmopt_model_switches_total",
                from_model="delivery-big",
                to_model="delivery-small",
                reason="budget",
            ): 1,
            key("llmopt_exporter_events_accepted_total", type="budget"): 5,
        },
        id="budget",
    ),
    pytest.param(
        [
            ModelHealth(
                model="delivery-health", provider="acme", available=True, latency_ms=310, error_rate=0.125
            )
        ],
        {
            key("llmopt_model_available", **HEALTH): 1,
            key("llmopt_model_health_checks_total", **HEALTH, result="available"): 1,
            key("llmopt_model_probe_latency_seconds", **HEALTH): 0.31,
            key("llmopt_model_error_ratio", **HEALTH): 0.125,
            key("llmopt_exporter_events_accepted_total", type="model_health"): 1,
        },
        id="model_health",
    ),
    pytest.param(
        [
            Business(
                baseline_quality=78,
                optimization_cost_usd=25,
                value_derived_usd=310,
                cost_savings_confidence=0.95,
                quality_improvement_confidence=0.9,
            )
        ],
        {
            key("llmopt_quality_baseline_score"): 78,
            key("llmopt_optimization_cost_usd_total"): 25,
            key("llmopt_value_derived_usd_total"): 310,
            key("llmopt_cost_savings_confidence_ratio"): 0.95,
            key("llmopt_quality_improvement_confidence_ratio"): 0.9,
            key("llmopt_exporter_events_accepted_total", type="business"): 1,
        },
        id="business",
    ),
    pytest.param(
        [
            IncidentOpened(incident_id="delivery-1", severity="sev3", title="slow answers"),
            IncidentResolved(
                incident_id="delivery-1",
                severity="sev3",
                opened_at=T0,
                timestamp=T0 + 1800,
            ),
            IncidentOpened(incident_id="delivery-2", severity="sev3"),
        ],
        {
            key("llmopt_incidents_total", severity="sev3"): 2,
            key("llmopt_incidents_resolved_total", severity="sev3"): 1,
            key("llmopt_incidents_open", severity="sev3"): 1,
            key("llmopt_incident_downtime_seconds_total", severity="sev3"): 1800,
            key("llmopt_exporter_events_accepted_total", type="incident"): 3,
        },
        id="incident",
    ),
    pytest.param(
        [Deployment(action="deployed", component="delivery-router", version="2.0.0", timestamp=T0)],
        {
            key("llmopt_deployments_total", component="delivery-router", action="deployed"): 1,
            key("llmopt_deployment_timestamp_seconds", component="delivery-router"): T0,
            key("llmopt_exporter_events_accepted_total", type="deployment"): 1,
        },
        id="deployment",
    ),
]


@pytest.mark.parametrize(("events", "changes"), CASES)
def test_events_arrive_with_exact_values(
    exporter: Exporter,
    new_client: Callable[..., Client],
    events: Sequence[Event],
    changes: dict[SampleKey, float],
) -> None:
    before = exporter.samples()
    client = new_client(exporter.url)
    for event in events:
        client.emit(event)

    assert client.flush(timeout=5)
    after = exporter.samples()
    missing = [series for series in changes if series not in after]
    assert not missing
    assert {series: after[series] - before.get(series, 0.0) for series in changes} == changes
    stats = client.stats
    assert (stats.sent, stats.retried, stats.dropped, stats.failed, stats.pending) == (
        len(events),
        0,
        0,
        0,
        0,
    )


def test_an_invalid_event_is_counted_and_the_rest_of_its_batch_still_arrives(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    labels = {"model": "delivery-invalid", "provider": "unknown", "task_type": "unknown"}
    client = new_client(exporter.url)
    client.emit(LlmRequest(model="delivery-invalid", latency_ms=10))
    client.emit(LlmRequest(model="delivery-invalid", latency_ms=10, quality=150))  # scores are 0-100
    client.emit(LlmRequest(model="delivery-invalid", latency_ms=10))

    assert client.flush(timeout=5)
    assert exporter.samples()[key("llmopt_llm_requests_total", **labels)] == 2
    assert (client.stats.sent, client.stats.failed, client.stats.retried) == (2, 1, 0)


def test_an_event_that_is_not_json_is_counted_and_never_raised(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)
    client.emit(LlmRequest(model="delivery-nan", latency_ms=float("nan")))

    assert client.flush(timeout=5)
    assert (client.stats.sent, client.stats.failed) == (0, 1)


class FlakyExporter:
    """An HTTP server that answers 503 to its first request and 202 to the others, keeping every
    body it got."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, list[dict[str, object]]]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(503 if len(bodies) == 1 else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def flaky_exporter() -> Iterator[FlakyExporter]:
    server = FlakyExporter()
    yield server
    server.stop()


def test_a_retried_batch_carries_the_same_event_ids(
    flaky_exporter: FlakyExporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(flaky_exporter.url)
    for _ in range(3):
        client.emit(Feedback(thumbs="up"))

    assert client.flush(timeout=5)
    first, second = flaky_exporter.bodies
    ids = [event["event_id"] for event in first["events"]]
    assert len(set(ids)) == 3
    assert [event["event_id"] for event in second["events"]] == ids
    assert all("timestamp" in event for event in first["events"])
    assert (client.stats.sent, client.stats.retried) == (3, 3)


def test_a_wrong_token_keeps_the_events_says_why_and_they_arrive_once_it_is_accepted(
    new_exporter: Callable[..., Exporter], caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 means the exporter applied nothing: the client keeps the events, logs one error naming
    the setting, counts the refusals, and delivers the events once the exporter takes its token."""
    first = new_exporter(env={"LLMOPT_INGEST_TOKENS": "the-right-token"})
    first.start()
    client = Client(
        first.url,
        flush_interval=60.0,
        retry_initial=0.05,
        retry_max=0.1,
        headers={"Authorization": "Bearer a-wrong-token"},
    )
    try:
        with caplog.at_level("WARNING", logger="llmopt_client"):
            for _ in range(3):
                client.emit(Feedback(thumbs="up", model="auth-fb"))
            assert not client.flush(timeout=1.0)
        stats = client.stats
        assert (stats.sent, stats.failed, stats.dropped, stats.pending) == (0, 0, 0, 3)
        assert stats.auth_rejections >= 2  # refused again on each retry, with backoff
        errors = [record for record in caplog.records if record.levelname == "ERROR"]
        assert len(errors) == 1, [record.getMessage() for record in caplog.records]
        assert "ingest_tokens" in errors[0].getMessage() and "Authorization" in errors[0].getMessage()
        assert not [record for record in caplog.records if record.levelname == "WARNING"]

        first.stop()
        # The operator adds the client's token (tokens are a list, for rotation).
        second = new_exporter(port=first.port, env={"LLMOPT_INGEST_TOKENS": "the-right-token,a-wrong-token"})
        second.start()
        assert client.flush(timeout=10.0)
        assert (client.stats.sent, client.stats.failed, client.stats.pending) == (3, 0, 0)
        thumbs = key("llmopt_feedback_thumbs_total", model="auth-fb", experiment="", variant="", rating="up")
        assert second.samples()[thumbs] == 3
    finally:
        client.close(timeout=0.5)
