"""The wire contract: one pydantic model per event type, and the parser for request bodies.

A body is either one event object or ``{"events": [...]}``. Every event names its ``type``;
events that describe a step of something (an experiment, a bandit, a budget, an incident, a
deployment) also name their ``action``. Validation is strict: unknown fields, unknown types and
actions, wrong JSON types, NaN/Infinity, negative amounts and out-of-range scores are rejected,
and :func:`parse_events` reports every problem with the event index and the field path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

# Values that become label values: at most 128 characters from a safe set (letters, digits and
# _ . : / @ + = -, inner spaces), so nothing a client sends can surprise a query, a log or a UI.
LabelValue = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_](?:[A-Za-z0-9_.:/@+= -]*[A-Za-z0-9_.:/@+=-])?$"
    ),
]
# Identifiers that never become labels (event ids, incident ids): same shape.
Identifier = LabelValue
Text = Annotated[str, StringConstraints(max_length=1024)]
# Stack traces: longer than other text, still bounded.
StackText = Annotated[str, StringConstraints(max_length=16384)]
NonNegative = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
Ratio = Annotated[float, Field(ge=0, le=1)]
Score = Annotated[float, Field(ge=0, le=100)]
# Event times are RFC 3339 with a zone, or Unix seconds.
# The latest Unix time accepted (year 2100): larger numbers are almost surely milliseconds.
_MAX_UNIX_SECONDS = 4_102_444_800


def _unix_seconds(value: object) -> object:
    """A JSON number is Unix seconds; a string must be RFC 3339 with a zone (not a number)."""
    if isinstance(value, str):
        if value.strip().lstrip("+-").replace(".", "", 1).isdigit():
            raise ValueError("a timestamp string must be RFC 3339 with a zone; send Unix seconds as a number")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a timestamp is an RFC 3339 string with a zone or Unix seconds as a number")
    if not 0 <= value <= _MAX_UNIX_SECONDS:
        raise ValueError(
            f"a number timestamp is Unix seconds between 0 and {_MAX_UNIX_SECONDS} (not milliseconds)"
        )
    return datetime.fromtimestamp(value, UTC)


Timestamp = Annotated[AwareDatetime, BeforeValidator(_unix_seconds), Field(strict=False)]


def _not_all_zero(value: str) -> str:
    if not value.strip("0"):
        raise ValueError("an all-zero id is invalid (W3C Trace Context)")
    return value


# W3C Trace Context ids: lowercase hex, not all zeros.
TraceId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$"), AfterValidator(_not_all_zero)]
SpanId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$"), AfterValidator(_not_all_zero)]


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    event_id: Identifier | None = None
    timestamp: Timestamp | None = None
    trace_id: TraceId | None = None
    span_id: SpanId | None = None


class FieldProblem(ValueError):
    """A rule across fields, blamed on the field a client should fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _require_pair(first: str, first_value: object, second: str, second_value: object) -> None:
    if first_value is None and second_value is not None:
        raise FieldProblem(first, f"{first} is required with {second}")
    if second_value is None and first_value is not None:
        raise FieldProblem(second, f"{second} is required with {first}")


class LlmRequest(_Event):
    """One LLM call made by the optimizer."""

    type: Literal["llm_request"]
    model: LabelValue
    provider: LabelValue = "unknown"
    task_type: LabelValue = "unknown"
    status: Literal["success", "error"] = "success"
    error_type: LabelValue | None = None
    latency_ms: NonNegative
    input_tokens: Count = 0
    output_tokens: Count = 0
    cached_tokens: Count = 0
    cost_usd: NonNegative = 0.0
    baseline_cost_usd: NonNegative | None = None
    quality: Score | None = None
    accuracy: Score | None = None
    relevance: Score | None = None
    coherence: Score | None = None
    completeness: Score | None = None
    experiment_id: LabelValue | None = None
    variant_id: LabelValue | None = None
    bandit_id: LabelValue = "default"
    arm_id: LabelValue | None = None
    parameter: LabelValue | None = None
    parameter_value: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.error_type is not None and self.status != "error":
            raise FieldProblem("error_type", "error_type is only allowed when status is error")
        if self.cached_tokens > self.input_tokens:
            raise FieldProblem("cached_tokens", "cached_tokens cannot exceed input_tokens")
        _require_pair("experiment_id", self.experiment_id, "variant_id", self.variant_id)
        if self.parameter_value is not None and (self.parameter is None or self.arm_id is None):
            missing = "arm_id" if self.arm_id is None else "parameter"
            raise FieldProblem(missing, f"parameter_value needs {missing}")
        return self


class Feedback(_Event):
    """Explicit user feedback on a response: thumbs, an NPS answer (0-10) or a CSAT answer (1-5)."""

    type: Literal["feedback"]
    model: LabelValue = "unknown"
    experiment_id: LabelValue | None = None
    variant_id: LabelValue | None = None
    thumbs: Literal["up", "down"] | None = None
    nps: Annotated[int, Field(ge=0, le=10)] | None = None
    csat: Annotated[int, Field(ge=1, le=5)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.thumbs is None and self.nps is None and self.csat is None:
            raise FieldProblem("thumbs", "feedback needs at least one of thumbs, nps, csat")
        _require_pair("experiment_id", self.experiment_id, "variant_id", self.variant_id)
        return self


class _Experiment(_Event):
    type: Literal["experiment"]
    experiment_id: LabelValue


class ExperimentStarted(_Experiment):
    action: Literal["started"]
    variants: list[LabelValue] = Field(default_factory=list, max_length=64)


class ExperimentProgress(_Experiment):
    action: Literal["progress"]
    leader: LabelValue | None = None
    lead: NonNegative | None = None
    confidence: Ratio | None = None
    progress: Ratio | None = None
    sample_size: Count | None = None


class ExperimentCompleted(_Experiment):
    action: Literal["completed"]
    winner: LabelValue | None = None
    improvement: NonNegative | None = None
    sample_size: Count
    duration_seconds: NonNegative | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.winner is not None and self.improvement is None:
            raise FieldProblem("improvement", "a completed experiment with a winner needs improvement")
        if self.winner is None and self.improvement is not None:
            raise FieldProblem("winner", "improvement needs a winner")
        return self


class ExperimentRolledBack(_Experiment):
    action: Literal["rolled_back"]
    reason: Text | None = None


Experiment = Annotated[
    Union[ExperimentStarted, ExperimentProgress, ExperimentCompleted, ExperimentRolledBack],
    Discriminator("action"),
]


class _Bandit(_Event):
    type: Literal["bandit"]
    bandit_id: LabelValue = "default"


class BanditPull(_Bandit):
    action: Literal["pull"]
    arm_id: LabelValue
    explored: bool
    parameter: LabelValue | None = None
    parameter_value: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _require_pair("parameter", self.parameter, "parameter_value", self.parameter_value)
        return self


class BanditReward(_Bandit):
    action: Literal["reward"]
    arm_id: LabelValue
    # Rewards feed counters (sum, sum of squares), which must never decrease: rewards are >= 0.
    reward: NonNegative
    regret: NonNegative | None = None


class BanditConverged(_Bandit):
    action: Literal["converged"]
    convergence_seconds: NonNegative
    arm_id: LabelValue | None = None


Bandit = Annotated[Union[BanditPull, BanditReward, BanditConverged], Discriminator("action")]


class ParameterUpdate(_Event):
    """The optimizer changed a parameter (temperature, top_p, max_tokens...)."""

    type: Literal["parameter_update"]
    parameter: LabelValue
    value: float
    stability_score: Ratio | None = None
    performance_gain: float | None = None
    improved: bool = False


class _Budget(_Event):
    type: Literal["budget"]


BudgetPeriod = Literal["hour", "day", "month"]


class BudgetSpend(_Budget):
    action: Literal["spend"]
    # Token spend is counted from llm_request.cost_usd; accepting it here would count it twice.
    category: Literal["compute", "infrastructure"]
    amount_usd: NonNegative


class BudgetLimit(_Budget):
    action: Literal["limit"]
    period: BudgetPeriod
    limit_usd: NonNegative


class BudgetViolation(_Budget):
    action: Literal["violation"]
    period: BudgetPeriod
    spend_usd: NonNegative | None = None
    limit_usd: NonNegative | None = None


SwitchReason = Literal["cost", "quality", "latency", "availability", "budget", "other"]


class ModelSwitch(_Budget):
    action: Literal["model_switch"]
    from_model: LabelValue
    to_model: LabelValue
    reason: SwitchReason = "cost"


Budget = Annotated[Union[BudgetSpend, BudgetLimit, BudgetViolation, ModelSwitch], Discriminator("action")]


class ModelHealth(_Event):
    """The result of a health check of one model."""

    type: Literal["model_health"]
    model: LabelValue
    provider: LabelValue = "unknown"
    available: bool
    latency_ms: NonNegative | None = None
    error_rate: Ratio | None = None


class Business(_Event):
    """Business results of the optimization, reported periodically (e.g. hourly)."""

    type: Literal["business"]
    baseline_quality: Score | None = None
    optimization_cost_usd: NonNegative | None = None
    value_derived_usd: NonNegative | None = None
    cost_savings_confidence: Ratio | None = None
    quality_improvement_confidence: Ratio | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if all(
            value is None
            for value in (
                self.baseline_quality,
                self.optimization_cost_usd,
                self.value_derived_usd,
                self.cost_savings_confidence,
                self.quality_improvement_confidence,
            )
        ):
            raise FieldProblem("baseline_quality", "a business event needs at least one value")
        return self


Severity = Literal["sev1", "sev2", "sev3"]


class _Incident(_Event):
    type: Literal["incident"]
    incident_id: Identifier
    severity: Severity


class IncidentOpened(_Incident):
    action: Literal["opened"]
    title: Text | None = None


class IncidentResolved(_Incident):
    action: Literal["resolved"]
    # When the incident opened: the downtime is computed from it, so a restart loses nothing.
    opened_at: Timestamp

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.opened_at > (self.timestamp or datetime.now(UTC)):
            raise FieldProblem("opened_at", "opened_at is after the resolution time")
        return self


Incident = Annotated[Union[IncidentOpened, IncidentResolved], Discriminator("action")]


class Deployment(_Event):
    """A deployment or rollback of an optimizer component (for annotations and MTBF/MTTR context)."""

    type: Literal["deployment"]
    action: Literal["deployed", "rolled_back"]
    component: LabelValue = "optimizer"
    version: LabelValue


class LogEvent(_Event):
    """An error or critical log entry of an optimizer service (the client's logger sends them).

    Counted by level and component; its text (message, error, stack) goes to the exporter's log,
    never to a label.
    """

    type: Literal["log"]
    level: Literal["error", "critical"]
    component: LabelValue = "optimizer"
    message: Text
    service: Text | None = None
    logger: Text | None = None
    error_name: Text | None = None
    error_message: Text | None = None
    error_stack: StackText | None = None
    request_id: Text | None = None
    experiment_id: Text | None = None


Event = Annotated[
    Union[
        LlmRequest,
        Feedback,
        Experiment,
        Bandit,
        ParameterUpdate,
        Budget,
        ModelHealth,
        Business,
        Incident,
        Deployment,
        LogEvent,
    ],
    Discriminator("type"),
]

EVENT_TYPES: tuple[str, ...] = (
    "llm_request",
    "feedback",
    "experiment",
    "bandit",
    "parameter_update",
    "budget",
    "model_health",
    "business",
    "incident",
    "deployment",
    "log",
)
_ACTIONS: frozenset[str] = frozenset(
    {
        "started",
        "progress",
        "completed",
        "rolled_back",
        "pull",
        "reward",
        "converged",
        "spend",
        "limit",
        "violation",
        "model_switch",
        "opened",
        "resolved",
    }
)


class Batch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    events: list[Event] = Field(min_length=1)


def _envelope_kind(body: Any) -> str:
    return "batch" if isinstance(body, dict) and "events" in body else "event"


_ENVELOPE: TypeAdapter[Batch | Any] = TypeAdapter(
    Annotated[
        Union[Annotated[Batch, Tag("batch")], Annotated[Event, Tag("event")]],
        Discriminator(_envelope_kind),
    ]
)


@dataclass(frozen=True)
class Problem:
    """One reason a body was refused: which event, which field, what is wrong."""

    index: int | None
    field: str
    message: str
    event_type: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "message": self.message}


class InvalidBody(ValueError):
    """The body is not valid JSON or not an event object/batch at all."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidEvents(ValueError):
    """One or more events of the body are invalid; nothing of the body may be applied."""

    def __init__(self, problems: Sequence[Problem], event_types: Sequence[str]) -> None:
        super().__init__("; ".join(f"events[{p.index}].{p.field}: {p.message}" for p in problems))
        self.problems = tuple(problems)
        self.event_types = tuple(event_types)


def parse_events(body: bytes) -> list[Any]:
    """Validate a request body and return its events, in order.

    Raises :class:`InvalidBody` when the body is not JSON or has no event shape, and
    :class:`InvalidEvents` (with every problem found) when any event is invalid.
    """
    try:
        envelope = _ENVELOPE.validate_json(body)
    except ValidationError as err:
        errors = err.errors(include_url=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise InvalidBody(f"body is not valid JSON: {errors[0]['msg']}") from err
        raise InvalidEvents([_problem(error) for error in errors], _types_in(body)) from err
    if isinstance(envelope, Batch):
        return list(envelope.events)
    return [envelope]


def _problem(error: Any) -> Problem:
    loc = list(error["loc"])
    index: int | None = 0
    if loc and loc[0] == "batch":
        loc = loc[1:]
        if loc[:1] == ["events"] and len(loc) > 1 and isinstance(loc[1], int):
            index, loc = loc[1], loc[2:]
        else:
            index = None
    elif loc and loc[0] == "event":
        loc = loc[1:]
    event_type = "unknown"
    if loc and loc[0] in EVENT_TYPES:
        event_type = str(loc.pop(0))
        if loc and loc[0] in _ACTIONS:
            loc.pop(0)
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldProblem):
        return Problem(index, ".".join([*map(str, loc), cause.field]), str(cause), event_type)
    field = ".".join(str(part) for part in loc) or _field_of(error)
    return Problem(index, field, error["msg"], event_type)


def _field_of(error: Any) -> str:
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
        return discriminator or "type"
    if error["type"] == "missing":
        return "events"
    return "(event)"


def _types_in(body: bytes) -> list[str]:
    """The type of every event of a refused body, by index ("unknown" where unreadable)."""
    document = json.loads(body)
    items = document["events"] if isinstance(document, dict) and "events" in document else [document]
    if not isinstance(items, list):
        return []
    return [_type_of(item) for item in items]


def _type_of(item: object) -> str:
    kind = item.get("type") if isinstance(item, dict) else None
    return kind if isinstance(kind, str) and kind in EVENT_TYPES else "unknown"
