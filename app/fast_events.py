"""The most frequent events as msgspec structs: a faster decoder for bodies that are valid.

The wire contract is ``app.events`` (pydantic): it is what OpenAPI shows and what refuses a bad
body with its problems. The structs here repeat its rules for the events an optimizer sends most
(``llm_request``, ``feedback``, bandit pulls and rewards, ``parameter_update``, ``model_health``,
budget spend, experiment progress, ``business``, ``deployment``, ``log``), and :func:`decode`
returns them for a body whose every event they accept; any other body (another event type or
action, any invalid value) gives None, and the caller asks ``app.events`` instead. So the structs
may refuse more than the contract, never less; ``tests/test_fast_events.py`` holds them to that
and to the same values.

A struct has the attributes of the pydantic model it stands for, with the same values and types
(``type`` included), which is all the recorder reads. Label values are checked by the contract's
pattern once per distinct value (they repeat: models, providers, task types), not per event.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Union

import msgspec

_LARGEST = 1.7976931348623157e308  # the largest finite float: rejects inf, as allow_inf_nan=False
_MAX_UNIX_SECONDS = 4_102_444_800  # as app.events
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.:/@+= -]*[A-Za-z0-9_.:/@+=-])?")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
# RFC 3339 with a zone, in the shape pydantic reads the same way datetime.fromisoformat does.
_TIMESTAMP = re.compile(
    r"[1-9]\d{3}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)
# Label values known to be of the contract's shape; None stands for an absent optional label.
_GOOD_LABELS: set[str | None] = {None}
_GOOD_LABELS_MAX = 50_000

Finite = Annotated[float, msgspec.Meta(ge=-_LARGEST, le=_LARGEST)]
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=_LARGEST)]
Ratio = Annotated[float, msgspec.Meta(ge=0, le=1)]
Score = Annotated[float, msgspec.Meta(ge=0, le=100)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class Refused(ValueError):
    """A value the contract may refuse: the body goes to ``app.events`` for its answer."""


def _labels(*values: str | None) -> None:
    """Label values (or None) of the contract's shape, else Refused; one set lookup when all
    are known, as they mostly are."""
    if not _GOOD_LABELS.issuperset(values):
        for value in values:
            _label(value)


def _label(value: str | None) -> None:
    """A label value (or None) of the contract's shape, else Refused."""
    if value in _GOOD_LABELS or value is None:
        return
    if len(value) > 128 or _LABEL.fullmatch(value) is None:
        raise Refused(value)
    if len(_GOOD_LABELS) < _GOOD_LABELS_MAX:
        _GOOD_LABELS.add(value)


def _pair(first: object, second: object) -> None:
    if (first is None) != (second is None):
        raise Refused("one of a pair")


def _timestamp(value: Any) -> datetime | None:
    """What ``app.events.Timestamp`` makes of a JSON value, for the shapes read here."""
    if value is None:
        return None
    if isinstance(value, str):
        if _TIMESTAMP.fullmatch(value) is None:
            raise Refused(value)
        return datetime.fromisoformat(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused(repr(value))
    if not 0 <= value <= _MAX_UNIX_SECONDS:
        raise Refused(repr(value))
    return datetime.fromtimestamp(value, UTC)


def _trace(trace_id: str | None, span_id: str | None) -> None:
    for value, pattern in ((trace_id, _TRACE_ID), (span_id, _SPAN_ID)):
        if value is not None and (pattern.fullmatch(value) is None or not value.strip("0")):
            raise Refused(value)


class _Event(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    event_id: str | None = None
    # Any JSON value, checked and turned into a datetime by _timestamp.
    timestamp: Any = None
    trace_id: str | None = None
    span_id: str | None = None

    def _common(self) -> None:
        _label(self.event_id)
        self.timestamp = _timestamp(self.timestamp)
        if self.trace_id is not None or self.span_id is not None:
            _trace(self.trace_id, self.span_id)


class LlmRequest(_Event, tag="llm_request", kw_only=True):
    type: ClassVar[str] = "llm_request"
    model: str
    provider: str = "unknown"
    task_type: str = "unknown"
    status: Literal["success", "error"] = "success"
    error_type: str | None = None
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
    experiment_id: str | None = None
    variant_id: str | None = None
    bandit_id: str = "default"
    arm_id: str | None = None
    parameter: str | None = None
    parameter_value: Finite | None = None

    def __post_init__(self) -> None:
        self._common()
        _labels(
            self.model,
            self.provider,
            self.task_type,
            self.error_type,
            self.experiment_id,
            self.variant_id,
            self.bandit_id,
            self.arm_id,
            self.parameter,
        )
        if self.error_type is not None and self.status != "error":
            raise Refused("error_type")
        if self.cached_tokens > self.input_tokens:
            raise Refused("cached_tokens")
        _pair(self.experiment_id, self.variant_id)
        if self.parameter_value is not None and (self.parameter is None or self.arm_id is None):
            raise Refused("parameter_value")


class Feedback(_Event, tag="feedback", kw_only=True):
    type: ClassVar[str] = "feedback"
    model: str = "unknown"
    experiment_id: str | None = None
    variant_id: str | None = None
    thumbs: Literal["up", "down"] | None = None
    nps: Annotated[int, msgspec.Meta(ge=0, le=10)] | None = None
    csat: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None

    def __post_init__(self) -> None:
        self._common()
        _labels(self.model, self.experiment_id, self.variant_id)
        if self.thumbs is None and self.nps is None and self.csat is None:
            raise Refused("thumbs")
        _pair(self.experiment_id, self.variant_id)


class Bandit(_Event, tag="bandit", kw_only=True):
    """A pull or a reward: the fields of both, each allowed only with its own action."""

    type: ClassVar[str] = "bandit"
    action: Literal["pull", "reward"]
    bandit_id: str = "default"
    arm_id: str
    # Absent (UNSET) and null differ: a field of the other action must be absent.
    explored: bool | msgspec.UnsetType = msgspec.UNSET
    parameter: str | msgspec.UnsetType | None = msgspec.UNSET
    parameter_value: Finite | msgspec.UnsetType | None = msgspec.UNSET
    reward: NonNegative | msgspec.UnsetType = msgspec.UNSET
    regret: NonNegative | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        self._common()
        _labels(self.bandit_id, self.arm_id)
        if self.action == "pull":
            if self.explored is msgspec.UNSET or self.reward is not msgspec.UNSET:
                raise Refused("pull")
            if self.regret is not msgspec.UNSET:
                raise Refused("pull")
            if self.parameter is msgspec.UNSET:
                self.parameter = None
            if self.parameter_value is msgspec.UNSET:
                self.parameter_value = None
            _label(self.parameter)
            _pair(self.parameter, self.parameter_value)
        else:
            if self.reward is msgspec.UNSET:
                raise Refused("reward")
            if any(
                value is not msgspec.UNSET for value in (self.explored, self.parameter, self.parameter_value)
            ):
                raise Refused("reward")
            if self.regret is msgspec.UNSET:
                self.regret = None


class ParameterUpdate(_Event, tag="parameter_update", kw_only=True):
    type: ClassVar[str] = "parameter_update"
    parameter: str
    value: Finite
    stability_score: Ratio | None = None
    performance_gain: Finite | None = None
    improved: bool = False

    def __post_init__(self) -> None:
        self._common()
        _label(self.parameter)


class ModelHealth(_Event, tag="model_health", kw_only=True):
    type: ClassVar[str] = "model_health"
    model: str
    provider: str = "unknown"
    available: bool
    latency_ms: NonNegative | None = None
    error_rate: Ratio | None = None

    def __post_init__(self) -> None:
        self._common()
        _labels(self.model, self.provider)


class BudgetSpend(_Event, tag="budget", kw_only=True):
    type: ClassVar[str] = "budget"
    action: Literal["spend"]
    category: Literal["compute", "infrastructure"]
    amount_usd: NonNegative

    def __post_init__(self) -> None:
        self._common()


class ExperimentProgress(_Event, tag="experiment", kw_only=True):
    type: ClassVar[str] = "experiment"
    action: Literal["progress"]
    experiment_id: str
    leader: str | None = None
    lead: NonNegative | None = None
    confidence: Ratio | None = None
    progress: Ratio | None = None
    sample_size: Count | None = None

    def __post_init__(self) -> None:
        self._common()
        _labels(self.experiment_id, self.leader)


class Business(_Event, tag="business", kw_only=True):
    type: ClassVar[str] = "business"
    baseline_quality: Score | None = None
    optimization_cost_usd: NonNegative | None = None
    value_derived_usd: NonNegative | None = None
    cost_savings_confidence: Ratio | None = None
    quality_improvement_confidence: Ratio | None = None

    def __post_init__(self) -> None:
        self._common()
        if (
            self.baseline_quality is None
            and self.optimization_cost_usd is None
            and self.value_derived_usd is None
            and self.cost_savings_confidence is None
            and self.quality_improvement_confidence is None
        ):
            raise Refused("baseline_quality")


Text = Annotated[str, msgspec.Meta(max_length=1024)]
StackText = Annotated[str, msgspec.Meta(max_length=16384)]


class Deployment(_Event, tag="deployment", kw_only=True):
    type: ClassVar[str] = "deployment"
    action: Literal["deployed", "rolled_back"]
    component: str = "optimizer"
    version: str

    def __post_init__(self) -> None:
        self._common()
        _labels(self.component, self.version)


class LogEvent(_Event, tag="log", kw_only=True):
    type: ClassVar[str] = "log"
    level: Literal["error", "critical"]
    component: str = "optimizer"
    message: Text
    service: Text | None = None
    logger: Text | None = None
    error_name: Text | None = None
    error_message: Text | None = None
    error_stack: StackText | None = None
    request_id: Text | None = None
    experiment_id: Text | None = None

    def __post_init__(self) -> None:
        self._common()
        _labels(self.component)


FastEvent = Union[
    LlmRequest,
    Feedback,
    Bandit,
    ParameterUpdate,
    ModelHealth,
    BudgetSpend,
    ExperimentProgress,
    Business,
    Deployment,
    LogEvent,
]
STRUCTS: tuple[type[_Event], ...] = (
    LlmRequest,
    Feedback,
    Bandit,
    ParameterUpdate,
    ModelHealth,
    BudgetSpend,
    ExperimentProgress,
    Business,
    Deployment,
    LogEvent,
)


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[FastEvent], msgspec.Meta(min_length=1)]


_BATCH = msgspec.json.Decoder(_Batch)
_EVENT: msgspec.json.Decoder[Any] = msgspec.json.Decoder(FastEvent)


def decode(body: bytes) -> list[Any] | None:
    """The events of a body when every one is of a kind read here and valid; None otherwise."""
    try:
        if b'"events"' in body:
            return _BATCH.decode(body).events
        return [_EVENT.decode(body)]
    # A Refused in a struct comes out as msgspec's ValidationError; text that is not UTF-8, as
    # Python's own error.
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
