"""What each body decoder costs: pydantic as the contract validates, msgspec as ingest decodes.

    python -m bench.decoders

Times, per event, over batches of 1000 mixed events of the workload (bench/workload.py):
``parse_events`` (pydantic, through the envelope union: the contract's own answer);
``decode_events`` (pydantic, a Batch directly: ingest's path for bodies msgspec does not take);
JSON parsing alone (``json.loads``, msgspec untyped); and ``app.fast_events.decode`` (msgspec
structs with the contract's rules: ingest's path for valid bodies of the common events). Prints
one JSON object (µs per event, best of 5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgspec

from app import fast_events
from app.events import parse_events
from app.ingest import decode_events
from bench import workload


def _best_us(run: Callable[[], Any], events: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / events * 1e6


def main() -> None:
    made = workload.events(20_000, seed=11)
    bodies = [workload.body(made[start : start + 1000]) for start in range(0, len(made), 1000)]
    untyped = msgspec.json.Decoder()
    # Every body must take the fast path, or its time would be pydantic's.
    assert all(fast_events.decode(body) is not None for body in bodies)
    count = len(made)
    result = {
        "events": count,
        "pydantic_parse_events_us": _best_us(lambda: [parse_events(body) for body in bodies], count),
        "pydantic_decode_events_us": _best_us(lambda: [decode_events(body) for body in bodies], count),
        "json_loads_us": _best_us(lambda: [json.loads(body) for body in bodies], count),
        "msgspec_untyped_us": _best_us(lambda: [untyped.decode(body) for body in bodies], count),
        "fast_events_us": _best_us(lambda: [fast_events.decode(body) for body in bodies], count),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
