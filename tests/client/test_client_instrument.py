"""The LLM call helpers: timing, outcome, errors, and the trace that becomes an exemplar."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from client_support import Exporter, key
from llmopt_client import Client, TraceContext, current_call, trace_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags


class RateLimitError(Exception):
    """Stands for a provider SDK's error class."""


def llm(model: str, provider: str = "unknown", task_type: str = "unknown") -> dict[str, str]:
    return {"model": model, "provider": provider, "task_type": task_type}


def test_a_timed_call_reports_what_it_used(exporter: Exporter, new_client: Callable[..., Client]) -> None:
    client = new_client(exporter.url)
    with client.llm_call(
        "instrument-ok", provider="openai", task_type="chat", experiment_id="instrument-exp", variant_id="a"
    ) as call:
        call.record(input_tokens=120, output_tokens=30)
        call.record(cost_usd=0.5, quality=88)

    assert client.flush(timeout=5)
    samples = exporter.samples()
    labels = llm("instrument-ok", "openai", "chat")
    assert {
        "requests": samples[key("llmopt_llm_requests_total", **labels)],
        "input": samples[key("llmopt_llm_tokens_total", **labels, direction="input")],
        "output": samples[key("llmopt_llm_tokens_total", **labels, direction="output")],
        "cost": samples[key("llmopt_llm_cost_usd_total", **labels)],
        "quality": samples[key("llmopt_llm_quality_score_sum", **labels)],
        "timed": samples[key("llmopt_llm_request_duration_seconds_count", **labels)],
        "variant": samples[
            key("llmopt_experiment_variant_requests_total", experiment="instrument-exp", variant="a")
        ],
    } == {"requests": 1, "input": 120, "output": 30, "cost": 0.5, "quality": 88, "timed": 1, "variant": 1}
    assert 0 < samples[key("llmopt_llm_request_duration_seconds_sum", **labels)] < 1
    errors = [
        series
        for name, series in samples
        if name == "llmopt_llm_request_errors_total" and ("model", "instrument-ok") in series
    ]
    assert errors == []


def test_a_failed_call_is_reported_as_an_error_and_raised(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)
    with pytest.raises(RateLimitError), client.llm_call("instrument-error") as call:
        call.record(input_tokens=50)
        raise RateLimitError("slow down")

    assert client.flush(timeout=5)
    samples = exporter.samples()
    labels = llm("instrument-error")
    assert samples[key("llmopt_llm_requests_total", **labels)] == 1
    assert samples[key("llmopt_llm_request_errors_total", **labels, error_type="rate_limited")] == 1
    assert samples[key("llmopt_llm_tokens_total", **labels, direction="input")] == 50


def test_a_decorated_function_is_timed_on_every_call(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)

    @client.instrument("instrument-decorated", provider="acme")
    def ask(prompt: str) -> str:
        call = current_call()
        assert call is not None
        call.record(output_tokens=len(prompt))
        return prompt.upper()

    assert ask("hello") == "HELLO"
    assert ask("hi") == "HI"
    assert current_call() is None

    assert client.flush(timeout=5)
    samples = exporter.samples()
    labels = llm("instrument-decorated", "acme")
    assert samples[key("llmopt_llm_requests_total", **labels)] == 2
    assert samples[key("llmopt_llm_tokens_total", **labels, direction="output")] == 7


def test_a_decorated_coroutine_is_timed_and_its_errors_raised(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)

    @client.instrument("instrument-async", task_type="qa")
    async def ask(should_fail: bool) -> str:
        await asyncio.sleep(0)
        call = current_call()
        assert call is not None
        call.record(input_tokens=7)
        if should_fail:
            raise RateLimitError("slow down")
        return "answer"

    async def optimizer() -> None:
        assert await ask(False) == "answer"
        with pytest.raises(RateLimitError):
            await ask(True)

    asyncio.run(optimizer())
    assert client.flush(timeout=5)
    samples = exporter.samples()
    labels = llm("instrument-async", task_type="qa")
    assert samples[key("llmopt_llm_requests_total", **labels)] == 2
    assert samples[key("llmopt_llm_request_errors_total", **labels, error_type="rate_limited")] == 1
    assert samples[key("llmopt_llm_tokens_total", **labels, direction="input")] == 14


def test_the_trace_of_a_call_arrives_as_an_exemplar(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)
    with client.llm_call("instrument-traced") as call:
        call.record(cost_usd=0.25, quality=90)

    assert client.flush(timeout=5)
    assert call.trace is not None
    ids = {"trace_id": call.trace.trace_id, "span_id": call.trace.span_id}
    assert exporter.exemplars("instrument-traced") == [
        ("llmopt_llm_cost_usd_total", ids),
        ("llmopt_llm_quality_score_bucket", ids),
        ("llmopt_llm_request_duration_seconds_bucket", ids),
    ]


def test_the_current_opentelemetry_span_is_the_trace_of_a_call(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)
    span = NonRecordingSpan(
        SpanContext(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    with otel_trace.use_span(span), client.llm_call("instrument-otel") as call:
        pass

    assert client.flush(timeout=5)
    assert call.trace == TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    ids = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
    assert exporter.exemplars("instrument-otel") == [
        ("llmopt_llm_cost_usd_total", ids),
        ("llmopt_llm_request_duration_seconds_bucket", ids),
    ]


def test_calls_inside_a_trace_context_share_its_trace(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)
    incoming = TraceContext.from_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert incoming is not None

    with (
        trace_context(incoming) as request,
        client.llm_call("instrument-nested") as first,
        client.llm_call("instrument-nested") as second,
    ):
        pass

    assert request.trace_id == incoming.trace_id
    assert request.span_id != incoming.span_id
    assert first.trace == second.trace == request


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", is_sampled=True),
            id="sampled",
        ),
        pytest.param(
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-00",
            TraceContext("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", is_sampled=False),
            id="upper-case-not-sampled",
        ),
        pytest.param("00-00000000000000000000000000000000-b7ad6b7169203331-01", None, id="zero-trace-id"),
        pytest.param("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None, id="zero-span-id"),
        pytest.param("00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01", None, id="short-span-id"),
        pytest.param("not a traceparent", None, id="garbage"),
    ],
)
def test_traceparent_headers_are_parsed(header: str, expected: TraceContext | None) -> None:
    context = TraceContext.from_traceparent(header)
    assert context == expected
    if context is not None:
        assert TraceContext.from_traceparent(context.traceparent) == context


def test_a_streamed_call_reports_its_first_token_and_finish_reason(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)
    with client.llm_call("instrument-stream", provider="openai", task_type="chat") as call:
        chunks = []
        for chunk in call.stream(iter(["Once", " upon", " a time"])):
            chunks.append(chunk)
            time.sleep(0.02)
        call.record(output_tokens=3, finish_reason="length")
    assert chunks == ["Once", " upon", " a time"]
    assert client.flush(timeout=5)
    samples = exporter.samples()
    labels = llm("instrument-stream", "openai", "chat")
    first = samples[key("llmopt_llm_time_to_first_token_seconds_sum", **labels)]
    latency = samples[key("llmopt_llm_request_duration_seconds_sum", **labels)]
    # The first chunk came at once, the call ended after three pauses of 20 ms.
    assert 0 <= first < 0.02
    assert latency >= 0.06
    assert samples[key("llmopt_llm_time_to_first_token_seconds_count", **labels)] == 1
    assert samples[key("llmopt_llm_time_per_output_token_seconds_count", **labels)] == 1
    assert samples[key("llmopt_llm_finish_reasons_total", **labels, finish_reason="length")] == 1


def test_an_async_stream_reports_its_first_token(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)

    async def chunks() -> AsyncIterator[str]:
        for chunk in ("a", "b"):
            await asyncio.sleep(0.01)
            yield chunk

    async def run() -> list[str]:
        async with client.llm_call("instrument-astream") as call:
            return [chunk async for chunk in call.astream(chunks())]

    assert asyncio.run(run()) == ["a", "b"]
    assert client.flush(timeout=5)
    labels = llm("instrument-astream")
    assert exporter.samples()[key("llmopt_llm_time_to_first_token_seconds_count", **labels)] == 1


def test_a_call_that_is_not_streamed_reports_no_first_token(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url)
    with client.llm_call("instrument-whole") as call:
        call.record(output_tokens=3)
    assert client.flush(timeout=5)
    labels = llm("instrument-whole")
    assert key("llmopt_llm_time_to_first_token_seconds_count", **labels) not in exporter.samples()
