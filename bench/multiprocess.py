"""What prometheus_client's multiprocess mode would cost us: per-event updates and scrape merges.

    python -m bench.multiprocess --series 10000,100000

In multiprocess mode every value lives in an mmap'd file per process and a scrape merges the
files of all processes (``MultiProcessCollector``); exemplars are not supported. This runs the
stock prometheus_client store (bench/baseline_store.py) in that mode, in this one process, and
prints one JSON object: µs per event to apply the mixed workload, and for each preload size the
series exposed and the median time of a merged scrape (``generate_latest``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any


def _measure(series_counts: list[int]) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from app.recorder import Recorder
    from app.store import LabelGuard
    from bench import workload
    from bench.baseline_store import PrometheusClientStore

    result: dict[str, Any] = {}
    store = PrometheusClientStore(CollectorRegistry(), LabelGuard(500))
    recorder = Recorder(store)
    for event in workload.decode(workload.body(workload.events(2000, seed=99))):
        recorder.apply(event)
    parsed = workload.decode(workload.body(workload.events(20_000, seed=5)))
    started = time.perf_counter()
    for event in parsed:
        recorder.apply(event)
    result["apply_us_per_event"] = (time.perf_counter() - started) / len(parsed) * 1e6
    loaded = 0
    for target in sorted(series_counts):
        triples = workload.preload_triples(target)
        for body in workload.preload_bodies(triples - loaded, start=loaded):
            for event in workload.decode(body):
                recorder.apply(event)
        loaded = triples
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            text = generate_latest(registry)
            times.append(time.perf_counter() - started)
        result[f"scrape_ms_{target}"] = statistics.median(times) * 1000
        result[f"series_{target}"] = sum(1 for line in text.splitlines() if line.startswith(b"llmopt_"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="10000,100000")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(count) for count in args.series.split(",")]
    if args.child:
        print(json.dumps(_measure(counts)))
        return
    # The mode is chosen when prometheus_client is first imported: measure in a fresh process.
    with tempfile.TemporaryDirectory(prefix="llmopt-mp-") as directory:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        argv = [sys.executable, "-m", "bench.multiprocess", "--child", "--series", args.series]
        output = subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=600)
        result = json.loads(output.stdout)
        result["mmap_dir_bytes"] = sum(
            os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory)
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
