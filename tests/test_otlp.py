"""``POST /v1/traces``: GenAI spans, built as OpenTelemetry's SDK builds them and encoded as its
OTLP exporter does (protobuf) or as OTLP/JSON, become the metrics of the calls they describe; each
shape instrumentations send in the field is mapped; other spans are ignored and counted; a span
with unusable values is refused in the partial-success answer and changes nothing."""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan

from app import otlp
from app.config import Settings
from tests import spans as s
from tests.conftest import Exporter, make_exporter
from tests.exposition import SampleKey, domain, key

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA = pytest.mark.parametrize("media", [PROTOBUF, JSON])
SERVED = {"provider": "openai", "task_type": "unknown"}


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    yield from make_exporter()


def post(exporter: Exporter, spans: Sequence[ReadableSpan], media: str = PROTOBUF, **headers: str) -> Any:
    return exporter.client.post(
        "/v1/traces", content=s.body(spans, media), headers={"content-type": media, **headers}
    )


def answer(response: Any, media: str = PROTOBUF) -> ExportTraceServiceResponse:
    """The ExportTraceServiceResponse of a 200, in the encoding of the request."""
    assert response.status_code == 200, response.content
    assert response.headers["content-type"] == media
    if media == JSON:
        return json_format.Parse(response.content, ExportTraceServiceResponse())
    return ExportTraceServiceResponse.FromString(response.content)


def calls(metrics: dict[SampleKey, float], model: str, **labels: str) -> float:
    return metrics.get(key("llmopt_llm_requests_total", model=model, **{**SERVED, **labels}), 0.0)


# --- the conventions -----------------------------------------------------------------------------
@MEDIA
@pytest.mark.parametrize(
    ("attributes", "model"),
    [
        pytest.param(s.current(), "gpt-4o-2024-08-06", id="current"),
        pytest.param(s.older(), "gpt-4o", id="older"),
    ],
)
def test_a_genai_span_becomes_the_call_it_describes(
    exporter: Exporter, media: str, attributes: dict[str, Any], model: str
) -> None:
    one = s.span(attributes, seconds=0.75)
    assert not answer(post(exporter, [one], media), media).HasField("partial_success")
    metrics = exporter.scrape()
    labels = {"model": model, **SERVED}
    assert calls(metrics, model) == 1
    assert metrics[key("llmopt_llm_tokens_total", **labels, direction="input")] == 120
    # The total (llm.usage.total_tokens on the older span) is never added to input and output.
    assert metrics[key("llmopt_llm_tokens_total", **labels, direction="output")] == 30
    assert metrics[key("llmopt_llm_request_duration_seconds_count", **labels)] == 1
    assert metrics[key("llmopt_llm_request_duration_seconds_sum", **labels)] == pytest.approx(0.75)
    assert metrics[key("llmopt_llm_operations_total", model=model, provider="openai", operation="chat")] == 1
    assert metrics[key("llmopt_exporter_otlp_spans_total", outcome="applied")] == 1


def test_the_exemplar_links_the_latency_to_the_span(exporter: Exporter) -> None:
    post(exporter, [s.span(s.current(), span_id=0x00F067AA0BA902B7)])
    text = exporter.client.get("/metrics", headers={"accept": "application/openmetrics-text"}).text
    linked = [
        line for line in text.splitlines() if line.startswith("llmopt_llm_request_duration_seconds_bucket")
    ]
    assert any(
        'trace_id="0af7651916cd43dd8448eb211c80319c"' in line and 'span_id="00f067aa0ba902b7"' in line
        for line in linked
    ), linked


@MEDIA
def test_a_re_exported_span_is_counted_once(exporter: Exporter, media: str) -> None:
    spans = [s.span(s.current()), s.span(s.current(model="gpt-4o-mini"))]
    post(exporter, spans, media)
    before = exporter.scrape()
    assert not answer(post(exporter, spans, media), media).HasField("partial_success")
    after = exporter.scrape()
    assert domain(after) == domain(before)
    assert after[key("llmopt_exporter_otlp_spans_total", outcome="duplicate")] == 2
    assert after[key("llmopt_exporter_events_duplicate_total", type="llm_request")] == 2


# --- what instrumentations in the field send ------------------------------------------------------
def test_two_spans_of_one_call_in_one_export_count_once(exporter: Exporter) -> None:
    outer = s.span(s.current(), span_id=0x1111, seconds=0.8)  # an instrumentation's span
    inner = s.span(s.current(), span_id=0x2222, parent=0x1111, seconds=0.7)  # the SDK's own
    post(exporter, [inner, outer])
    metrics = exporter.scrape()
    assert calls(metrics, "gpt-4o-2024-08-06") == 1
    assert metrics[key("llmopt_exporter_otlp_spans_ignored_total", reason="nested_call")] == 1


def test_two_spans_of_one_call_in_two_exports_count_once(exporter: Exporter) -> None:
    # The inner span ends first, so a batching exporter may send it alone, the outer one later.
    post(exporter, [s.span(s.current(), span_id=0x3333, parent=0x4444)])
    post(exporter, [s.span(s.current(), span_id=0x4444)])
    metrics = exporter.scrape()
    assert calls(metrics, "gpt-4o-2024-08-06") == 1
    assert metrics[key("llmopt_exporter_otlp_spans_total", outcome="duplicate")] == 1


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        pytest.param(
            {
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.cache_read.input_tokens": 800,
                "gen_ai.usage.cache_creation.input_tokens": 100,
            },
            (1200, 800, 100),
            id="cache-within-input",
        ),
        pytest.param(
            # Anthropic's own count leaves cache reads and writes out of the input tokens.
            {
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.cache_read_input_tokens": 500,
                "gen_ai.usage.cache_creation_input_tokens": 100,
            },
            (610, 500, 100),
            id="cache-apart-from-input",
        ),
        pytest.param(
            {
                "gen_ai.usage.prompt_tokens": 1000,
                "gen_ai.usage.prompt_tokens_details.cached_tokens": 600,
                "gen_ai.usage.cache_write_tokens": 50,
                "gen_ai.usage.total_tokens": 1030,
            },
            (1000, 600, 50),
            id="openai-details-and-total",
        ),
    ],
)
def test_cache_tokens_never_exceed_input_tokens(
    exporter: Exporter, usage: dict[str, int], tokens: tuple[int, int, int]
) -> None:
    attributes = {key_: value for key_, value in s.current().items() if not key_.startswith("gen_ai.usage.")}
    post(exporter, [s.span({**attributes, **usage, "gen_ai.usage.output_tokens": 30})])
    metrics = exporter.scrape()
    labels = {"model": "gpt-4o-2024-08-06", **SERVED}
    found = (
        metrics[key("llmopt_llm_tokens_total", **labels, direction="input")],
        metrics[key("llmopt_llm_cached_tokens_total", **labels)],
        metrics[key("llmopt_llm_cache_write_tokens_total", **labels)],
    )
    assert found == tokens
    assert metrics[key("llmopt_llm_tokens_total", **labels, direction="output")] == 30


@pytest.mark.parametrize(
    ("more", "first_token"),
    [
        pytest.param({"gen_ai.response.time_to_first_chunk": 0.3}, 0.3, id="time-to-first-chunk"),
        pytest.param({"gen_ai.server.time_to_first_token": 0.2}, None, id="server-ttft-not-streamed"),
        pytest.param(
            {"gen_ai.server.time_to_first_token": 0.2, "gen_ai.is_streaming": True},
            0.2,
            id="server-ttft-streamed",
        ),
        pytest.param({"gen_ai.request.stream": True}, None, id="streamed-without-ttft"),
        pytest.param({}, None, id="not-streamed"),
    ],
)
def test_time_to_first_token_only_for_streamed_calls(
    exporter: Exporter, more: dict[str, Any], first_token: float | None
) -> None:
    post(exporter, [s.span(s.current(**more), seconds=1.0)])
    metrics = exporter.scrape()
    labels = {"model": "gpt-4o-2024-08-06", **SERVED}
    count = metrics.get(key("llmopt_llm_time_to_first_token_seconds_count", **labels), 0.0)
    assert calls(metrics, "gpt-4o-2024-08-06") == 1
    if first_token is None:
        assert count == 0
    else:
        assert count == 1
        assert metrics[key("llmopt_llm_time_to_first_token_seconds_sum", **labels)] == pytest.approx(
            first_token
        )


@pytest.mark.parametrize(
    ("attributes", "kwargs", "model", "error_type"),
    [
        pytest.param(
            s.current(**{"error.type": "<class 'openai.RateLimitError'>"}),
            {"failed": True},
            "gpt-4o",
            "rate_limited",
            id="class-as-text",
        ),
        pytest.param(
            s.current(**{"error.type": "rate_limit_error"}),
            {"failed": True},
            "gpt-4o",
            "rate_limited",
            id="api-type",
        ),
        pytest.param(
            s.current(**{"http.response.status_code": 429}),
            {"failed": True},
            "gpt-4o",
            "rate_limited",
            id="http-429",
        ),
        pytest.param(
            {},
            {
                "failed": True,
                "name": "chat claude-sonnet-4",
                "events": [("exception", {"exception.type": "anthropic.RateLimitError"})],
            },
            "claude-sonnet-4",
            "rate_limited",
            id="status-only-with-exception",
        ),
        pytest.param(
            {},
            {"failed": True, "name": "chat claude-sonnet-4"},
            "claude-sonnet-4",
            "unknown",
            id="status-only",
        ),
        pytest.param(
            s.current(**{"error.type": "timeout"}), {"failed": True}, "gpt-4o", "timeout", id="other-error"
        ),
    ],
)
def test_errors_however_reported(
    exporter: Exporter, attributes: dict[str, Any], kwargs: dict[str, Any], model: str, error_type: str
) -> None:
    # A failed call has no response: its model is the one requested (or the span's name says).
    attributes = {k: v for k, v in attributes.items() if not k.startswith("gen_ai.response.")}
    post(exporter, [s.span(attributes, **kwargs)])
    metrics = exporter.scrape()
    provider = "openai" if attributes else "unknown"
    errors = key(
        "llmopt_llm_request_errors_total",
        model=model,
        provider=provider,
        task_type="unknown",
        error_type=error_type,
    )
    assert metrics[errors] == 1


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        pytest.param(("end_turn",), "stop", id="anthropic-raw"),
        pytest.param(("max_tokens",), "length", id="anthropic-length"),
        pytest.param(("STOP",), "stop", id="gemini"),
        pytest.param("length", "length", id="string"),
        pytest.param(("tool_use",), "tool_calls", id="tool-use"),
        pytest.param(("something_new",), "other", id="unknown"),
    ],
)
def test_finish_reasons_raw_or_mapped(exporter: Exporter, sent: Any, reason: str) -> None:
    post(exporter, [s.span(s.current(**{"gen_ai.response.finish_reasons": sent}))])
    reasons = key(
        "llmopt_llm_finish_reasons_total", model="gpt-4o-2024-08-06", **SERVED, finish_reason=reason
    )
    assert exporter.scrape()[reasons] == 1


def test_content_is_ignored_and_a_batch_with_content_fits() -> None:
    prompt = "Summarise this report. " * 200  # 4.6 kB of instructions, prompt and answer per span
    attributes = s.current(
        **{
            "gen_ai.input.messages": prompt,
            "gen_ai.output.messages": prompt,
            "gen_ai.system_instructions": prompt,
        }
    )
    chunks = [("gen_ai.content.chunk", {"gen_ai.chunk": "token"})] * 50
    spans = [s.span(attributes, events=chunks) for _ in range(512)]
    body = s.body(spans)
    limit = Settings().max_traces_body_bytes
    assert 8_000_000 < len(body) < limit, "the SDK's batch of 512 spans with content fits the default limit"
    for exporter in make_exporter():
        assert not answer(post(exporter, spans)).HasField("partial_success")
        assert calls(exporter.scrape(), "gpt-4o-2024-08-06") == 512


def test_spans_that_are_not_llm_calls_are_ignored_and_counted(exporter: Exporter) -> None:
    before = exporter.scrape()
    http = s.span({"http.request.method": "POST", "url.full": "https://example.com"}, name="POST")
    agent = s.span(
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}, name="invoke_agent"
    )
    failed_other = s.span({}, name="SELECT orders", failed=True)
    assert not answer(post(exporter, [http, agent, failed_other])).HasField("partial_success")
    after = exporter.scrape()
    assert domain(after) == domain(before)
    assert after[key("llmopt_exporter_otlp_spans_ignored_total", reason="not_genai")] == 2
    assert after[key("llmopt_exporter_otlp_spans_ignored_total", reason="not_a_model_call")] == 1
    assert after[key("llmopt_exporter_otlp_spans_total", outcome="ignored")] == 3


@MEDIA
def test_a_span_with_unusable_values_is_refused_alone(exporter: Exporter, media: str) -> None:
    good = s.span(s.current())
    too_much_reasoning = s.span(s.current(**{"gen_ai.usage.reasoning_tokens": 50}), span_id=0xAAAA)
    ends_before_it_starts = s.span(s.current(), span_id=0xBBBB, seconds=-1.0)
    response = answer(post(exporter, [good, too_much_reasoning, ends_before_it_starts], media), media)
    assert response.partial_success.rejected_spans == 2
    message = response.partial_success.error_message
    assert "span 000000000000aaaa" in message and "reasoning_tokens" in message
    assert "span 000000000000bbbb" in message and "latency_ms" in message
    metrics = exporter.scrape()
    assert calls(metrics, "gpt-4o-2024-08-06") == 1, "the refused spans change nothing"
    assert (
        metrics[key("llmopt_llm_tokens_total", model="gpt-4o-2024-08-06", **SERVED, direction="output")] == 30
    )
    assert metrics[key("llmopt_exporter_otlp_spans_total", outcome="rejected")] == 2
    assert (
        metrics[key("llmopt_exporter_events_rejected_total", type="llm_request", reason="invalid_event")] == 2
    )


def test_the_optimizer_context_comes_from_the_span_and_its_resource(exporter: Exporter) -> None:
    resource = {"llmopt.experiment_id": "prompt-v5", "llmopt.task_type": "chat", "service.name": "svc"}
    ours = {"llmopt.variant_id": "concise", "llmopt.task_type": "summarization", "llmopt.quality": 88.0}
    post(exporter, [s.span(s.current(**ours), resource=resource)])
    metrics = exporter.scrape()
    assert calls(metrics, "gpt-4o-2024-08-06", task_type="summarization") == 1, "the span's wins"
    variant = {"experiment": "prompt-v5", "variant": "concise"}
    assert metrics[key("llmopt_experiment_variant_requests_total", **variant)] == 1
    quality = key(
        "llmopt_llm_quality_score_sum",
        model="gpt-4o-2024-08-06",
        provider="openai",
        task_type="summarization",
    )
    assert metrics[quality] == 88


def test_evaluation_results_become_quality_scores(exporter: Exporter) -> None:
    evaluations = [
        (
            "gen_ai.evaluation.result",
            {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.8},
        ),
        (
            "gen_ai.evaluation.result",
            {"gen_ai.evaluation.name": "helpfulness", "gen_ai.evaluation.score.value": 0.9},
        ),
        (
            "gen_ai.evaluation.result",
            {"gen_ai.evaluation.name": "groundedness", "gen_ai.evaluation.score.value": 70},
        ),
    ]
    post(exporter, [s.span(s.current(), events=evaluations)])
    metrics = exporter.scrape()
    relevance = key(
        "llmopt_llm_quality_dimension_score_sum",
        model="gpt-4o-2024-08-06",
        provider="openai",
        dimension="relevance",
    )
    assert metrics[relevance] == pytest.approx(80)
    quality = key("llmopt_llm_quality_score_sum", model="gpt-4o-2024-08-06", **SERVED)
    assert metrics[quality] == pytest.approx(80), "the mean of the other evaluations (90 and 70)"


# --- the endpoint ---------------------------------------------------------------------------------
TOKEN = "ingest-token-0123456789"


@pytest.fixture
def guarded() -> Iterator[Exporter]:
    yield from make_exporter(ingest_tokens=[TOKEN], max_batch_events=3, max_traces_body_bytes=4096)


def status_of(response: Any) -> RpcStatus:
    """The google.rpc.Status a refusal carries, read with Google's own message type: protobuf,
    or JSON when the request's Content-Type was neither OTLP encoding."""
    if response.headers["content-type"] == JSON:
        return json_format.Parse(response.content, RpcStatus())
    assert response.headers["content-type"] == PROTOBUF
    return RpcStatus.FromString(response.content)


@pytest.mark.parametrize(
    ("content", "headers", "status", "grpc_code"),
    [
        pytest.param(None, {}, 401, 16, id="no-token"),
        pytest.param(None, {"content-type": "text/plain"}, 415, 3, id="not-otlp"),
        pytest.param(b"\xff\xff\xff garbage", {}, 400, 3, id="not-protobuf"),
        pytest.param(s.body([s.span(s.current())] * 4), {}, 413, 8, id="too-many-spans"),
        pytest.param(b"\x00" * 5000, {}, 413, 8, id="body-too-large"),
    ],
)
def test_refusals_are_otlp_statuses_and_change_nothing(
    guarded: Exporter, content: bytes | None, headers: dict[str, str], status: int, grpc_code: int
) -> None:
    before = guarded.scrape()
    sent = {
        "content-type": PROTOBUF,
        **({} if status == 401 else {"authorization": f"Bearer {TOKEN}"}),
        **headers,
    }
    response = guarded.client.post(
        "/v1/traces", content=content or s.body([s.span(s.current())]), headers=sent
    )
    assert response.status_code == status
    refusal = status_of(response)
    assert refusal.code == grpc_code and refusal.message
    assert domain(guarded.scrape()) == domain(before)


def test_gzip_bodies_are_read(guarded: Exporter) -> None:
    compressed = gzip.compress(s.body([s.span(s.current())]))
    headers = {"content-type": PROTOBUF, "content-encoding": "gzip", "authorization": f"Bearer {TOKEN}"}
    assert guarded.client.post("/v1/traces", content=compressed, headers=headers).status_code == 200
    assert calls(guarded.scrape(), "gpt-4o-2024-08-06") == 1


def test_a_json_refusal_is_a_json_status(exporter: Exporter) -> None:
    response = exporter.client.post("/v1/traces", content=b"{", headers={"content-type": JSON})
    assert response.status_code == 400
    assert response.headers["content-type"] == JSON
    assert response.json()["code"] == 3 and "ExportTraceServiceRequest" in response.json()["message"]


def test_only_post(exporter: Exporter) -> None:
    response = exporter.client.get("/v1/traces")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


# --- hostile bodies: the work a request costs follows its spans, not its bytes ---------------------
def test_attributes_and_events_past_the_sdk_limits_are_not_read(exporter: Exporter) -> None:
    filler = {f"app.filler.{index}": "x" for index in range(otlp.MAX_ATTRIBUTES)}
    late_genai = s.span({**filler, **s.current()})  # its GenAI attributes come after the first 128
    early_genai = s.span({**s.current(), **{f"app.more.{index}": index for index in range(20_000)}})
    evaluation = (
        "gen_ai.evaluation.result",
        {"gen_ai.evaluation.name": "x", "gen_ai.evaluation.score.value": 0.5},
    )
    late_evaluation = s.span(
        s.current(model="gpt-4o-mini"), events=[("tick", {})] * otlp.MAX_EVENTS + [evaluation]
    )
    assert not answer(post(exporter, [late_genai, early_genai, late_evaluation])).HasField("partial_success")
    metrics = exporter.scrape()
    assert metrics[key("llmopt_exporter_otlp_spans_ignored_total", reason="not_genai")] == 1
    assert calls(metrics, "gpt-4o-2024-08-06") == 1
    assert calls(metrics, "gpt-4o-mini-2024-08-06") == 1
    quality = key("llmopt_llm_quality_score_count", model="gpt-4o-mini-2024-08-06", **SERVED)
    assert metrics.get(quality, 0) == 0, "the evaluation past the 128th event is not read"


@pytest.mark.parametrize("level", ["resources", "scopes"])
def test_millions_of_empty_resources_or_scopes_are_refused_unwalked(exporter: Exporter, level: str) -> None:
    request = ExportTraceServiceRequest()
    if level == "resources":
        for _ in range(Settings().max_batch_events + 1):
            request.resource_spans.add()
    else:
        resource = request.resource_spans.add()
        for _ in range(Settings().max_batch_events + 1):
            resource.scope_spans.add()
    before = exporter.scrape()
    response = exporter.client.post(
        "/v1/traces", content=request.SerializeToString(), headers={"content-type": PROTOBUF}
    )
    assert response.status_code == 413
    assert status_of(response).code == 8 and "max_batch_events" in status_of(response).message
    assert domain(exporter.scrape()) == domain(before)
