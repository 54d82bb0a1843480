"""Streamed calls through a real exporter and a real Prometheus: the recorded time-to-first-token
quantiles are Prometheus' histogram_quantile of the buckets the posted values fall in, and the
output-token rate is the posted tokens over the posted time after the first token.

The same batch is posted twice, a scrape apart, so that every bucket's first sample in the rate
window equals its increase: rate() then scales every bucket alike, and the quantile of the rates is
the quantile of the batch's own buckets.
"""

from __future__ import annotations

import json
import math
import random
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from llmopt_client.halt import query

from app import metrics as m
from mixin import recorded as rec
from mixin import rules
from tests.processes import exporter_and_prometheus, wait_until

ROOT = Path(__file__).resolve().parents[1]
CONFIG = rules.load_config(ROOT / "alerts" / "tests" / "config.yml")

RNG = random.Random(20261204)
# Streamed calls: first token after 50 ms to 4 s, 2 to 400 output tokens at 5 to 40 ms each.
CALLS = []
for _ in range(400):
    ttft = round(RNG.lognormvariate(math.log(0.6), 0.8), 4)
    tokens = RNG.randint(2, 400)
    per_token = RNG.uniform(0.005, 0.04)
    CALLS.append((ttft, tokens, round(ttft + per_token * (tokens - 1), 4)))


def _events() -> list[dict[str, Any]]:
    return [
        {
            "type": "llm_request",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "task_type": "chat",
            "stream": True,
            "time_to_first_token_ms": ttft * 1000,
            "latency_ms": latency * 1000,
            "output_tokens": tokens,
        }
        for ttft, tokens, latency in CALLS
    ]


def histogram_quantile(q: float, values: list[float], bounds: tuple[float, ...]) -> float:
    """Prometheus' histogram_quantile over the cumulative buckets ``values`` fall in."""
    counts = [sum(1 for value in values if value <= bound) for bound in (*bounds, math.inf)]
    rank = q * counts[-1]
    b = next(i for i, count in enumerate(counts) if count >= rank)
    if b == len(bounds):
        return bounds[-1]
    start, below = (0.0, 0) if b == 0 else (bounds[b - 1], counts[b - 1])
    return start + (bounds[b] - start) * (rank - below) / (counts[b] - below)


@pytest.fixture(scope="module")
def chain(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], list[tuple[dict[str, str], float]]]]:
    tmp = tmp_path_factory.mktemp("streaming")
    recording = {rules.RECORDING_FILE: rules.render(CONFIG)[rules.RECORDING_FILE]}
    with exporter_and_prometheus(tmp, recording, CONFIG.exporter_job) as (exporter, prometheus):

        def ask(expr: str) -> list[tuple[dict[str, str], float]]:
            return query(prometheus, expr, timeout=10)

        def post() -> None:
            request = urllib.request.Request(
                f"{exporter}/v1/events",
                data=json.dumps({"events": _events()}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200

        count = f"sum({m.LLM_TIME_TO_FIRST_TOKEN.name}_count)"
        post()
        wait_until(lambda: ask(f"{count} == {len(CALLS)}") or None, "the first batch scraped")
        post()
        scraped = wait_until(
            lambda: ask(f"timestamp({count} == {2 * len(CALLS)})") or None, "the second batch"
        )
        seen = scraped[0][1]
        wait_until(
            lambda: ask(f"timestamp({rec.OUTPUT_TOKENS_PER_SECOND5M.selector}) > {seen + 1}") or None,
            "a rule evaluation after the second scrape",
        )
        yield ask


@pytest.mark.parametrize("quantile", rules.TTFT_QUANTILES)
def test_ttft_quantiles_are_histogram_quantile_of_the_posted_values(
    chain: Callable[[str], list[tuple[dict[str, str], float]]], quantile: str
) -> None:
    ((_, recorded),) = chain(rec.TTFT_QUANTILE5M.where(quantile=quantile).selector)
    expected = histogram_quantile(
        # In seconds as the exporter has them: the milliseconds posted, over 1000.
        float(quantile),
        [ttft * 1000 / 1000 for ttft, _, _ in CALLS],
        m.LLM_TIME_TO_FIRST_TOKEN.buckets,
    )
    assert recorded == pytest.approx(expected, rel=1e-9)


def test_output_tokens_per_second_is_tokens_over_the_time_after_the_first(
    chain: Callable[[str], list[tuple[dict[str, str], float]]],
) -> None:
    ((_, recorded),) = chain(rec.OUTPUT_TOKENS_PER_SECOND5M.selector)
    per_token = [(latency - ttft) / (tokens - 1) for ttft, tokens, latency in CALLS]
    assert recorded == pytest.approx(len(per_token) / sum(per_token), rel=1e-9)
