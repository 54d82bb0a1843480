"""Open-loop load: single-event POSTs at a fixed rate, latency measured from when each request was
due (so a stalled server shows as latency, not as a lower rate), optionally with a scraper.

    python -m bench.loadgen --url http://127.0.0.1:PORT --rate 500 --seconds 12 [--scrape-every 1]

Prints one JSON object: requests sent and answered, non-2xx, p50/p99/max latency in ms, the
achieved rate, and the scrapes made (time and size each). Bounded: it sends at most
rate x seconds requests and stops waiting 10 s after the last is due.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

from bench import workload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    """Status and body size of one HTTP/1.1 response (Content-Length bodies only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status, length


async def _connection(
    host: str,
    port: int,
    queue: asyncio.Queue[tuple[float, bytes] | None],
    results: list[tuple[float, int, float]],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (item := await queue.get()) is not None:
            due, request = item
            writer.write(request)
            status, _ = await _read_response(reader)
            done = time.perf_counter()
            results.append((done - due, status, done))
    finally:
        writer.close()


async def _scraper(host: str, port: int, every: float, until: float, scrapes: list[dict[str, float]]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET /metrics HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\n\r\n".encode()
    try:
        await asyncio.sleep(every / 2)
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            _, size = await _read_response(reader)
            elapsed = time.perf_counter() - started
            scrapes.append({"ms": elapsed * 1000, "bytes": size})
            await asyncio.sleep(max(0.0, every - elapsed))
    finally:
        writer.close()


async def run(url: str, rate: float, seconds: float, connections: int, scrape_every: float) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    count = int(rate * seconds)
    requests = []
    for event in workload.events(count, seed=int(time.time())):
        body = workload.body([event])
        requests.append(
            f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    results: list[tuple[float, int, float]] = []
    scrapes: list[dict[str, float]] = []
    workers = [asyncio.create_task(_connection(host, port, queue, results)) for _ in range(connections)]
    start = time.perf_counter() + 0.2
    tasks = list(workers)
    if scrape_every > 0:
        tasks.append(asyncio.create_task(_scraper(host, port, scrape_every, start + seconds, scrapes)))
    for index, request in enumerate(requests):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, request))
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(tasks, timeout=10)
    for task in pending:
        task.cancel()
    latencies = sorted(latency for latency, _, _ in results)
    last_done = max((done for _, _, done in results), default=start)
    answered = len(latencies)
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": count,
        "answered": answered,
        "non_2xx": sum(1 for _, status, _ in results if not 200 <= status < 300),
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": latencies[int(answered * 0.99) - 1] * 1000 if latencies else None,
        "max_ms": latencies[-1] * 1000 if latencies else None,
        "achieved_per_s": answered / max(1e-9, last_done - start),
        "scrapes": scrapes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--scrape-every", type=float, default=0, help="seconds; 0: no scraper")
    args = parser.parse_args()
    import uvloop

    result = uvloop.run(run(args.url, args.rate, args.seconds, args.connections, args.scrape_every))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
