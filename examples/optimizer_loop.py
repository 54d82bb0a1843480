"""A toy LLM auto-optimizer reporting to a running llmopt-exporter through the Python client.

An epsilon-greedy bandit picks a temperature for each request, an A/B experiment compares two
prompts, a fake LLM answers (sometimes it fails), and every step is reported: the LLM call with its
tokens, cost and quality, the bandit's pulls and rewards, parameter updates, the budget. Each
request is traced (the process_request, ab_test_selection, bandit_selection, llm_call and
quality_evaluation spans of the client's OptimizerTracer), failures are logged as JSON lines and
counted by the exporter, and with --prometheus the loop asks the halt guard before it starts the
experiment or changes a parameter. Every 50 requests (a round) it prints one status line.

    make run                                     # in one terminal
    .venv/bin/python examples/optimizer_loop.py  # in another, then look at /metrics
    .venv/bin/python examples/optimizer_loop.py --prometheus http://127.0.0.1:9090
    .venv/bin/python examples/optimizer_loop.py --otlp http://127.0.0.1:4318   # spans to Tempo

--otlp sends the spans to an OTLP/HTTP endpoint (Tempo in docker-compose.yml) through the
OpenTelemetry SDK (pip install opentelemetry-sdk; make venv has it), so the trace ids of the
exporter's exemplars open these traces.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmopt_client import (
    BanditPull,
    BanditReward,
    BudgetLimit,
    Client,
    ExperimentCompleted,
    ExperimentProgress,
    ExperimentRolledBack,
    ExperimentStarted,
    Feedback,
    HaltGuard,
    OptimizerTracer,
    ParameterUpdate,
    PrometheusUnavailable,
    StructuredLogger,
    experiment_decision,
    get_logger,
)

from tools import otlp

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

ARMS = {"t0.2": 0.2, "t0.7": 0.7, "t1.0": 1.0}
VARIANTS = ("control", "concise")
EXPERIMENT = "prompt-style-v1"
MODEL = "toy-model"
SERVICE = "toy-optimizer"
ROUND = 50  # requests per round: the parameter update, the experiment's progress, a status line


class ProviderTimeout(Exception):
    """What the fake provider raises now and then."""


def fake_llm(temperature: float, variant: str, rng: random.Random) -> tuple[int, int, float]:
    """Answer a prompt: (input tokens, output tokens, quality 0-100). Takes a few milliseconds."""
    time.sleep(rng.uniform(0.001, 0.004))
    if rng.random() < 0.03:
        raise ProviderTimeout("the provider did not answer in time")
    output_tokens = rng.randint(40, 200) if variant == "control" else rng.randint(20, 90)
    quality = min(100.0, max(0.0, rng.gauss(88 - 20 * abs(temperature - 0.7), 4)))
    return rng.randint(200, 600), output_tokens, round(quality, 1)


class Mean:
    """A running mean."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclass
class Round:
    """What one status line reports."""

    number: int
    rounds: int
    requests: int
    failed: int
    best_arm: str
    best_reward: float
    qualities: dict[str, float]  # mean quality by variant


def status_line(round_: Round, client: Client) -> str:
    """Requests and failures so far, the bandit's best arm, the variants' quality, event delivery."""
    stats = client.stats
    variants = ", ".join(f"{variant} {quality:.1f}" for variant, quality in round_.qualities.items())
    return (
        f"round {round_.number}/{round_.rounds}: {round_.requests} requests, {round_.failed} failed; "
        f"best arm {round_.best_arm} (reward {round_.best_reward:.2f}); quality {variants or 'n/a'}; "
        f"events sent {stats.sent}, pending {stats.pending}, failed {stats.failed}, dropped {stats.dropped}"
    )


def is_halted(guard: HaltGuard | None, logger: StructuredLogger, action: str) -> bool:
    """Whether the error budget forbids ``action`` now (never without a guard)."""
    if guard is None:
        return False
    decision = guard.check()
    if decision.should_halt:
        logger.warn(f"Not {action}: optimization is halted", reason=decision.reason, source=decision.source)
    return decision.should_halt


def run(
    client: Client,
    iterations: int,
    pause: float,
    rng: random.Random,
    logger: StructuredLogger,
    guard: HaltGuard | None = None,
    tracer_provider: TracerProvider | None = None,
    prometheus_url: str | None = None,
) -> None:
    tracer = OptimizerTracer(SERVICE, tracer_provider=tracer_provider)
    client.emit(BudgetLimit(period="day", limit_usd=50))
    # With too little error budget left, serve the control prompt and start nothing new.
    is_experimenting = not is_halted(guard, logger, "starting the experiment")
    if is_experimenting:
        # Variants take turns: the planned split is even, and the first variant is control.
        client.emit(
            ExperimentStarted(
                experiment_id=EXPERIMENT,
                variants=VARIANTS,
                traffic_split={variant: 1 / len(VARIANTS) for variant in VARIANTS},
                control_variant=VARIANTS[0],
            )
        )
    rewards = {arm: Mean() for arm in ARMS}
    qualities = {variant: Mean() for variant in VARIANTS}
    chosen: str | None = None
    failed = 0
    for step in range(1, iterations + 1):
        with tracer.process_request(user_id=f"user-{rng.randint(1, 20)}", task_type="summarization"):
            with tracer.ab_test_selection() as span:
                variant = VARIANTS[step % 2] if is_experimenting else VARIANTS[0]
                span.set_tag("variant_id", variant)
                span.set_tag("experiment_id", EXPERIMENT if is_experimenting else None)
            with tracer.bandit_selection() as span:
                # Epsilon-greedy: explore 10 % of the time (and until every arm was tried), else exploit.
                explored = rng.random() < 0.1 or step <= len(ARMS)
                arm = rng.choice(list(ARMS)) if explored else max(rewards, key=lambda a: rewards[a].value)
                span.set_tag("arm_id", arm)
                span.set_tag("temperature", ARMS[arm])
            client.emit(
                BanditPull(
                    bandit_id="temperature",
                    arm_id=arm,
                    explored=explored,
                    parameter="temperature",
                    parameter_value=ARMS[arm],
                )
            )
            experiment = {"experiment_id": EXPERIMENT, "variant_id": variant} if is_experimenting else {}
            quality: float | None = None
            try:
                with (
                    tracer.llm_call(model_id=MODEL, temperature=ARMS[arm]) as span,
                    client.llm_call(
                        MODEL,
                        provider="toy",
                        task_type="summarization",
                        bandit_id="temperature",
                        arm_id=arm,
                        **experiment,
                    ) as call,
                ):
                    input_tokens, output_tokens, quality = fake_llm(ARMS[arm], variant, rng)
                    cost = (input_tokens * 0.15 + output_tokens * 0.6) / 1_000_000
                    call.record(
                        input_tokens=input_tokens,
                        output_tokens=output_tokens,
                        cost_usd=cost,
                        baseline_cost_usd=cost * 4,
                        quality=quality,
                    )
                    span.set_tag("tokens_input", input_tokens)
                    span.set_tag("tokens_output", output_tokens)
                    span.set_tag("cost", cost)
            except ProviderTimeout as err:
                # llm_call reported it as a failed call; the log entry is counted by the exporter too.
                # A real optimizer would retry or fall back.
                logger.error("LLM call failed", err, arm=arm, **experiment)
                failed += 1
            if quality is not None:
                with tracer.quality_evaluation(quality_score=quality):
                    rewards[arm].add(quality / 100)
                    qualities[variant].add(quality)
        if quality is not None:
            client.emit(BanditReward(bandit_id="temperature", arm_id=arm, reward=quality / 100))
            if rng.random() < 0.2:
                client.emit(Feedback(model=MODEL, **experiment, thumbs="up" if quality >= 80 else "down"))
        if step % ROUND == 0 or step == iterations:
            best = max(rewards, key=lambda a: rewards[a].value)
            if best != chosen and not is_halted(guard, logger, "changing the temperature"):
                client.emit(
                    ParameterUpdate(parameter="temperature", value=ARMS[best], improved=chosen is not None)
                )
                chosen = best
            if is_experimenting:
                leader = max(qualities, key=lambda v: qualities[v].value)
                client.emit(
                    ExperimentProgress(
                        experiment_id=EXPERIMENT, leader=leader, progress=step / iterations, sample_size=step
                    )
                )
            measured = {v: q.value for v, q in qualities.items() if q.count}
            rounds = -(-iterations // ROUND)
            round_ = Round(-(-step // ROUND), rounds, step, failed, best, rewards[best].value, measured)
            print(status_line(round_, client), flush=True)
        time.sleep(pause)
    if not is_experimenting:
        return
    control, challenger = (qualities[variant].value for variant in VARIANTS)
    is_won = challenger > control > 0
    if prometheus_url is not None:
        # Ask the rules before declaring a winner: their intervals stay valid however often anyone
        # looks, and they watch the guardrails and the split.
        try:
            verdict = experiment_decision(EXPERIMENT, prometheus_url)
        except PrometheusUnavailable as err:
            logger.warn("No verdict on the experiment: keeping control", error=str(err))
            is_won = False
        else:
            if verdict.should_stop:
                logger.warn("Rolling the experiment back", reason=verdict.reason)
                client.emit(ExperimentRolledBack(experiment_id=EXPERIMENT, reason=verdict.reason))
                return
            is_won = is_won and verdict.decided.get(VARIANTS[1], False)
            print(f"experiment {EXPERIMENT}: {verdict.reason}", flush=True)
    client.emit(
        ExperimentCompleted(
            experiment_id=EXPERIMENT,
            winner=VARIANTS[1] if is_won else None,
            improvement=challenger / control - 1 if is_won else None,
            sample_size=iterations,
        )
    )


def otlp_tracer_provider(url: str) -> TracerProvider:
    """An OpenTelemetry SDK tracer provider that sends the spans to the OTLP/HTTP endpoint ``url``
    (as JSON, with tools/otlp.py: no exporter package needed)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import StatusCode

    def convert(span: ReadableSpan) -> otlp.Span:
        context, parent = span.get_span_context(), span.parent
        assert context is not None, "a span the SDK finished has its ids"
        return otlp.Span(
            trace_id=f"{context.trace_id:032x}",
            span_id=f"{context.span_id:016x}",
            parent_span_id=f"{parent.span_id:016x}" if parent is not None else None,
            name=span.name,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            kind=span.kind.value + 1,  # OpenTelemetry's enum starts at INTERNAL = 0, OTLP's at 1
            is_error=span.status.status_code is StatusCode.ERROR,
            attributes={
                key: value
                for key, value in (span.attributes or {}).items()
                if isinstance(value, str | bool | int | float)
            },
        )

    class OtlpJsonExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            try:
                otlp.post(url, SERVICE, [convert(span) for span in spans])
            except OSError as err:
                logging.getLogger(SERVICE).warning("spans not sent to %s: %s", url, err)
                return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(BatchSpanProcessor(OtlpJsonExporter()))
    return provider


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter's base URL")
    parser.add_argument("--token", default=None, help="the exporter's ingest token, if it asks for one")
    parser.add_argument("--iterations", type=int, default=500, help="requests to simulate")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between requests")
    parser.add_argument("--seed", type=int, default=None, help="seed of the simulation")
    parser.add_argument(
        "--prometheus",
        default=None,
        help="Prometheus with the llmopt rules: halt when the error budget is low, and declare a "
        "winner only when the rules' decide signal supports it",
    )
    parser.add_argument(
        "--otlp",
        metavar="URL",
        default=None,
        help="send the spans to this OTLP/HTTP endpoint, e.g. Tempo's http://127.0.0.1:4318",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    provider = None
    if args.otlp:
        try:
            provider = otlp_tracer_provider(args.otlp)
        except ImportError as err:
            print(
                f"--otlp needs the OpenTelemetry SDK (pip install opentelemetry-sdk): {err}", file=sys.stderr
            )
            return 2

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    with Client(args.url, flush_interval=1.0, headers=headers) as client:
        logger = get_logger(SERVICE, "demo", client=client, component="optimizer")
        guard = HaltGuard(args.prometheus, cache_seconds=5) if args.prometheus else None
        run(
            client,
            args.iterations,
            args.pause,
            random.Random(args.seed),
            logger,
            guard,
            provider,
            args.prometheus,
        )
    if provider is not None:
        provider.shutdown()  # sends the spans still waiting
    stats = client.stats
    print(
        f"done: {args.iterations} requests; events sent {stats.sent}, failed {stats.failed}, "
        f"dropped {stats.dropped}, retried {stats.retried}. Look at {args.url.rstrip('/')}/metrics "
        "(llmopt_llm_requests_total, llmopt_bandit_pulls_total) or the Optimization dashboard."
    )
    return 0 if stats.failed == 0 and stats.dropped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
