"""A flood of ingest that keeps the exporter's CPU busy, against the real server: ingest sheds
with 503 once it falls behind (however few requests are in flight at once), what it accepts is
applied whole, and health checks and scrapes keep answering meanwhile."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from multiprocessing.queues import Queue

import pytest

from tests.exposition import key, samples
from tests.processes import exporter_process

WRITERS = 24
BATCH = 5000  # max_batch_events: each batch holds the event loop as long as one may
FLOOD_SECONDS = 6.0
MAX_WAIT = 0.1  # max_wait_seconds of the exporter under test
# Health checks and scrapes wait a few turns of the event loop, each with about one batch of
# ingest; the bound leaves room for a busy machine. Without turns they took seconds.
HEALTH_BOUND_SECONDS = 1.5
EVENT = {
    "type": "llm_request",
    "model": "m",
    "provider": "p",
    "input_tokens": 10,
    "output_tokens": 5,
    "latency_ms": 120,
}
BODY = json.dumps({"events": [EVENT] * BATCH}).encode()


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("overload")
    with exporter_process(directory, env={"LLMOPT_MAX_WAIT_SECONDS": str(MAX_WAIT)}) as url:
        yield url


def connection(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=30)


def write_until(url: str, deadline: float, statuses: list[tuple[int, str]]) -> None:
    """POST the batch again and again until ``deadline``, noting each status and its Retry-After;
    after a 503, wait a moment (less than the Retry-After asked for) and go on."""
    conn = connection(url)
    try:
        while time.monotonic() < deadline:
            conn.request("POST", "/v1/events", BODY, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            statuses.append((response.status, response.getheader("Retry-After") or ""))
            if response.status == 503:
                time.sleep(0.05)
    finally:
        conn.close()


def flood(url: str, deadline: float, results: Queue[list[tuple[int, str]]]) -> None:
    """WRITERS writers at once, in a process of their own, so that their work does not slow the
    test's own health checks; puts every (status, Retry-After) on ``results``."""
    statuses: list[tuple[int, str]] = []
    writers = [threading.Thread(target=write_until, args=(url, deadline, statuses)) for _ in range(WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    results.put(statuses)


def timed_get(url: str, path: str) -> tuple[int, float, bytes]:
    conn = connection(url)
    started = time.monotonic()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, time.monotonic() - started, body
    finally:
        conn.close()


def test_a_cpu_bound_flood_is_shed_and_health_and_scrapes_keep_answering(exporter: str) -> None:
    url = exporter
    deadline = time.monotonic() + FLOOD_SECONDS
    context = multiprocessing.get_context("fork")
    results: Queue[list[tuple[int, str]]] = context.Queue()
    writers = context.Process(target=flood, args=(url, deadline, results))
    writers.start()
    time.sleep(1.0)  # the flood under way
    checks: dict[str, list[float]] = {"/healthz": [], "/readyz": [], "/metrics": []}
    while time.monotonic() < deadline - 0.5:
        for path, took in checks.items():
            status, seconds, _ = timed_get(url, path)
            assert status == 200, path
            took.append(seconds)
        time.sleep(0.1)
    statuses = results.get(timeout=60)
    writers.join(timeout=10)

    answered = {status for status, _ in statuses}
    assert answered <= {200, 503}, answered
    assert 503 in answered, "ingest never shed: the flood did not keep the exporter busy, or no limit engaged"
    assert all(retry == "1" for status, retry in statuses if status == 503)
    assert 200 in answered
    for path, took in checks.items():
        assert len(took) >= 3, path
        assert max(took) < HEALTH_BOUND_SECONDS, (path, sorted(took)[-3:])
    # What was accepted was applied whole, and nothing else was.
    _, _, text = timed_get(url, "/metrics")
    exposed = samples(text.decode())
    accepted = sum(1 for status, _ in statuses if status == 200) * BATCH
    assert exposed[key("llmopt_exporter_events_accepted_total", type="llm_request")] == accepted
    assert exposed[key("llmopt_exporter_requests_shed_total")] == sum(1 for s, _ in statuses if s == 503)
