"""The in-process floor: what one event costs with no HTTP at all.

For each batch size, times ``Ingestor.ingest(body)`` (decode + validate + dedup + record, exactly
what ``POST /v1/events`` runs) and its parts (decoding alone; ``Recorder.apply`` alone) over fresh
bodies with unique event ids. ``exporter`` is the code as it is; ``stock`` is the code before this
work: prometheus_client metric objects with cached children (bench/baseline_store.py); both
decode with the exporter's decoder. The duplicate window starts full, as in a running server. Prints
one JSON object.

    python -m bench.floor [--events 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from app.dedup import RecentIds
from app.ingest import Ingestor
from app.recorder import Recorder
from app.store import LabelGuard, MetricStore
from bench import workload
from bench.baseline_store import PrometheusClientStore

BATCH_SIZES = (1, 100, 1000)


class CountingStore:
    """Wraps a store and counts the metric updates made through it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.updates = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name == "label_set":
            return lambda labels: CountingLabelSet(self, attribute(labels))
        if name in ("inc", "observe", "set", "touch"):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.updates += 1
                return attribute(*args, **kwargs)

            return counted
        return attribute


class CountingLabelSet:
    """A store's label set whose series count their updates on a CountingStore."""

    def __init__(self, counting: CountingStore, label_set: Any) -> None:
        self._counting = counting
        self._label_set = label_set

    def __getitem__(self, spec: Any) -> Any:
        series = self._label_set[spec]
        counting = self._counting

        class Counted:
            def __getattr__(self, name: str) -> Any:
                counting.updates += 1
                return getattr(series, name)

        return Counted()


def build(store_kind: str) -> tuple[Any, Recorder, Ingestor]:
    guard = LabelGuard(500)
    store: Any
    if store_kind == "exporter":
        store = MetricStore(CollectorRegistry(), guard)
    else:
        store = PrometheusClientStore(CollectorRegistry(), guard)
    recorder = Recorder(store)
    # The duplicate window full, as in a server that has taken its first 100k events (the
    # default window): each new id then also evicts the oldest.
    recent_ids = RecentIds(100_000, 3600)
    recent_ids.remember(f"earlier-{index}" for index in range(100_000))
    return store, recorder, Ingestor(store, recorder, workload.DECODER, recent_ids)


def _timed(run: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(store_kind: str, batch: int, total: int, repeats: int) -> dict[str, float]:
    """Median µs per event of ingest, parse and apply over ``repeats`` rounds of ``total`` events."""
    return _measure(store_kind, workload.decode, batch, total, repeats)


def _measure(
    store_kind: str, decode: Callable[[bytes], list[Any]], batch: int, total: int, repeats: int
) -> dict[str, float]:
    rounds = [_round(store_kind, decode, batch, total, seed) for seed in range(repeats)]
    ingest_us, parse_us, apply_us = (
        statistics.median(values) * 1e6 / total for values in zip(*rounds, strict=True)
    )
    return {
        "ingest_us_per_event": ingest_us,
        "parse_us_per_event": parse_us,
        "apply_us_per_event": apply_us,
        "events_per_s": 1e6 / ingest_us,
    }


def _round(
    store_kind: str, decode: Callable[[bytes], list[Any]], batch: int, total: int, seed: int
) -> tuple[float, float, float]:
    """Seconds to ingest, to decode and to apply ``total`` fresh events in bodies of ``batch``."""
    made = workload.events(total, seed=seed)
    bodies = [workload.body(made[i : i + batch]) for i in range(0, total, batch)]
    _, recorder, _ = build(store_kind)
    # Warm the store (bind every series) on other events, so rounds measure steady state.
    for warm in workload.events(2000, seed=1000 + seed):
        recorder.apply(workload.decode(workload.body([warm]))[0])
    parsed: list[list[Any]] = []
    parse_s = _timed(lambda: parsed.extend(decode(body) for body in bodies))

    def apply_all() -> None:
        for events in parsed:
            for event in events:
                recorder.apply(event)

    apply_s = _timed(apply_all)
    _, _, ingestor = build(store_kind)
    ingest_s = _timed(lambda: [ingestor.ingest(body) for body in bodies])
    return ingest_s, parse_s, apply_s


def updates_per_event(count: int = 10_000) -> float:
    """Metric updates the recorder makes per event of the workload, on average."""
    store, _, _ = build("exporter")
    counting = CountingStore(store)
    recorder = Recorder(counting)  # type: ignore[arg-type]
    counting.updates = 0
    for event in workload.decode(workload.body(workload.events(count, seed=7))):
        recorder.apply(event)
    return counting.updates / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the median is reported")
    parser.add_argument("--stores", default="exporter,stock")
    parser.add_argument("--batches", default=",".join(map(str, BATCH_SIZES)))
    args = parser.parse_args()
    result: dict[str, Any] = {"updates_per_event": updates_per_event()}
    for store_kind in args.stores.split(","):
        for batch in map(int, args.batches.split(",")):
            total = args.events if batch > 1 else args.events // 4
            result[f"{store_kind}/b{batch}"] = measure(store_kind, batch, total, args.repeats)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
