"""Ingest: validate a whole body, then apply every event, and count what happened.

A body is applied all or nothing: every event is validated before the first one is applied, so a
refused body changes no metric except the self-metrics that count the refusal.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from app import metrics as m
from app.decode import EventDecoder, InvalidBody, InvalidEvents, TooManyEvents
from app.dedup import RecentIds
from app.events import Event
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


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    by_type: dict[str, int]
    duplicates: int


class Ingestor:
    """Decodes and applies request bodies; keeps the ingest self-metrics."""

    def __init__(
        self, store: MetricStore, recorder: Recorder, decoder: EventDecoder, recent_ids: RecentIds
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._decoder = decoder
        self._recent_ids = recent_ids

    @property
    def decoder(self) -> EventDecoder:
        return self._decoder

    def reject(self, reason: str, event_type: str = "unknown", count: int = 1) -> None:
        """Count ``count`` events refused for ``reason`` (one of metrics.REJECT_REASONS)."""
        self._store.inc(m.EVENTS_REJECTED, (event_type, reason), count)

    def _reject_all(self, refused: Iterable[tuple[str, str]]) -> None:
        """Count refused events given as (type, reason) pairs, one update per pair."""
        for (event_type, reason), count in Counter(refused).items():
            self.reject(reason, event_type, count)

    def ingest(self, body: bytes, trace: TraceContext | None = None) -> IngestResult:
        """Decode every event of ``body``, then apply them all. Raises (and counts) what
        :meth:`app.decode.EventDecoder.decode` raises, having applied nothing."""
        started = time.perf_counter()
        try:
            events = self._decoder.decode(body)
        except InvalidBody:
            self.reject("malformed_body")
            raise
        except TooManyEvents as err:
            self._reject_all((event_type, "too_large") for event_type in err.event_types)
            raise
        except InvalidEvents as err:
            self._reject_all(
                (event_type, "invalid_event" if index in err.invalid else "batch_rejected")
                for index, event_type in enumerate(err.event_types)
            )
            if not err.event_types:
                self.reject("invalid_event")
            raise
        return self.apply(events, trace, started)

    def apply(
        self, events: list[Event], trace: TraceContext | None = None, started: float | None = None
    ) -> IngestResult:
        """Apply validated ``events`` (each once: those whose event_id was applied recently are
        duplicates) and count them; ``started`` is when their request's ingest began."""
        if started is None:
            started = time.perf_counter()
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

    def remember(self, event_ids: Iterable[str]) -> None:
        """Take ``event_ids`` as applied: events with them are duplicates from now on."""
        self._recent_ids.remember(event_ids)

    def _split_duplicates(self, events: list[Event]) -> tuple[list[Event], list[str], list[Event]]:
        """Events to apply with their ids (in order), and events whose event_id was applied
        already (here or earlier)."""
        known = self._recent_ids.known(event.event_id for event in events if event.event_id is not None)
        fresh: list[Event] = []
        fresh_ids: list[str] = []
        duplicates: list[Event] = []
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
