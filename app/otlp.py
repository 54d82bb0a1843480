"""OpenTelemetry traces in: the GenAI spans of an OTLP/HTTP export become ``llm_request`` events.

A span is an LLM call when it follows OpenTelemetry's GenAI semantic conventions: it carries
``gen_ai.operation.name``, or (as older instrumentations emit) ``gen_ai.system`` with a model and
no operation name, or it failed with no GenAI attribute at all and is named ``<operation> <model>``.
Its attributes, and those of its resource, become the fields of one ``llm_request`` event (the
tables below, the one place each attribute is named), which then passes the same checks and the
same ingest as an event posted to ``/v1/events``. Each span is taken or refused on its own: a span
with unusable values is refused in the answer's partial success, never half-applied; spans that
are not LLM calls are ignored and counted by reason.

The event id is made of the trace and span ids, so a re-exported span is counted once; and when
two GenAI spans describe one call (an SDK's own span inside an instrumentation's), the inner one
is taken and the outer one is its duplicate.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple, get_args, get_type_hints

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app import metrics as m
from app.decode import EventDecoder, InvalidBody, Problem
from app.errors import RATE_LIMITED, is_rate_limit, says_rate_limit
from app.events import LlmRequest
from app.ingest import Ingestor
from app.recorder import QUALITY_DIMENSIONS
from app.store import MetricStore

PATH = "/v1/traces"
# Of each span, resource and span event, the first this many attributes are read, and of each span
# the first this many events: OpenTelemetry SDKs keep no more by default (AttributeCountLimit,
# EventCountLimit), and the work a request costs stays in proportion to its spans, not its bytes.
MAX_ATTRIBUTES = 128
MAX_EVENTS = 128
PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# --- The attributes read, each declared once -----------------------------------------------------
# Where a field may come from several attributes (older and current conventions, other
# instrumentations' names), the first one present wins.
MODEL = ("gen_ai.response.model", "gen_ai.request.model")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
OPERATION = "gen_ai.operation.name"
# Token counts: an attribute under gen_ai.usage. or llm.usage. counts the tokens of the first word
# below its name holds (several attributes of one kind: the largest). Totals are never read: input
# and output are counted apart. Details of a count (prompt_tokens_details.audio_tokens) are at most
# the count, so the largest is the count itself.
USAGE_PREFIXES = ("gen_ai.usage.", "llm.usage.")
USAGE_WORDS: tuple[tuple[str, str | None], ...] = (
    ("total", None),
    ("cache_read", "cached_tokens"),
    ("cached", "cached_tokens"),
    ("cache_creation", "cache_write_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
    ("input", "input_tokens"),
    ("prompt", "input_tokens"),
    ("output", "output_tokens"),
    ("completion", "output_tokens"),
)
STREAM = ("gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming")
# Seconds to the first chunk: measured by the client; or as some instrumentations report it, sent
# even on calls that did not stream (then not used).
FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
SERVER_FIRST_TOKEN = "gen_ai.server.time_to_first_token"
FINISH_REASONS = (
    "gen_ai.response.finish_reasons",
    "gen_ai.response.finish_reason",
    "llm.response.finish_reason",
)
ERROR_TYPE = "error.type"
# The exception an instrumentation recorded on the span (an event), for failed calls without error.type.
EXCEPTION = "exception"
EXCEPTION_TYPE = "exception.type"
HTTP_STATUS = ("http.response.status_code", "http.status_code")
# An evaluation result is a span event with a name and a score.
EVALUATION = "gen_ai.evaluation.result"
EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE = "gen_ai.evaluation.score.value"
# The optimizer's context: `llmopt.<field>` is the llm_request field of that name, from the span or
# its resource (the span's wins), over anything read from the GenAI attributes.
OURS = "llmopt."
OUR_FIELDS = frozenset(LlmRequest.__struct_fields__) - {
    "event_id",
    "timestamp",
    "trace_id",
    "span_id",
    "labels",
}
# A declared dimension (the labels object of llm_request): `llmopt.label.<dimension>`.
OUR_LABELS = "llmopt.label."

# Finish reasons come as an array (one per choice) or a string: the first is read.
_FIRST_OF_ARRAY = "first of array"
# The protobuf field each known attribute's value is expected in (read directly; any other type
# is read too, more slowly); finish reasons come as an array or a string.
_KINDS: dict[str, str | None] = {
    **dict.fromkeys((*MODEL, *PROVIDER, OPERATION, ERROR_TYPE), "string_value"),
    **dict.fromkeys(STREAM, "bool_value"),
    **dict.fromkeys((FIRST_CHUNK, SERVER_FIRST_TOKEN), "double_value"),
    **dict.fromkeys(HTTP_STATUS, "int_value"),
    **dict.fromkeys(FINISH_REASONS, _FIRST_OF_ARRAY),
}
# What each attribute name seen is for: (0, name, kind) a known attribute, (1, field, kind) a token
# count, (2, field, None) one of ours, (3, dimension, None) a dimension; None: not read. Found once
# per name; bounded, as names come from clients.
_Role = tuple[int, str, str | None]
_ROLES: dict[str, _Role | None] = {}
_ROLES_KEPT = 4096


def _role(key: str) -> _Role | None:
    if key in _KINDS:
        return 0, key, _KINDS[key]
    if key.startswith(USAGE_PREFIXES):
        for word, name in USAGE_WORDS:
            if word in key:
                return None if name is None else (1, name, "int_value")
        return None
    if key.startswith(OURS) and key[len(OURS) :] in OUR_FIELDS:
        return 2, key[len(OURS) :], None
    if key.startswith(OUR_LABELS) and len(key) > len(OUR_LABELS):
        return 3, key[len(OUR_LABELS) :], None
    return None


# --- What the values mean -------------------------------------------------------------------------
# The operations of llm_request (the Literal its field is declared with).
OPERATIONS: frozenset[str] = frozenset(
    get_args(get_args(get_type_hints(LlmRequest, include_extras=True)["operation"])[0])
)
# Operation names of other instrumentations, as ours.
OPERATION_ALIASES = {
    "completion": "text_completion",
    "embedding": "embeddings",
    "generate": "generate_content",
}
# GenAI operations that are not a call of a model: their spans are ignored.
NOT_MODEL_CALLS = frozenset(("invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "retrieval"))
FINISH_REASON_ALIASES = {
    "stop": ("stop", "end_turn", "stop_sequence", "eos", "complete", "finish_reason_stop"),
    "length": ("length", "max_tokens", "max_output_tokens", "model_length", "max_length"),
    "content_filter": (
        "content_filter",
        "safety",
        "recitation",
        "blocklist",
        "prohibited_content",
        "refusal",
        "spii",
    ),
    "tool_calls": ("tool_calls", "tool_call", "tool_use", "function_call", "malformed_function_call"),
    "error": ("error",),
}
_FINISH_REASON = {alias: reason for reason, aliases in FINISH_REASON_ALIASES.items() for alias in aliases}
_CLASS = re.compile(r"^<class '(?:[\w.]*\.)?(\w+)'>$")  # str() of a class, as some instrumentations send
_LABEL_LIKE = re.compile(r"[^A-Za-z0-9_.:/@+=-]")
OTHER_ERROR = "_OTHER"  # the conventions' value of error.type when nothing says more


class TooManySpans(ValueError):
    """More spans in one request than max_batch_events (answered 413)."""


def event_id(trace_id: str, span_id: str) -> str:
    """The event id of a span: one per span, so a re-exported span is a duplicate."""
    return f"otel-{trace_id}-{span_id}"


# --- Decoding --------------------------------------------------------------------------------------
def media_type(content_type: str | None) -> str | None:
    """The OTLP encoding of a Content-Type (PROTOBUF or JSON), None when it is neither."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media if media in (PROTOBUF, JSON) else None


class _JsonObject(msgspec.Struct):
    """An object, its members skipped unread (message contents are not decoded twice)."""


class _JsonScopeSpans(msgspec.Struct, rename="camel"):
    spans: list[_JsonObject] = []


class _JsonResourceSpans(msgspec.Struct, rename="camel"):
    resource: _JsonObject | None = None
    scope_spans: list[_JsonScopeSpans] = []


class _JsonRequest(msgspec.Struct, rename="camel"):
    """The frame of an OTLP/JSON export request, checked before protobuf's JSON parser reads it:
    that parser takes a string where a message belongs (reading nothing from it)."""

    resource_spans: list[_JsonResourceSpans] = []


_JSON_FRAME = msgspec.json.Decoder(_JsonRequest)


def decode(body: bytes, media: str) -> ExportTraceServiceRequest:
    """The export request of ``body``; raises InvalidBody. OTLP/JSON writes ids in hex, where the
    protobuf JSON mapping has base64: hex digits are base64 digits too, so they are read as base64
    and turned back (see :func:`_hex_id`)."""
    request = ExportTraceServiceRequest()
    try:
        if media == PROTOBUF:
            request.ParseFromString(body)
        else:
            _JSON_FRAME.decode(body)
            json_format.Parse(body, request, ignore_unknown_fields=True)
    except (
        msgspec.DecodeError,
        DecodeError,
        json_format.ParseError,
        UnicodeDecodeError,
        ValueError,
        RecursionError,
    ) as err:
        raise InvalidBody(f"body is not an OTLP ExportTraceServiceRequest ({media}): {err}") from None
    return request


def _hex_id(raw: bytes, media: str) -> str:
    if media == JSON:
        return base64.b64encode(raw).decode().lower()
    return raw.hex()


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return None  # no field of ours is a map
    return getattr(value, kind)


class _Read(NamedTuple):
    """The attributes this module reads: known ones, token counts, ours (``llmopt.`` stripped)."""

    known: dict[str, Any]
    usage: dict[str, Any]
    ours: dict[str, Any]


def _read(attributes: Iterable[KeyValue]) -> _Read:
    """The attributes this module reads, sorted; the others (message contents, large) unread."""
    read = _Read({}, {}, {})
    roles = _ROLES
    for attribute in islice(attributes, MAX_ATTRIBUTES):
        key = attribute.key
        try:
            role = roles[key]
        except KeyError:
            if len(roles) >= _ROLES_KEPT:
                roles.clear()
            role = roles[key] = _role(key)
        if role is None:
            continue
        where, name, kind = role
        found = attribute.value
        if kind is None:
            value = _value(found)
        elif kind is _FIRST_OF_ARRAY:
            items = found.array_value.values
            value = (items[0].string_value or _value(items[0])) if items else _value(found)
        else:
            value = getattr(found, kind) or _value(found)
        if where == 1:
            # A count: a whole number, the largest of those of its kind.
            if value.__class__ is float and value.is_integer():
                value = int(value)
            if value.__class__ is not int or value <= read.usage.get(name, -1):
                continue
        elif where == 3:
            read.ours.setdefault("labels", {})[name] = value
            continue
        read[where][name] = value
    return read


def _first(attributes: Mapping[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return value
    return None


# --- Mapping ---------------------------------------------------------------------------------------
@dataclass
class Mapped:
    """What the spans of one export request are: events to check (with where each came from),
    and the spans ignored, by reason."""

    items: list[dict[str, Any]] = field(default_factory=list)
    spans: list[tuple[str, str]] = field(default_factory=list)  # (trace id, span id) of each item
    parents: list[str | None] = field(default_factory=list)  # event id of each item's parent span
    ignored: Counter[str] = field(default_factory=Counter)


def map_request(request: ExportTraceServiceRequest, media: str, max_spans: int) -> Mapped:
    """The LLM calls among the spans of ``request``; raises TooManyEvents past ``max_spans``."""
    # Counted level by level, each bounded before the next is walked: a body of millions of empty
    # resources or scopes costs no more than one of as many spans.
    resources = request.resource_spans
    scopes = len(resources) if len(resources) > max_spans else sum(len(one.scope_spans) for one in resources)
    if scopes > max_spans:
        raise TooManySpans(f"more than max_batch_events ({max_spans}) resources or scopes in one request")
    received = sum(len(scope.spans) for resource in resources for scope in resource.scope_spans)
    if received > max_spans:
        raise TooManySpans(f"{received} spans in one request, more than max_batch_events ({max_spans})")
    mapped = Mapped()
    for resource_spans in request.resource_spans:
        ours = _read(resource_spans.resource.attributes).ours
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                item = _item(span, _read(span.attributes), ours)
                if isinstance(item, str):
                    mapped.ignored[item] += 1
                    continue
                trace_id, span_id = _hex_id(span.trace_id, media), _hex_id(span.span_id, media)
                item["event_id"] = event_id(trace_id, span_id)
                item["trace_id"] = trace_id
                item["span_id"] = span_id
                mapped.items.append(item)
                mapped.spans.append((trace_id, span_id))
                parent = span.parent_span_id
                mapped.parents.append(event_id(trace_id, _hex_id(parent, media)) if parent else None)
    _drop_outer_spans(mapped)
    return mapped


def _drop_outer_spans(mapped: Mapped) -> None:
    """Of two GenAI spans of one call, parent and child, keep the child."""
    enclosing = {parent for parent in mapped.parents if parent is not None}
    if not enclosing:
        return
    kept = [index for index, item in enumerate(mapped.items) if item["event_id"] not in enclosing]
    mapped.ignored["nested_call"] += len(mapped.items) - len(kept)
    mapped.items = [mapped.items[index] for index in kept]
    mapped.spans = [mapped.spans[index] for index in kept]
    mapped.parents = [mapped.parents[index] for index in kept]


def _item(span: Span, read: _Read, resource: Mapping[str, Any]) -> dict[str, Any] | str:
    """The llm_request event of ``span`` as a mapping of its fields, or why the span is ignored.
    ``resource`` holds the optimizer's fields given on the span's resource."""
    attributes = read.known
    operation = attributes.get(OPERATION)
    model = _first(attributes, MODEL)
    provider = _first(attributes, PROVIDER)
    failed = span.status.code == Status.STATUS_CODE_ERROR
    if operation is None:
        if provider is not None and model is not None:
            operation = "chat"  # older instrumentations: gen_ai.system and a model, no operation
        elif failed and not read.usage and not any(key.startswith("gen_ai.") for key in attributes):
            # A failed call some instrumentations report by its name alone: "chat gpt-4o".
            named, _, rest = span.name.partition(" ")
            if OPERATION_ALIASES.get(named, named) not in OPERATIONS or not rest.strip():
                return "not_genai"
            operation, model = named, rest.strip()
        else:
            return "not_genai"
    if not isinstance(operation, str):
        operation = str(operation)
    if operation in NOT_MODEL_CALLS:
        return "not_a_model_call"
    operation = OPERATION_ALIASES.get(operation, operation)
    item: dict[str, Any] = {
        "type": "llm_request",
        "operation": operation if operation in OPERATIONS else "other",
        "latency_ms": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
        "timestamp": span.end_time_unix_nano / 1e9,
    }
    if model is not None:
        item["model"] = model
    if provider is not None:
        item["provider"] = provider
    _tokens(read.usage, item)
    _streaming(attributes, item)
    _finish_reason(attributes, item)
    _error(span, attributes, failed, item)
    if span.events:
        _evaluations(span, item)
    item.update(resource)
    item.update(read.ours)
    if "labels" in resource and "labels" in read.ours:  # the span's dimensions over its resource's
        item["labels"] = {**resource["labels"], **read.ours["labels"]}
    return item


def _tokens(usage: Mapping[str, int], item: dict[str, Any]) -> None:
    item.update(usage)
    input_tokens = usage.get("input_tokens")
    cache = usage.get("cached_tokens", 0) + usage.get("cache_write_tokens", 0)
    # The conventions count cache reads and writes in the input tokens; some SDKs pass on a
    # provider's count that leaves them out. An input count below the cache counts is one.
    if input_tokens is not None and input_tokens < cache:
        item["input_tokens"] = input_tokens + cache


def _streaming(attributes: Mapping[str, Any], item: dict[str, Any]) -> None:
    stream = _first(attributes, STREAM)
    first_chunk = attributes.get(FIRST_CHUNK)
    if first_chunk is not None and stream is None:
        stream = True
    if stream is not None:
        item["stream"] = stream
    if stream is True:
        seconds = first_chunk if first_chunk is not None else attributes.get(SERVER_FIRST_TOKEN)
        if seconds is not None:
            item["time_to_first_token_ms"] = seconds * 1000 if isinstance(seconds, int | float) else seconds


def _finish_reason(attributes: Mapping[str, Any], item: dict[str, Any]) -> None:
    reasons = _first(attributes, FINISH_REASONS)
    if isinstance(reasons, list):  # an empty array, or one of other values than strings
        reasons = reasons[0] if reasons else None
    if reasons is not None:
        item["finish_reason"] = _FINISH_REASON.get(str(reasons).strip().lower(), "other")


def error_type(raw: object, http_status: object, message: str = "") -> str | None:
    """The error type of a failed call: ``raw`` (error.type, or the exception recorded) as a class
    name (``openai.RateLimitError`` and ``<class 'openai.RateLimitError'>`` are RateLimitError),
    else the HTTP status; every rate limit, however reported (the span status ``message`` too), as
    RATE_LIMITED; None when nothing says."""
    name = ""
    if raw is not None:
        name = str(raw).strip()
        named = _CLASS.match(name)
        name = named[1] if named is not None else name.rsplit(".", 1)[-1]
    if is_rate_limit(name) or http_status == 429 or says_rate_limit(message):
        return RATE_LIMITED
    if not name and isinstance(http_status, int) and http_status >= 400:
        name = str(http_status)
    if not name:
        return None
    label = _LABEL_LIKE.sub("_", name)[:128]
    return label if label[0] not in "-." else OTHER_ERROR


def _error(span: Span, attributes: Mapping[str, Any], failed: bool, item: dict[str, Any]) -> None:
    raw = attributes.get(ERROR_TYPE)
    http_status = _first(attributes, HTTP_STATUS)
    if not failed and raw is None and not (isinstance(http_status, int) and http_status >= 400):
        return
    item["status"] = "error"
    if raw is None:
        for event in islice(span.events, MAX_EVENTS):
            if event.name == EXCEPTION:
                raw = next(
                    (
                        kv.value.string_value
                        for kv in islice(event.attributes, MAX_ATTRIBUTES)
                        if kv.key == EXCEPTION_TYPE
                    ),
                    None,
                )
    kind = error_type(raw, http_status, span.status.message)
    if kind is not None:
        item["error_type"] = kind


def _evaluations(span: Span, item: dict[str, Any]) -> None:
    """Evaluation results become quality scores: one named as a quality dimension scores that
    dimension, any other the composite quality (their mean). Scores of at most 1 are fractions."""
    others: list[float] = []
    for event in islice(span.events, MAX_EVENTS):
        if event.name != EVALUATION:
            continue
        values = {
            kv.key: _value(kv.value)
            for kv in islice(event.attributes, MAX_ATTRIBUTES)
            if kv.key in (EVALUATION_NAME, EVALUATION_SCORE)
        }
        score = values.get(EVALUATION_SCORE)
        if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
            continue
        score = score * 100 if 0 <= score <= 1 else score
        name = str(values.get(EVALUATION_NAME, "")).strip().lower()
        if name in QUALITY_DIMENSIONS:
            item[name] = score
        else:
            others.append(score)
    if others:
        item["quality"] = sum(others) / len(others)


# --- Receiving -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    """What became of the spans of one export request."""

    applied: int
    duplicates: int
    rejected: int
    ignored: Mapping[str, int]
    message: str


def receive(body: bytes, media: str, ingestor: Ingestor, store: MetricStore, max_spans: int) -> Received:
    """Decode, map, check and apply the spans of one export request, and count what became of
    them. Raises InvalidBody (nothing in it can be read) or TooManySpans, having applied nothing."""
    try:
        mapped = map_request(decode(body, media), media, max_spans)
    except InvalidBody:
        ingestor.reject("malformed_body")
        raise
    except TooManySpans:
        ingestor.reject("too_large")
        raise
    decoder = ingestor.decoder
    events, refused, message = check(mapped, decoder, decoder.max_problems)
    result = ingestor.apply(events)
    # The spans that enclose an applied one describe the same call: later exports of them are
    # duplicates too.
    refused_set = set(refused)
    ingestor.remember(
        parent
        for index, parent in enumerate(mapped.parents)
        if parent is not None and index not in refused_set
    )
    if refused:
        ingestor.reject("invalid_event", "llm_request", len(refused))
    for reason, count in mapped.ignored.items():
        store.inc(m.OTLP_SPANS_IGNORED, (reason,), count)
    for outcome, count in (
        ("applied", result.accepted),
        ("duplicate", result.duplicates),
        ("rejected", len(refused)),
        ("ignored", sum(mapped.ignored.values())),
    ):
        if count:
            store.inc(m.OTLP_SPANS, (outcome,), count)
    return Received(result.accepted, result.duplicates, len(refused), dict(mapped.ignored), message)


def check(mapped: Mapped, decoder: EventDecoder, max_problems: int) -> tuple[list[Any], list[int], str]:
    """The events of ``mapped`` that pass the contract's checks, the indexes of those refused, and
    a message naming the first ``max_problems`` problems by span."""
    events: list[Any] = []
    refused: list[int] = []
    lines: list[str] = []
    for index, checked in enumerate(decoder.check_each(mapped.items)):
        if isinstance(checked, list):
            refused.append(index)
            trace_id, span_id = mapped.spans[index]
            lines.extend(f"span {span_id} of trace {trace_id}: {_said(problem)}" for problem in checked)
        else:
            events.append(checked)
    message = "; ".join(lines[:max_problems])
    if len(lines) > max_problems:
        message += f"; and {len(lines) - max_problems} more"
    return events, refused, message


def _said(problem: Problem) -> str:
    return (
        problem.message
        if problem.message.startswith(problem.field)
        else f"{problem.field}: {problem.message}"
    )


# --- Answers ---------------------------------------------------------------------------------------
def response(rejected: int, message: str, media: str) -> bytes:
    """The ExportTraceServiceResponse: empty, or the partial success of refused spans."""
    answer = ExportTraceServiceResponse()
    if rejected:
        answer.partial_success.rejected_spans = rejected
        answer.partial_success.error_message = message
    return _encode(answer, media)


def status(code: int, message: str, media: str) -> bytes:
    """A refusal as OTLP/HTTP answers one: a google.rpc.Status with the gRPC code and message.
    (Its two fields are written here by hand, in protobuf or JSON, rather than depend on a
    package of Google's API types for one message.)"""
    if media == JSON:
        return msgspec.json.encode({"code": code, "message": message})
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _encode(message: Message, media: str) -> bytes:
    if media == JSON:
        text: str = json_format.MessageToJson(message, indent=None)
        return text.encode()
    encoded: bytes = message.SerializeToString()
    return encoded


# gRPC codes of the refusals, by HTTP status (OTLP/HTTP answers both).
GRPC_CODES: Mapping[int, int] = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 503: 14}
GRPC_UNKNOWN = 2
