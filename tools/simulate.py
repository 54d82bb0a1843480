"""Realistic optimizer traffic for demos, dashboards, tests and benchmarks.

``llmopt-exporter simulate --url URL --duration 60 --rate 50`` posts, over the given time, what an
LLM auto-optimizer reports: LLM calls on three models with costs falling as traffic moves to the
cheaper model, errors of several types, an A/B test in which a winner emerges and completes, a
second one still running, a bandit over temperatures converging on 0.7, user feedback, model
health checks with one model flapping, parameter updates, spend and budgets, business results and
a deployment. The same seed gives the same events.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from tools import otlp

Event = dict[str, Any]
ENV_PREFIX = "LLMOPT_"

MODELS = (
    # model, provider, $ per 1k input tokens, $ per 1k output tokens, median latency in seconds
    ("gpt-4o", "openai", 0.0025, 0.01, 1.4),
    ("gpt-4o-mini", "openai", 0.00015, 0.0006, 0.7),
    ("claude-3-5-haiku", "anthropic", 0.0008, 0.004, 0.9),
)
BASELINE = MODELS[0]
ERROR_TYPES = ("RateLimitError", "TimeoutError", "ModelError", "BudgetExceededError")
# Failures the simulated optimizer tries again: rate limits on the same model, model errors on another.
RETRIED_ERRORS = ("RateLimitError", "ModelError")
TASKS = ("summarization", "classification", "extraction")
ARMS = (("t0.3", 0.3, 0.62), ("t0.7", 0.7, 0.81), ("t1.0", 1.0, 0.55))  # arm, temperature, mean reward
WINNING_EXPERIMENT = "prompt-optimization-v5"
RUNNING_EXPERIMENT = "system-prompt-v2"


@dataclass
class Simulation:
    """A deterministic story told over ``duration`` seconds at about ``rate`` events per second."""

    duration: float
    rate: float
    seed: int = 7
    random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        # Calls are assigned to the running experiment from a stream of their own, so the rest of
        # the story is the same with or without it.
        self.assignment = random.Random(f"{self.seed}-assignment")
        # Likewise for how calls stream and finish.
        self.streaming = random.Random(f"{self.seed}-streaming")
        self.retrying = random.Random(f"{self.seed}-retrying")

    def _id(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def _trace(self) -> tuple[str, str]:
        return f"{self.random.getrandbits(128):032x}", f"{self.random.getrandbits(64):016x}"

    def opening(self) -> list[Event]:
        """What happens once, at the start."""
        return [
            {"type": "deployment", "action": "deployed", "component": "optimizer", "version": "2.14.0"},
            {"type": "budget", "action": "limit", "period": "day", "limit_usd": 1000},
            {"type": "budget", "action": "limit", "period": "month", "limit_usd": 25000},
            {
                "type": "experiment",
                "action": "started",
                "experiment_id": WINNING_EXPERIMENT,
                "variants": ["control", "variant-b"],
            },
            {
                "type": "experiment",
                "action": "started",
                "experiment_id": RUNNING_EXPERIMENT,
                "variants": ["control", "concise"],
                # Planned, so the rules check it: the split and the variant compared with.
                "traffic_split": {"control": 0.5, "concise": 0.5},
                "control_variant": "control",
            },
            {"type": "business", "baseline_quality": 78},
        ]

    def step(self, progress: float, seconds: float) -> list[Event]:
        """Events for one tick of ``seconds``; ``progress`` runs from 0 to 1 over the simulation.

        Most events are LLM calls; a few per tick are bandit steps, feedback and slower signals.
        """
        events = [self._llm_request(progress) for _ in range(max(1, round(self.rate * seconds * 0.9)))]
        events += self._retries(events)
        events += self._bandit(progress)
        if self.random.random() < 0.5:
            events.append(self._feedback())
        events += self._periodic(progress)
        return events

    def _model(self, progress: float) -> tuple[str, str, float, float, float]:
        # Traffic moves from the expensive baseline to the cheap model as the optimizer learns.
        weights = (max(0.05, 0.6 - 0.55 * progress), 0.2 + 0.6 * progress, 0.2)
        return self.random.choices(MODELS, weights)[0]

    def _llm_request(self, progress: float) -> Event:
        model, provider, price_in, price_out, median = self._model(progress)
        input_tokens = int(self.random.lognormvariate(math.log(900), 0.5))
        output_tokens = int(self.random.lognormvariate(math.log(250), 0.6))
        cached = int(input_tokens * self.random.uniform(0.0, 0.6))
        latency = self.random.lognormvariate(math.log(median), 0.45)
        if self.random.random() < 0.01:
            latency *= 6  # the occasional very slow call
        trace_id, span_id = self._trace()
        event: Event = {
            "type": "llm_request",
            "event_id": self._id(),
            "trace_id": trace_id,
            "span_id": span_id,
            "model": model,
            "provider": provider,
            "task_type": self.random.choice(TASKS),
            "latency_ms": round(latency * 1000, 1),
        }
        if self.random.random() < 0.03:
            event.update(status="error", error_type=self.random.choice(ERROR_TYPES), finish_reason="error")
            return event
        cost = input_tokens / 1000 * price_in + output_tokens / 1000 * price_out
        baseline = input_tokens / 1000 * BASELINE[2] + output_tokens / 1000 * BASELINE[3]
        quality = min(100.0, max(0.0, self.random.gauss(84 if model != "gpt-4o-mini" else 81, 6)))
        experiment, variant = WINNING_EXPERIMENT, "variant-b" if self.random.random() < 0.5 else "control"
        # A third of the calls serve the running experiment, whose concise variant is a little better.
        if self.assignment.random() < 1 / 3:
            experiment, variant = RUNNING_EXPERIMENT, self.assignment.choice(("control", "concise"))
            quality = min(100.0, quality + (2.0 if variant == "concise" else 0.0))
        arm, temperature, _ = self.random.choice(ARMS)
        event.update(self._stream_and_finish(latency, input_tokens - cached, output_tokens, model))
        event.update(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached,
            cost_usd=round(cost, 6),
            baseline_cost_usd=round(baseline, 6),
            quality=round(quality, 1),
            accuracy=round(min(100.0, quality + self.random.uniform(-5, 5)), 1),
            relevance=round(min(100.0, quality + self.random.uniform(-5, 5)), 1),
            coherence=round(min(100.0, quality + self.random.uniform(-3, 3)), 1),
            completeness=round(min(100.0, quality + self.random.uniform(-8, 4)), 1),
            experiment_id=experiment,
            variant_id=variant,
            bandit_id="temperature",
            arm_id=arm,
            parameter="temperature",
            parameter_value=temperature,
        )
        return event

    def _retries(self, calls: list[Event]) -> list[Event]:
        """Most rate-limited calls are tried again on the same model, most calls the model failed
        on another model (a fallback), and the later try succeeds; time-outs and budget errors are
        not tried again. Drawn from their own stream, so the calls themselves stay as they were."""
        rng = self.retrying
        later: list[Event] = []
        for failed in calls:
            if failed.get("error_type") not in RETRIED_ERRORS or rng.random() < 0.3:
                continue
            models = [spec for spec in MODELS if spec[0] != failed["model"]]
            model, provider, price_in, price_out, median = (
                next(spec for spec in MODELS if spec[0] == failed["model"])
                if failed["error_type"] == "RateLimitError"
                else rng.choice(models)
            )
            input_tokens = int(rng.lognormvariate(math.log(900), 0.5))
            output_tokens = int(rng.lognormvariate(math.log(250), 0.6))
            retry: Event = {
                **{name: failed[name] for name in ("type", "trace_id", "task_type")},
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "span_id": f"{rng.getrandbits(64):016x}",
                "model": model,
                "provider": provider,
                "attempt": 2,
                "latency_ms": round(rng.lognormvariate(math.log(median), 0.45) * 1000, 1),
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost_usd": round(input_tokens / 1000 * price_in + output_tokens / 1000 * price_out, 6),
                "finish_reason": "stop",
                "quality": round(min(100.0, max(0.0, rng.gauss(82, 6))), 1),
            }
            if model != failed["model"]:
                retry["fallback_from"] = failed["model"]
            later.append(retry)
        return later

    def _stream_and_finish(self, latency: float, uncached: int, output_tokens: int, model: str) -> Event:
        """Most calls stream (the first token after a fifth to two fifths of the call); most stop on
        their own, a few at the token limit or on a tool call; some prompts are written to the
        provider's cache, and gpt-4o reasons."""
        rng = self.streaming
        fields: Event = {"finish_reason": rng.choices(("stop", "length", "tool_calls"), (0.9, 0.03, 0.07))[0]}
        if rng.random() < 0.7:
            fields.update(
                stream=True, time_to_first_token_ms=round(latency * rng.uniform(0.2, 0.4) * 1000, 1)
            )
        if rng.random() < 0.3:
            fields["cache_write_tokens"] = int(uncached * rng.uniform(0.5, 1.0))
        if model == "gpt-4o":
            fields["reasoning_tokens"] = int(output_tokens * rng.uniform(0.1, 0.5))
        return fields

    def _bandit(self, progress: float) -> list[Event]:
        exploring = self.random.random() < max(0.05, 0.5 * (1 - progress))
        arm, temperature, mean = self.random.choice(ARMS) if exploring else ARMS[1]
        reward = min(1.0, max(0.0, self.random.gauss(mean, 0.1)))
        return [
            {
                "type": "bandit",
                "action": "pull",
                "bandit_id": "temperature",
                "arm_id": arm,
                "explored": exploring,
                "parameter": "temperature",
                "parameter_value": temperature,
            },
            {
                "type": "bandit",
                "action": "reward",
                "bandit_id": "temperature",
                "arm_id": arm,
                "reward": round(reward, 4),
                "regret": round(max(0.0, ARMS[1][2] - mean), 4),
            },
        ]

    def _feedback(self) -> Event:
        model = self.random.choice(MODELS)[0]
        event: Event = {
            "type": "feedback",
            "model": model,
            "experiment_id": WINNING_EXPERIMENT,
            "variant_id": self.random.choice(("control", "variant-b")),
        }
        roll = self.random.random()
        if roll < 0.6:
            event["thumbs"] = "up" if self.random.random() < 0.8 else "down"
        elif roll < 0.8:
            event["nps"] = self.random.choices(range(11), [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 9])[0]
        else:
            event["csat"] = self.random.choices(range(1, 6), [1, 1, 3, 8, 9])[0]
        return event

    def _periodic(self, progress: float) -> list[Event]:
        """Slower signals, at a few points of the story."""
        events: list[Event] = []
        if self.random.random() < 0.2:
            flapping = self.random.random() < 0.3
            for model, provider, *_ in MODELS:
                down = flapping and model == "claude-3-5-haiku"
                events.append(
                    {
                        "type": "model_health",
                        "model": model,
                        "provider": provider,
                        "available": not down,
                        "latency_ms": round(self.random.uniform(150, 600)),
                        "error_rate": 0.2 if down else round(self.random.uniform(0, 0.02), 4),
                    }
                )
        if self.random.random() < 0.15:
            confidence = min(0.99, 0.5 + 0.5 * progress)
            events.append(
                {
                    "type": "experiment",
                    "action": "progress",
                    "experiment_id": WINNING_EXPERIMENT,
                    "leader": "variant-b",
                    "lead": round(0.04 + 0.05 * progress, 4),
                    "confidence": round(confidence, 3),
                    "progress": round(min(1.0, progress), 3),
                    "sample_size": int(10000 * progress),
                }
            )
            events.append(
                {
                    "type": "experiment",
                    "action": "progress",
                    "experiment_id": RUNNING_EXPERIMENT,
                    "leader": "concise",
                    "lead": 0.012,
                    "confidence": 0.61,
                    "progress": round(progress / 2, 3),
                    "sample_size": int(5000 * progress),
                }
            )
        if self.random.random() < 0.1:
            gain = round(self.random.uniform(-0.01, 0.04), 4)
            events.append(
                {
                    "type": "parameter_update",
                    "parameter": "temperature",
                    "value": 0.7,
                    "stability_score": round(min(1.0, 0.6 + 0.4 * progress), 3),
                    "performance_gain": gain,
                    "improved": gain > 0,
                }
            )
        if self.random.random() < 0.1:
            events += [
                {
                    "type": "budget",
                    "action": "spend",
                    "category": "compute",
                    "amount_usd": round(self.random.uniform(0.5, 2), 2),
                },
                {
                    "type": "budget",
                    "action": "spend",
                    "category": "infrastructure",
                    "amount_usd": round(self.random.uniform(0.2, 1), 2),
                },
                {
                    "type": "business",
                    "optimization_cost_usd": round(self.random.uniform(0.1, 0.5), 3),
                    "value_derived_usd": round(self.random.uniform(1, 4), 3),
                    "cost_savings_confidence": 0.9,
                    "quality_improvement_confidence": 0.8,
                },
            ]
        if self.random.random() < 0.02:
            events.append(
                {
                    "type": "budget",
                    "action": "model_switch",
                    "from_model": "gpt-4o",
                    "to_model": "gpt-4o-mini",
                    "reason": "cost",
                }
            )
        return events

    def closing(self) -> list[Event]:
        return [
            {
                "type": "experiment",
                "action": "completed",
                "experiment_id": WINNING_EXPERIMENT,
                "winner": "variant-b",
                "improvement": 0.082,
                "sample_size": 10000,
            },
            {
                "type": "bandit",
                "action": "converged",
                "bandit_id": "temperature",
                "arm_id": "t0.7",
                "convergence_seconds": round(self.duration),
            },
        ]


def ticks(duration: float, tick_seconds: float) -> Iterator[float]:
    """Progress values 0..1, one per tick."""
    steps = max(1, int(duration / tick_seconds))
    for index in range(steps):
        yield index / steps


def story(duration: float, rate: float, seed: int = 7, tick_seconds: float = 1.0) -> list[Event]:
    """Every event a run with these arguments posts, in order (what the exporter and the trace backend
    should have seen)."""
    simulation = Simulation(duration, rate, seed)
    events = simulation.opening()
    for fraction in ticks(duration, tick_seconds):
        events += simulation.step(fraction, tick_seconds)
    return events + simulation.closing()


class Refused(Exception):
    """The exporter refuses the simulator itself (401 or 403): every further batch would fail too."""


def post(url: str, events: list[Event], token: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """POST ``events`` as one batch; the exporter's answer (``accepted``, ``duplicates``...)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise Refused(
                f"the exporter answered {err.code}: give it an ingest token it accepts with --token "
                f"or {ENV_PREFIX}SIMULATE_TOKEN"
            ) from err
        raise
    return answer


@dataclass
class Tally:
    """What a run has done so far."""

    sent: int = 0  # events posted
    accepted: int = 0
    duplicates: int = 0  # already seen (the same seed as an earlier run against this exporter)
    errors: int = 0  # events of batches that did not arrive or were refused
    llm_calls: int = 0
    failed_calls: int = 0
    spans: int = 0  # spans the trace backend took
    span_errors: int = 0
    last_error: str | None = None
    last_span_error: str | None = None


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, whole = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{whole:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """A run's progress on ``stream``: on a terminal, a bar redrawn in place a few times a second;
    otherwise (a log, a pipe) one line every ``every`` seconds."""

    BAR_WIDTH = 30

    def __init__(
        self,
        stream: TextIO,
        *,
        every: float = 10.0,
        is_terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.is_terminal = stream.isatty() if is_terminal is None else is_terminal
        self.interval = 0.25 if self.is_terminal else every
        self.clock = clock
        self.started = clock()
        self._shown_at = self.started

    def status(self, tally: Tally, fraction: float, now: float) -> str:
        """Share done, events sent, rate, errors and time left, e.g. ``45%, 5400 events sent, ...``."""
        elapsed = now - self.started
        rate = tally.sent / elapsed if elapsed > 0 else 0.0
        left = _duration(elapsed * (1 - fraction) / fraction) if fraction > 0 else "?"
        return f"{fraction:.0%}, {tally.sent} events sent, {rate:.1f}/s, {tally.errors} errors, {left} left"

    def update(self, tally: Tally, fraction: float) -> None:
        """Show the progress if the last showing is old enough."""
        now = self.clock()
        if now - self._shown_at >= self.interval:
            self._shown_at = now
            self._show(tally, fraction, now)

    def finish(self, tally: Tally) -> None:
        """On a terminal, the full bar and a new line; the summary that follows says the rest."""
        if self.is_terminal:
            self._show(tally, 1.0, self.clock())
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, tally: Tally, fraction: float, now: float) -> None:
        if self.is_terminal:
            filled = round(self.BAR_WIDTH * fraction)
            bar = "#" * filled + "-" * (self.BAR_WIDTH - filled)
            # Carriage return: redraw the line in place; ESC [K clears what a longer line left.
            self.stream.write(f"\r[{bar}] {self.status(tally, fraction, now)}\x1b[K")
        else:
            self.stream.write(f"simulate: {self.status(tally, fraction, now)}\n")
        self.stream.flush()


def _spans(events: list[Event]) -> list[otlp.Span]:
    """One span per LLM call, with the ids its event carries, ending now and as long as the call."""
    now = time.time_ns()
    spans = []
    for event in events:
        if event["type"] != "llm_request":
            continue
        attributes: dict[str, otlp.AttributeValue] = {
            "gen_ai.system": event["provider"],
            "gen_ai.request.model": event["model"],
            "llmopt.task_type": event["task_type"],
        }
        if "input_tokens" in event:
            attributes["gen_ai.usage.input_tokens"] = event["input_tokens"]
            attributes["gen_ai.usage.output_tokens"] = event["output_tokens"]
            attributes["llmopt.cost_usd"] = event["cost_usd"]
            attributes["llmopt.quality"] = event["quality"]
        if "error_type" in event:
            attributes["error.type"] = event["error_type"]
        spans.append(
            otlp.Span(
                trace_id=event["trace_id"],
                span_id=event["span_id"],
                name="llm_call",
                start_ns=now - int(event["latency_ms"] * 1_000_000),
                end_ns=now,
                kind=otlp.KIND_CLIENT,
                is_error=event.get("status") == "error",
                attributes=attributes,
            )
        )
    return spans


class Sender:
    """Posts batches and their spans, keeping the tally; a failed batch is counted and the run goes on."""

    def __init__(self, url: str, token: str | None, otlp_url: str | None) -> None:
        self.url = url
        self.token = token
        self.otlp_url = otlp_url
        self.tally = Tally()

    def send(self, events: list[Event], *, is_first: bool = False) -> None:
        """Post ``events``. The first batch raises what goes wrong (the exporter is unreachable or
        refuses us, so the run would be pointless); later ones count it. ``Refused`` always raises."""
        tally = self.tally
        tally.sent += len(events)
        calls = [event for event in events if event["type"] == "llm_request"]
        tally.llm_calls += len(calls)
        tally.failed_calls += sum(1 for event in calls if event.get("status") == "error")
        try:
            answer = post(self.url, events, self.token)
        except (OSError, ValueError) as err:
            if is_first:
                raise
            tally.errors += len(events)
            tally.last_error = str(err)
        else:
            tally.accepted += int(answer["accepted"])
            tally.duplicates += int(answer.get("duplicates", 0))
        if self.otlp_url is not None and calls:
            spans = _spans(calls)
            try:
                otlp.post(self.otlp_url, "llmopt-simulator", spans)
            except (OSError, ValueError) as err:
                tally.span_errors += len(spans)
                tally.last_span_error = str(err)
            else:
                tally.spans += len(spans)


def run(
    url: str,
    duration: float,
    rate: float,
    seed: int = 7,
    token: str | None = None,
    tick_seconds: float = 1.0,
    is_realtime: bool = True,
    complete: bool = True,
    progress: Progress | None = None,
    otlp_url: str | None = None,
) -> Tally:
    """Post the simulation to ``url``; what was sent, accepted and refused.

    In real time (the default) each tick's events go out on the tick; otherwise as fast as the
    exporter takes them, the story unchanged. With ``otlp_url``, each LLM call's span goes to that
    OTLP/HTTP endpoint too, so the trace ids of the exemplars lead to a trace.
    """
    simulation = Simulation(duration, rate, seed)
    sender = Sender(url, token, otlp_url)
    sender.send(simulation.opening(), is_first=True)
    started = time.monotonic()
    steps = max(1, int(duration / tick_seconds))
    for index, fraction in enumerate(ticks(duration, tick_seconds)):
        sender.send(simulation.step(fraction, tick_seconds))
        pause = started + (index + 1) * tick_seconds - time.monotonic()
        if is_realtime and pause > 0:
            time.sleep(pause)
        if progress is not None:
            progress.update(sender.tally, (index + 1) / steps)
    if complete:
        sender.send(simulation.closing())
    if progress is not None:
        progress.finish(sender.tally)
    return sender.tally


# Alerts this traffic fires in a Prometheus with the rules of alerts/ (tests/test_dashboards.py
# proves it): name, the SLOs it fires for, why. And one it stays under.
EXPECTED_ALERTS = (
    (
        "LLMOptErrorBudgetBurn",
        ("availability",),
        "about 3 % of the calls fail where the SLO allows 0.1 % (after 2 minutes)",
    ),
    (
        "LLMOptErrorBudgetLow",
        ("availability", "latency"),
        "the budgets are spent, so llmopt:optimization_halt:bool is 1",
    ),
    ("LLMOptWatchdog", (), "always firing: the alerting pipeline works"),
)
QUIET_ALERTS = {"LLMOptHighErrorRate": "3 % of failed calls stays under its 5 %"}
GRAFANA = "http://localhost:3000"
PROMETHEUS = "http://localhost:9090"
ALERTMANAGER = "http://localhost:9093"


def summary(url: str, tally: Tally, seconds: float, otlp_url: str | None = None) -> str:
    """What the run did, and where to look at its effects."""
    rate = tally.sent / seconds if seconds > 0 else 0.0
    lines = [
        f"posted {tally.sent} events to {url} in {_duration(seconds)} ({rate:.1f}/s): "
        f"{tally.accepted} accepted, {tally.duplicates} duplicates, {tally.errors} errors",
    ]
    if tally.errors:
        lines.append(f"  the last error: {tally.last_error} (the exporter's log says more)")
    if tally.duplicates:
        lines.append("  duplicates: this exporter saw this seed before; --seed N tells a new story")
    if otlp_url is not None:
        lines.append(f"spans: {tally.spans} LLM calls sent to {otlp_url}, {tally.span_errors} failed")
        if tally.span_errors:
            lines.append(f"  the last error: {tally.last_span_error}")
    failed = tally.failed_calls / tally.llm_calls if tally.llm_calls else 0.0
    lines += [
        "",
        "What to look at (the addresses of docker-compose.yml's stack):",
        f"  Grafana {GRAFANA}, folder LLM Optimizer:",
        f"    System Health          {tally.llm_calls} LLM calls, {failed:.1%} failed "
        f"with {len(ERROR_TYPES)} error types, latency percentiles",
        f"    Optimization           A/B test {WINNING_EXPERIMENT} won by variant-b, {RUNNING_EXPERIMENT} "
        "still running;",
        "                           the temperature bandit converging on t0.7; cost falling as traffic "
        "moves to gpt-4o-mini",
        "    SLOs & error budgets   the availability and latency budgets spent, the halt signal on",
        "    Models & tokens        claude-3-5-haiku's health checks flapping",
        "    Exemplars              the dots on the latency and cost panels; each opens its trace in Tempo"
        + ("" if otlp_url else " (with --otlp)"),
        f"  Alerts: Prometheus {PROMETHEUS}/alerts, routed by Alertmanager {ALERTMANAGER}:",
        *(
            f"    {name:<22} {' and '.join(slos) + ': ' if slos else ''}{why}"
            for name, slos, why in EXPECTED_ALERTS
        ),
        *(f"    not {name}: {why}" for name, why in QUIET_ALERTS.items()),
        f"  The exporter: {url.rstrip('/')}/metrics",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmopt-exporter simulate",
        description="Post realistic LLM auto-optimizer traffic to a running exporter: an A/B test "
        "in which a winner emerges, a bandit converging on one temperature, cost falling over time, "
        "errors of several types, feedback, model health flaps, a deployment. Shows its progress "
        "(a bar on a terminal, a line every 10 s otherwise) and ends with where to look.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter (default %(default)s)")
    parser.add_argument(
        "--duration", type=float, default=300.0, help="seconds of story (default %(default)s)"
    )
    parser.add_argument(
        "--rate", type=float, default=20.0, help="events per second, about (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=7, help="same seed, same events (default %(default)s)")
    parser.add_argument(
        "--token",
        default=os.environ.get(f"{ENV_PREFIX}SIMULATE_TOKEN"),
        help=f"ingest bearer token (or {ENV_PREFIX}SIMULATE_TOKEN; default none)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="do not wait for each tick: post as fast as possible"
    )
    parser.add_argument(
        "--otlp",
        metavar="URL",
        default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        help="also send each LLM call's span to this OTLP/HTTP endpoint, e.g. Tempo's "
        "http://localhost:4318 (or OTEL_EXPORTER_OTLP_ENDPOINT; default none)",
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="when not on a terminal, a progress line this often (default %(default)s)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.duration <= 0 or args.rate <= 0 or args.progress_every <= 0:
        print(
            "llmopt-exporter simulate: --duration, --rate and --progress-every must be positive",
            file=sys.stderr,
        )
        return 2
    progress = Progress(sys.stderr, every=args.progress_every)
    try:
        tally = run(
            args.url,
            args.duration,
            args.rate,
            args.seed,
            args.token,
            is_realtime=not args.fast,
            progress=progress,
            otlp_url=args.otlp,
        )
    except Refused as err:
        print(f"llmopt-exporter simulate: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f"llmopt-exporter simulate: cannot post to {args.url}: {err}", file=sys.stderr)
        return 1
    print(summary(args.url, tally, time.monotonic() - progress.started, args.otlp))
    return 0 if tally.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
