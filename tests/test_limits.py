"""Limits: gzip bodies with a cap on their decoded size, encodings, and backpressure."""

from __future__ import annotations

import asyncio
import gzip
import json
import resource
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest

from app.api.body import MAX_GZIP_MEMBERS
from app.config import Settings
from app.main import create_app
from tests.conftest import CLOCK, Exporter, make_exporter
from tests.exposition import SampleKey, changed, key, samples

EVENTS = {"events": [{"type": "feedback", "thumbs": "up"}] * 3}


def test_gzip_body_is_accepted(exporter: Exporter) -> None:
    response = exporter.post(gzip.compress(json.dumps(EVENTS).encode()), **{"content-encoding": "gzip"})
    assert response.status_code == 200
    assert response.json()["accepted"] == 3


def test_gzip_members_one_after_the_other_decode_to_their_concatenation(exporter: Exporter) -> None:
    """RFC 1952 allows several members in one body, as `cat a.gz b.gz` makes."""
    text = json.dumps(EVENTS).encode()
    body = gzip.compress(text[:20]) + gzip.compress(text[20:])
    response = exporter.post(body, **{"content-encoding": "gzip"})
    assert (response.status_code, response.json()["accepted"]) == (200, 3)


@pytest.mark.parametrize(
    ("member", "members", "status", "reason"),
    [
        pytest.param(gzip.compress(b" "), MAX_GZIP_MEMBERS + 1, 400, "malformed_body", id="too-many-members"),
        pytest.param(gzip.compress(b" " * 2000), 3, 413, "too_large", id="members-together-over-the-cap"),
    ],
)
def test_gzip_members_are_bounded(member: bytes, members: int, status: int, reason: str) -> None:
    """Each member alone is within max_decompressed_bytes (4 KiB here); their count and their sum are
    bounded as well."""
    for exporter in make_exporter(max_decompressed_bytes=4096):
        before = exporter.scrape()
        response = exporter.post(member * members, **{"content-encoding": "gzip"})
        assert (response.status_code, response.json()["error"]) == (status, reason)
        after = exporter.scrape()
        assert changed(before, after) == {}
        assert after[key("llmopt_exporter_events_rejected_total", type="unknown", reason=reason)] == 1


def test_zip_bomb_is_413_and_memory_stays_flat() -> None:
    # 1 GiB of zeros compresses to about 1 MiB; the cap stops decoding after 64 KiB.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(compressor.compress(b"\0" * (1 << 20)) for _ in range(1024)) + compressor.flush()
    assert len(bomb) < 1_100_000
    for exporter in make_exporter(max_body_bytes=2 << 20, max_decompressed_bytes=64 << 10):
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        before = exporter.scrape()
        response = exporter.post(bomb, **{"content-encoding": "gzip"})
        assert response.status_code == 413
        assert "max_decompressed_bytes" in response.json()["message"]
        after = exporter.scrape()
        assert changed(before, after) == {}
        assert after[key("llmopt_exporter_events_rejected_total", type="unknown", reason="too_large")] == 1
        # Peak RSS (KiB) may not grow by anything near the decoded size.
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 64 * 1024


def test_decoded_body_just_under_the_cap_passes() -> None:
    body = json.dumps(EVENTS).encode()
    for exporter in make_exporter(max_decompressed_bytes=max(1024, len(body))):
        assert exporter.post(gzip.compress(body), **{"content-encoding": "gzip"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "encoding", "status", "reason"),
    [
        pytest.param(b"not gzip at all", "gzip", 400, "malformed_body", id="not-gzip"),
        pytest.param(
            gzip.compress(b'{"type":"feedback","thumbs":"up"}')[:-12],
            "gzip",
            400,
            "malformed_body",
            id="truncated-gzip",
        ),
        pytest.param(gzip.compress(b"{}") + b"trailing", "gzip", 400, "malformed_body", id="trailing-data"),
        pytest.param(
            b'{"type":"feedback","thumbs":"up"}',
            "br",
            415,
            "unsupported_media_type",
            id="unsupported-encoding",
        ),
    ],
)
def test_bad_encodings(exporter: Exporter, body: bytes, encoding: str, status: int, reason: str) -> None:
    before = exporter.scrape()
    response = exporter.post(body, **{"content-encoding": encoding})
    assert (response.status_code, response.json()["error"]) == (status, reason)
    after = exporter.scrape()
    assert changed(before, after) == {}
    assert after[key("llmopt_exporter_events_rejected_total", type="unknown", reason=reason)] == 1


@pytest.mark.parametrize(
    ("settings", "second_status"),
    [
        pytest.param({"max_concurrent_requests": 1}, 200, id="a-slow-body-holds-no-request-slot"),
        pytest.param(
            {"max_pending_body_bytes": 1024}, 503, id="bodies-arriving-past-the-byte-budget-are-shed"
        ),
    ],
)
def test_slow_bodies_hold_only_the_bytes_they_sent(settings: dict[str, int], second_status: int) -> None:
    """A body that has sent 1000 bytes and stalls: it takes no request slot, only its 1000 bytes of
    max_pending_body_bytes. Another client is served, unless those bytes fill the budget."""

    async def scenario() -> tuple[httpx.Response, httpx.Response, dict[SampleKey, float]]:
        app = create_app(Settings(**settings), clock=lambda: CLOCK)
        release = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b'{"type":"feedback",' + b" " * 981
            await release.wait()
            yield b'"thumbs":"up"}'

        transport = httpx.ASGITransport(app=app)
        headers = {"content-type": "application/json"}
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            first = asyncio.create_task(client.post("/v1/events", content=slow_body(), headers=headers))
            await asyncio.sleep(0.05)
            second = await client.post("/v1/events", json={"type": "feedback", "thumbs": "down"})
            release.set()
            first_response = await first
            scrape = await client.get("/metrics")
            return first_response, second, samples(scrape.text)

    first, second, after = asyncio.run(scenario())
    assert first.status_code == 200
    assert second.status_code == second_status
    is_shed = second_status == 503
    if is_shed:
        assert (second.headers["retry-after"], second.json()["error"]) == ("1", "overloaded")
    assert after[key("llmopt_exporter_requests_shed_total")] == is_shed
    assert after[key("llmopt_exporter_events_accepted_total", type="feedback")] == 2 - is_shed


def test_a_body_waiting_for_its_turn_holds_its_bytes_and_its_slot_until_answered() -> None:
    """Ingest's slice of the loop is spent (a large batch ran this turn): a body that has arrived
    waits, and meanwhile counts against max_pending_body_bytes and max_concurrent_requests. Past
    max_wait_seconds it gets 503; nothing of either body is applied, and nothing stays held."""
    import time

    settings = Settings(max_pending_body_bytes=2048, max_wait_seconds=0.2)

    async def scenario() -> tuple[httpx.Response, httpx.Response, dict[SampleKey, float], int, int]:
        app = create_app(settings, clock=lambda: CLOCK)
        exporter = app.state.exporter
        transport = httpx.ASGITransport(app=app)
        event = {"type": "feedback", "thumbs": "up"}
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            exporter.turns.started = time.monotonic() - 1  # this turn's slice is long spent
            waiting = asyncio.create_task(
                client.post("/v1/events", json={"events": [event] * 40})  # about 1.3 KB
            )
            await asyncio.sleep(0.05)
            assert exporter.requests_applying == 1 and exporter.body_budget.held > 1024
            crowded = await client.post("/v1/events", json={"events": [event] * 40})
            first = await waiting
            scrape = await client.get("/metrics")
            return first, crowded, samples(scrape.text), exporter.requests_applying, exporter.body_budget.held

    first, crowded, after, applying, held = asyncio.run(scenario())
    assert (first.status_code, first.json()["error"]) == (503, "overloaded")
    assert "max_wait_seconds" in first.json()["message"]
    assert (crowded.status_code, crowded.json()["error"]) == (503, "overloaded")
    assert "max_pending_body_bytes" in crowded.json()["message"]
    assert after[key("llmopt_exporter_requests_shed_total")] == 2
    assert after[key("llmopt_exporter_events_accepted_total", type="feedback")] == 0
    assert (applying, held) == (0, 0)
