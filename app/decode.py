"""Request body -> validated events, or why not: the decoder of the contract in ``app.events``.

Everything here is derived from those declarations. A valid body decodes in one pass of msgspec:
one event, or a batch ``{"events": [...]}`` whose events msgspec tells apart by ``type``. A type
with several actions (experiment, bandit, budget, incident) decodes through a *wire struct*
derived from its action structs: the action, and every field of any of its actions, absent unless
sent; the check then makes the struct of the action, refusing the fields that action does not
take. The check also refuses what a type cannot say: label values outside the safe character set,
all-zero trace ids, times outside the accepted window, and the rules across fields each struct
declares. Only a body that fails is read again, event by event, to say what is wrong with each.

Every limit applies before the work it guards: a batch of more than ``max_events`` events is
refused before its events are decoded (so the refusal costs what reading the body's bytes costs,
and their number is limited already), and a refusal lists at most ``max_problems`` problems,
with their total. A body that decodes can be applied whole: every value is in its range.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

from app.custom import CustomRegistry
from app.dimensions import Dimensions
from app.events import (
    ACTIONS,
    EVENT_TYPES,
    EVENTS,
    LABEL_PATTERN,
    PATTERN_MEANINGS,
    RULE_NAMESPACE,
    BudgetLimit,
    Event,
    Feedback,
    LlmRequest,
    MetricValue,
    Rule,
    seconds,
)

# --- What a refusal says ------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One reason a body was refused: which event (None: the body itself), which field, what is
    wrong."""

    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = "body" if self.index is None else f"events[{self.index}]"
        return f"{where}.{self.field}: {self.message}"


class InvalidBody(ValueError):
    """The body is not JSON: nothing in it can be read (answered 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidEvents(ValueError):
    """The body is JSON but not valid events (answered 422): nothing of it may be applied.

    Its text is the first problem and how many more there are. ``problems`` are the first
    ``limit`` problems found, ``total`` how many there are, ``invalid``
    the indices of every invalid event, and ``event_types`` the type of each event read, by index
    ("unknown" where unreadable), for the rejection counts.
    """

    def __init__(self, problems: Sequence[Problem], event_types: Sequence[str], limit: int) -> None:
        listed = problems[:limit]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")
        self.problems = tuple(listed)
        self.total = len(problems)
        self.invalid = frozenset(problem.index for problem in problems if problem.index is not None)
        self.event_types = tuple(event_types)


class TooManyEvents(ValueError):
    """The batch holds more events than one request may carry (answered 413). ``event_types``
    are the types of the events read up to the limit and one past it."""

    def __init__(self, limit: int, event_types: Sequence[str]) -> None:
        super().__init__(f"more than {limit} events in one request (max_batch_events); send smaller batches")
        self.event_types = tuple(event_types)


# --- What the check needs to know of each struct, derived from its declaration ------------------


def _walk(annotation: Any) -> Iterator[tuple[str, Any]]:
    """The parts of a field's type, through Annotated and unions: ("meta", a Meta), ("list", the
    item type) or ("type", a plain type)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from _walk(get_args(annotation)[0])
        for meta in annotation.__metadata__:
            yield "meta", meta
    elif origin is Union or origin is types.UnionType:
        for member in get_args(annotation):
            yield from _walk(member)
    elif origin is list:
        yield "list", get_args(annotation)[0]
    elif origin is dict:
        yield "list", get_args(annotation)[0]  # its keys, checked as a list is
        yield "map", get_args(annotation)[1]  # its values
    else:
        yield "type", annotation


def _is_label(annotation: Any) -> bool:
    return any(
        kind == "meta" and isinstance(part, msgspec.Meta) and bool((part.extra or {}).get("label_pattern"))
        for kind, part in _walk(annotation)
    )


def _is_label_list(annotation: Any) -> bool:
    return any(kind == "list" and _is_label(item) for kind, item in _walk(annotation))


def _is_label_map(annotation: Any) -> bool:
    return any(kind == "map" and _is_label(item) for kind, item in _walk(annotation))


def _is_time(annotation: Any) -> bool:
    return ("type", datetime) in _walk(annotation)


def _is_nullable(annotation: Any) -> bool:
    return ("type", type(None)) in _walk(annotation)


_LABEL = re.compile(LABEL_PATTERN)
# Label values known to match the pattern: they repeat (models, providers...), so each is matched
# once. Bounded; past the bound new values are matched every time.
_GOOD_LABELS: set[object] = {None}
_GOOD_LABELS_MAX = 50_000


@dataclass(frozen=True)
class _Window:
    """The times an event may carry, received at ``now``: as Unix seconds and as datetimes."""

    now: float
    low: float
    high: float
    low_time: datetime
    high_time: datetime


@dataclass(frozen=True)
class _Checks:
    """The checks of one contract struct beyond its field types.

    ``passes`` makes them all in one expression, generated from the same declarations, for the
    common case of an event that passes: one call, no loop. Only an event it fails is checked
    again, check by check, to say what is wrong.
    """

    label_fields: tuple[str, ...]  # fields holding a label value (or None)
    label_lists: tuple[str, ...]  # fields holding lists of label values (or maps keyed by them)
    label_maps: tuple[str, ...]  # fields holding maps to label values
    times: tuple[str, ...]  # timestamp fields besides ``timestamp``
    rules: tuple[Rule, ...]
    # (event, now, window bounds as seconds and as datetimes) -> every check passes
    passes: Callable[[Any, float, float, float, datetime, datetime], bool]

    @classmethod
    def of(cls, event: type[Event], also: str = "", namespace: Mapping[str, object] | None = None) -> _Checks:
        """The checks of ``event``, and ``also`` (an expression over ``e`` and ``namespace``) in
        the one expression."""
        fields = msgspec.structs.fields(event)
        labels = tuple(f.name for f in fields if _is_label(f.type) and not _is_label_list(f.type))
        label_lists = tuple(f.name for f in fields if _is_label_list(f.type))
        label_maps = tuple(f.name for f in fields if _is_label_map(f.type))
        times = tuple(f.name for f in fields if _is_time(f.type) and f.name != "timestamp")
        return cls(
            labels,
            label_lists,
            label_maps,
            times,
            event.RULES,
            _passes(labels, label_lists, label_maps, times, event.RULES, also, namespace or {}),
        )


def _passes(
    labels: Sequence[str],
    label_lists: Sequence[str],
    label_maps: Sequence[str],
    times: Sequence[str],
    rules: Sequence[Rule],
    also: str = "",
    also_namespace: Mapping[str, object] | None = None,
) -> Callable[[Any, float, float, float, datetime, datetime], bool]:
    """Every check of :meth:`EventDecoder._checked` as one expression (true when all pass)."""
    terms = [
        # W3C ids are not all zeros.
        '(e.trace_id is None or e.trace_id.strip("0") != "")',
        '(e.span_id is None or e.span_id.strip("0") != "")',
        # The time within the window: a number (Unix seconds) or a datetime.
        "(e.timestamp is None or (low <= e.timestamp <= high if e.timestamp.__class__ is float "
        "else low_time <= e.timestamp <= high_time))",
        *(f"low <= seconds(e.{name}) <= high" for name in times),
    ]
    if labels:
        # Label values already matched: the common case.
        terms.append(f"good.issuperset(({''.join(f'e.{name}, ' for name in labels)}))")
    terms += [f"good.issuperset(e.{name} or ())" for name in label_lists]
    terms += [f"(not e.{name} or good.issuperset(e.{name}.values()))" for name in label_maps]
    if rules:
        terms.append(f"not ({' or '.join(f'({rule.broken_when})' for rule in rules)})")
    if also:
        terms.append(f"({also})")
    namespace = {**RULE_NAMESPACE, **(also_namespace or {}), "good": _GOOD_LABELS}
    source = f"lambda e, now, low, high, low_time, high_time: {' and '.join(terms)}"
    passes: Callable[[Any, float, float, float, datetime, datetime], bool] = eval(source, namespace)
    return passes


_COMMON = tuple(field.name for field in msgspec.structs.fields(Event))


@dataclass(frozen=True)
class _Action:
    """One action of a wire struct: its struct, its own fields, and which must be sent, which may
    not be null. ``convert`` makes the struct of a wire struct that is valid for the action, in one
    expression generated from the same declarations (None when it is not: then
    :meth:`EventDecoder._as_action` says why)."""

    struct: type[Event]
    fields: tuple[str, ...]
    required: frozenset[str]
    not_null: frozenset[str]
    others: tuple[str, ...]  # fields of the other actions, which must be absent
    convert: Callable[[Any], Event | None]


def _converter(
    struct: type[Event], own: Sequence[msgspec.structs.FieldInfo], others: Sequence[str]
) -> Callable[[Any], Event | None]:
    valid = [f"w.{name} is UNSET" for name in others]
    arguments = ["action=w.action", *(f"{name}=w.{name}" for name in _COMMON)]
    for field in own:
        if field.required:
            valid.append(f"w.{field.name} is not UNSET")
        if not _is_nullable(field.type):
            valid.append(f"w.{field.name} is not None")
        if field.required:
            arguments.append(f"{field.name}=w.{field.name}")
        else:
            default = (
                f"{field.default_factory.__name__}()"
                if field.default_factory is not msgspec.NODEFAULT
                else repr(field.default)
            )
            arguments.append(f"{field.name}=(w.{field.name} if w.{field.name} is not UNSET else {default})")
    source = f"lambda w: Struct({', '.join(arguments)}) if {' and '.join(valid) or 'True'} else None"
    convert: Callable[[Any], Event | None] = eval(source, {"UNSET": msgspec.UNSET, "Struct": struct})
    return convert


def _wire_struct(
    event_type: str, actions: Mapping[str, type[Event]]
) -> tuple[type[Event], dict[str, _Action]]:
    """The wire struct of a type with several actions, and what each action takes of it. A field
    shared by several actions must have one type in all of them, up to being nullable."""
    merged: dict[str, Any] = {}
    for struct in actions.values():
        for field in msgspec.structs.fields(struct):
            if field.name in _COMMON or field.name == "action":
                continue
            known = merged.setdefault(field.name, field.type)
            if _schema(known) != _schema(field.type):
                raise TypeError(f"{event_type}.{field.name} has different types in different actions")
            if _is_nullable(field.type):
                merged[field.name] = field.type
    wire: type[Event] = msgspec.defstruct(  # type: ignore[assignment]
        f"{event_type.title().replace('_', '')}Wire",
        [
            ("action", Literal[tuple(actions)]),
            *(
                (name, Union[annotation, msgspec.UnsetType], msgspec.UNSET)
                for name, annotation in merged.items()
            ),
        ],
        bases=(Event,),
        tag=event_type,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
    )
    wire.type = event_type
    by_action = {}
    for name, struct in actions.items():
        own = [f for f in msgspec.structs.fields(struct) if f.name not in _COMMON and f.name != "action"]
        names = tuple(f.name for f in own)
        others = tuple(field for field in merged if field not in names)
        by_action[name] = _Action(
            struct,
            names,
            frozenset(f.name for f in own if f.required),
            frozenset(f.name for f in own if not _is_nullable(f.type)),
            others,
            _converter(struct, own, others),
        )
    return wire, by_action


def _schema(annotation: Any) -> object:
    """A field's type as JSON schema, without descriptions, examples or null: what must agree."""

    def plain(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: plain([item for item in value if item != {"type": "null"}] if key == "anyOf" else value)
                for key, value in node.items()
                if key not in ("description", "examples")
            }
        if isinstance(node, list):
            return [plain(item) for item in node]
        return node

    schema = plain(msgspec.json.schema(annotation))
    if isinstance(schema, dict) and len(schema.get("anyOf", ())) == 1:
        return schema["anyOf"][0]
    return schema


_WIRE: dict[str, tuple[type[Event], dict[str, _Action]]] = {
    event_type: _wire_struct(event_type, actions) for event_type, actions in ACTIONS.items()
}
_ACTIONS_OF: dict[type[Event], dict[str, _Action]] = {wire: actions for wire, actions in _WIRE.values()}
# What msgspec decodes: the structs of types with one struct, the wire structs of the others.
_DECODED: tuple[type[Event], ...] = (
    *(struct for struct in EVENTS if struct.type not in ACTIONS),
    *(wire for wire, _ in _WIRE.values()),
)
_CHECKS: dict[type[Event], _Checks] = {struct: _Checks.of(struct) for struct in EVENTS}
# The structs whose labels name declared dimensions.
_DIMENSIONED = (LlmRequest, Feedback, BudgetLimit)
AnyEvent = Union[_DECODED]  # type: ignore[valid-type]


_BY_TYPE: dict[object, Any] = {struct.__struct_config__.tag: struct for struct in _DECODED}


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[AnyEvent], msgspec.Meta(min_length=1)]


class _Head(msgspec.Struct):
    """What a refused event says of itself: its type and action, whatever else it holds."""

    type: Any = None
    action: Any = None


_SINGLE: msgspec.json.Decoder[Any] = msgspec.json.Decoder(AnyEvent)
_BATCH = msgspec.json.Decoder(_Batch)
_HEAD = msgspec.json.Decoder(_Head)
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ANY_RAW = msgspec.json.Decoder(msgspec.Raw)
# Where msgspec says the problem is: at a path, or at a key of the map at a path.
_AT = re.compile(r"^(?P<message>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<field>[^`]+)`$")


# --- The decoder --------------------------------------------------------------------------------


class EventDecoder:
    """Decodes request bodies into events of the contract.

    ``max_events`` is the most events a batch may hold, ``max_problems`` the most problems a
    refusal lists; event times must lie between ``max_age_seconds`` before and
    ``max_future_seconds`` after ``clock()``. ``custom`` are the custom metrics ``metric`` events
    may name (none: every such event is refused), ``dimensions`` the keys the ``labels`` of a call or
    a feedback may have (none: it must be empty).
    """

    def __init__(
        self,
        max_events: int,
        max_problems: int,
        max_age_seconds: float,
        max_future_seconds: float,
        clock: Callable[[], float],
        custom: CustomRegistry | None = None,
        dimensions: Dimensions | None = None,
    ) -> None:
        self.max_events = max_events
        self.max_problems = max_problems
        self.max_age_seconds = max_age_seconds
        self.max_future_seconds = max_future_seconds
        self.clock = clock
        self.custom = custom or CustomRegistry({})
        self.dimensions = dimensions or Dimensions({})
        # The checks of each struct; a metric event's also ask that it fit its declaration, and the
        # labels of a call or a feedback that they name declared dimensions only.
        self._checks = dict(_CHECKS)
        self._checks[MetricValue] = _Checks.of(MetricValue, "fits(e)", {"fits": self.custom.is_valid})
        for struct in _DIMENSIONED:
            self._checks[struct] = _Checks.of(
                struct,
                "not e.labels or declared.issuperset(e.labels)",
                {"declared": self.dimensions.names_set},
            )
        # A batch whose events are an array of at most max_events + 1 raw values, the rest
        # skipped unread: counting them costs no decoding.
        counted = msgspec.defstruct(
            "Counted", [(f"e{i}", msgspec.Raw, msgspec.UNSET) for i in range(max_events + 1)], array_like=True
        )
        self._envelope: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
            msgspec.defstruct("Envelope", [("events", counted)], forbid_unknown_fields=True)
        )

    def decode(self, body: bytes) -> list[Event]:
        """The events of ``body``, in order, each of its action's struct.

        Raises :class:`InvalidBody` (not JSON), :class:`TooManyEvents`, or :class:`InvalidEvents`
        with the problems found.
        """
        now = self.clock()
        try:
            if b'"events"' not in body:
                decoded = [_SINGLE.decode(body)]
            elif body.count(b'"type"') <= self.max_events:
                # Every event has one "type" key, so the batch is within the limit.
                decoded = _BATCH.decode(body).events
            else:
                return self._explain(body, now)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return self._explain(body, now)
        window = self._window(now)
        low, high, low_time, high_time = window.low, window.high, window.low_time, window.high_time
        checks_of, actions_of = self._checks, _ACTIONS_OF
        events: list[Event] = []
        for event in decoded:
            checks = checks_of.get(event.__class__)
            if checks is None:
                # A wire struct: the struct of its action, if it is valid for it.
                event = actions_of[event.__class__][event.action].convert(event)
                if event is None:
                    return self._checked_all(decoded, window)
                checks = checks_of[event.__class__]
            if not checks.passes(event, now, low, high, low_time, high_time):
                return self._checked_all(decoded, window)
            events.append(event)
        return events

    def check_each(self, items: Sequence[Mapping[str, Any]]) -> list[Event | list[Problem]]:
        """Each of ``items`` (an event as the mapping of its fields, ``type`` among them) as its
        struct when it passes every check of the contract, else the problems that refuse it: for
        sources whose events are taken or refused one by one (the spans of an OTLP export)."""
        window = self._window(self.clock())
        now, low, high, low_time, high_time = (
            window.now,
            window.low,
            window.high,
            window.low_time,
            window.high_time,
        )
        checked: list[Event | list[Problem]] = []
        for index, item in enumerate(items):
            try:
                # By its type when known: converting to the union of every struct costs more.
                event = msgspec.convert(item, _BY_TYPE.get(item.get("type"), AnyEvent))
            except msgspec.ValidationError as err:
                head = _Head(item.get("type"), item.get("action"))
                checked.append([_problem(index, str(err), head)])
                continue
            checks = self._checks.get(event.__class__)
            if checks is not None and checks.passes(event, now, low, high, low_time, high_time):
                checked.append(event)  # the common case: every check in one expression
                continue
            problems: list[Problem] = []
            event = self._checked(event, index, window, problems)
            checked.append(problems if event is None else event)
        return checked

    def _checked_all(self, decoded: Sequence[Any], window: _Window) -> list[Event]:
        """The events of ``decoded`` after every check, each of its action's struct; raises
        :class:`InvalidEvents` naming every problem."""
        problems: list[Problem] = []
        events = [self._checked(event, index, window, problems) for index, event in enumerate(decoded)]
        if problems:
            raise InvalidEvents(problems, [e.type for e in decoded], self.max_problems)
        return events  # type: ignore[return-value]

    # --- checks beyond the types ---
    def _window(self, now: float) -> _Window:
        low, high = now - self.max_age_seconds, now + self.max_future_seconds
        return _Window(now, low, high, datetime.fromtimestamp(low, UTC), datetime.fromtimestamp(high, UTC))

    def _checked(self, event: Any, index: int, window: _Window, problems: list[Problem]) -> Event | None:
        """``event`` as its action's struct when it passes every check; None (with the problems
        added) when not."""
        actions = _ACTIONS_OF.get(type(event))
        if actions is not None:
            event = self._as_action(event, actions[event.action], index, problems)
            if event is None:
                return None
        checks = _CHECKS[type(event)]
        found = len(problems)
        if not _GOOD_LABELS.issuperset(getattr(event, name) for name in checks.label_fields):
            for name in checks.label_fields:
                value = getattr(event, name)
                if not _is_good_label(value):
                    problems.append(Problem(index, name, _label_message(value)))
        for name in checks.label_lists:
            values = getattr(event, name) or ()
            for position, value in enumerate(values):
                if not _is_good_label(value):
                    # A list's item by its position; a map's key by itself.
                    where = f"{name}[{position}]" if isinstance(values, list) else f"{name}[{value!r}]"
                    problems.append(Problem(index, where, _label_message(value)))
        for name in checks.label_maps:
            for key, value in (getattr(event, name) or {}).items():
                if not _is_good_label(value):
                    problems.append(Problem(index, f"{name}.{key}", _label_message(value)))
        trace_id = event.trace_id
        if trace_id is not None and (
            not trace_id.strip("0") or (event.span_id and not event.span_id.strip("0"))
        ):
            field = "trace_id" if not trace_id.strip("0") else "span_id"
            problems.append(Problem(index, field, "an all-zero id is invalid (W3C Trace Context)"))
        timestamp = event.timestamp
        if timestamp is not None and not (
            window.low <= timestamp <= window.high
            if timestamp.__class__ is float
            else window.low_time <= timestamp <= window.high_time
        ):
            problems.append(self._time_problem("timestamp", seconds(timestamp), window.now, index))
        for name in checks.times:
            value = seconds(getattr(event, name))
            if not window.low <= value <= window.high:
                problems.append(self._time_problem(name, value, window.now, index))
        for rule in checks.rules:
            if rule.is_broken(event, window.now):
                problems.append(Problem(index, rule.field, rule.text))
        if isinstance(event, MetricValue):
            problems += [Problem(index, field, message) for field, message in self.custom.problems(event)]
        elif isinstance(event, _DIMENSIONED):
            declared = ", ".join(self.dimensions.names) or "none"
            problems += [
                Problem(
                    index, f"labels.{name}", f"{name!r} is not a declared dimension (dimensions: {declared})"
                )
                for name in self.dimensions.undeclared(event.labels)
            ]
        return event if len(problems) == found else None

    def _as_action(self, wire: Any, action: _Action, index: int, problems: list[Problem]) -> Event | None:
        found = len(problems)
        unset = msgspec.UNSET
        values: dict[str, Any] = {}
        for name in action.fields:
            value = getattr(wire, name)
            if value is unset:
                if name in action.required:
                    problems.append(Problem(index, name, f"{name} is required for {wire.type} {wire.action}"))
            elif value is None and name in action.not_null:
                problems.append(Problem(index, name, f"{name} may not be null for {wire.type} {wire.action}"))
            else:
                values[name] = value
        for name in action.others:
            if getattr(wire, name) is not unset:
                problems.append(
                    Problem(
                        index, name, f"{name} is not a field of {wire.type} {wire.action} (unknown field)"
                    )
                )
        if len(problems) > found:
            return None
        for name in _COMMON:
            values[name] = getattr(wire, name)
        return action.struct(action=wire.action, **values)  # type: ignore[call-arg]

    def _time_problem(self, name: str, when: float, now: float, index: int) -> Problem:
        if when < now:
            return Problem(
                index,
                name,
                f"{name} is more than {self.max_age_seconds:g} s in the past (event_max_age_seconds)",
            )
        return Problem(
            index,
            name,
            f"{name} is more than {self.max_future_seconds:g} s in the future (event_max_future_seconds); "
            "is the sender's clock right?",
        )

    # --- the slow path: what is wrong with a body that did not decode ---
    def _explain(self, body: bytes, now: float) -> list[Event]:
        raws = self._raw_events(body)
        problems: list[Problem] = []
        event_types: list[str] = []
        events: list[Event | None] = []
        window = self._window(now)
        for index, raw in enumerate(raws):
            try:
                event = _SINGLE.decode(raw)
            except msgspec.ValidationError as err:
                head = _head(raw)
                event_types.append(head.type if head.type in EVENT_TYPES else "unknown")
                problems.append(_problem(index, str(err), head))
                continue
            except (msgspec.DecodeError, UnicodeDecodeError) as err:
                raise _not_json(body, err) from err
            event_types.append(event.type)
            events.append(self._checked(event, index, window, problems))
        if problems:
            raise InvalidEvents(problems, event_types, self.max_problems)
        return events  # type: ignore[return-value]

    def _raw_events(self, body: bytes) -> list[msgspec.Raw]:
        """The body's events, undecoded; raises for a body that has no event shape.

        An object with ``events`` and no ``type`` is a batch; any other object is one event.
        """
        start = body.lstrip()[:1]
        try:
            if start != b"{" or b'"events"' not in body:
                _ANY_RAW.decode(body)  # only to tell JSON from not JSON
                if start != b"{":
                    raise InvalidEvents([_not_events(start)], [], self.max_problems)
                return [msgspec.Raw(body)]
            try:
                # The usual case, a batch: one pass that also counts its events.
                envelope = self._envelope.decode(body)
            except msgspec.ValidationError:
                keys = _OBJECT.decode(body)
                if "events" not in keys or "type" in keys:
                    return [msgspec.Raw(body)]
                raise InvalidEvents(_batch_problems(keys), [], self.max_problems) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as err:
            raise _not_json(body, err) from err
        raws = [raw for raw in msgspec.structs.astuple(envelope.events) if raw is not msgspec.UNSET]
        if len(raws) > self.max_events:
            raise TooManyEvents(self.max_events, [_type_of(raw) for raw in raws])
        if not raws:
            raise InvalidEvents(
                [Problem(None, "events", "a batch holds at least one event")], [], self.max_problems
            )
        return raws


def _batch_problems(keys: Mapping[str, msgspec.Raw]) -> list[Problem]:
    """What is wrong with a batch's envelope: keys besides ``events``, ``events`` not an array."""
    problems = [
        Problem(None, name, f'{name} is not a field of a batch, {{"events": [...]}}')
        for name in keys
        if name != "events"
    ]
    if bytes(keys["events"]).lstrip()[:1] != b"[":
        problems.append(Problem(None, "events", 'events is an array of events: {"events": [...]}'))
    return problems


def _is_good_label(value: object) -> bool:
    if value in _GOOD_LABELS:
        return True
    if not isinstance(value, str) or _LABEL.fullmatch(value) is None:
        return False
    if len(_GOOD_LABELS) < _GOOD_LABELS_MAX:
        _GOOD_LABELS.add(value)
    return True


def _label_message(value: object) -> str:
    return f"{value!r} is not a valid label value: {PATTERN_MEANINGS[LABEL_PATTERN]}"


def _not_json(body: bytes, err: Exception) -> InvalidBody:
    """The refusal of a body that is not JSON, showing where it stops being JSON."""
    message = f"body is not valid JSON: {err}"
    position = re.search(r"\(byte (\d+)\)", str(err))
    if position is not None:
        at = int(position[1])
        near = body[max(0, at - 40) : at + 10].decode("utf-8", "replace")
        message += (
            f", near {near!r} (NaN and Infinity are not JSON)"
            if b"NaN" in body or b"Infinity" in body
            else f", near {near!r}"
        )
    return InvalidBody(message)


def _head(raw: msgspec.Raw | bytes) -> _Head:
    try:
        return _HEAD.decode(raw)
    except msgspec.DecodeError:
        return _Head()


def _type_of(raw: msgspec.Raw | bytes) -> str:
    event_type = _head(raw).type
    return event_type if event_type in EVENT_TYPES else "unknown"


def _not_events(start: bytes) -> Problem:
    if start == b"[":
        return Problem(None, "events", 'a batch is an object, {"events": [...]}, not a bare array')
    return Problem(
        None, "(body)", 'the body is one event (an object with a type) or a batch, {"events": [...]}'
    )


_TYPES = ", ".join(EVENT_TYPES)


def _problem(index: int | None, error: str, head: _Head) -> Problem:
    """A problem from msgspec's refusal of one event, with the field it names and a message that
    says what to send instead where msgspec's own would not."""
    match = _AT.match(error)
    message, path = (match["message"], match["path"] or "") if match else (error, "")
    named = _NAMED.match(message)
    field = path.lstrip(".") or (named["field"] if named else "(event)")
    if field == "type":
        if head.type is None:
            return Problem(index, "type", f"type is required; one of: {_TYPES}")
        if head.type not in EVENT_TYPES:
            return Problem(index, "type", f"unknown event type {head.type!r}; one of: {_TYPES}")
    if field == "action" and head.type in ACTIONS:
        actions = ", ".join(ACTIONS[head.type])
        if head.action is None:
            return Problem(index, "action", f"action is required for {head.type} events; one of: {actions}")
        return Problem(
            index, "action", f"unknown action {head.action!r} for {head.type} events; one of: {actions}"
        )
    pattern = re.match(r"^Expected `str` matching regex '(.*)'$", message)
    if pattern is not None:
        meaning = PATTERN_MEANINGS.get(pattern[1].replace("\\\\", "\\"))
        what = f"each key of {field}" if match and match["key"] else field
        message = f"{what} must be {meaning}" if meaning else message
    elif message.startswith("Object contains unknown field"):
        message = f"{field} is not a field of {head.type} events (unknown field)"
    elif message.startswith("Object missing required field"):
        message = f"{field} is required"
    return Problem(index, field, message)
