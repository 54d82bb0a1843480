"""A toy LLM auto-optimizer reporting to a running llmopt-exporter through the Python client.

An epsilon-greedy bandit picks a temperature for each request, an A/B experiment compares two
prompts, a fake LLM answers (sometimes it fails), and every step is reported: the LLM call with its
tokens, cost and quality, the bandit's pulls and rewards, parameter updates, the budget. Each
request is traced (the seed's process_request, ab_test_selection, bandit_selection, llm_call and
quality_evaluation spans), failures are logged as JSON lines and counted by the exporter, and with
--prometheus the loop asks the halt guard before it starts the experiment or changes a parameter.

    make run                                     # in one terminal
    .venv/bin/python examples/optimizer_loop.py  # in another, then look at /metrics
    .venv/bin/python examples/optimizer_loop.py --prometheus http://127.0.0.1:9090
"""

from __future__ import annotations

import argparse
import logging
import random
import time

from llmopt_client import (
    BanditPull,
    BanditReward,
    BudgetLimit,
    Client,
    ExperimentCompleted,
    ExperimentProgress,
    ExperimentStarted,
    Feedback,
    HaltGuard,
    OptimizerTracer,
    ParameterUpdate,
    StructuredLogger,
    get_logger,
)

ARMS = {"t0.2": 0.2, "t0.7": 0.7, "t1.0": 1.0}
VARIANTS = ("control", "concise")
EXPERIMENT = "prompt-style-v1"
MODEL = "toy-model"


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
) -> None:
    tracer = OptimizerTracer("toy-optimizer")
    client.emit(BudgetLimit(period="day", limit_usd=50))
    # With too little error budget left, serve the control prompt and start nothing new.
    is_experimenting = not is_halted(guard, logger, "starting the experiment")
    if is_experimenting:
        client.emit(ExperimentStarted(experiment_id=EXPERIMENT, variants=VARIANTS))
    rewards = {arm: Mean() for arm in ARMS}
    qualities = {variant: Mean() for variant in VARIANTS}
    chosen: str | None = None
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
                continue
            with tracer.quality_evaluation(quality_score=quality):
                rewards[arm].add(quality / 100)
                qualities[variant].add(quality)
        client.emit(BanditReward(bandit_id="temperature", arm_id=arm, reward=quality / 100))
        if rng.random() < 0.2:
            client.emit(Feedback(model=MODEL, **experiment, thumbs="up" if quality >= 80 else "down"))
        if step % 50 == 0:
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
        time.sleep(pause)
    if not is_experimenting:
        return
    control, challenger = (qualities[variant].value for variant in VARIANTS)
    is_won = challenger > control > 0
    client.emit(
        ExperimentCompleted(
            experiment_id=EXPERIMENT,
            winner=VARIANTS[1] if is_won else None,
            improvement=challenger / control - 1 if is_won else None,
            sample_size=iterations,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter's base URL")
    parser.add_argument("--iterations", type=int, default=500, help="requests to simulate")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between requests")
    parser.add_argument("--seed", type=int, default=None, help="seed of the simulation")
    parser.add_argument(
        "--prometheus",
        default=None,
        help="Prometheus with the llmopt rules: halt when the error budget is low",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    with Client(args.url, flush_interval=1.0) as client:
        logger = get_logger("toy-optimizer", "demo", client=client, component="optimizer")
        guard = HaltGuard(args.prometheus, cache_seconds=5) if args.prometheus else None
        run(client, args.iterations, args.pause, random.Random(args.seed), logger, guard)
    print(client.stats)


if __name__ == "__main__":
    main()
