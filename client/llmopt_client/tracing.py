"""W3C Trace Context: the ids that let the exporter put exemplars on an LLM call's metrics.

The current context comes from OpenTelemetry when it is installed and a span is active;
otherwise from :func:`trace_context`, which starts a trace of our own when there is none.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

try:
    from opentelemetry import trace as otel_trace
except ImportError:  # OpenTelemetry is optional.
    HAS_OPENTELEMETRY = False
else:
    HAS_OPENTELEMETRY = True

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    """A W3C trace id (32 hex digits) and span id (16 hex digits)."""

    trace_id: str
    span_id: str
    is_sampled: bool = True

    @classmethod
    def new(cls) -> TraceContext:
        """A new trace with a random, non-zero trace id and span id."""
        return cls(_random_hex(16), _random_hex(8))

    def child(self) -> TraceContext:
        """A new span in the same trace."""
        return TraceContext(self.trace_id, _random_hex(8), self.is_sampled)

    @property
    def traceparent(self) -> str:
        """The ``traceparent`` header that carries this context to the next service."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.is_sampled else '00'}"

    @classmethod
    def from_traceparent(cls, header: str) -> TraceContext | None:
        """The context of a ``traceparent`` header; None when it is malformed or all zeros."""
        match = _TRACEPARENT.match(header.strip().lower())
        if match is None:
            return None
        trace_id, span_id, flags = match.groups()
        if not trace_id.strip("0") or not span_id.strip("0"):
            return None
        return cls(trace_id, span_id, bool(int(flags, 16) & 1))


_current: ContextVar[TraceContext | None] = ContextVar("llmopt_trace_context", default=None)


def current_trace() -> TraceContext | None:
    """The active trace context: OpenTelemetry's current span first, then ours; None if neither."""
    if HAS_OPENTELEMETRY:
        span_context = otel_trace.get_current_span().get_span_context()
        if span_context.is_valid:
            return TraceContext(
                f"{span_context.trace_id:032x}",
                f"{span_context.span_id:016x}",
                span_context.trace_flags.sampled,
            )
    return _current.get()


@contextmanager
def trace_context(parent: TraceContext | None = None) -> Iterator[TraceContext]:
    """Run a block inside a trace: a child span of ``parent`` when given (e.g. parsed from an
    incoming ``traceparent``), else the active context, else a new trace.

    Events emitted inside the block carry its ids.
    """
    context = parent.child() if parent is not None else current_trace() or TraceContext.new()
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


@contextmanager
def use_trace(context: TraceContext) -> Iterator[TraceContext]:
    """Make ``context`` itself the active trace context for the block (a span's own ids).

    Unlike :func:`trace_context`, no child span is made. OpenTelemetry's current span, when it
    has valid ids, still comes first in :func:`current_trace`.
    """
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def _random_hex(size: int) -> str:
    while True:
        value = secrets.token_hex(size)
        if value.strip("0"):
            return value
