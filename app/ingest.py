"""Ingest: validate a whole body, then apply every event, and count what happened.

A body is applied all or nothing: every event is validated before the first one is applied, so a
refused body changes no metric except the self-metrics that count the refusal.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app import fast_events
from app import metrics as m
from app.dedup import RecentIds
from app.events import Batch, Event, InvalidBody, InvalidEvents, parse_events
from app.recorder import Recorder
from app.store import MetricStore

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str


def parse_traceparent(header: str | None) -> TraceContext | None:
    """The trace context of a W3C ``traceparent`` header, or None when absent or malformed."""
    if header is None:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if match is None or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return TraceContext(match.group(1), match.group(2))


_BATCH: TypeAdapter[Batch] = TypeAdapter(Batch)
_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


def decode_events(body: bytes) -> list[Any]:
    """What :func:`app.events.parse_events` returns or raises for ``body``, sooner for valid bodies.

    ``parse_events`` first decides whether a body is a batch or one event, which makes pydantic
    build Python objects from the JSON before validating them. A body that validates directly as
    a batch (so it has an ``events`` key) or as one event (so it has none) is exactly what
    ``parse_events`` would accept, and comes out the same; any other body goes to ``parse_events``
    itself, for its decision and its exact problems.
    """
    is_batch = b'"events"' in body
    try:
        if is_batch:
            return list(_BATCH.validate_json(body).events)
        return [_EVENT.validate_json(body)]
    except ValidationError:
        return parse_events(body)


def decode(body: bytes) -> list[Any]:
    """The events of ``body`` for the recorder: msgspec structs when ``app.fast_events`` reads
    them all, else what :func:`decode_events` returns (pydantic models) or raises."""
    events = fast_events.decode(body)
    return events if events is not None else decode_events(body)


class TooManyEvents(ValueError):
    """The body holds more events than one request may carry."""


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    by_type: dict[str, int]
    duplicates: int


class Ingestor:
    """Validates and applies request bodies; keeps the ingest self-metrics."""

    def __init__(
        self, store: MetricStore, recorder: Recorder, max_batch_events: int, recent_ids: RecentIds
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._max_batch_events = max_batch_events
        self._recent_ids = recent_ids

    def reject(self, reason: str, event_type: str = "unknown", count: int = 1) -> None:
        """Count ``count`` events refused for ``reason`` (one of metrics.REJECT_REASONS)."""
        self._store.inc(m.EVENTS_REJECTED, (event_type, reason), count)

    def ingest(self, body: bytes, trace: TraceContext | None = None) -> IngestResult:
        started = time.perf_counter()
        try:
            events = decode(body)
        except InvalidBody:
            self.reject("malformed_body")
            raise
        except InvalidEvents as err:
            invalid = {problem.index for problem in err.problems}
            for index, event_type in enumerate(err.event_types):
                self.reject("invalid_event" if index in invalid else "batch_rejected", event_type)
            if not err.event_types:
                self.reject("invalid_event")
            raise
        if len(events) > self._max_batch_events:
            for event in events:
                self.reject("too_large", event.type)
            raise TooManyEvents(
                f"{len(events)} events in one request; at most {self._max_batch_events} (max_batch_events)"
            )
        fresh, fresh_ids, duplicates = self._split_duplicates(events)
        trace_id = trace.trace_id if trace is not None else None
        span_id = trace.span_id if trace is not None else None
        apply = self._recorder.apply
        for event in fresh:
            apply(event, trace_id, span_id)
        self._recent_ids.remember(fresh_ids)
        by_type: dict[str, int] = {}
        for event in fresh:
            by_type[event.type] = by_type.get(event.type, 0) + 1
        for event_type, count in by_type.items():
            self._store.inc(m.EVENTS_ACCEPTED, (event_type,), count)
        for event in duplicates:
            self._store.inc(m.EVENTS_DUPLICATE, (event.type,))
        self._store.observe(m.BATCH_SIZE, (), len(events))
        self._store.observe(m.INGEST_DURATION, (), time.perf_counter() - started)
        return IngestResult(len(fresh), by_type, len(duplicates))

    def _split_duplicates(self, events: list[Any]) -> tuple[list[Any], list[str], list[Any]]:
        """Events to apply with their ids (in order), and events whose event_id was applied
        already (here or earlier)."""
        known = self._recent_ids.known(event.event_id for event in events if event.event_id is not None)
        fresh: list[Any] = []
        fresh_ids: list[str] = []
        duplicates: list[Any] = []
        in_this_body: set[str] = set()
        for event in events:
            event_id = event.event_id
            if event_id is None:
                fresh.append(event)
            elif event_id in known or event_id in in_this_body:
                duplicates.append(event)
            else:
                in_this_body.add(event_id)
                fresh_ids.append(event_id)
                fresh.append(event)
        return fresh, fresh_ids, duplicates
