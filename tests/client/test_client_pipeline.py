"""When the client sends, what it keeps through an outage, what it drops, and that it never blocks."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from client_support import Exporter, key, wait_until
from llmopt_client import BudgetViolation, Client, Feedback, LlmRequest

FEEDBACK = {"experiment": "", "variant": ""}


def thumbs_up(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], model: str) -> float | None:
    return samples.get(key("llmopt_feedback_thumbs_total", model=model, **FEEDBACK, rating="up"))


def test_nothing_is_sent_before_a_trigger(exporter: Exporter, new_client: Callable[..., Client]) -> None:
    client = new_client(exporter.url, flush_interval=60, batch_size=100)
    client.emit(Feedback(model="pipeline-idle", thumbs="up"))

    time.sleep(0.3)
    assert client.stats.sent == 0
    assert thumbs_up(exporter.samples(), "pipeline-idle") is None


def test_a_critical_event_is_sent_at_once_with_everything_before_it(
    exporter: Exporter, new_client: Callable[..., Client]
) -> None:
    client = new_client(exporter.url, flush_interval=60, batch_size=100)
    client.emit(Feedback(model="pipeline-critical", thumbs="up"))
    client.emit(BudgetViolation(period="hour", spend_usd=12, limit_usd=10))

    assert wait_until(lambda: client.stats.sent == 2, timeout=2)
    assert thumbs_up(exporter.samples(), "pipeline-critical") == 1


@pytest.mark.parametrize(
    ("options", "count"),
    [
        pytest.param({"batch_size": 3, "flush_interval": 60}, 3, id="batch-size-reached"),
        pytest.param({"batch_size": 100, "flush_interval": 0.2}, 1, id="flush-interval-passed"),
    ],
)
def test_a_batch_is_sent_when_full_or_old_enough(
    exporter: Exporter, new_client: Callable[..., Client], options: dict[str, float], count: int
) -> None:
    model = f"pipeline-trigger-{count}"
    client = new_client(exporter.url, **options)
    for _ in range(count):
        client.emit(Feedback(model=model, thumbs="up"))

    assert wait_until(lambda: client.stats.sent == count, timeout=2)
    assert thumbs_up(exporter.samples(), model) == count


def test_close_sends_what_is_left(exporter: Exporter, new_client: Callable[..., Client]) -> None:
    client = new_client(exporter.url, flush_interval=60)
    client.emit(Feedback(model="pipeline-close", thumbs="up"))
    client.emit(Feedback(model="pipeline-close", thumbs="up"))

    client.close()
    assert client.stats.sent == 2
    assert thumbs_up(exporter.samples(), "pipeline-close") == 2

    client.emit(Feedback(model="pipeline-close", thumbs="up"))
    assert client.stats.dropped == 1


def test_a_server_that_is_down_then_up_loses_and_doubles_nothing(
    new_exporter: Callable[..., Exporter], new_client: Callable[..., Client]
) -> None:
    server = new_exporter()
    client = new_client(server.url, batch_size=10)
    for index in range(30):
        client.emit(LlmRequest(model="pipeline-outage", latency_ms=125 * index))

    assert wait_until(lambda: client.stats.retried >= 10, timeout=2)
    server.start()
    assert client.flush(timeout=10)

    samples = server.samples()
    labels = {"model": "pipeline-outage", "provider": "unknown", "task_type": "unknown"}
    assert samples[key("llmopt_llm_requests_total", **labels)] == 30
    assert samples[key("llmopt_llm_request_duration_seconds_sum", **labels)] == 0.125 * sum(range(30))
    assert samples[key("llmopt_exporter_events_accepted_total", type="llm_request")] == 30
    stats = client.stats
    assert (stats.sent, stats.dropped, stats.failed, stats.pending) == (30, 0, 0, 0)


def test_a_full_buffer_drops_the_oldest_and_counts_them(
    new_exporter: Callable[..., Exporter], new_client: Callable[..., Client]
) -> None:
    server = new_exporter()
    client = new_client(server.url, max_buffer=5)
    for index in range(8):
        client.emit(Feedback(model=f"pipeline-overflow-{index}", thumbs="up"))

    assert (client.stats.dropped, client.stats.pending) == (3, 5)
    server.start()
    assert client.flush(timeout=10)

    samples = server.samples()
    assert {index: thumbs_up(samples, f"pipeline-overflow-{index}") for index in range(8)} == {
        0: None,
        1: None,
        2: None,
        3: 1,
        4: 1,
        5: 1,
        6: 1,
        7: 1,
    }
    assert (client.stats.sent, client.stats.dropped) == (5, 3)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers: every request hangs until it times out
    (or until the listener closes; request it after ``new_client`` so that it closes first)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_silent_server_never_blocks_the_calling_thread(
    new_client: Callable[..., Client], silent_server: str
) -> None:
    client = new_client(silent_server, batch_size=10, timeout=5)
    slowest = 0.0
    for index in range(500):
        started = time.perf_counter()
        client.emit(BudgetViolation(period="hour") if index % 50 == 0 else Feedback(thumbs="up"))
        slowest = max(slowest, time.perf_counter() - started)

    started = time.perf_counter()
    assert not client.flush(timeout=0.2)
    client.close(timeout=0.2)
    waited = time.perf_counter() - started

    # Blocking on the silent server would take the 5 s request timeout; a busy machine may delay a
    # thread switch by tens of milliseconds, which is not blocking.
    assert slowest < 0.5
    assert waited < 1.5


def test_a_silent_server_never_blocks_the_event_loop(
    new_client: Callable[..., Client], silent_server: str
) -> None:
    client = new_client(silent_server, batch_size=10, timeout=5)

    async def optimizer() -> float:
        gaps: list[float] = []

        async def tick() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        for _ in range(100):
            async with client.llm_call("pipeline-async") as call:
                call.record(input_tokens=1)
            client.emit(BudgetViolation(period="day"))
            await asyncio.sleep(0)
        assert not await client.aflush(timeout=0.2)
        await client.aclose(timeout=0.2)
        ticker.cancel()
        return max(gaps)

    # Blocking on the silent server would stall the loop for the 5 s request timeout.
    assert asyncio.run(optimizer()) < 0.5
