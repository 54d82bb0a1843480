"""Real clients on ``POST /v1/traces``: the official ``openai`` SDK calls a local OpenAI-compatible
server (plain and streamed answers, and a rate limit), instrumented by OpenTelemetry's
``opentelemetry-instrumentation-openai-v2``, its spans sent by the OTLP/HTTP exporter of
OpenTelemetry's SDK to a running exporter, configured as its documentation says. The exporter's
counters, tokens and latency histogram equal what the calls did; exporting the same spans again
changes nothing. And with a real Prometheus running the shipped rules, calls known only from
their spans show up in the recording rules and the alerts."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from llmopt_client.halt import query
from opentelemetry import baggage, context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.processor.baggage import BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mixin import recorded as rec
from mixin import rules
from tests import spans as s
from tests.exposition import SampleKey, domain, key, samples
from tests.openai_stub import RATE_LIMITED, OpenAIStub, openai_stub
from tests.processes import ROOT, exporter_and_prometheus, exporter_process, wait_until

TOKEN = "otlp-ingest-token-0123456789"
QUESTIONS = ("What is a histogram?", "Name three prime numbers please", "Say hi")
EXPERIMENT, VARIANTS = "prompt-v5", ("control", "concise")


def _scrape(url: str) -> dict[SampleKey, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return samples(response.read().decode())


@pytest.fixture(scope="module")
def exporter_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("otlp-clients")
    with exporter_process(tmp, env={"LLMOPT_INGEST_TOKENS": TOKEN}) as url:
        yield url


@pytest.fixture(scope="module")
def calls(exporter_url: str) -> Iterator[tuple[OpenAIStub, list[ReadableSpan]]]:
    """The calls, made once: three plain, two streamed, one rate limited. Yields the server's
    record of them and the spans the instrumentation made."""
    # What docs/opentelemetry.md tells users to configure: the OTLP/HTTP exporter at /v1/traces,
    # with the ingest token; the resource carries the optimizer's task type.
    otlp = OTLPSpanExporter(
        endpoint=f"{exporter_url}/v1/traces", headers={"authorization": f"Bearer {TOKEN}"}
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": "chatbot", "llmopt.task_type": "chat"})
    )
    provider.add_span_processor(BaggageSpanProcessor(lambda name: name.startswith("llmopt.")))
    provider.add_span_processor(BatchSpanProcessor(otlp))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with openai_stub() as stub:
            client = openai.OpenAI(base_url=stub.url, api_key="sk-test", max_retries=0)
            for question in QUESTIONS:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": question}], max_tokens=7
                )
            for question, variant in zip(QUESTIONS[:2], VARIANTS, strict=True):
                # The optimizer's context of this call, as docs/opentelemetry.md says: baggage.
                in_variant = baggage.set_baggage(
                    "llmopt.variant_id", variant, baggage.set_baggage("llmopt.experiment_id", EXPERIMENT)
                )
                attached = context.attach(in_variant)
                stream = client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": question}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
                context.detach(attached)
            with pytest.raises(openai.RateLimitError):
                client.chat.completions.create(
                    model=RATE_LIMITED, messages=[{"role": "user", "content": "hi"}]
                )
        assert provider.force_flush(10_000)
        yield stub, list(memory.get_finished_spans())
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def test_the_exporter_counts_what_the_calls_did(
    exporter_url: str, calls: tuple[OpenAIStub, list[ReadableSpan]]
) -> None:
    stub, spans = calls
    assert len(stub.answered) == 5 and len(spans) == 6
    metrics = _scrape(exporter_url)
    served = {"model": "gpt-4o-mini-2024-07-18", "provider": "openai", "task_type": "chat"}
    assert metrics[key("llmopt_llm_requests_total", **served)] == 5
    assert metrics[key("llmopt_llm_tokens_total", **served, direction="input")] == sum(
        call.input_tokens for call in stub.answered
    )
    assert metrics[key("llmopt_llm_tokens_total", **served, direction="output")] == sum(
        call.output_tokens for call in stub.answered
    )
    # The latency histogram holds every call, each as long as its span.
    succeeded = [span for span in spans if span.status.is_ok]
    assert metrics[key("llmopt_llm_request_duration_seconds_count", **served)] == 5
    assert metrics[key("llmopt_llm_request_duration_seconds_sum", **served)] == pytest.approx(
        sum((span.end_time or 0) - (span.start_time or 0) for span in succeeded) / 1e9, abs=1e-6
    )
    limited = {"model": RATE_LIMITED, "provider": "openai", "task_type": "chat"}
    assert metrics[key("llmopt_llm_requests_total", **limited)] == 1
    assert metrics[key("llmopt_llm_request_errors_total", **limited, error_type="rate_limited")] == 1
    assert metrics[key("llmopt_exporter_otlp_spans_total", outcome="applied")] == 6
    # The streamed calls, each in its variant (baggage): one call each, none for the others.
    for variant in VARIANTS:
        assert (
            metrics[key("llmopt_experiment_variant_requests_total", experiment=EXPERIMENT, variant=variant)]
            == 1
        )


def test_exporting_the_same_spans_again_changes_nothing(
    exporter_url: str, calls: tuple[OpenAIStub, list[ReadableSpan]]
) -> None:
    _, spans = calls
    before = _scrape(exporter_url)
    again = OTLPSpanExporter(
        endpoint=f"{exporter_url}/v1/traces", headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert again.export(spans) is SpanExportResult.SUCCESS
    after = _scrape(exporter_url)
    assert domain(after) == domain(before)
    duplicates = key("llmopt_exporter_otlp_spans_total", outcome="duplicate")
    assert after[duplicates] - before[duplicates] == len(spans)


def test_calls_known_from_spans_reach_the_rules_and_alerts(tmp_path: Path) -> None:
    config = rules.load_config(ROOT / "alerts" / "config.yml")
    rendered = rules.render(config)
    files = {name: rendered[name] for name in (rules.RECORDING_FILE, rules.ALERTING_FILE)}
    with exporter_and_prometheus(tmp_path, files, config.exporter_job) as (exporter, prometheus):
        otlp = OTLPSpanExporter(endpoint=f"{exporter}/v1/traces")
        rate_limited = {
            k: v for k, v in s.current(**{"error.type": "RateLimitError"}).items() if "response" not in k
        }

        def export(calls: int, failed: int) -> None:
            now = time.time()
            made = [
                s.span(rate_limited if i < failed else s.current(), failed=i < failed, end=now)
                for i in range(calls)
            ]
            assert otlp.export(made) is SpanExportResult.SUCCESS

        def scraped(total: int) -> float:
            found = wait_until(
                lambda: query(prometheus, f"timestamp(sum(llmopt_llm_requests_total) == {total})") or None,
                f"{total} calls scraped",
            )
            return found[0][1]

        export(10, 2)
        scraped(10)
        export(10, 5)
        seen = scraped(20)
        # The error ratio over the last five minutes: the five failures of the ten calls since.
        ratio = rec.LLM_REQUEST_ERRORS_RATIO5M.selector
        wait_until(
            lambda: query(prometheus, f"timestamp({ratio}) > {seen + 1}") or None,
            "a rule evaluation after the second scrape",
        )
        # Five of the last ten calls failed (2 of the 10 before): rate() extrapolates both counters
        # over the window, so the ratio is near a half, and far over the alert's threshold.
        ((_, ratio_value),) = query(prometheus, ratio)
        assert 0.4 < ratio_value < 0.6
        assert ratio_value > config.alerts.high_error_rate.error_ratio_above

        def high_error_rate() -> list[dict[str, object]] | None:
            with urllib.request.urlopen(f"{prometheus}/api/v1/alerts", timeout=10) as response:
                alerts = json.loads(response.read())["data"]["alerts"]
            return [
                alert for alert in alerts if alert["labels"]["alertname"] == "LLMOptHighErrorRate"
            ] or None

        (alert,) = wait_until(high_error_rate, "LLMOptHighErrorRate pending")
        assert alert["state"] in ("pending", "firing")
        otlp.shutdown()
