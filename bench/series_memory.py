"""Memory per series (label set) of the running exporter: the sizing rule of docs/security.md.

    python -m bench.series_memory [--small 100] [--large 2500]

Starts ``llmopt-exporter`` on a loopback port with the series budget lifted, posts ``llm_request``
events for ``--small`` and then ``--large`` distinct (model, provider, task_type) triples, scrapes
after each in both formats and gzipped (every series then holds its rendered lines), and reports
the growth of peak resident memory per label set (``llmopt_exporter_series`` summed) between the
two points. Two workloads:

- typical: short label values, one call per triple (one exemplar per histogram);
- worst: 128-character label values, 16 calls per triple with latencies and scores spread over
  every bucket, each with a trace id (an exemplar in every bucket).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import procs
from bench.workload import body

# A latency (ms) and a quality score in each bucket of the latency and quality histograms.
SPREAD = [(5, 5), (15, 15), (30, 25), (60, 35), (120, 45), (250, 55), (500, 65), (900, 72)]
SPREAD += [(1100, 77), (2000, 82), (4000, 87), (8000, 92), (15000, 97), (30000, 100), (60000, 100)]
SPREAD += [(90000, 100)]
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _padded(text: str, is_long: bool) -> str:
    return text + "-" + "x" * (127 - len(text)) if is_long else text


def calls(first: int, last: int, is_worst: bool, rng: random.Random) -> Iterator[dict[str, Any]]:
    for index in range(first, last):
        model = _padded(f"model-{index % 400}", is_worst)
        task_type = _padded(f"task-{index // 400}", is_worst)
        for latency_ms, quality in SPREAD if is_worst else SPREAD[6:7]:
            yield {
                "type": "llm_request",
                "model": model,
                "provider": _padded("provider", is_worst),
                "task_type": task_type,
                "latency_ms": latency_ms,
                "input_tokens": 1000,
                "output_tokens": 100,
                "cached_tokens": 10,
                "cost_usd": 0.001,
                "baseline_cost_usd": 0.003,
                "quality": quality,
                **{dimension: 80 for dimension in ("accuracy", "relevance", "coherence", "completeness")},
                "trace_id": f"{rng.getrandbits(128):032x}",
                "span_id": f"{rng.getrandbits(64):016x}",
            }


def _peak_rss(server: procs.Server) -> int:
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _scrape(url: str, accept: str = "") -> bytes:
    request = urllib.request.Request(f"{url}/metrics", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=120) as response:
        return bytes(response.read())


def point(server: procs.Server) -> dict[str, float]:
    _scrape(server.url, OPENMETRICS)
    procs.scrape(f"{server.url}/metrics", True)
    text = _scrape(server.url).decode()
    lines = [line for line in text.splitlines() if line.startswith("llmopt_exporter_series{")]
    label_sets = sum(float(line.rsplit(" ", 1)[1]) for line in lines)
    return {"series": label_sets, "peak_rss": _peak_rss(server), "rss": server.rss_bytes()}


def measure(work: Path, is_worst: bool, small: int, large: int) -> dict[str, Any]:
    # The budget lifted (and the duplicate window off), so only series grow.
    env = {
        "LLMOPT_MAX_SERIES": "10000000",
        "LLMOPT_MAX_SERIES_PER_METRIC": "10000000",
        "LLMOPT_LABEL_VALUE_LIMIT": "100000",
        "LLMOPT_DEDUP_WINDOW_SIZE": "0",
        "LLMOPT_ACCESS_LOG": "false",
    }
    rng = random.Random(1)
    points = []
    with procs.exporter(work, env) as server:
        empty = point(server)
        done = 0
        for triples in (small, large):
            batch: list[dict[str, Any]] = []
            for event in calls(done, triples, is_worst, rng):
                batch.append(event)
                if len(batch) == 300:  # under max_body_bytes with 128-character labels
                    procs.post(f"{server.url}/v1/events", body(batch))
                    batch = []
            if batch:
                procs.post(f"{server.url}/v1/events", body(batch))
            done = triples
            points.append(point(server))
    low, high = points
    return {
        "empty_rss": empty["rss"],
        "label_sets": [low["series"], high["series"]],
        "peak_rss": [low["peak_rss"], high["peak_rss"]],
        "bytes_per_series": (high["peak_rss"] - low["peak_rss"]) / (high["series"] - low["series"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100, help="triples at the first point")
    parser.add_argument("--large", type=int, default=2500, help="triples at the second point")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmopt-series-memory-") as directory:
        result = {
            name: measure(Path(directory), is_worst, args.small, args.large)
            for name, is_worst in (("typical", False), ("worst", True))
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
