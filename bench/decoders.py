"""Would another body decoder pay? pydantic as the exporter uses it against msgspec.

    python -m bench.decoders

Times, per event, over batches of 1000 ``llm_request`` events of the workload (the type most
events are, and the one with the most fields): ``parse_events`` (pydantic, through the envelope
union); ``decode_events`` (pydantic, a Batch directly: what ingest runs); JSON parsing alone
(``json.loads``, msgspec untyped); and msgspec decoding into a Struct with the same constraints
(strict types, the label pattern, ranges, the cross-field rules) plus building the pydantic
``LlmRequest`` the recorder dispatches on, without validating it again. The msgspec decoder is a
model of what a switch would cost, for this one type; it is not used by the exporter. Prints one
JSON object (µs per event, best of 5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from app.events import LlmRequest, parse_events
from app.ingest import decode_events
from bench import workload

_MAX = 1.7976931348623157e308  # the largest float: excludes inf, as pydantic's allow_inf_nan=False
Label = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_](?:[A-Za-z0-9_.:/@+= -]*[A-Za-z0-9_.:/@+=-])?\Z"
    ),
]
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=_MAX)]
Score = Annotated[float, msgspec.Meta(ge=0, le=100)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Finite = Annotated[float, msgspec.Meta(ge=-_MAX, le=_MAX)]


class MsgspecLlmRequest(msgspec.Struct, tag_field="type", tag="llm_request", forbid_unknown_fields=True):
    model: Label
    latency_ms: NonNegative
    event_id: Label | None = None
    timestamp: datetime | None = None
    trace_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z")] | None = None
    span_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}\Z")] | None = None
    provider: Label = "unknown"
    task_type: Label = "unknown"
    status: Literal["success", "error"] = "success"
    error_type: Label | None = None
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
    experiment_id: Label | None = None
    variant_id: Label | None = None
    bandit_id: Label = "default"
    arm_id: Label | None = None
    parameter: Label | None = None
    parameter_value: Finite | None = None

    def __post_init__(self) -> None:
        if self.timestamp is not None and self.timestamp.tzinfo is None:
            raise ValueError("timestamp needs a zone")
        for trace in (self.trace_id, self.span_id):
            if trace is not None and not trace.strip("0"):
                raise ValueError("all-zero id")
        if self.error_type is not None and self.status != "error":
            raise ValueError("error_type is only allowed when status is error")
        if self.cached_tokens > self.input_tokens:
            raise ValueError("cached_tokens cannot exceed input_tokens")
        if (self.experiment_id is None) != (self.variant_id is None):
            raise ValueError("experiment_id and variant_id go together")
        if self.parameter_value is not None and (self.parameter is None or self.arm_id is None):
            raise ValueError("parameter_value needs arm_id and parameter")


class MsgspecBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[MsgspecLlmRequest], msgspec.Meta(min_length=1)]


_FIELDS = MsgspecLlmRequest.__struct_fields__
_FIELDS_SET = frozenset(_FIELDS) | {"type"}
_new = object.__new__
_setattr = object.__setattr__


def _as_pydantic(event: MsgspecLlmRequest) -> LlmRequest:
    """The pydantic model the recorder dispatches on, built from validated fields (no re-check)."""
    instance = _new(LlmRequest)
    fields = dict(zip(_FIELDS, msgspec.structs.astuple(event), strict=True))
    fields["type"] = "llm_request"
    _setattr(instance, "__dict__", fields)
    _setattr(instance, "__pydantic_fields_set__", _FIELDS_SET)
    _setattr(instance, "__pydantic_extra__", None)
    _setattr(instance, "__pydantic_private__", None)
    return instance


def _best_us(run: Callable[[], Any], events: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / events * 1e6


def main() -> None:
    made = [event for event in workload.events(40_000, seed=11) if event["type"] == "llm_request"][:20_000]
    bodies = [workload.body(made[start : start + 1000]) for start in range(0, len(made), 1000)]
    typed = msgspec.json.Decoder(MsgspecBatch)
    untyped = msgspec.json.Decoder()
    # The model must agree with pydantic on these events before its time means anything.
    for body in bodies:
        assert [_as_pydantic(event) for event in typed.decode(body).events] == parse_events(body)
    count = len(made)
    result = {
        "events": count,
        "pydantic_parse_events_us": _best_us(lambda: [parse_events(body) for body in bodies], count),
        "pydantic_decode_events_us": _best_us(lambda: [decode_events(body) for body in bodies], count),
        "json_loads_us": _best_us(lambda: [json.loads(body) for body in bodies], count),
        "msgspec_untyped_us": _best_us(lambda: [untyped.decode(body) for body in bodies], count),
        "msgspec_typed_us": _best_us(lambda: [typed.decode(body) for body in bodies], count),
        "msgspec_typed_to_pydantic_us": _best_us(
            lambda: [[_as_pydantic(event) for event in typed.decode(body).events] for body in bodies], count
        ),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
