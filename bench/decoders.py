"""What decoding a body costs: the exporter's decoder against JSON parsing alone.

    python -m bench.decoders

Times, per event, over batches of 1000 mixed events of the workload (bench/workload.py): JSON
parsing alone (``json.loads``; msgspec untyped), and the exporter's decoder
(``app.decode.EventDecoder``: msgspec structs of the contract, with every check). Prints one JSON
object (µs per event, best of 5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgspec

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
    count = len(made)
    result = {
        "events": count,
        "json_loads_us": _best_us(lambda: [json.loads(body) for body in bodies], count),
        "msgspec_untyped_us": _best_us(lambda: [untyped.decode(body) for body in bodies], count),
        "decoder_us": _best_us(lambda: [workload.decode(body) for body in bodies], count),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
