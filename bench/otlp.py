"""OTLP ingest: GenAI spans as an instrumented service sends them, and their in-process floor.

    python -m bench.otlp --spans 20480 --repeats 3    # the floor, as one JSON line

The spans have the shape OpenTelemetry's openai-v2 instrumentation gives a chat call (operation,
provider, request and response model, response id, finish reasons, input and output tokens,
server address), 4 % of them failed with an error type, on a resource with a service name and
the optimizer's task type; bodies are the SDK's batch of 512 spans, encoded by the SDK's own OTLP
encoder (protobuf). For wrk, a body's trace ids start with ``@ID@``: bench/post.lua gives every
request four bytes of its own there, so each span is new to the exporter.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from app import otlp
from bench import workload
from bench.floor import build

SPANS_PER_BODY = 512  # the default batch of the SDK's BatchSpanProcessor
PLACEHOLDER = b"@ID@"
_SCOPE = InstrumentationScope("opentelemetry.instrumentation.openai_v2", "2.4b0")
_RESOURCES = [
    Resource.create({"service.name": f"svc-{task}", "llmopt.task_type": task}) for task in workload.TASK_TYPES
]


def spans(count: int, seed: int, placeholder: bool = False) -> list[ReadableSpan]:
    """``count`` finished chat spans, ending a minute ago."""
    rng = random.Random(seed)
    end = time.time() - 60
    made = []
    for index in range(count):
        model, provider = rng.choice(workload.MODELS)
        trace = rng.getrandbits(128)
        if placeholder:
            trace = int.from_bytes(PLACEHOLDER + trace.to_bytes(16, "big")[4:], "big")
        failed = rng.random() < 0.04
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "server.address": "api.example.com",
        }
        if failed:
            attributes["error.type"] = rng.choice(
                ("RateLimitError", "APITimeoutError", "InternalServerError")
            )
        else:
            attributes |= {
                "gen_ai.response.model": model,
                "gen_ai.response.id": f"chatcmpl-{seed}-{index}",
                "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.usage.input_tokens": rng.randint(200, 4000),
                "gen_ai.usage.output_tokens": rng.randint(20, 800),
            }
        seconds = rng.lognormvariate(-0.4, 0.8)
        made.append(
            ReadableSpan(
                f"chat {model}",
                context=SpanContext(trace, rng.getrandbits(64) or 1, is_remote=False),
                resource=rng.choice(_RESOURCES),
                attributes=attributes,
                kind=SpanKind.CLIENT,
                status=Status(StatusCode.ERROR) if failed else Status(StatusCode.UNSET),
                start_time=round((end - seconds) * 1e9),
                end_time=round(end * 1e9),
                instrumentation_scope=_SCOPE,
            )
        )
    return made


def body(made: list[ReadableSpan]) -> bytes:
    encoded: bytes = encode_spans(made).SerializeToString()
    return encoded


def wrk_body(seed: int) -> bytes:
    """One body of SPANS_PER_BODY spans whose trace ids start with the placeholder, once each."""
    encoded = body(spans(SPANS_PER_BODY, seed, placeholder=True))
    if encoded.count(PLACEHOLDER) != SPANS_PER_BODY:
        raise ValueError("the placeholder appears elsewhere in the body: choose another seed")
    return encoded


def floor(total: int, repeats: int) -> dict[str, float]:
    """Median µs per span of ``otlp.receive`` (parse, map, check, dedup, record) over ``repeats``
    rounds of ``total`` fresh spans in bodies of SPANS_PER_BODY."""
    rounds = []
    for seed in range(repeats):
        bodies = [
            body(spans(SPANS_PER_BODY, seed * 1000 + index)) for index in range(total // SPANS_PER_BODY)
        ]
        # The JSON floor's exporter: default label cap, the duplicate window full.
        store, _, ingestor = build("exporter")
        otlp.receive(body(spans(SPANS_PER_BODY, 10_000 + seed)), otlp.PROTOBUF, ingestor, store, 5000)  # warm
        gc.collect()
        started = time.perf_counter()
        for one in bodies:
            received = otlp.receive(one, otlp.PROTOBUF, ingestor, store, 5000)
            assert received.applied == SPANS_PER_BODY, received
        rounds.append((time.perf_counter() - started) / (len(bodies) * SPANS_PER_BODY))
    us_per_span = statistics.median(rounds) * 1e6
    return {"us_per_span": us_per_span, "spans_per_s": 1e6 / us_per_span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20 * SPANS_PER_BODY, help="spans per round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported")
    args = parser.parse_args()
    print(json.dumps(floor(args.spans, args.repeats)))


if __name__ == "__main__":
    main()
