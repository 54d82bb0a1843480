"""The wire contract: every event type the exporter accepts, declared once, as msgspec structs.

Each field is declared here with its type, range, default, description and example; everything
else is derived from these declarations: the decoder (``app.decode``), the OpenAPI schema
(``app.openapi``), the Python client's event classes (``client/llmopt_client/events.py``,
generated) and the event tables of the docs. A new field is one line here.

A body is one event or ``{"events": [...]}``. Every event names its ``type``; events that report a
step of something (an experiment, a bandit, a budget, an incident) also name their ``action``, and
each (type, action) has its own struct below. Validation is strict: unknown fields, types and
actions, wrong JSON types, numbers out of their documented range, label values outside the safe
character set, and the rules across fields (:class:`Rule`) are refused, naming the field.

Every number has a finite range, so no counter can reach +Inf and no event can make the apply
step fail: a body that decodes is applied whole.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

import msgspec
from msgspec import Meta

# --- Value types --------------------------------------------------------------------------------

# Label values (model, provider, task type, ids that become labels) and identifiers: 1 to 128
# characters from a safe set (letters, digits, _ . : / @ + = -, inner spaces), so nothing a client
# sends can surprise a query, a log or a UI. The decoder checks the pattern (once per distinct
# value: they repeat), and the schema shows it.
# Patterns end in $(?!\n): the end of the text both in JSON Schema and in Python, where $ alone
# would also match before a final newline.
LABEL_PATTERN = r"^[A-Za-z0-9_](?:[A-Za-z0-9_.:/@+= -]*[A-Za-z0-9_.:/@+=-])?$(?!\n)"
LABEL_MAX_LENGTH = 128
LabelValue = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=LABEL_MAX_LENGTH,
        extra_json_schema={"pattern": LABEL_PATTERN},
        extra={"label_pattern": True},
    ),
]
# Identifiers (event ids, incident ids) have the same shape but never become labels, and are
# mostly unique: msgspec matches each against the pattern.
Identifier = Annotated[str, Meta(min_length=1, max_length=LABEL_MAX_LENGTH, pattern=LABEL_PATTERN)]
Text = Annotated[str, Meta(max_length=1024)]
StackText = Annotated[str, Meta(max_length=16384)]
# W3C Trace Context ids: lowercase hex, not all zeros (checked by the decoder).
TRACE_ID_PATTERN = r"^[0-9a-f]{32}$(?!\n)"
SPAN_ID_PATTERN = r"^[0-9a-f]{16}$(?!\n)"
TraceId = Annotated[str, Meta(pattern=TRACE_ID_PATTERN)]
SpanId = Annotated[str, Meta(pattern=SPAN_ID_PATTERN)]
# Names of custom metrics and of their labels, as Prometheus spells metric and label names.
NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$(?!\n)"
NAME_MAX_LENGTH = 64
Name = Annotated[str, Meta(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)]
# The labels object of an LLM call or a feedback: a value for each declared dimension it concerns.
# Absent is None, not an empty map: a struct that holds no container is not tracked by Python's
# garbage collector, which keeps decoding a batch cheap.
MAX_EVENT_LABELS = 8
DimensionLabels = Annotated[
    Annotated[dict[Name, LabelValue], Meta(max_length=MAX_EVENT_LABELS)] | None,
    Meta(
        description="Values of the dimensions declared in alerts/config.yml (section dimensions), such "
        "as the team or the application; a dimension not given is counted with an empty value. Any "
        "other key is refused.",
        examples=[{"team": "search"}],
    ),
]
# What each pattern asks for, in the words of a refusal.
PATTERN_MEANINGS = {
    NAME_PATTERN: "letters, digits and _, not starting with a digit (a Prometheus name)",
    LABEL_PATTERN: (
        "1 to 128 letters, digits and _ . : / @ + = -, inner spaces, starting with a letter, digit or _"
    ),
    TRACE_ID_PATTERN: "32 lowercase hex digits (W3C Trace Context)",
    SPAN_ID_PATTERN: "16 lowercase hex digits (W3C Trace Context)",
}

# Numbers: each with the range it may take. Counters only ever grow by bounded amounts.
MAX_TOKENS = 1_000_000_000  # per call
MAX_USD = 1_000_000_000.0  # per event
MAX_MILLISECONDS = 86_400_000.0  # a day
MAX_SECONDS = 10 * 366 * 86_400.0  # ten years
MAX_SAMPLES = 2**53  # the largest integer a float counts exactly
MAX_MAGNITUDE = 1e15  # parameter values, gains, rewards
Tokens = Annotated[int, Meta(ge=0, le=MAX_TOKENS)]
Samples = Annotated[int, Meta(ge=0, le=MAX_SAMPLES)]
Usd = Annotated[float, Meta(ge=0, le=MAX_USD)]
Milliseconds = Annotated[float, Meta(ge=0, le=MAX_MILLISECONDS)]
Seconds = Annotated[float, Meta(ge=0, le=MAX_SECONDS)]
Ratio = Annotated[float, Meta(ge=0, le=1)]
# Most variants an experiment may name (and so the most degrees of freedom of its split).
MAX_VARIANTS = 64
Score = Annotated[float, Meta(ge=0, le=100)]
Magnitude = Annotated[float, Meta(ge=0, le=MAX_MAGNITUDE)]
Real = Annotated[float, Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]

# Event times: RFC 3339 with a zone, or Unix seconds (a number). The decoder also refuses times
# outside a window around now (settings event_max_age_seconds, event_max_future_seconds).
MAX_UNIX_SECONDS = 4_102_444_800  # 2100-01-01: larger numbers are almost surely milliseconds
Timestamp = Annotated[datetime, Meta(tz=True)] | Annotated[float, Meta(ge=0, le=MAX_UNIX_SECONDS)]


def seconds(value: datetime | float) -> float:
    """A timestamp as Unix seconds."""
    return value.timestamp() if isinstance(value, datetime) else value


# What a rule's expression may name besides the event and now.
RULE_NAMESPACE: dict[str, object] = {"seconds": seconds}


def doc(description: str, example: object) -> Meta:
    """A field's description and example, as the schema and the docs show them."""
    return Meta(description=description, examples=[example])


# --- Rules across fields ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A rule across fields of one event. ``broken_when`` is a Python expression over the event
    ``e`` and ``now``, the time it was received (Unix seconds), that is true when the event breaks
    the rule; ``field`` is what the client should fix, and ``text`` the rule as the docs and the
    refusal state it. An expression rather than a function, so that the decoder can check all the
    rules of an event in one expression (see ``app.decode``)."""

    field: str
    text: str
    broken_when: str
    # For a rule that at least one of several fields be given: those fields.
    one_of: tuple[str, ...] = ()

    @functools.cached_property
    def is_broken(self) -> Callable[[Any, float], bool]:
        """The rule as a function of the event and ``now``."""
        test: Callable[[Any, float], bool] = eval(f"lambda e, now: {self.broken_when}", RULE_NAMESPACE)
        return test


def pair(first: str, second: str) -> tuple[Rule, Rule]:
    """``first`` and ``second`` are given together or not at all."""
    return (
        Rule(second, f"{second} is required with {first}", f"e.{first} is not None and e.{second} is None"),
        Rule(first, f"{first} is required with {second}", f"e.{second} is not None and e.{first} is None"),
    )


def at_most(field: str, bound: str, why: str) -> Rule:
    """``field`` is not greater than ``bound`` (another field of the event)."""
    return Rule(
        field, f"{field} cannot exceed {bound} ({why})", f"e.{field} is not None and e.{field} > e.{bound}"
    )


def one_of(*fields: str) -> Rule:
    """At least one of ``fields`` is given (the first is named when none is)."""
    return Rule(
        fields[0],
        f"at least one of {', '.join(fields)} is required",
        " and ".join(f"e.{field} is None" for field in fields),
        fields,
    )


# --- The events ---------------------------------------------------------------------------------


class Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Fields every event may carry."""

    event_id: Annotated[
        Identifier | None,
        doc(
            "Unique id of the event. A retry with the same id is acknowledged and counted once "
            "(the exporter remembers recent ids).",
            "5c1f8a7e-2b7d-4f1e-9a53-0d2c4b1e8f10",
        ),
    ] = None
    timestamp: Annotated[
        Timestamp | None,
        doc(
            "When it happened: RFC 3339 with a zone, or Unix seconds. Default: when it arrives. "
            "Must lie within a window around the exporter's clock (7 days back, 5 minutes ahead "
            "by default).",
            "2026-11-27T10:00:00Z",
        ),
    ] = None
    trace_id: Annotated[
        TraceId | None,
        doc(
            "W3C trace id (32 lowercase hex digits): becomes an exemplar, never a label.",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
    ] = None
    span_id: Annotated[
        SpanId | None, doc("W3C span id (16 lowercase hex digits), with trace_id.", "00f067aa0ba902b7")
    ] = None

    # The wire type and action of each event struct (set below, from its tag and action field).
    type: ClassVar[str]
    action_name: ClassVar[str | None] = None
    # Rules across fields, checked by the decoder after the types and ranges.
    RULES: ClassVar[tuple[Rule, ...]] = ()
    # Whether the client sends the event at once rather than with the next batch: True, False, or
    # a field and the value that makes it urgent.
    URGENT: ClassVar[bool | tuple[str, object]] = False
    # Whether the event sets state (experiments, parameters, budgets, health, incidents...): a
    # client of several replicas sends all of them to one replica, the state owner.
    SETS_STATE: ClassVar[bool] = False


# --- llm_request and feedback ---


class LlmRequest(Event, tag="llm_request", kw_only=True, frozen=True):
    """One LLM call made by the optimizer: what it cost, how long it took, how good it was."""

    model: Annotated[LabelValue, doc("The model called.", "gpt-4o-mini")]
    provider: Annotated[LabelValue, doc("Who serves the model.", "openai")] = "unknown"
    task_type: Annotated[LabelValue, doc("What the call was for.", "summarization")] = "unknown"
    labels: DimensionLabels = None
    status: Annotated[Literal["success", "error"], doc("Whether the call succeeded.", "success")] = "success"
    error_type: Annotated[
        LabelValue | None,
        doc(
            "Why it failed (status error only), e.g. an exception class. A rate limit, however spelled "
            "(RateLimitError, rate_limit_error, 429, RESOURCE_EXHAUSTED...), is counted as rate_limited.",
            "RateLimitError",
        ),
    ] = None
    latency_ms: Annotated[Milliseconds, doc("End-to-end latency of the call, in milliseconds.", 842.5)]
    operation: Annotated[
        Literal["chat", "text_completion", "embeddings", "generate_content", "other"],
        doc("The kind of call, as OpenTelemetry's gen_ai.operation.name.", "chat"),
    ] = "chat"
    stream: Annotated[bool, doc("Whether the answer was streamed, chunk by chunk.", True)] = False
    time_to_first_token_ms: Annotated[
        Milliseconds | None,
        doc("Streamed calls: milliseconds until the first chunk of the answer arrived.", 310.0),
    ] = None
    finish_reason: Annotated[
        Literal["stop", "length", "content_filter", "tool_calls", "error", "other"] | None,
        doc("Why the model stopped: length means the answer was cut at the token limit.", "stop"),
    ] = None
    input_tokens: Annotated[Tokens, doc("Prompt tokens.", 1200)] = 0
    output_tokens: Annotated[Tokens, doc("Completion tokens.", 350)] = 0
    cached_tokens: Annotated[
        Tokens, doc("Prompt tokens read from the provider's cache (part of input_tokens).", 800)
    ] = 0
    cache_write_tokens: Annotated[
        Tokens, doc("Prompt tokens written to the provider's cache (part of input_tokens).", 0)
    ] = 0
    reasoning_tokens: Annotated[
        Tokens, doc("Completion tokens spent on reasoning (part of output_tokens).", 120)
    ] = 0
    cost_usd: Annotated[
        Usd | None,
        doc(
            "What the call cost, in US dollars; default: priced from its tokens by prices_file, else 0.",
            0.00039,
        ),
    ] = None
    baseline_cost_usd: Annotated[
        Usd | None,
        doc(
            "What the same call would have cost on the baseline configuration; "
            "default: cost_usd (no savings claimed).",
            0.0065,
        ),
    ] = None
    quality: Annotated[Score | None, doc("Composite quality score of the answer, 0-100.", 86.5)] = None
    accuracy: Annotated[Score | None, doc("Accuracy score, 0-100.", 90)] = None
    relevance: Annotated[Score | None, doc("Relevance score, 0-100.", 88)] = None
    coherence: Annotated[Score | None, doc("Coherence score, 0-100.", 85)] = None
    completeness: Annotated[Score | None, doc("Completeness score, 0-100.", 83)] = None
    experiment_id: Annotated[
        LabelValue | None,
        doc("The A/B experiment the call belongs to (with variant_id).", "prompt-optimization-v5"),
    ] = None
    variant_id: Annotated[
        LabelValue | None, doc("The experiment's variant (with experiment_id).", "variant-b")
    ] = None
    bandit_id: Annotated[LabelValue, doc("The bandit that chose the arm.", "temperature")] = "default"
    arm_id: Annotated[LabelValue | None, doc("The bandit arm the call used.", "t0.7")] = None
    parameter: Annotated[
        LabelValue | None, doc("The parameter the arm sets (with arm_id and parameter_value).", "temperature")
    ] = None
    parameter_value: Annotated[Real | None, doc("The parameter's value on this arm.", 0.7)] = None
    attempt: Annotated[
        Annotated[int, Meta(ge=1, le=1000)],
        doc(
            "Which try of one logical call this is: 1 for the first, 2 for the first retry or fallback. "
            "Every try is its own llm_request event.",
            1,
        ),
    ] = 1
    fallback_from: Annotated[
        LabelValue | None,
        doc(
            "The model this call replaced after that model's attempt failed (a fallback; attempt >= 2).",
            "gpt-4o",
        ),
    ] = None

    RULES = (
        Rule(
            "fallback_from",
            "a fallback is a later try of its call: attempt >= 2",
            "e.fallback_from is not None and e.attempt < 2",
        ),
        Rule(
            "error_type",
            "error_type is only allowed when status is error",
            'e.error_type is not None and e.status != "error"',
        ),
        at_most("cached_tokens", "input_tokens", "cached tokens are prompt tokens"),
        Rule(
            "cache_write_tokens",
            "cached_tokens + cache_write_tokens cannot exceed input_tokens (both are prompt tokens)",
            "e.cached_tokens + e.cache_write_tokens > e.input_tokens",
        ),
        at_most("reasoning_tokens", "output_tokens", "reasoning tokens are completion tokens"),
        Rule(
            "time_to_first_token_ms",
            "time_to_first_token_ms is for streamed calls (stream: true)",
            "e.time_to_first_token_ms is not None and not e.stream",
        ),
        at_most("time_to_first_token_ms", "latency_ms", "the first token comes before the end"),
        *pair("experiment_id", "variant_id"),
        Rule(
            "arm_id",
            "parameter_value needs arm_id",
            "e.parameter_value is not None and e.arm_id is None",
        ),
        Rule(
            "parameter",
            "parameter_value needs parameter",
            "e.parameter_value is not None and e.parameter is None",
        ),
    )
    URGENT = ("status", "error")


class Feedback(Event, tag="feedback", kw_only=True, frozen=True):
    """Explicit user feedback on an answer: thumbs, an NPS answer (0-10) or a CSAT answer (1-5)."""

    model: Annotated[LabelValue, doc("The model that answered.", "gpt-4o-mini")] = "unknown"
    experiment_id: Annotated[
        LabelValue | None, doc("The experiment of the answer (with variant_id).", "prompt-optimization-v5")
    ] = None
    variant_id: Annotated[
        LabelValue | None, doc("The variant of the answer (with experiment_id).", "variant-b")
    ] = None
    thumbs: Annotated[Literal["up", "down"] | None, doc("Thumbs up or down.", "up")] = None
    nps: Annotated[
        Annotated[int, Meta(ge=0, le=10)] | None,
        doc("Answer to 'how likely are you to recommend us', 0-10.", 9),
    ] = None
    csat: Annotated[Annotated[int, Meta(ge=1, le=5)] | None, doc("Satisfaction, 1-5.", 4)] = None
    labels: DimensionLabels = None

    RULES = (one_of("thumbs", "nps", "csat"), *pair("experiment_id", "variant_id"))


# --- experiment ---

ExperimentId = Annotated[LabelValue, doc("The experiment.", "prompt-optimization-v5")]


class ExperimentStarted(Event, tag="experiment", kw_only=True, frozen=True):
    """An A/B experiment started."""

    action: Literal["started"]
    experiment_id: ExperimentId
    variants: Annotated[
        list[LabelValue], Meta(max_length=MAX_VARIANTS), doc("Its variants.", ["control", "variant-b"])
    ] = msgspec.field(default_factory=list)
    traffic_split: Annotated[
        Annotated[dict[LabelValue, Ratio], Meta(min_length=1, max_length=MAX_VARIANTS)] | None,
        doc(
            "The planned share of traffic of each variant (variant -> share); the shares sum to 1.",
            {"control": 0.5, "variant-b": 0.5},
        ),
    ] = None
    control_variant: Annotated[
        LabelValue | None, doc("The variant the others are compared with.", "control")
    ] = None

    SETS_STATE = True
    RULES = (
        Rule(
            "traffic_split",
            "the shares of traffic_split sum to 1",
            "e.traffic_split is not None and abs(sum(e.traffic_split.values()) - 1) > 1e-6",
        ),
        Rule(
            "traffic_split",
            "traffic_split names only variants of the experiment",
            "e.traffic_split is not None and bool(e.variants) "
            "and not set(e.traffic_split) <= set(e.variants)",
        ),
        Rule(
            "control_variant",
            "control_variant is one of the experiment's variants",
            "e.control_variant is not None and e.control_variant not in "
            "(e.traffic_split or e.variants or (e.control_variant,))",
        ),
    )


class ExperimentProgress(Event, tag="experiment", kw_only=True, frozen=True):
    """How a running experiment stands: its leader, lead, confidence and progress."""

    action: Literal["progress"]
    experiment_id: ExperimentId
    leader: Annotated[LabelValue | None, doc("The variant leading now.", "variant-b")] = None
    lead: Annotated[
        Magnitude | None, doc("The leader's relative lead over the runner-up (0.082 = +8.2 %).", 0.082)
    ] = None
    confidence: Annotated[Ratio | None, doc("Confidence that the leader is best, 0-1.", 0.91)] = None
    progress: Annotated[Ratio | None, doc("Progress towards the planned sample size, 0-1.", 0.6)] = None
    sample_size: Annotated[Samples | None, doc("Samples collected so far.", 5200)] = None

    SETS_STATE = True


class ExperimentCompleted(Event, tag="experiment", kw_only=True, frozen=True):
    """An experiment ended, with or without a winner."""

    action: Literal["completed"]
    experiment_id: ExperimentId
    winner: Annotated[
        LabelValue | None, doc("The winning variant, if any (with improvement).", "variant-b")
    ] = None
    improvement: Annotated[
        Magnitude | None, doc("The winner's improvement over control (0.12 = 12 %), with winner.", 0.12)
    ] = None
    sample_size: Annotated[Samples, doc("Samples the decision rests on.", 8600)]
    duration_seconds: Annotated[
        Seconds | None, doc("How long it ran; default: since its start event.", 86400)
    ] = None

    RULES = (
        Rule(
            "improvement",
            "a completed experiment with a winner needs improvement",
            "e.winner is not None and e.improvement is None",
        ),
        Rule(
            "winner",
            "improvement needs a winner",
            "e.winner is None and e.improvement is not None",
        ),
    )
    SETS_STATE = True


class ExperimentRolledBack(Event, tag="experiment", kw_only=True, frozen=True):
    """An experiment was rolled back: something degraded."""

    action: Literal["rolled_back"]
    experiment_id: ExperimentId
    reason: Annotated[Text | None, doc("Why (goes to the log, not to a label).", "quality dropped")] = None

    URGENT = True
    SETS_STATE = True


# --- bandit ---

BanditId = Annotated[LabelValue, doc("The bandit.", "temperature")]


class BanditPull(Event, tag="bandit", kw_only=True, frozen=True):
    """The bandit chose an arm, exploring or exploiting."""

    action: Literal["pull"]
    bandit_id: BanditId = "default"
    arm_id: Annotated[LabelValue, doc("The arm chosen.", "t0.7")]
    explored: Annotated[bool, doc("True when the choice explored rather than exploited.", False)]
    parameter: Annotated[
        LabelValue | None, doc("The parameter the arm sets (with parameter_value).", "temperature")
    ] = None
    parameter_value: Annotated[Real | None, doc("The parameter's value on the arm.", 0.7)] = None

    RULES = pair("parameter", "parameter_value")


class BanditReward(Event, tag="bandit", kw_only=True, frozen=True):
    """The reward an arm earned."""

    action: Literal["reward"]
    bandit_id: BanditId = "default"
    arm_id: Annotated[LabelValue, doc("The arm rewarded.", "t0.7")]
    # Rewards feed counters (sum, sum of squares), which must never decrease: rewards are >= 0.
    reward: Annotated[Magnitude, doc("The reward, >= 0.", 0.865)]
    regret: Annotated[Magnitude | None, doc("The regret of the choice, >= 0.", 0.02)] = None


class BanditConverged(Event, tag="bandit", kw_only=True, frozen=True):
    """The bandit settled on an arm."""

    action: Literal["converged"]
    bandit_id: BanditId = "default"
    convergence_seconds: Annotated[Seconds, doc("How long it took to converge.", 5400)]
    arm_id: Annotated[LabelValue | None, doc("The arm it settled on.", "t0.7")] = None

    SETS_STATE = True


# --- parameter_update ---


class ParameterUpdate(Event, tag="parameter_update", kw_only=True, frozen=True):
    """The optimizer changed a parameter (temperature, top_p, max_tokens...)."""

    parameter: Annotated[LabelValue, doc("The parameter.", "temperature")]
    value: Annotated[Real, doc("Its new value.", 0.7)]
    stability_score: Annotated[Ratio | None, doc("How stable the value has been, 0-1.", 0.92)] = None
    performance_gain: Annotated[Real | None, doc("The gain the change brought (0.04 = 4 %).", 0.04)] = None
    improved: Annotated[bool, doc("True when the change improved the objective.", True)] = False

    SETS_STATE = True


# --- budget ---

BudgetPeriod = Literal["hour", "day", "month"]
# Spend other than tokens: token spend is counted from llm_request.cost_usd.
SpendCategory = Literal["compute", "infrastructure"]
SwitchReason = Literal["cost", "quality", "latency", "availability", "budget", "other"]


class BudgetSpend(Event, tag="budget", kw_only=True, frozen=True):
    """Spend other than tokens (token spend is counted from llm_request.cost_usd)."""

    action: Literal["spend"]
    # Token spend is counted from llm_request.cost_usd; accepting it here would count it twice.
    category: Annotated[SpendCategory, doc("What was paid for.", "compute")]
    amount_usd: Annotated[Usd, doc("How much, in US dollars.", 12.5)]


class BudgetLimit(Event, tag="budget", kw_only=True, frozen=True):
    """The spend budget of a period."""

    action: Literal["limit"]
    period: Annotated[BudgetPeriod, doc("The budget's period.", "day")]
    limit_usd: Annotated[Usd, doc("The budget, in US dollars.", 100)]
    # A scope's budget (a team's, an application's): its values of the declared dimensions.
    labels: DimensionLabels = None

    SETS_STATE = True


class BudgetViolation(Event, tag="budget", kw_only=True, frozen=True):
    """A budget was exceeded."""

    action: Literal["violation"]
    period: Annotated[BudgetPeriod, doc("The budget's period.", "day")]
    spend_usd: Annotated[Usd | None, doc("What was spent.", 104.2)] = None
    limit_usd: Annotated[Usd | None, doc("The budget that was exceeded.", 100)] = None

    URGENT = True
    SETS_STATE = True


class ModelSwitch(Event, tag="budget", kw_only=True, frozen=True):
    """The optimizer switched models."""

    action: Literal["model_switch"]
    from_model: Annotated[LabelValue, doc("The model switched from.", "gpt-4o")]
    to_model: Annotated[LabelValue, doc("The model switched to.", "gpt-4o-mini")]
    reason: Annotated[SwitchReason, doc("Why.", "cost")] = "cost"


# --- model_health and business ---


class ModelHealth(Event, tag="model_health", kw_only=True, frozen=True):
    """The result of a health check of one model."""

    model: Annotated[LabelValue, doc("The model checked.", "gpt-4o-mini")]
    provider: Annotated[LabelValue, doc("Who serves it.", "openai")] = "unknown"
    available: Annotated[bool, doc("Whether it answered.", True)]
    latency_ms: Annotated[Milliseconds | None, doc("The probe's latency, in milliseconds.", 412)] = None
    error_rate: Annotated[Ratio | None, doc("Its recent error rate, 0-1.", 0.01)] = None

    URGENT = ("available", False)
    SETS_STATE = True


class Business(Event, tag="business", kw_only=True, frozen=True):
    """Business results of the optimization, reported periodically (e.g. hourly)."""

    baseline_quality: Annotated[Score | None, doc("Quality score of the baseline, 0-100.", 80)] = None
    optimization_cost_usd: Annotated[
        Usd | None, doc("What running the optimization cost since the last report.", 3.2)
    ] = None
    value_derived_usd: Annotated[Usd | None, doc("Value it brought since the last report.", 45)] = None
    cost_savings_confidence: Annotated[Ratio | None, doc("Confidence in the cost savings, 0-1.", 0.9)] = None
    quality_improvement_confidence: Annotated[
        Ratio | None, doc("Confidence in the quality improvement, 0-1.", 0.8)
    ] = None

    RULES = (
        one_of(
            "baseline_quality",
            "optimization_cost_usd",
            "value_derived_usd",
            "cost_savings_confidence",
            "quality_improvement_confidence",
        ),
    )
    SETS_STATE = True


# --- incident and deployment ---

Severity = Literal["sev1", "sev2", "sev3"]
IncidentId = Annotated[Identifier, doc("The incident's id (never a label).", "INC-2041")]
IncidentSeverity = Annotated[Severity, doc("How bad it is.", "sev2")]


class IncidentOpened(Event, tag="incident", kw_only=True, frozen=True):
    """An incident was opened."""

    action: Literal["opened"]
    incident_id: IncidentId
    severity: IncidentSeverity
    title: Annotated[Text | None, doc("What happened (goes to the log).", "Spike of RateLimitError")] = None

    URGENT = True
    SETS_STATE = True


class IncidentResolved(Event, tag="incident", kw_only=True, frozen=True):
    """An incident was resolved; its downtime runs from opened_at to the event's time."""

    action: Literal["resolved"]
    incident_id: IncidentId
    severity: IncidentSeverity
    opened_at: Annotated[
        Timestamp,
        doc(
            "When the incident opened (as timestamp; within the same window): the downtime is "
            "computed from it, so a restart of the exporter loses nothing.",
            "2026-11-27T09:12:00Z",
        ),
    ]

    RULES = (
        Rule(
            "opened_at",
            "opened_at is not after the resolution (the event's time)",
            "seconds(e.opened_at) > (now if e.timestamp is None else seconds(e.timestamp))",
        ),
    )
    SETS_STATE = True


class Deployment(Event, tag="deployment", kw_only=True, frozen=True):
    """A deployment or rollback of an optimizer component (annotations, MTBF/MTTR context)."""

    action: Annotated[Literal["deployed", "rolled_back"], doc("What happened.", "deployed")]
    component: Annotated[LabelValue, doc("The component.", "optimizer")] = "optimizer"
    version: Annotated[LabelValue, doc("Its version now.", "1.8.2")]

    URGENT = ("action", "rolled_back")


class LogEvent(Event, tag="log", kw_only=True, frozen=True):
    """An error or critical log entry of an optimizer service, counted by level and component.

    Its text (message, error, stack) goes to the exporter's log, never to a label.
    """

    level: Annotated[Literal["error", "critical"], doc("The entry's level.", "error")]
    component: Annotated[LabelValue, doc("The service component that logged it.", "optimizer-api")] = (
        "optimizer"
    )
    message: Annotated[Text, doc("The message.", "LLM call failed after 3 retries")]
    service: Annotated[Text | None, doc("The service that logged it.", "optimizer")] = None
    logger: Annotated[Text | None, doc("The logger's name.", "optimizer.llm")] = None
    error_name: Annotated[Text | None, doc("The error's class.", "RateLimitError")] = None
    error_message: Annotated[Text | None, doc("The error's message.", "429 Too Many Requests")] = None
    error_stack: Annotated[
        StackText | None, doc("The stack trace (up to 16 KiB).", "Traceback (most recent call last): ...")
    ] = None
    request_id: Annotated[Text | None, doc("The request it concerns.", "req-7f3c")] = None
    experiment_id: Annotated[Text | None, doc("The experiment it concerns.", "prompt-optimization-v5")] = None

    URGENT = ("level", "critical")


# --- metric: custom metrics ---

CustomKind = Literal["counter", "gauge", "histogram"]
# Most labels a custom metric may declare.
MAX_CUSTOM_LABELS = 8


class MetricValue(Event, tag="metric", kw_only=True, frozen=True):
    """A value of a custom metric declared in the exporter's settings (custom_metrics).

    A counter's increment, a gauge's value, or one observation of a histogram.
    """

    name: Annotated[
        Name,
        doc(
            "The metric, as custom_metrics declares it; exposed as llmopt_custom_<name> "
            "(a counter with _total).",
            "cache_lookups",
        ),
    ]
    kind: Annotated[CustomKind, doc("Its declared kind: counter, gauge or histogram.", "counter")]
    value: Annotated[
        Real,
        doc("A counter's increment (not negative), a gauge's value, or a histogram's observation.", 1),
    ]
    labels: Annotated[
        dict[Name, LabelValue],
        Meta(max_length=MAX_CUSTOM_LABELS),
        doc("A value for each label the metric declares, and no other.", {"result": "hit"}),
    ] = msgspec.field(default_factory=dict)

    RULES = (
        Rule("value", "a counter's increment cannot be negative", "e.kind == 'counter' and e.value < 0"),
    )


# --- The whole contract -------------------------------------------------------------------------

EVENTS: tuple[type[Event], ...] = (
    LlmRequest,
    Feedback,
    ExperimentStarted,
    ExperimentProgress,
    ExperimentCompleted,
    ExperimentRolledBack,
    BanditPull,
    BanditReward,
    BanditConverged,
    ParameterUpdate,
    BudgetSpend,
    BudgetLimit,
    BudgetViolation,
    ModelSwitch,
    ModelHealth,
    Business,
    IncidentOpened,
    IncidentResolved,
    Deployment,
    LogEvent,
    MetricValue,
)


def _action_of(cls: type[Event]) -> str | None:
    """The action a struct stands for: its ``action`` field's one literal value (None if it has
    no action, or, as ``deployment``, several in one struct)."""
    for field in msgspec.structs.fields(cls):
        if field.name == "action" and get_origin(field.type) is Literal and len(get_args(field.type)) == 1:
            return str(get_args(field.type)[0])
    return None


for _cls in EVENTS:
    _cls.type = str(_cls.__struct_config__.tag)
    _cls.action_name = _action_of(_cls)

# Every wire type, in the order of EVENTS.
EVENT_TYPES: tuple[str, ...] = tuple(dict.fromkeys(cls.type for cls in EVENTS))
# The structs of each type that has several actions, by action.
ACTIONS: Mapping[str, Mapping[str, type[Event]]] = {
    event_type: {cls.action_name: cls for cls in EVENTS if cls.type == event_type and cls.action_name}
    for event_type in EVENT_TYPES
    if sum(cls.type == event_type for cls in EVENTS) > 1
}
