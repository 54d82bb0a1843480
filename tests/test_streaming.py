"""Streamed calls through a real exporter and a real Prometheus: the recorded time-to-first-token
quantiles are Prometheus' histogram_quantile of the buckets the posted values fall in, and the
output-token rate is the posted tokens over the posted time after the first token.

The same batch is posted twice, a scrape apart, so that every bucket's first sample in the rate
window equals its increase: rate() then scales every bucket alike, and the quantile of the rates is
the quantile of the batch's own buckets.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from app import metrics as m
from mixin import recorded as rec
from mixin import rules
from tests.processes import EXPORTER, PROMETHEUS, free_port, running

ROOT = Path(__file__).resolve().parents[1]
CONFIG = rules.load_config(ROOT / "alerts" / "tests" / "config.yml")
T = TypeVar("T")

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


def _wait(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while (result := check()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout} s")
        time.sleep(0.2)
    return result


@pytest.fixture(scope="module")
def chain(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], list[tuple[dict[str, str], float]]]]:
    tmp = tmp_path_factory.mktemp("streaming")
    for name, text in rules.render(CONFIG).items():
        (tmp / name).write_text(text, encoding="utf-8")
    exporter, prometheus = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    (tmp / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [rules.RECORDING_FILE],
                "scrape_configs": [
                    {"job_name": CONFIG.exporter_job, "static_configs": [{"targets": [exporter]}]}
                ],
            }
        ),
        encoding="utf-8",
    )
    host, port = exporter.split(":")

    def query(expr: str) -> list[tuple[dict[str, str], float]]:
        url = f"http://{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            result = json.loads(response.read())["data"]["result"]
        return [(item["metric"], float(item["value"][1])) for item in result]

    def post() -> None:
        request = urllib.request.Request(
            f"http://{exporter}/v1/events",
            data=json.dumps({"events": _events()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200

    count = f"sum({m.LLM_TIME_TO_FIRST_TOKEN.name}_count)"
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            running(
                [str(EXPORTER), "--host", host, "--port", port],
                f"http://{exporter}/readyz",
                tmp / "exporter.log",
                env={"LLMOPT_ACCESS_LOG": "false"},
            )
        )
        stack.enter_context(
            running(
                [
                    PROMETHEUS,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'data'}",
                    f"--web.listen-address={prometheus}",
                ],
                f"http://{prometheus}/-/ready",
                tmp / "prometheus.log",
            )
        )
        post()
        _wait(lambda: query(f"{count} == {len(CALLS)}") or None, "the first batch scraped")
        post()
        scraped = _wait(lambda: query(f"timestamp({count} == {2 * len(CALLS)})") or None, "the second batch")
        seen = scraped[0][1]
        _wait(
            lambda: query(f"timestamp({rec.OUTPUT_TOKENS_PER_SECOND5M.selector}) > {seen + 1}") or None,
            "a rule evaluation after the second scrape",
        )
        yield query


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
