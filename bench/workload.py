"""The benchmark workload: realistic mixed events, as the Python client sends them.

Every event carries an ``event_id`` and a ``timestamp`` (the client fills both in), and LLM calls
carry a trace context. The mix is dominated by LLM calls, as an optimizer's stream is:

    llm_request 70 %, feedback 10 %, bandit 10 % (pull/reward), parameter_update 3 %,
    model_health 3 %, budget spend 2 %, experiment progress 1 %, business 1 %

Label values come from small fixed pools, so a steady stream touches a bounded set of series;
:func:`preload_bodies` instead spreads LLM calls over many (model, task_type) pairs to grow the
exposition to a chosen number of series.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from app.decode import EventDecoder
from app.events import Event

MODELS = (
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-3-5-sonnet", "anthropic"),
    ("claude-3-5-haiku", "anthropic"),
    ("llama-3.1-70b", "together"),
    ("mistral-large", "mistral"),
)
TASK_TYPES = ("summarization", "classification", "extraction", "chat", "code")
EXPERIMENTS = (("prompt-v5", ("control", "variant-b")), ("style-v2", ("control", "concise")))
BANDITS = (("temperature", ("t0.2", "t0.7", "t1.0")), ("top_p", ("p0.8", "p0.95")))
PARAMETERS = ("temperature", "top_p", "max_tokens", "frequency_penalty")
# A minute before the run starts: event times must be recent for the exporter to accept them.
TIMESTAMP = datetime.fromtimestamp(int(time.time()) - 60, UTC).isoformat(timespec="milliseconds")
# The exporter's decoder, with its default limits, for the in-process measurements.
DECODER = EventDecoder(100_000, 20, 7 * 86400.0, 300.0, time.time)

# Exposition lines a preloaded (model, provider, task_type) triple adds: requests, tokens (2),
# cached tokens, cost, baseline cost, the latency (18) and quality (16) histograms; and lines a
# new model adds: the tokens histogram (14) and four quality-dimension summaries (8).
LINES_PER_TRIPLE = 40
LINES_PER_MODEL = 22
MODELS_IN_PRELOAD = 400


def preload_triples(series: int) -> int:
    """How many preloaded triples make about ``series`` exposition lines."""
    if series <= (LINES_PER_TRIPLE + LINES_PER_MODEL) * MODELS_IN_PRELOAD:
        return max(1, series // (LINES_PER_TRIPLE + LINES_PER_MODEL))
    return (series - LINES_PER_MODEL * MODELS_IN_PRELOAD) // LINES_PER_TRIPLE


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _llm_request(rng: random.Random, model: str, provider: str, task_type: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "llm_request",
        "model": model,
        "provider": provider,
        "task_type": task_type,
        "latency_ms": round(rng.lognormvariate(6.3, 0.8), 1),
        "input_tokens": rng.randint(200, 4000),
        "output_tokens": rng.randint(20, 800),
        "cost_usd": round(rng.uniform(0.0001, 0.02), 6),
        "quality": round(rng.uniform(60, 99), 1),
        "trace_id": _hex(rng, 32),
        "span_id": _hex(rng, 16),
    }
    event["cached_tokens"] = rng.randint(0, event["input_tokens"])
    if rng.random() < 0.5:
        event["baseline_cost_usd"] = round(event["cost_usd"] * 3, 6)
    if rng.random() < 0.3:
        for dimension in ("accuracy", "relevance", "coherence", "completeness"):
            event[dimension] = round(rng.uniform(60, 99), 1)
    if rng.random() < 0.04:
        event["status"] = "error"
        event["error_type"] = rng.choice(("RateLimitError", "Timeout", "APIError"))
    if rng.random() < 0.4:
        experiment, variants = rng.choice(EXPERIMENTS)
        event["experiment_id"] = experiment
        event["variant_id"] = rng.choice(variants)
    if rng.random() < 0.3:
        bandit, arms = rng.choice(BANDITS)
        arm = rng.choice(arms)
        event.update(bandit_id=bandit, arm_id=arm, parameter=bandit, parameter_value=float(arm[1:]))
    return event


def _event(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    model, provider = rng.choice(MODELS)
    if roll < 0.70:
        return _llm_request(rng, model, provider, rng.choice(TASK_TYPES))
    if roll < 0.80:
        experiment, variants = rng.choice(EXPERIMENTS)
        return {
            "type": "feedback",
            "model": model,
            "experiment_id": experiment,
            "variant_id": rng.choice(variants),
            "thumbs": rng.choice(("up", "down")),
            "csat": rng.randint(1, 5),
        }
    if roll < 0.90:
        bandit, arms = rng.choice(BANDITS)
        if rng.random() < 0.5:
            return {
                "type": "bandit",
                "action": "pull",
                "bandit_id": bandit,
                "arm_id": rng.choice(arms),
                "explored": rng.random() < 0.1,
            }
        return {
            "type": "bandit",
            "action": "reward",
            "bandit_id": bandit,
            "arm_id": rng.choice(arms),
            "reward": round(rng.random(), 3),
            "regret": round(rng.random() / 10, 3),
        }
    if roll < 0.93:
        return {
            "type": "parameter_update",
            "parameter": rng.choice(PARAMETERS),
            "value": round(rng.random(), 3),
            "stability_score": round(rng.random(), 3),
            "improved": False,
        }
    if roll < 0.96:
        return {
            "type": "model_health",
            "model": model,
            "provider": provider,
            "available": rng.random() < 0.98,
            "latency_ms": rng.randint(100, 900),
            "error_rate": round(rng.random() / 50, 4),
        }
    if roll < 0.98:
        return {
            "type": "budget",
            "action": "spend",
            "category": rng.choice(("compute", "infrastructure")),
            "amount_usd": round(rng.uniform(0.1, 20), 2),
        }
    if roll < 0.99:
        experiment, variants = rng.choice(EXPERIMENTS)
        return {
            "type": "experiment",
            "action": "progress",
            "experiment_id": experiment,
            "leader": variants[1],
            "lead": 0.05,
            "confidence": round(rng.random(), 3),
            "progress": round(rng.random(), 3),
            "sample_size": rng.randint(100, 10000),
        }
    return {"type": "business", "value_derived_usd": round(rng.uniform(1, 100), 2)}


def events(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` mixed events with unique ids, reproducible from ``seed``."""
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        event = {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "timestamp": TIMESTAMP}
        event.update(_event(rng))
        made.append(event)
    return made


def decode(body: bytes) -> list[Event]:
    """The events of a body, as ingest decodes them."""
    return DECODER.decode(body)


def body(batch: list[dict[str, Any]]) -> bytes:
    """A request body: one event as itself, several as ``{"events": [...]}``."""
    if len(batch) == 1:
        return json.dumps(batch[0], separators=(",", ":")).encode()
    return json.dumps({"events": batch}, separators=(",", ":")).encode()


def preload_bodies(triples: int, batch: int = 1000, start: int = 0) -> Iterator[bytes]:
    """Bodies of one LLM call for each of ``triples`` (model, provider, task_type) triples.

    Triple ``i`` is model ``i % 400`` and task type ``i // 400``, below the default cap of 500
    distinct values per label; they are numbered from ``start``, so a later call adds new ones.
    :func:`preload_triples` says how many make a given number of exposition lines.
    """
    rng = random.Random(start)
    pending: list[dict[str, Any]] = []
    for index in range(start, start + triples):
        model, task_type = f"model-{index % MODELS_IN_PRELOAD}", f"task-{index // MODELS_IN_PRELOAD}"
        event = _llm_request(rng, model, "provider", task_type)
        for dimension in ("accuracy", "relevance", "coherence", "completeness"):
            event[dimension] = 80.0
        event.pop("experiment_id", None)
        event.pop("variant_id", None)
        for key in ("bandit_id", "arm_id", "parameter", "parameter_value", "status", "error_type"):
            event.pop(key, None)
        event["event_id"] = f"preload-{index}"
        pending.append(event)
        if len(pending) == batch:
            yield body(pending)
            pending = []
    if pending:
        yield body(pending)
