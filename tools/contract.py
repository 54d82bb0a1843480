"""Files derived from the event contract (``app/events.py``): the Python client's event classes,
the event reference ``docs/events.md``, the events table of the README, and the table of the
OpenTelemetry attributes each field is read from (``app/otlp.py``).

The client is standard library only, so its classes are generated as source and committed; like
every generated file they are written by ``make generate`` (``tools/generate.py``) and checked by
the test that fails while any generated file is stale.
"""

from __future__ import annotations

import json
import textwrap
import types
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
import msgspec.inspect as mi

from app import otlp
from app.errors import RATE_LIMITED
from app.events import EVENTS, LABEL_PATTERN, Event

ROOT = Path(__file__).resolve().parents[1]
CLIENT_EVENTS = "client/llmopt_client/events.py"
EVENTS_DOC = "docs/events.md"
README_SECTION = "README.md#events"
OPENTELEMETRY_SECTION = "docs/opentelemetry.md#attributes"
_COMMON = tuple(field.name for field in msgspec.structs.fields(Event))


def _fields(struct: type[Event]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """The fields a client sets for ``struct``: all but ``type``, and ``action`` where the struct
    stands for one action."""
    return tuple(
        field
        for field in msgspec.structs.fields(struct)
        if field.name != "action" or struct.action_name is None
    )


def _doc(field: msgspec.structs.FieldInfo) -> tuple[str, object]:
    """A field's declared description and example."""
    schema = msgspec.json.schema(field.type)
    return schema.get("description", ""), (schema.get("examples") or [None])[0]


# --- The client's classes -----------------------------------------------------------------------


def _py(value: object) -> str:
    """A constant as Python source, strings in double quotes as the code is formatted."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _python_type(annotation: Any) -> str:
    """How the client spells a field's type: plain Python types, tuples for lists."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _python_type(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        members = [_python_type(member) for member in get_args(annotation)]
        return " | ".join(dict.fromkeys(members))
    if origin is Literal:
        return f"Literal[{', '.join(_py(value) for value in get_args(annotation))}]"
    if origin is list:
        return f"tuple[{_python_type(get_args(annotation)[0])}, ...]"
    if origin is dict:
        key, value = get_args(annotation)
        return f"dict[{_python_type(key)}, {_python_type(value)}]"
    if annotation is type(None):
        return "None"
    if annotation is datetime:
        return "datetime"
    return str(annotation.__name__)


def _default(field: msgspec.structs.FieldInfo) -> str | None:
    if field.default_factory is list:
        return "()"
    if field.default_factory is dict:
        return "field(default_factory=dict)"
    if field.default is msgspec.NODEFAULT:
        return None
    return _py(field.default)


def _is_critical(struct: type[Event]) -> list[str]:
    urgent = struct.URGENT
    if urgent is False:
        return []
    if urgent is True:
        condition = "True"
    else:
        name, value = urgent
        if isinstance(value, bool):
            condition = f"self.{name}" if value else f"not self.{name}"
        else:
            condition = f"self.{name} == {_py(value)}"
    return ["", "    @property", "    def is_critical(self) -> bool:", f"        return {condition}"]


def _docstring(text: str, indent: str) -> list[str]:
    lines = textwrap.wrap(text, 106 - len(indent)) or [""]
    if len(lines) == 1 and len(lines[0]) + len(indent) + 6 <= 110:
        return [f'{indent}"""{lines[0]}"""']
    return [f'{indent}"""{lines[0]}', *(f"{indent}{line}" for line in lines[1:]), f'{indent}"""']


def _client_class(struct: type[Event]) -> list[str]:
    lines = ["", "", "@dataclass(frozen=True, kw_only=True)", f"class {struct.__name__}(Event):"]
    lines += _docstring(" ".join((struct.__doc__ or "").split()), "    ")
    lines += ["", f"    EVENT_TYPE: ClassVar[str] = {_py(struct.type)}"]
    if struct.action_name is not None:
        lines.append(f"    ACTION: ClassVar[str | None] = {_py(struct.action_name)}")
    if struct.SETS_STATE:
        lines.append("    SETS_STATE: ClassVar[bool] = True")
    lines.append("")
    for field in _fields(struct):
        if field.name in _COMMON:
            continue
        default = _default(field)
        lines.append(f"    {field.name}: {_python_type(field.type)}" + (f" = {default}" if default else ""))
        description, _ = _doc(field)
        lines += _docstring(description, "    ")
    return lines + _is_critical(struct)


_CLIENT_HEAD = '''\
"""The events of the exporter's API, one frozen dataclass per event type (and action).

Field for field, with the same defaults, as the exporter declares them; the exporter stays the
judge of validity (a refused event is counted, never raised at the caller). ``event_id``,
``timestamp`` and the trace ids may be left out: the client fills them in when the event is emitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import ClassVar, Literal


@dataclass(frozen=True, kw_only=True)
class Event:
    """Fields every event may carry. Subclasses name their wire ``type`` and ``action``."""

    EVENT_TYPE: ClassVar[str]
    ACTION: ClassVar[str | None] = None
    # Whether the event sets state: a client of several replicas sends those to one of them.
    SETS_STATE: ClassVar[bool] = False

{common}

    @property
    def is_critical(self) -> bool:
        """Whether the event is sent at once instead of waiting for the next batch."""
        return False

    def to_wire(self) -> dict[str, object]:
        """The event as the JSON object the API takes; fields left as None are not sent."""
        wire: dict[str, object] = {{"type": self.EVENT_TYPE}}
        if self.ACTION is not None:
            wire["action"] = self.ACTION
        for each in fields(self):
            value = getattr(self, each.name)
            if value is None:
                continue
            if isinstance(value, datetime):
                value = value.astimezone(UTC).isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            wire[each.name] = value
        return wire'''


def client_events() -> str:
    """The source of ``client/llmopt_client/events.py``."""
    common: list[str] = []
    for field in msgspec.structs.fields(Event):
        annotation = "float | datetime | None" if field.name == "timestamp" else _python_type(field.type)
        common.append(f"    {field.name}: {annotation} = {_default(field)}")
        common += _docstring(_doc(field)[0], "    ")
    lines = [_CLIENT_HEAD.format(common="\n".join(common))]
    for struct in EVENTS:
        lines += _client_class(struct)
    names = "".join(f"    {struct.__name__},\n" for struct in EVENTS)
    lines += ["", "", f"ALL_EVENTS: tuple[type[Event], ...] = (\n{names})"]
    return "\n".join(lines) + "\n"


# --- The docs -----------------------------------------------------------------------------------


def _number(info: Any) -> str:
    low = info.ge if info.ge is not None else info.gt
    high = info.le if info.le is not None else info.lt
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    if low is not None:
        return f">= {low:g}"
    return f"<= {high:g}" if high is not None else ""


def _kind(info: Any) -> str:
    """A field's type and range in a few words."""
    if isinstance(info, mi.Metadata):
        if (info.extra or {}).get("label_pattern"):
            return "label value"
        return _kind(info.type)
    if isinstance(info, mi.UnionType):
        return " or ".join(_kind(member) for member in info.types if not isinstance(member, mi.NoneType))
    if isinstance(info, mi.StrType):
        if info.pattern == LABEL_PATTERN:
            return "id"
        if info.pattern is not None:
            return "hex id"
        return f"text (≤ {info.max_length})" if info.max_length else "text"
    if isinstance(info, mi.IntType):
        return f"integer {_number(info)}".strip()
    if isinstance(info, mi.FloatType):
        return f"number {_number(info)}".strip()
    if isinstance(info, mi.BoolType):
        return "boolean"
    if isinstance(info, mi.LiteralType):
        return " \\| ".join(f"`{value}`" for value in info.values)
    if isinstance(info, mi.DateTimeType):
        return "RFC 3339"
    if isinstance(info, mi.ListType):
        return f"list of {_kind(info.item_type)}" + (f" (≤ {info.max_length})" if info.max_length else "")
    if isinstance(info, mi.DictType):
        size = f" (≤ {info.max_length})" if info.max_length else ""
        return f"map of {_kind(info.key_type)} to {_kind(info.value_type)}{size}"
    return type(info).__name__


def _heading(struct: type[Event]) -> str:
    return f"`{struct.type}` `{struct.action_name}`" if struct.action_name else f"`{struct.type}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(*cells: str) -> str:
    """A Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def _header(*names: str) -> list[str]:
    return [_row(*names), _row(*("---" for _ in names))]


def events_doc() -> str:
    """The source of ``docs/events.md``: every event, field by field."""
    lines = [
        "# Events",
        "",
        'A body is one event or a batch, `{"events": [...]}`, applied all or nothing. Every event has a '
        "`type`; the types with several steps also name the step in `action`. Unknown fields are refused, "
        "and so are values out of their range, label values outside the safe character set (1 to 128 "
        "letters, digits and `_ . : / @ + = -`, inner spaces) and the rules listed under each event. "
        "The OpenAPI schema (`/openapi.json`, `/docs`) says the same, with an example of each event.",
        "",
        "## Fields of every event",
        "",
        *_header("field", "type", "required", "description"),
    ]
    for field in msgspec.structs.fields(Event):
        lines.append(_row(f"`{field.name}`", _kind(mi.type_info(field.type)), "no", _cell(_doc(field)[0])))
    for struct in EVENTS:
        lines += ["", f"## {_heading(struct)}", "", " ".join((struct.__doc__ or "").split()), ""]
        lines += _header("field", "type", "required", "default", "description", "example")
        for field in _fields(struct):
            if field.name in _COMMON:
                continue
            description, example = _doc(field)
            default = "" if field.required else f"`{_default(field)}`"
            required = "yes" if field.required else "no"
            shown = _cell(msgspec.json.encode(example).decode())
            kind = _kind(mi.type_info(field.type))
            lines.append(
                f"| `{field.name}` | {kind} | {required} | {default} | {_cell(description)} | `{shown}` |"
            )
        if struct.RULES:
            lines += ["", "Rules: " + "; ".join(rule.text for rule in struct.RULES) + "."]
    return "\n".join(lines) + "\n"


def _examples_of(struct: type[Event]) -> str:
    name = struct.type
    paths = sorted(path.name for path in (ROOT / "examples").glob(f"{name}*.json"))
    return ", ".join(f"`examples/{path}`" for path in paths)


def readme_table() -> str:
    """The README's events table: each type and action, what it reports, its required fields."""
    lines = _header("type", "action", "what it reports", "required fields", "example")
    for struct in EVENTS:
        required = [f"`{f.name}`" for f in _fields(struct) if f.required and f.name not in _COMMON]
        required += [
            "one of " + ", ".join(f"`{name}`" for name in rule.one_of) for rule in struct.RULES if rule.one_of
        ]
        summary = (struct.__doc__ or "").strip().splitlines()[0].rstrip(".")
        action = f"`{struct.action_name}`" if struct.action_name else "—"
        lines.append(
            _row(f"`{struct.type}`", action, _cell(summary), ", ".join(required) or "—", _examples_of(struct))
        )
    return "\n".join(lines) + "\n"


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def opentelemetry_table() -> str:
    """The attributes of a GenAI span each llm_request field is read from (``app/otlp.py``)."""
    usage: dict[str, list[str]] = {}
    for word, name in otlp.USAGE_WORDS:
        if name is not None:
            usage.setdefault(name, []).append(f"`{word}`")
    prefixes = " or ".join(f"`{prefix}*`" for prefix in otlp.USAGE_PREFIXES)
    reasons = "; ".join(
        f"{_names(aliases)} → `{reason}`" for reason, aliases in otlp.FINISH_REASON_ALIASES.items()
    )
    rows = [
        ("model", f"{_names(otlp.MODEL)}; a failed span with no GenAI attribute: its name, `chat <model>`"),
        ("provider", f"{_names(otlp.PROVIDER)}, as its OpenTelemetry well-known name"),
        (
            "operation",
            f"`{otlp.OPERATION}` (default `chat`; {_names(otlp.OPERATION_ALIASES)} as "
            f"{_names(otlp.OPERATION_ALIASES.values())}); spans of "
            f"{_names(sorted(otlp.NOT_MODEL_CALLS))} are not LLM calls and are ignored",
        ),
        ("latency_ms", "the span's end less its start"),
        ("timestamp", "the span's end"),
        ("event_id", "`otel-<trace_id>-<span_id>`: a span exported twice is applied once"),
        ("trace_id, span_id", "the span's own: exemplars link to it"),
        *(
            (
                name,
                f"the largest integer of the attributes under {prefixes} whose name holds "
                + " or ".join(words),
            )
            for name, words in usage.items()
        ),
        (
            "none: totals",
            f"attributes under {prefixes} whose name holds "
            + " or ".join(f"`{word}`" for word, name in otlp.USAGE_WORDS if name is None)
            + " are never read",
        ),
        ("stream", _names(otlp.STREAM) + f"; true when `{otlp.FIRST_CHUNK}` is given"),
        (
            "time_to_first_token_ms",
            f"`{otlp.FIRST_CHUNK}` (seconds); `{otlp.SERVER_FIRST_TOKEN}` only when the call streamed",
        ),
        ("finish_reason", f"the first of {_names(otlp.FINISH_REASONS)}: {reasons}; anything else `other`"),
        (
            "status",
            f"`error` when the span's status is ERROR, or `{otlp.ERROR_TYPE}` or an HTTP status "
            "≥ 400 is given",
        ),
        (
            "error_type",
            f"`{otlp.ERROR_TYPE}`, else the `{otlp.EXCEPTION_TYPE}` of the span's `{otlp.EXCEPTION}` "
            f"event, as a class name; else the HTTP status ({_names(otlp.HTTP_STATUS)}). Every rate limit "
            f"(class, API error type, HTTP 429, a status message that says so) is `{RATE_LIMITED}`",
        ),
        (
            "quality, accuracy, relevance, coherence, completeness",
            f"`{otlp.EVALUATION}` events: `{otlp.EVALUATION_SCORE}` (scores from 0 to 1 times 100) of the "
            f"dimension `{otlp.EVALUATION_NAME}` names; other names: their mean is `quality`",
        ),
        ("any field", f"`{otlp.OURS}<field>` on the span, else on its resource, over all of the above"),
        ("labels", f"`{otlp.OUR_LABELS}<dimension>`: each declared dimension, on the span or its resource"),
    ]
    lines = _header("llm_request field", "read from")
    lines += [_row(f"`{field}`" if " " not in field else field, _cell(source)) for field, source in rows]
    return "\n".join(lines) + "\n"


def render() -> dict[str, str]:
    """Repository path (or section) -> content of every file derived from the event contract."""
    return {
        CLIENT_EVENTS: client_events(),
        EVENTS_DOC: events_doc(),
        README_SECTION: readme_table(),
    }
