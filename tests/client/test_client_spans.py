"""The request-flow spans  through the OpenTelemetry SDK: the five spans nest under
process_request with their tags, and the llm_request event carries the trace's ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from client_support import Exporter
from llmopt_client import Client, OptimizerTracer, TraceContext, current_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode


@pytest.fixture
def finished() -> Iterator[tuple[OptimizerTracer, Callable[[], dict[str, ReadableSpan]]]]:
    """A tracer on its own SDK provider, and the spans it finished, by name."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield (
        OptimizerTracer("optimizer-api", tracer_provider=provider),
        lambda: {span.name: span for span in spans.get_finished_spans()},
    )
    provider.shutdown()


def test_the_five_spans_nest_and_the_llm_request_carries_the_trace(
    finished: tuple[OptimizerTracer, Callable[[], dict[str, ReadableSpan]]],
    exporter: Exporter,
    new_client: Callable[..., Client],
) -> None:
    tracer, spans = finished
    client = new_client(exporter.url)
    with tracer.process_request(user_id="user-42", task_type="summarization") as request:
        with tracer.ab_test_selection() as span:
            span.set_tag("variant_id", "variant-b")
            span.set_tag("experiment_id", "spans-exp")
        with tracer.bandit_selection() as span:
            span.set_tag("arm_id", "t0.7")
            span.set_tag("temperature", 0.7)
        with (
            tracer.llm_call(model_id="spans-otel", temperature=0.7) as llm_span,
            client.llm_call("spans-otel", provider="test") as call,
        ):
            call.record(input_tokens=120, output_tokens=40, cost_usd=0.0002)
            llm_span.set_tag("tokens_input", 120)
            llm_span.set_tag("tokens_output", 40)
            llm_span.set_tag("cost", 0.0002)
        with tracer.quality_evaluation() as span:
            span.set_tag("quality_score", 88.5)
    assert current_trace() is None
    assert client.flush(timeout=5)

    by_name = spans()
    assert set(by_name) == {
        "process_request",
        "ab_test_selection",
        "bandit_selection",
        "llm_call",
        "quality_evaluation",
    }
    root = by_name["process_request"]
    assert root.parent is None
    assert {span.context.trace_id for span in by_name.values()} == {root.context.trace_id}
    assert {name: span.parent.span_id for name, span in by_name.items() if span.parent} == {
        name: root.context.span_id for name in by_name if name != "process_request"
    }
    assert {name: dict(span.attributes or {}) for name, span in by_name.items()} == {
        "process_request": {"user_id": "user-42", "task_type": "summarization", "success": True},
        "ab_test_selection": {"variant_id": "variant-b", "experiment_id": "spans-exp"},
        "bandit_selection": {"arm_id": "t0.7", "temperature": 0.7},
        "llm_call": {
            "model_id": "spans-otel",
            "temperature": 0.7,
            "tokens_input": 120,
            "tokens_output": 40,
            "cost": 0.0002,
        },
        "quality_evaluation": {"quality_score": 88.5},
    }
    assert request.context.trace_id == f"{root.context.trace_id:032x}"
    assert request.is_opentelemetry

    # The llm_request event went out with the llm_call span's ids: the exemplars link to the trace.
    ids = {
        "trace_id": f"{root.context.trace_id:032x}",
        "span_id": f"{by_name['llm_call'].context.span_id:016x}",
    }
    assert call.trace == TraceContext(ids["trace_id"], ids["span_id"])
    assert exporter.exemplars("spans-otel") == [
        ("llmopt_llm_cost_usd_total", ids),
        ("llmopt_llm_request_duration_seconds_bucket", ids),
    ]


def test_an_error_is_tagged_on_its_span_and_the_request(
    finished: tuple[OptimizerTracer, Callable[[], dict[str, ReadableSpan]]],
) -> None:
    tracer, spans = finished

    class ProviderTimeout(Exception):
        pass

    with pytest.raises(ProviderTimeout), tracer.process_request(), tracer.llm_call(model_id="m"):
        raise ProviderTimeout("no answer")

    for name in ("llm_call", "process_request"):
        span = spans()[name]
        assert span.attributes is not None
        assert (span.attributes["error"], span.attributes["error_type"]) == (True, "ProviderTimeout")
        assert span.status.status_code is StatusCode.ERROR
        assert [event.name for event in span.events] == ["exception"]
    assert "success" not in (spans()["process_request"].attributes or {})


def test_an_incoming_traceparent_is_the_parent_of_the_request(
    finished: tuple[OptimizerTracer, Callable[[], dict[str, ReadableSpan]]],
) -> None:
    tracer, spans = finished
    incoming = TraceContext.from_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert incoming is not None
    with tracer.process_request(parent=incoming) as request:
        pass
    root = spans()["process_request"]
    assert root.parent is not None and root.parent.is_remote
    assert (f"{root.context.trace_id:032x}", f"{root.parent.span_id:016x}") == (
        incoming.trace_id,
        incoming.span_id,
    )
    assert (request.trace_id, request.parent_span_id) == (incoming.trace_id, incoming.span_id)


def test_without_an_sdk_the_spans_have_ids_of_their_own() -> None:
    # The global tracer provider of this process is OpenTelemetry's default, which records nothing.
    tracer = OptimizerTracer("optimizer-api")
    with tracer.process_request() as request, tracer.llm_call(model_id="m") as llm:
        assert current_trace() == llm.context
    assert not request.is_opentelemetry and not llm.is_opentelemetry
    assert (llm.trace_id, llm.parent_span_id) == (request.trace_id, request.span_id)
    assert llm.span_id != request.span_id
