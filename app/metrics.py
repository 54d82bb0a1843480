"""Every metric the exporter exposes, declared once.

The declarations below are the single source of truth: the metric store is built from them,
`docs/metrics.md` is generated from them, and the rule and dashboard tests check every name they
use against them. Names follow Prometheus practice: the ``llmopt_`` prefix, base units
(``_seconds``, ratios 0-1, money in ``_usd``), ``_total`` on counters, ``_timestamp_seconds`` for
points in time, and labels only from bounded sets (ids of users, requests and traces never become
labels; trace ids travel as exemplars).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.metrics import MetricWrapperBase

MetricKind = Literal["counter", "gauge", "histogram", "summary"]

# OpenTelemetry GenAI advice for operation durations (0.01 ... 81.92 s), made to include the two
# thresholds our rules compare against: the 1 s latency SLO and the 5 s HighLatency alert. A
# quantile can only be as sharp as the buckets around it, so both sit on a bucket boundary.
LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.0,
    1.28,
    2.56,
    5.0,
    10.24,
    20.48,
    40.96,
    81.92,
)
# Time to the first chunk of a streamed answer: the latency boundaries up to 20.48 s with the 2 s
# time-to-first-token SLO threshold added (slos.ttft.threshold_seconds must be one of them).
TTFT_BUCKETS_SECONDS: tuple[float, ...] = tuple(sorted({*LATENCY_BUCKETS_SECONDS[:-2], 2.0}))
# OpenTelemetry GenAI advice for time per output chunk, with finer bounds below 10 ms for fast models.
TIME_PER_TOKEN_BUCKETS_SECONDS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
)
# OpenTelemetry GenAI advice for token usage, trimmed at 1M tokens per request.
TOKEN_BUCKETS: tuple[float, ...] = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
# Quality scores are 0-100; the boundaries include the QualityDegradation threshold (75) and the
# quality SLO target (80).
QUALITY_BUCKETS: tuple[float, ...] = (10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100)
BATCH_SIZE_BUCKETS: tuple[float, ...] = (1, 5, 10, 50, 100, 500, 1000, 5000)
INGEST_DURATION_BUCKETS_SECONDS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


@dataclass(frozen=True, eq=False)
class MetricSpec:
    """One metric: its exposed name, type, unit, help text, labels and (histograms) buckets.

    Compared and hashed by identity: each declaration below is the one object for its metric.
    """

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""
    buckets: tuple[float, ...] = ()
    category: str = ""
    # A metric without labels is exposed from the start (at 0) unless it has no value until set:
    # a timestamp of something that has not happened yet.
    is_unset_at_start: bool = False
    # Its equivalent in OpenTelemetry's GenAI semantic conventions, for docs/metrics.md.
    otel: str = ""
    # Declared by the operator (app.custom): every label is client-supplied, each with its own cap.
    is_custom: bool = False
    # The declared dimensions among its labels (app.dimensions): client-supplied, each capped.
    dimensions: tuple[str, ...] = ()

    @property
    def base_name(self) -> str:
        """The name prometheus_client wants: counters are declared without ``_total``."""
        if self.kind == "counter":
            return self.name.removesuffix("_total")
        return self.name


def _counter(
    name: str, help_: str, labels: Sequence[str] = (), *, unit: str = "", category: str, otel: str = ""
) -> MetricSpec:
    if not name.endswith("_total"):
        raise ValueError(f"counter {name!r} must end in _total")
    return MetricSpec(name, "counter", help_, tuple(labels), unit, (), category, otel=otel)


def _gauge(
    name: str,
    help_: str,
    labels: Sequence[str] = (),
    *,
    unit: str = "",
    category: str,
    is_unset_at_start: bool = False,
) -> MetricSpec:
    return MetricSpec(name, "gauge", help_, tuple(labels), unit, (), category, is_unset_at_start)


def _histogram(
    name: str,
    help_: str,
    labels: Sequence[str],
    buckets: tuple[float, ...],
    *,
    unit: str = "",
    category: str,
    otel: str = "",
) -> MetricSpec:
    return MetricSpec(name, "histogram", help_, tuple(labels), unit, buckets, category, otel=otel)


def _summary(
    name: str, help_: str, labels: Sequence[str] = (), *, unit: str = "", category: str
) -> MetricSpec:
    return MetricSpec(name, "summary", help_, tuple(labels), unit, (), category)


LLM_LABELS = ("model", "provider", "task_type")
VARIANT_LABELS = ("experiment", "variant")
ARM_LABELS = ("bandit", "arm")

# Labels and their OpenTelemetry GenAI attributes (current; v1.3x where it differs), for the docs.
OTEL_LABELS: Mapping[str, str] = {
    "model": "`gen_ai.response.model`, else `gen_ai.request.model`",
    "provider": "`gen_ai.provider.name` (well-known names; v1.3x: `gen_ai.system`)",
    "operation": "`gen_ai.operation.name`",
    "error_type": "`error.type`",
    "finish_reason": "`gen_ai.response.finish_reasons` (one value per call here)",
    "direction": "`gen_ai.token.type`",
}

SYSTEM = "System"
MODEL = "Model"
OPTIMIZATION = "Optimization"
BUSINESS = "Business"
SELF = "Exporter"
CUSTOM = "Custom"

# --- LLM calls (llm_request) -------------------------------------------------------------------
LLM_REQUESTS = _counter(
    "llmopt_llm_requests_total",
    "LLM calls reported by the optimizer, successful or not (llm_request events).",
    LLM_LABELS,
    category=SYSTEM,
    otel="the count of `gen_ai.client.operation.duration`",
)
LLM_REQUEST_ERRORS = _counter(
    "llmopt_llm_request_errors_total",
    "LLM calls that failed, by error type (llm_request events with status=error).",
    (*LLM_LABELS, "error_type"),
    category=SYSTEM,
    otel="the count of `gen_ai.client.operation.duration` with `error.type`",
)
LLM_RETRIES = _counter(
    "llmopt_llm_retries_total",
    "LLM calls that were a later try of a logical call (llm_request attempt >= 2): retries and "
    "fallbacks. Logical calls are llmopt_llm_requests_total less these. From a label set's first "
    "call on (at 0 until the first retry), so that rate() sees its first retry.",
    LLM_LABELS,
    category=SYSTEM,
)
LLM_FAILURES = _counter(
    "llmopt_llm_request_failures_total",
    "LLM calls that failed, whatever the error (llmopt_llm_request_errors_total without error_type), "
    "from a label set's first call on (at 0 until the first failure), so that rate() sees every "
    "failure after the first call: the availability SLI's failures.",
    LLM_LABELS,
    category=SYSTEM,
)
LLM_FALLBACKS = _counter(
    "llmopt_llm_fallbacks_total",
    "LLM calls made on a model in place of another whose attempt failed, by the model replaced "
    "(from_model) and the model used (llm_request fallback_from).",
    ("from_model", "model"),
    category=SYSTEM,
)
LLM_REQUEST_DURATION = _histogram(
    "llmopt_llm_request_duration_seconds",
    "End-to-end latency of LLM calls as seen by the optimizer (llm_request.latency_ms).",
    LLM_LABELS,
    LATENCY_BUCKETS_SECONDS,
    unit="seconds",
    category=SYSTEM,
    otel="`gen_ai.client.operation.duration`",
)
LLM_TOKENS = _counter(
    "llmopt_llm_tokens_total",
    "Tokens processed by LLM calls; direction is input (prompt) or output (completion).",
    (*LLM_LABELS, "direction"),
    category=MODEL,
    otel="the sum of `gen_ai.client.token.usage`; `direction` is `gen_ai.token.type`",
)
LLM_CACHED_TOKENS = _counter(
    "llmopt_llm_cached_tokens_total",
    "Input tokens read from the provider's prompt cache (a subset of direction=input).",
    LLM_LABELS,
    category=MODEL,
    otel="span attribute `gen_ai.usage.cache_read.input_tokens`",
)
LLM_CACHE_WRITE_TOKENS = _counter(
    "llmopt_llm_cache_write_tokens_total",
    "Input tokens written to the provider's prompt cache (a subset of direction=input).",
    LLM_LABELS,
    category=MODEL,
    otel="span attribute `gen_ai.usage.cache_creation.input_tokens`",
)
LLM_REASONING_TOKENS = _counter(
    "llmopt_llm_reasoning_tokens_total",
    "Output tokens the model spent on reasoning (a subset of direction=output).",
    LLM_LABELS,
    category=MODEL,
)
LLM_INPUT_TOKENS = _histogram(
    "llmopt_llm_input_tokens",
    "Input (prompt) tokens per LLM call.",
    ("model", "provider"),
    TOKEN_BUCKETS,
    unit="tokens",
    category=MODEL,
    otel="`gen_ai.client.token.usage` with `gen_ai.token.type` input",
)
LLM_OUTPUT_TOKENS = _histogram(
    "llmopt_llm_output_tokens",
    "Output (completion) tokens per LLM call.",
    ("model", "provider"),
    TOKEN_BUCKETS,
    unit="tokens",
    category=MODEL,
    otel="`gen_ai.client.token.usage` with `gen_ai.token.type` output",
)
LLM_TIME_TO_FIRST_TOKEN = _histogram(
    "llmopt_llm_time_to_first_token_seconds",
    "Time from the request to the first chunk of a streamed answer (llm_request.time_to_first_token_ms).",
    LLM_LABELS,
    TTFT_BUCKETS_SECONDS,
    unit="seconds",
    category=SYSTEM,
    otel="`gen_ai.client.operation.time_to_first_chunk`; "
    "v1.3x: `gen_ai.server.time_to_first_token` (server side)",
)
LLM_TIME_PER_OUTPUT_TOKEN = _histogram(
    "llmopt_llm_time_per_output_token_seconds",
    "Time per output token after the first, of streamed calls with two or more output tokens: "
    "(latency - time to first token) / (output tokens - 1).",
    LLM_LABELS,
    TIME_PER_TOKEN_BUCKETS_SECONDS,
    unit="seconds",
    category=SYSTEM,
    otel="`gen_ai.client.operation.time_per_output_chunk` (per chunk); "
    "v1.3x: `gen_ai.server.time_per_output_token` (server side)",
)
LLM_PRICED_COST = _counter(
    "llmopt_llm_priced_cost_usd_total",
    "What LLM calls cost by the price table (prices_file), whether they reported a cost or not.",
    LLM_LABELS,
    unit="usd",
    category=BUSINESS,
)
COST_MISMATCHES = _counter(
    "llmopt_llm_cost_mismatches_total",
    "LLM calls whose reported cost_usd differs from the price table by more than its tolerance.",
    ("model",),
    category=BUSINESS,
)
LLM_FINISH_REASONS = _counter(
    "llmopt_llm_finish_reasons_total",
    "LLM calls that reported why the model stopped, by finish_reason (length: cut at the token limit).",
    (*LLM_LABELS, "finish_reason"),
    category=MODEL,
    otel="span attribute `gen_ai.response.finish_reasons`",
)
LLM_OPERATIONS = _counter(
    "llmopt_llm_operations_total",
    "LLM calls by operation (chat, text_completion, embeddings, generate_content, other).",
    ("model", "provider", "operation"),
    category=MODEL,
    otel="`gen_ai.operation.name` on every GenAI metric",
)
LLM_REQUEST_TOKENS = _histogram(
    "llmopt_llm_request_tokens",
    "Tokens (input + output) per LLM call.",
    ("model", "provider"),
    TOKEN_BUCKETS,
    unit="tokens",
    category=MODEL,
)
LLM_COST = _counter(
    "llmopt_llm_cost_usd_total",
    "What LLM calls cost, in US dollars (llm_request.cost_usd).",
    LLM_LABELS,
    unit="usd",
    category=BUSINESS,
)
LLM_BASELINE_COST = _counter(
    "llmopt_llm_baseline_cost_usd_total",
    "What the same LLM calls would have cost on the baseline configuration, in US dollars.",
    LLM_LABELS,
    unit="usd",
    category=BUSINESS,
)
LLM_QUALITY = _histogram(
    "llmopt_llm_quality_score",
    "Composite quality score (0-100) of LLM responses.",
    LLM_LABELS,
    QUALITY_BUCKETS,
    unit="score 0-100",
    category=MODEL,
)
LLM_QUALITY_DIMENSION = _summary(
    "llmopt_llm_quality_dimension_score",
    "Quality score (0-100) of LLM responses per dimension (accuracy, relevance, coherence, completeness).",
    ("model", "provider", "dimension"),
    unit="score 0-100",
    category=MODEL,
)

# --- Spend and budget (llm_request, budget) ----------------------------------------------------
SPEND = _counter(
    "llmopt_spend_usd_total",
    "Everything spent, in US dollars, by category: token (from llm_request.cost_usd), compute and "
    "infrastructure (from budget spend events).",
    ("category",),
    unit="usd",
    category=BUSINESS,
)
BUDGET_LIMIT = _gauge(
    "llmopt_budget_limit_usd",
    "The spend budget for each period (hour, day, month), in US dollars.",
    ("period",),
    unit="usd",
    category=OPTIMIZATION,
)
BUDGET_VIOLATIONS = _counter(
    "llmopt_budget_violations_total",
    "Budget violations reported by the optimizer, by budget period.",
    ("period",),
    category=OPTIMIZATION,
)
MODEL_SWITCHES = _counter(
    "llmopt_model_switches_total",
    "Times the optimizer switched models, by origin, destination and reason.",
    ("from_model", "to_model", "reason"),
    category=OPTIMIZATION,
)

# --- A/B experiments (experiment, llm_request, feedback) ---------------------------------------
EXPERIMENTS_STARTED = _counter(
    "llmopt_experiments_started_total", "A/B experiments started.", category=OPTIMIZATION
)
EXPERIMENTS_COMPLETED = _counter(
    "llmopt_experiments_completed_total",
    "A/B experiments completed, by outcome: won (a variant beat control) or no_winner.",
    ("outcome",),
    category=OPTIMIZATION,
)
EXPERIMENTS_ROLLED_BACK = _counter(
    "llmopt_experiments_rolled_back_total", "A/B experiments rolled back.", category=OPTIMIZATION
)
EXPERIMENTS_ACTIVE = _gauge(
    "llmopt_experiments_active",
    "A/B experiments currently running (started, not yet completed or rolled back).",
    category=OPTIMIZATION,
)
EXPERIMENT_PROGRESS = _gauge(
    "llmopt_experiment_progress_ratio",
    "Progress of a running experiment towards its planned sample size (0-1).",
    ("experiment",),
    unit="ratio",
    category=OPTIMIZATION,
)
EXPERIMENT_CONFIDENCE = _gauge(
    "llmopt_experiment_confidence_ratio",
    "Statistical confidence (0-1) that a running experiment's leader is really best.",
    ("experiment",),
    unit="ratio",
    category=OPTIMIZATION,
)
EXPERIMENT_LEAD = _gauge(
    "llmopt_experiment_leader_lead_ratio",
    "Relative lead of a running experiment's leading variant over the runner-up (0.082 = +8.2 %).",
    ("experiment",),
    unit="ratio",
    category=OPTIMIZATION,
)
EXPERIMENT_LEADER = _gauge(
    "llmopt_experiment_leader_info",
    "1 for the variant currently leading a running experiment.",
    VARIANT_LABELS,
    category=OPTIMIZATION,
)
EXPERIMENT_TRAFFIC_SPLIT = _gauge(
    "llmopt_experiment_traffic_split_ratio",
    "The planned share of a running experiment's traffic for each variant (0-1), as it started.",
    VARIANT_LABELS,
    category=OPTIMIZATION,
)
EXPERIMENT_CONTROL = _gauge(
    "llmopt_experiment_control_info",
    "1 for the control variant of a running experiment: the one the others are compared with.",
    VARIANT_LABELS,
    category=OPTIMIZATION,
)
EXPERIMENT_SAMPLES = _gauge(
    "llmopt_experiment_samples",
    "Samples collected so far by a running experiment.",
    ("experiment",),
    unit="samples",
    category=OPTIMIZATION,
)
EXPERIMENT_STARTED_AT = _gauge(
    "llmopt_experiment_start_timestamp_seconds",
    "When a running experiment started (Unix time).",
    ("experiment",),
    unit="seconds",
    category=OPTIMIZATION,
)
EXPERIMENT_IMPROVEMENT = _summary(
    "llmopt_experiment_winner_improvement_ratio",
    "Improvement of the winning variant over control, for experiments completed with a winner.",
    unit="ratio",
    category=OPTIMIZATION,
)
EXPERIMENT_SAMPLE_SIZE = _summary(
    "llmopt_experiment_sample_size",
    "Sample size of completed experiments.",
    unit="samples",
    category=OPTIMIZATION,
)
EXPERIMENT_DURATION = _summary(
    "llmopt_experiment_duration_seconds",
    "How long completed experiments ran.",
    unit="seconds",
    category=OPTIMIZATION,
)
VARIANT_REQUESTS = _counter(
    "llmopt_experiment_variant_requests_total",
    "LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    category=OPTIMIZATION,
)
VARIANT_ERRORS = _counter(
    "llmopt_experiment_variant_errors_total",
    "Failed LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    category=OPTIMIZATION,
)
VARIANT_COST = _counter(
    "llmopt_experiment_variant_cost_usd_total",
    "Cost of the LLM calls served by each experiment variant, in US dollars.",
    VARIANT_LABELS,
    unit="usd",
    category=OPTIMIZATION,
)
VARIANT_QUALITY = _summary(
    "llmopt_experiment_variant_quality_score",
    "Composite quality score (0-100) of the LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    unit="score 0-100",
    category=OPTIMIZATION,
)
# Sums of squares beside the sums: with the count they are the sufficient statistics of each
# variant's mean and variance, from which the rules compare variants (Welch standard errors).
VARIANT_QUALITY_SQUARES = _counter(
    "llmopt_experiment_variant_quality_score_squares_total",
    "Sum of squared quality scores of the LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    category=OPTIMIZATION,
)
VARIANT_COST_SQUARES = _counter(
    "llmopt_experiment_variant_cost_usd_squares_total",
    "Sum of squared costs (US dollars squared) of the LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    category=OPTIMIZATION,
)
VARIANT_DURATION = _histogram(
    "llmopt_experiment_variant_request_duration_seconds",
    "End-to-end latency of the LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    LATENCY_BUCKETS_SECONDS,
    unit="seconds",
    category=OPTIMIZATION,
)
VARIANT_TIME_TO_FIRST_TOKEN = _histogram(
    "llmopt_experiment_variant_time_to_first_token_seconds",
    "Time to the first chunk of the streamed LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    TTFT_BUCKETS_SECONDS,
    unit="seconds",
    category=OPTIMIZATION,
)
VARIANT_TIME_PER_OUTPUT_TOKEN = _histogram(
    "llmopt_experiment_variant_time_per_output_token_seconds",
    "Time per output token after the first, of the streamed LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    TIME_PER_TOKEN_BUCKETS_SECONDS,
    unit="seconds",
    category=OPTIMIZATION,
)
VARIANT_DURATION_SQUARES = _counter(
    "llmopt_experiment_variant_request_duration_seconds_squares_total",
    "Sum of squared latencies (seconds squared) of the LLM calls served by each experiment variant.",
    VARIANT_LABELS,
    category=OPTIMIZATION,
)
EXPERIMENT_WINNER = _gauge(
    "llmopt_experiment_winner_timestamp_seconds",
    "When the optimizer completed an experiment naming this variant its winner (Unix time); kept "
    "until the state expires, so the rules can check the winner against their own interval.",
    VARIANT_LABELS,
    unit="seconds",
    category=OPTIMIZATION,
)

# --- Bandit (bandit, llm_request) --------------------------------------------------------------
BANDIT_PULLS = _counter(
    "llmopt_bandit_pulls_total",
    "Arm selections by the bandit; decision is explore or exploit.",
    (*ARM_LABELS, "decision"),
    category=OPTIMIZATION,
)
BANDIT_REWARD = _summary(
    "llmopt_bandit_reward",
    "Rewards observed per arm (sum and count give the mean).",
    ARM_LABELS,
    category=OPTIMIZATION,
)
BANDIT_REWARD_SQUARES = _counter(
    "llmopt_bandit_reward_squares_total",
    "Sum of squared rewards per arm, so PromQL can compute the variance and a 95 % interval.",
    ARM_LABELS,
    category=OPTIMIZATION,
)
BANDIT_REGRET = _counter(
    "llmopt_bandit_regret_total",
    "Cumulative regret of the bandit (reward of the best arm minus reward obtained).",
    ("bandit",),
    category=OPTIMIZATION,
)
BANDIT_CONVERGENCE = _gauge(
    "llmopt_bandit_convergence_duration_seconds",
    "How long the bandit took to converge, for bandits that reported convergence.",
    ("bandit",),
    unit="seconds",
    category=OPTIMIZATION,
)
BANDIT_ARM_PARAMETER = _gauge(
    "llmopt_bandit_arm_parameter_value",
    "The parameter value an arm stands for (e.g. temperature 0.7), as last reported.",
    (*ARM_LABELS, "parameter"),
    category=OPTIMIZATION,
)

# --- Parameter optimization (parameter_update) -------------------------------------------------
PARAMETER_UPDATES = _counter(
    "llmopt_parameter_updates_total",
    "Parameter updates applied by the optimizer.",
    ("parameter",),
    category=OPTIMIZATION,
)
PARAMETER_IMPROVEMENTS = _counter(
    "llmopt_parameter_improvements_total",
    "Parameter updates that improved performance.",
    ("parameter",),
    category=OPTIMIZATION,
)
PARAMETER_VALUE = _gauge(
    "llmopt_parameter_value",
    "Current value of each optimized parameter.",
    ("parameter",),
    category=OPTIMIZATION,
)
PARAMETER_STABILITY = _gauge(
    "llmopt_parameter_stability_ratio",
    "Stability score of each optimized parameter (0-1, higher is more stable).",
    ("parameter",),
    unit="ratio",
    category=OPTIMIZATION,
)
PARAMETER_GAIN = _gauge(
    "llmopt_parameter_performance_gain_ratio",
    "Performance gain of the latest update of each parameter (0.05 = +5 %).",
    ("parameter",),
    unit="ratio",
    category=OPTIMIZATION,
)
LAST_IMPROVEMENT = _gauge(
    "llmopt_optimization_last_improvement_timestamp_seconds",
    "When the optimizer last improved something (an improving parameter update or an experiment "
    "won), Unix time; absent until the first (kept across restarts by the snapshot).",
    unit="seconds",
    category=OPTIMIZATION,
    is_unset_at_start=True,
)

# --- Feedback (feedback) -----------------------------------------------------------------------
FEEDBACK_LABELS = ("model", *VARIANT_LABELS)
FEEDBACK_THUMBS = _counter(
    "llmopt_feedback_thumbs_total",
    "Explicit thumbs feedback from users; rating is up or down.",
    (*FEEDBACK_LABELS, "rating"),
    category=BUSINESS,
)
FEEDBACK_NPS = _counter(
    "llmopt_feedback_nps_responses_total",
    "Net Promoter Score answers (0-10) by category: promoter (9-10), passive (7-8), detractor (0-6).",
    (*FEEDBACK_LABELS, "category"),
    category=BUSINESS,
)
FEEDBACK_CSAT = _counter(
    "llmopt_feedback_csat_responses_total",
    "Customer satisfaction answers (1-5).",
    FEEDBACK_LABELS,
    category=BUSINESS,
)
FEEDBACK_CSAT_SATISFIED = _counter(
    "llmopt_feedback_csat_satisfied_total",
    "Customer satisfaction answers of 4 or 5 (satisfied).",
    FEEDBACK_LABELS,
    category=BUSINESS,
)

# --- Model health (model_health) ---------------------------------------------------------------
MODEL_AVAILABLE = _gauge(
    "llmopt_model_available",
    "1 if the model's last health check found it available, else 0.",
    ("model", "provider"),
    category=MODEL,
)
MODEL_PROBE_LATENCY = _gauge(
    "llmopt_model_probe_latency_seconds",
    "Latency of the model's last health-check probe.",
    ("model", "provider"),
    unit="seconds",
    category=MODEL,
)
MODEL_ERROR_RATIO = _gauge(
    "llmopt_model_error_ratio",
    "Error ratio (0-1) the model's last health check reported.",
    ("model", "provider"),
    unit="ratio",
    category=MODEL,
)
MODEL_LAST_CHECK = _gauge(
    "llmopt_model_last_check_timestamp_seconds",
    "When the model was last health-checked (Unix time).",
    ("model", "provider"),
    unit="seconds",
    category=MODEL,
)
MODEL_HEALTH_CHECKS = _counter(
    "llmopt_model_health_checks_total",
    "Health checks reported per model; result is available or unavailable.",
    ("model", "provider", "result"),
    category=MODEL,
)

# --- Business results (business) ---------------------------------------------------------------
QUALITY_BASELINE = _gauge(
    "llmopt_quality_baseline_score",
    "Quality (0-100) before optimization, the reference for quality improvement.",
    unit="score 0-100",
    category=BUSINESS,
)
QUALITY_IMPROVEMENT_CONFIDENCE = _gauge(
    "llmopt_quality_improvement_confidence_ratio",
    "Statistical confidence (0-1) in the reported quality improvement.",
    unit="ratio",
    category=BUSINESS,
)
COST_SAVINGS_CONFIDENCE = _gauge(
    "llmopt_cost_savings_confidence_ratio",
    "Statistical confidence (0-1) in the reported cost savings.",
    unit="ratio",
    category=BUSINESS,
)
OPTIMIZATION_COST = _counter(
    "llmopt_optimization_cost_usd_total",
    "What running the optimization itself cost, in US dollars.",
    unit="usd",
    category=BUSINESS,
)
VALUE_DERIVED = _counter(
    "llmopt_value_derived_usd_total",
    "Business value attributed to the optimization, in US dollars.",
    unit="usd",
    category=BUSINESS,
)

# --- Incidents and deployments (incident, deployment) ------------------------------------------
INCIDENTS = _counter(
    "llmopt_incidents_total", "Incidents opened, by severity.", ("severity",), category=SYSTEM
)
INCIDENTS_RESOLVED = _counter(
    "llmopt_incidents_resolved_total", "Incidents resolved, by severity.", ("severity",), category=SYSTEM
)
INCIDENTS_OPEN = _gauge(
    "llmopt_incidents_open", "Incidents currently open, by severity.", ("severity",), category=SYSTEM
)
INCIDENT_DOWNTIME = _counter(
    "llmopt_incident_downtime_seconds_total",
    "Time from opening to resolution, summed over resolved incidents (downtime).",
    ("severity",),
    unit="seconds",
    category=SYSTEM,
)
DEPLOYMENTS = _counter(
    "llmopt_deployments_total",
    "Deployments of optimizer components; action is deployed or rolled_back.",
    ("component", "action"),
    category=SYSTEM,
)
LAST_DEPLOYMENT = _gauge(
    "llmopt_deployment_timestamp_seconds",
    "When each optimizer component was last deployed or rolled back (Unix time).",
    ("component",),
    unit="seconds",
    category=SYSTEM,
)

# --- Logged errors of optimizer services (log) -------------------------------------------------
LOG_EVENTS = _counter(
    "llmopt_log_events_total",
    "Error and critical log entries reported by optimizer services, by level and component "
    "(log events; their messages go to the exporter's log).",
    ("level", "component"),
    category=SYSTEM,
)
# The alert on critical entries reads this gauge, not the counter: increase() cannot see the first
# increment of a series, and a component's first critical entry is the one that must page.
LAST_LOG_EVENT = _gauge(
    "llmopt_log_last_event_timestamp_seconds",
    "When the exporter last received a log entry of this level and component (Unix time).",
    ("level", "component"),
    unit="seconds",
    category=SYSTEM,
)

# --- The exporter itself -----------------------------------------------------------------------
BUILD_INFO = _gauge(
    "llmopt_exporter_build_info",
    "Build information of this exporter; the value is always 1.",
    ("version", "python_version"),
    category=SELF,
)
START_TIME = _gauge(
    "llmopt_exporter_start_timestamp_seconds",
    "When this exporter process started (Unix time).",
    unit="seconds",
    category=SELF,
)
EVENTS_ACCEPTED = _counter(
    "llmopt_exporter_events_accepted_total",
    "Events accepted and applied, by event type.",
    ("type",),
    category=SELF,
)
EVENTS_REJECTED = _counter(
    "llmopt_exporter_events_rejected_total",
    "Events rejected, by event type (unknown when unreadable) and reason.",
    ("type", "reason"),
    category=SELF,
)
BATCH_SIZE = _histogram(
    "llmopt_exporter_batch_size_events",
    "Events per accepted ingest request.",
    (),
    BATCH_SIZE_BUCKETS,
    unit="events",
    category=SELF,
)
INGEST_DURATION = _histogram(
    "llmopt_exporter_ingest_duration_seconds",
    "Time to validate and apply one ingest request.",
    (),
    INGEST_DURATION_BUCKETS_SECONDS,
    unit="seconds",
    category=SELF,
)

EVENTS_DUPLICATE = _counter(
    "llmopt_exporter_events_duplicate_total",
    "Events acknowledged but not applied because their event_id was already applied (retries).",
    ("type",),
    category=SELF,
)
UNPRICED_CALLS = _counter(
    "llmopt_exporter_unpriced_calls_total",
    "LLM calls of a model the price table (prices_file) has no price for (none without a table).",
    ("model",),
    category=SELF,
)
AUTH_FAILURES = _counter(
    "llmopt_exporter_auth_failures_total",
    "Requests refused for missing or wrong credentials, by endpoint (ingest, metrics, admin).",
    ("endpoint",),
    category=SELF,
)
REQUESTS_SHED = _counter(
    "llmopt_exporter_requests_shed_total",
    "Ingest requests answered 503: max_pending_body_bytes of bodies held, max_concurrent_requests "
    "past their body, or max_wait_seconds waited for a turn.",
    category=SELF,
)
OTLP_SPANS = _counter(
    "llmopt_exporter_otlp_spans_total",
    "Spans received on POST /v1/traces, by outcome: applied (as an llm_request event), duplicate "
    "(re-exported, or the outer of two spans of one call), rejected (an LLM call with unusable "
    "values, named in the partial-success answer) or ignored (not an LLM call).",
    ("outcome",),
    category=SELF,
)
OTLP_SPANS_IGNORED = _counter(
    "llmopt_exporter_otlp_spans_ignored_total",
    "Spans received on POST /v1/traces that are not an LLM call, by reason: not_genai (no GenAI "
    "attributes), not_a_model_call (agent, tool or workflow spans), nested_call (the outer of two "
    "spans of one call in one export).",
    ("reason",),
    category=SELF,
)
LABEL_OVERFLOW = _counter(
    "llmopt_exporter_label_overflow_total",
    "Updates whose label value was past the label's cap and was counted under __overflow__.",
    ("metric", "label"),
    category=SELF,
)
SERIES_OVERFLOW = _counter(
    "llmopt_exporter_series_overflow_total",
    "Updates of a new label set counted under the metric's __overflow__ label set because the "
    "metric already held max_series_per_metric series, or the exporter max_series (limit).",
    ("metric", "limit"),
    category=SELF,
)
SERIES = _gauge(
    "llmopt_exporter_series",
    "Label sets each metric holds now (a histogram's label set is one series per bucket plus "
    "_sum and _count).",
    ("metric",),
    category=SELF,
)
STATE_EXPIRED = _counter(
    "llmopt_exporter_state_expired_total",
    "State dropped after state_ttl_seconds without events, by kind: gauges of experiments, models "
    "and arms, open incidents, and gauges that overflow updates went to.",
    ("kind",),
    category=SELF,
)
STATE_EVICTED = _counter(
    "llmopt_exporter_state_evicted_total",
    "State dropped because max_state_entries of its kind (experiment, model, arm, incident) were "
    "kept: the least recently seen goes, with its gauges.",
    ("kind",),
    category=SELF,
)
STATE_DELETED = _counter(
    "llmopt_exporter_state_deleted_total",
    "Series removed through the admin API, by kind (experiment, model).",
    ("kind",),
    category=SELF,
)
SNAPSHOT_WRITES = _counter(
    "llmopt_exporter_snapshot_writes_total",
    "State snapshots written, by result (success or failure).",
    ("result",),
    category=SELF,
)
SNAPSHOT_RESTORE_FAILURES = _counter(
    "llmopt_exporter_snapshot_restore_failures_total",
    "Snapshots found unreadable at start-up (set aside; the exporter started empty).",
    category=SELF,
)
SNAPSHOT_LAST_SUCCESS = _gauge(
    "llmopt_exporter_snapshot_last_success_timestamp_seconds",
    "When the state snapshot was last written successfully (Unix time).",
    unit="seconds",
    category=SELF,
)
SNAPSHOT_SIZE = _gauge(
    "llmopt_exporter_snapshot_size_bytes",
    "Size of the state snapshot last written (at most max_snapshot_bytes).",
    unit="bytes",
    category=SELF,
)

ALL_METRICS: tuple[MetricSpec, ...] = tuple(
    value for value in globals().values() if isinstance(value, MetricSpec)
)

# Reasons an event can be rejected: a fixed set, so the self-metric stays bounded.
OTLP_OUTCOMES = ("applied", "duplicate", "rejected", "ignored")
OTLP_IGNORE_REASONS = ("not_genai", "not_a_model_call", "nested_call")
REJECT_REASONS = (
    "malformed_body",
    "invalid_event",
    "batch_rejected",
    "too_large",
    "unsupported_media_type",
    "client_disconnect",
)
# Labels whose values come from clients and may grow without bound: each has a cap on distinct
# values (label_value_limit). Every other label takes values from a fixed set.
GUARDED_LABELS = frozenset(
    {
        "model",
        "provider",
        "task_type",
        "error_type",
        "experiment",
        "variant",
        "bandit",
        "arm",
        "parameter",
        "from_model",
        "to_model",
        "component",
    }
)
OVERFLOW_VALUE = "__overflow__"


_FACTORIES: Mapping[MetricKind, type[MetricWrapperBase]] = {
    "counter": Counter,
    "gauge": Gauge,
    "histogram": Histogram,
    "summary": Summary,
}


def build_metrics(registry: CollectorRegistry) -> dict[MetricSpec, MetricWrapperBase]:
    """Create every declared metric in ``registry`` and return them keyed by declaration."""
    built: dict[MetricSpec, MetricWrapperBase] = {}
    for spec in ALL_METRICS:
        if spec.kind == "histogram":
            built[spec] = Histogram(
                spec.base_name, spec.help, spec.labels, registry=registry, buckets=spec.buckets
            )
        else:
            built[spec] = _FACTORIES[spec.kind](spec.base_name, spec.help, spec.labels, registry=registry)
    return built
