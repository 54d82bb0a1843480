"""In-process render cost at a given number of series, ours against prometheus_client's.

    python -m bench.render_cost --series 100000

Loads the same preload bodies (bench.workload.preload_bodies) into the exporter's store and into
the stock prometheus_client store (bench/baseline_store.py), then times, median of 5:
``generate_latest`` on the stock store; our render with every series stale (cold), with 10 % of
series updated since the last render, and with none (all lines cached); gzip level 1 and 9 of the
result. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest

from app.recorder import Recorder
from app.render import Exposition
from app.store import LabelGuard, MetricStore
from bench import workload
from bench.baseline_store import PrometheusClientStore


def _median_ms(run: Callable[[], Any], before: Callable[[], Any] = lambda: None, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        before()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    args = parser.parse_args()
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    ours = MetricStore(CollectorRegistry(), LabelGuard(500))
    stock = PrometheusClientStore(CollectorRegistry(), LabelGuard(500))
    recorders = (Recorder(ours), Recorder(stock))
    for body in workload.preload_bodies(workload.preload_triples(args.series)):
        for event in workload.decode(body):
            for recorder in recorders:
                recorder.apply(event)
    exposition = Exposition(ours)
    text = exposition.render_now(False)
    all_series = [series for family in ours.families.values() for series in family.series.values()]
    rng = random.Random(0)

    def stale_all() -> None:
        for series in all_series:
            series.text = None

    def stale_tenth() -> None:
        for series in rng.sample(all_series, len(all_series) // 10):
            series.text = None

    result = {
        "series": sum(1 for line in text.splitlines() if line.startswith(b"llmopt_")),
        "bytes": len(text),
        "stock_generate_latest_ms": _median_ms(lambda: generate_latest(stock.registry)),
        "ours_cold_ms": _median_ms(lambda: exposition.render_now(False), stale_all),
        "ours_10pct_stale_ms": _median_ms(lambda: exposition.render_now(False), stale_tenth),
        "ours_cached_ms": _median_ms(lambda: exposition.render_now(False)),
        "gzip1_ms": _median_ms(lambda: gzip.compress(text, compresslevel=1)),
        "gzip9_ms": _median_ms(lambda: gzip.compress(text, compresslevel=9), repeats=3),
        "gzip1_bytes": len(gzip.compress(text, compresslevel=1)),
        "gzip9_bytes": len(gzip.compress(text, compresslevel=9)),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
