"""The events of the exporter's API, one frozen dataclass per event type (and action).

They mirror the server's wire contract field for field, with the same defaults; the server stays
the judge of validity (a refused event is counted, never raised at the caller). ``event_id``,
``timestamp`` and the trace ids may be left out: the client fills them in when the event is emitted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import ClassVar, Literal

Severity = Literal["sev1", "sev2", "sev3"]
BudgetPeriod = Literal["hour", "day", "month"]
SwitchReason = Literal["cost", "quality", "latency", "availability", "budget", "other"]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Fields every event may carry. Subclasses name their wire ``type`` and ``action``."""

    EVENT_TYPE: ClassVar[str]
    ACTION: ClassVar[str | None] = None

    event_id: str | None = None
    # Unix seconds, or a datetime (a naive one is local time).
    timestamp: float | datetime | None = None
    trace_id: str | None = None
    span_id: str | None = None

    @property
    def is_critical(self) -> bool:
        """Whether the event is sent at once instead of waiting for the next batch."""
        return False

    def to_wire(self) -> dict[str, object]:
        """The event as the JSON object the API takes; fields left as None are not sent."""
        wire: dict[str, object] = {"type": self.EVENT_TYPE}
        if self.ACTION is not None:
            wire["action"] = self.ACTION
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, datetime):
                value = value.astimezone(UTC).isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            wire[field.name] = value
        return wire


# --- llm_request and feedback --------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class LlmRequest(Event):
    """One LLM call made by the optimizer. Critical when it failed."""

    EVENT_TYPE: ClassVar[str] = "llm_request"

    model: str
    provider: str = "unknown"
    task_type: str = "unknown"
    status: Literal["success", "error"] = "success"
    error_type: str | None = None
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    baseline_cost_usd: float | None = None
    quality: float | None = None
    accuracy: float | None = None
    relevance: float | None = None
    coherence: float | None = None
    completeness: float | None = None
    experiment_id: str | None = None
    variant_id: str | None = None
    bandit_id: str = "default"
    arm_id: str | None = None
    parameter: str | None = None
    parameter_value: float | None = None

    @property
    def is_critical(self) -> bool:
        return self.status == "error"


@dataclass(frozen=True, kw_only=True)
class Feedback(Event):
    """Explicit user feedback on a response: thumbs, an NPS answer (0-10) or a CSAT answer (1-5)."""

    EVENT_TYPE: ClassVar[str] = "feedback"

    model: str = "unknown"
    experiment_id: str | None = None
    variant_id: str | None = None
    thumbs: Literal["up", "down"] | None = None
    nps: int | None = None
    csat: int | None = None


# --- experiment ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ExperimentStarted(Event):
    EVENT_TYPE: ClassVar[str] = "experiment"
    ACTION: ClassVar[str | None] = "started"

    experiment_id: str
    variants: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ExperimentProgress(Event):
    EVENT_TYPE: ClassVar[str] = "experiment"
    ACTION: ClassVar[str | None] = "progress"

    experiment_id: str
    leader: str | None = None
    lead: float | None = None
    confidence: float | None = None
    progress: float | None = None
    sample_size: int | None = None


@dataclass(frozen=True, kw_only=True)
class ExperimentCompleted(Event):
    EVENT_TYPE: ClassVar[str] = "experiment"
    ACTION: ClassVar[str | None] = "completed"

    experiment_id: str
    winner: str | None = None
    improvement: float | None = None
    sample_size: int
    duration_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class ExperimentRolledBack(Event):
    """An experiment was rolled back. Critical: something degraded."""

    EVENT_TYPE: ClassVar[str] = "experiment"
    ACTION: ClassVar[str | None] = "rolled_back"

    experiment_id: str
    reason: str | None = None

    @property
    def is_critical(self) -> bool:
        return True


# --- bandit --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BanditPull(Event):
    EVENT_TYPE: ClassVar[str] = "bandit"
    ACTION: ClassVar[str | None] = "pull"

    bandit_id: str = "default"
    arm_id: str
    explored: bool
    parameter: str | None = None
    parameter_value: float | None = None


@dataclass(frozen=True, kw_only=True)
class BanditReward(Event):
    EVENT_TYPE: ClassVar[str] = "bandit"
    ACTION: ClassVar[str | None] = "reward"

    bandit_id: str = "default"
    arm_id: str
    reward: float
    regret: float | None = None


@dataclass(frozen=True, kw_only=True)
class BanditConverged(Event):
    EVENT_TYPE: ClassVar[str] = "bandit"
    ACTION: ClassVar[str | None] = "converged"

    bandit_id: str = "default"
    convergence_seconds: float
    arm_id: str | None = None


# --- parameter_update ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ParameterUpdate(Event):
    """The optimizer changed a parameter (temperature, top_p, max_tokens...)."""

    EVENT_TYPE: ClassVar[str] = "parameter_update"

    parameter: str
    value: float
    stability_score: float | None = None
    performance_gain: float | None = None
    improved: bool = False


# --- budget --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BudgetSpend(Event):
    """Spend other than tokens (token spend is counted from LlmRequest.cost_usd)."""

    EVENT_TYPE: ClassVar[str] = "budget"
    ACTION: ClassVar[str | None] = "spend"

    category: Literal["compute", "infrastructure"]
    amount_usd: float


@dataclass(frozen=True, kw_only=True)
class BudgetLimit(Event):
    EVENT_TYPE: ClassVar[str] = "budget"
    ACTION: ClassVar[str | None] = "limit"

    period: BudgetPeriod
    limit_usd: float


@dataclass(frozen=True, kw_only=True)
class BudgetViolation(Event):
    """A budget was exceeded. Critical."""

    EVENT_TYPE: ClassVar[str] = "budget"
    ACTION: ClassVar[str | None] = "violation"

    period: BudgetPeriod
    spend_usd: float | None = None
    limit_usd: float | None = None

    @property
    def is_critical(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class ModelSwitch(Event):
    EVENT_TYPE: ClassVar[str] = "budget"
    ACTION: ClassVar[str | None] = "model_switch"

    from_model: str
    to_model: str
    reason: SwitchReason = "cost"


# --- model_health and business -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ModelHealth(Event):
    """The result of a health check of one model. Critical when the model is unavailable."""

    EVENT_TYPE: ClassVar[str] = "model_health"

    model: str
    provider: str = "unknown"
    available: bool
    latency_ms: float | None = None
    error_rate: float | None = None

    @property
    def is_critical(self) -> bool:
        return not self.available


@dataclass(frozen=True, kw_only=True)
class Business(Event):
    """Business results of the optimization, reported periodically (e.g. hourly)."""

    EVENT_TYPE: ClassVar[str] = "business"

    baseline_quality: float | None = None
    optimization_cost_usd: float | None = None
    value_derived_usd: float | None = None
    cost_savings_confidence: float | None = None
    quality_improvement_confidence: float | None = None


# --- incident and deployment ---------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class IncidentOpened(Event):
    """An incident was opened. Critical."""

    EVENT_TYPE: ClassVar[str] = "incident"
    ACTION: ClassVar[str | None] = "opened"

    incident_id: str
    severity: Severity
    title: str | None = None

    @property
    def is_critical(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class IncidentResolved(Event):
    EVENT_TYPE: ClassVar[str] = "incident"
    ACTION: ClassVar[str | None] = "resolved"

    incident_id: str
    severity: Severity
    # When the incident opened (Unix seconds or a datetime): the server computes the downtime.
    opened_at: float | datetime


@dataclass(frozen=True, kw_only=True)
class Deployment(Event):
    """A deployment or rollback of an optimizer component. Critical when it is a rollback."""

    EVENT_TYPE: ClassVar[str] = "deployment"

    action: Literal["deployed", "rolled_back"]
    component: str = "optimizer"
    version: str

    @property
    def is_critical(self) -> bool:
        return self.action == "rolled_back"


# --- log -----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class LogEvent(Event):
    """An error or critical log entry of an optimizer service, counted by level and component.

    The text fields go to the exporter's log, never to labels; ``component`` becomes a label (letters,
    digits and ``_ . : / @ + = -``, at most 128 characters). Critical entries are sent at once.
    :class:`llmopt_client.ExporterHandler` makes these from log records.
    """

    EVENT_TYPE: ClassVar[str] = "log"

    level: Literal["error", "critical"]
    component: str = "optimizer"
    message: str
    service: str | None = None
    logger: str | None = None
    error_name: str | None = None
    error_message: str | None = None
    error_stack: str | None = None
    request_id: str | None = None
    experiment_id: str | None = None

    @property
    def is_critical(self) -> bool:
        return self.level == "critical"


ALL_EVENTS: tuple[type[Event], ...] = (
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
)
