"""Spans of an instrumented request flow: ``process_request`` and, inside it,
``ab_test_selection``, ``bandit_selection``, ``llm_call`` and ``quality_evaluation``.

    tracer = OptimizerTracer("optimizer-api")
    with tracer.process_request(user_id=request.user_id, task_type="summarization"):
        with tracer.ab_test_selection() as span:
            variant = select_variant(request)
            span.set_tag("variant_id", variant.id)
            span.set_tag("experiment_id", variant.experiment_id)
        ...
        with tracer.llm_call(model_id="gpt-4o-mini", temperature=0.7), client.llm_call("gpt-4o-mini") as call:
            ...  # the llm_request event carries this span's trace and span ids

When OpenTelemetry records spans (its SDK is configured, with the user's own exporter to Jaeger,
Tempo or Zipkin), these are OpenTelemetry spans and tags are their attributes. Otherwise the spans
still have W3C ids: a child of the current trace (or of ``parent``, e.g. an incoming
``traceparent``), or a new trace. Either way events emitted inside a span carry its ids, so the
exporter's exemplars link metrics to the trace. Without OpenTelemetry, finished spans are logged at
DEBUG to the ``llmopt_client.spans`` logger.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING

from llmopt_client.tracing import TraceContext, current_trace, use_trace

try:
    from opentelemetry import trace as otel_trace
except ImportError:  # OpenTelemetry is optional.
    HAS_OPENTELEMETRY = False
else:
    HAS_OPENTELEMETRY = True

if TYPE_CHECKING:
    from opentelemetry.context import Context as OtelContext
    from opentelemetry.trace import Span as OtelSpan
    from opentelemetry.trace import TracerProvider

TagValue = str | bool | int | float

log = logging.getLogger("llmopt_client.spans")

SPAN_NAMES = ("process_request", "ab_test_selection", "bandit_selection", "llm_call", "quality_evaluation")


class Span:
    """One operation of the request flow: its W3C ids, tags and logs.

    Tags (``set_tag``) and logs become OpenTelemetry attributes and span events when
    OpenTelemetry records the span; they are kept here too.
    """

    def __init__(
        self,
        name: str,
        context: TraceContext,
        parent_span_id: str | None,
        service: str,
        otel_span: OtelSpan | None = None,
    ) -> None:
        self.name = name
        self.context = context
        self.parent_span_id = parent_span_id
        self.service = service
        self.tags: dict[str, TagValue] = {}
        self.logs: list[tuple[float, dict[str, TagValue]]] = []
        self.started_at = time.time()
        self.ended_at: float | None = None
        self._otel_span = otel_span

    @property
    def trace_id(self) -> str:
        return self.context.trace_id

    @property
    def span_id(self) -> str:
        return self.context.span_id

    @property
    def is_opentelemetry(self) -> bool:
        """Whether OpenTelemetry records this span (else only its ids travel)."""
        return self._otel_span is not None

    def set_tag(self, key: str, value: TagValue | None) -> None:
        """Tag the span (None is ignored, so optional values can be passed as they are)."""
        if value is None:
            return
        self.tags[key] = value
        if self._otel_span is not None:
            self._otel_span.set_attribute(key, value)

    def log(self, **fields: TagValue) -> None:
        """Record something that happened within the span (an OpenTelemetry span event)."""
        self.logs.append((time.time(), dict(fields)))
        if self._otel_span is not None:
            self._otel_span.add_event(str(fields.get("event", "log")), attributes=fields)

    def to_dict(self) -> dict[str, object]:
        """The span as a tracing backend receives it."""
        ended_at = self.ended_at if self.ended_at is not None else time.time()
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "operation_name": self.name,
            "service_name": self.service,
            "start_time": self.started_at,
            "duration_seconds": ended_at - self.started_at,
            "tags": dict(self.tags),
            "logs": [{"timestamp": at, "fields": fields} for at, fields in self.logs],
        }


class OptimizerTracer:
    """Makes the spans of the request flow. Create one per service.

    ``tracer_provider`` is an OpenTelemetry ``TracerProvider`` (default: the global one).
    """

    def __init__(
        self, service: str = "llm-optimizer", *, tracer_provider: TracerProvider | None = None
    ) -> None:
        self.service = service
        self._tracer = (
            otel_trace.get_tracer("llmopt_client", tracer_provider=tracer_provider)
            if HAS_OPENTELEMETRY
            else None
        )

    @contextmanager
    def span(
        self, name: str, *, parent: TraceContext | None = None, **tags: TagValue | None
    ) -> Iterator[Span]:
        """A span named ``name``: a child of ``parent`` when given, else of the current span or
        trace, else the root of a new trace. An exception raised inside is tagged (``error``,
        ``error_type``), logged on the span and raised again."""
        outer = parent if parent is not None else current_trace()
        with ExitStack() as stack:
            otel_span = None
            context = None
            if self._tracer is not None:
                candidate = self._tracer.start_span(name, context=_otel_parent(parent, outer))
                ids = candidate.get_span_context()
                span_id = f"{ids.span_id:016x}"
                # A non-recording tracer (OpenTelemetry without its SDK) hands back no ids, or the
                # parent's: then the span is not OpenTelemetry's and gets ids of its own.
                if ids.is_valid and (outer is None or span_id != outer.span_id):
                    otel_span = candidate
                    stack.enter_context(otel_trace.use_span(candidate, end_on_exit=True))
                    context = TraceContext(f"{ids.trace_id:032x}", span_id, ids.trace_flags.sampled)
                else:
                    candidate.end()
            if context is None:
                context = outer.child() if outer is not None else TraceContext.new()
            stack.enter_context(use_trace(context))
            span = Span(name, context, outer.span_id if outer else None, self.service, otel_span)
            for key, value in tags.items():
                span.set_tag(key, value)
            try:
                yield span
            except Exception as err:
                span.set_tag("error", True)
                span.set_tag("error_type", type(err).__name__)
                if otel_span is None:  # OpenTelemetry records the exception as a span event itself
                    span.log(event="error", message=str(err), stack="".join(traceback.format_exception(err)))
                raise
            finally:
                span.ended_at = time.time()
                if otel_span is None and log.isEnabledFor(logging.DEBUG):
                    log.debug("span %s", json.dumps(span.to_dict(), default=str))

    @contextmanager
    def process_request(
        self, *, user_id: str | None = None, task_type: str | None = None, parent: TraceContext | None = None
    ) -> Iterator[Span]:
        """The root of a request's trace (or a child of ``parent``, e.g. an incoming traceparent).
        Tagged ``success`` when the block ends normally, ``error`` and ``error_type`` when it raises."""
        with self.span("process_request", parent=parent, user_id=user_id, task_type=task_type) as span:
            yield span
            span.set_tag("success", True)

    def ab_test_selection(
        self, *, experiment_id: str | None = None, variant_id: str | None = None
    ) -> AbstractContextManager[Span]:
        """Choosing the A/B variant; tag ``variant_id`` and ``experiment_id``."""
        return self.span("ab_test_selection", experiment_id=experiment_id, variant_id=variant_id)

    def bandit_selection(
        self, *, arm_id: str | None = None, temperature: float | None = None
    ) -> AbstractContextManager[Span]:
        """Choosing the bandit arm; tag ``arm_id`` and ``temperature``."""
        return self.span("bandit_selection", arm_id=arm_id, temperature=temperature)

    def llm_call(
        self, *, model_id: str | None = None, temperature: float | None = None
    ) -> AbstractContextManager[Span]:
        """The LLM call; tag ``model_id`` and ``temperature``, then ``tokens_input``,
        ``tokens_output`` and ``cost``. A ``client.llm_call()`` inside reports it with this span's ids."""
        return self.span("llm_call", model_id=model_id, temperature=temperature)

    def quality_evaluation(self, *, quality_score: float | None = None) -> AbstractContextManager[Span]:
        """Scoring the answer; tag ``quality_score``."""
        return self.span("quality_evaluation", quality_score=quality_score)


def _otel_parent(parent: TraceContext | None, outer: TraceContext | None) -> OtelContext | None:
    """The OpenTelemetry context to start a span in: ``parent`` when given; our own current trace
    when OpenTelemetry has no current span; else None (OpenTelemetry's current span)."""
    if parent is None:
        if outer is None or otel_trace.get_current_span().get_span_context().is_valid:
            return None
        parent = outer
    flags = otel_trace.TraceFlags(
        otel_trace.TraceFlags.SAMPLED if parent.is_sampled else otel_trace.TraceFlags.DEFAULT
    )
    remote = otel_trace.SpanContext(int(parent.trace_id, 16), int(parent.span_id, 16), True, flags)
    return otel_trace.set_span_in_context(otel_trace.NonRecordingSpan(remote))
