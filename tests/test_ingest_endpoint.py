"""``POST /v1/events`` as served, request by request: the status, the answer's JSON and headers,
and that a refused request changes no series but the self-metrics, for good, bad,
unauthenticated, gzip and oversize requests."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from tests.conftest import CLOCK
from tests.exposition import SampleKey, domain, key, samples

TOKEN = "ingest-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
SETTINGS = {
    "ingest_tokens": [TOKEN],
    "max_body_bytes": 4096,
    "max_decompressed_bytes": 8192,
    "max_batch_events": 3,
}
GOOD = {"type": "llm_request", "model": "m", "latency_ms": 10, "event_id": "e-1"}
FEEDBACK = {"type": "feedback", "thumbs": "up"}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


# (body, headers, status, what the answer says: its error, or how many events it accepted).
REQUESTS = [
    pytest.param(_json(GOOD), AUTH, 200, 1, id="one-event"),
    pytest.param(_json({"events": [GOOD, FEEDBACK]}), AUTH, 200, 2, id="batch"),
    pytest.param(_json({"events": [GOOD, GOOD]}), AUTH, 200, 1, id="duplicate-in-batch"),
    pytest.param(_json(GOOD), {**AUTH, "traceparent": TRACEPARENT}, 200, 1, id="traceparent"),
    pytest.param(
        _json(GOOD), {**AUTH, "content-type": "application/cloudevents+json"}, 200, 1, id="json-suffix"
    ),
    pytest.param(_json(GOOD), {"authorization": f"Bearer {TOKEN}"}, 200, 1, id="no-content-type"),
    pytest.param(
        _json(GOOD), {**AUTH, "content-type": "text/plain"}, 415, "unsupported_media_type", id="not-json"
    ),
    pytest.param(_json(GOOD), {"content-type": "application/json"}, 401, "unauthorized", id="no-token"),
    pytest.param(
        _json(GOOD), {**AUTH, "authorization": "Bearer wrong"}, 401, "unauthorized", id="wrong-token"
    ),
    pytest.param(
        _json(GOOD), {**AUTH, "authorization": f"Basic {TOKEN}"}, 401, "unauthorized", id="wrong-scheme"
    ),
    pytest.param(_json(GOOD), {**AUTH, "authorization": f"bearer  {TOKEN} "}, 200, 1, id="token-spaced"),
    pytest.param(b"{not json", AUTH, 400, "malformed_body", id="malformed"),
    pytest.param(b"", AUTH, 400, "malformed_body", id="empty"),
    pytest.param(_json({"type": "llm_request"}), AUTH, 422, "invalid_events", id="invalid-event"),
    pytest.param(
        _json({"events": [GOOD, {"type": "nope"}]}), AUTH, 422, "invalid_events", id="invalid-in-batch"
    ),
    pytest.param(_json({"events": [FEEDBACK] * 4}), AUTH, 413, "too_large", id="too-many-events"),
    pytest.param(_json({"events": [FEEDBACK] * 60}), AUTH, 413, "too_large", id="body-too-large"),
    pytest.param(
        gzip.compress(_json({"events": [GOOD]})), {**AUTH, "content-encoding": "gzip"}, 200, 1, id="gzip"
    ),
    pytest.param(
        gzip.compress(b" " * 9000 + _json(GOOD)),
        {**AUTH, "content-encoding": "gzip"},
        413,
        "too_large",
        id="gzip-over-cap",
    ),
    pytest.param(
        b"\x1f\x8b not gzip", {**AUTH, "content-encoding": "gzip"}, 400, "malformed_body", id="bad-gzip"
    ),
    pytest.param(
        gzip.compress(_json(GOOD))[:-4],
        {**AUTH, "content-encoding": "gzip"},
        400,
        "malformed_body",
        id="gzip-truncated",
    ),
    pytest.param(
        _json(GOOD),
        {**AUTH, "content-encoding": "br"},
        415,
        "unsupported_media_type",
        id="unsupported-encoding",
    ),
]


async def _exchange(app: Any, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, str, str]:
    """The answer to the request, and the exposition before and after it."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        before = (await client.get("/metrics")).text
        response = await client.post("/v1/events", content=body, headers=headers)
        return response, before, (await client.get("/metrics")).text


def _domain(exposition: str) -> dict[SampleKey, float]:
    """The samples of the optimizer's metrics: all but the exporter's own."""
    return domain(samples(exposition))


@pytest.mark.parametrize(("body", "headers", "status", "said"), REQUESTS)
def test_each_request_gets_its_answer(body: bytes, headers: dict[str, str], status: int, said: Any) -> None:
    app = create_app(Settings(**SETTINGS), clock=lambda: CLOCK)
    response, before, after = asyncio.run(_exchange(app, body, headers))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    answer = response.json()
    if status == 200:
        assert answer["accepted"] == said
        assert _domain(after) != _domain(before)
        return
    assert answer["error"] == said and answer["message"]
    assert _domain(after) == _domain(before), "a refused request changes nothing"
    if status == 401:
        assert response.headers["www-authenticate"] == 'Bearer realm="ingest"'


def test_a_retried_body_is_acknowledged_and_applied_once() -> None:
    app = create_app(Settings(**SETTINGS), clock=lambda: CLOCK)

    async def twice() -> tuple[httpx.Response, httpx.Response, str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            first = await client.post("/v1/events", content=_json(GOOD), headers=AUTH)
            again = await client.post("/v1/events", content=_json(GOOD), headers=AUTH)
            return first, again, (await client.get("/metrics")).text

    first, again, exposition = asyncio.run(twice())
    assert first.json() == {"accepted": 1, "by_type": {"llm_request": 1}, "duplicates": 0}
    assert again.json() == {"accepted": 0, "by_type": {}, "duplicates": 1}
    assert (
        samples(exposition)[
            key("llmopt_llm_requests_total", model="m", provider="unknown", task_type="unknown")
        ]
        == 1
    )


def test_served_endpoint_keeps_the_client_request_id_and_logs_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings(**SETTINGS), clock=lambda: CLOCK)
    headers = {**AUTH, "x-request-id": "client-id-7", "traceparent": TRACEPARENT}
    with caplog.at_level(logging.INFO, logger="llmopt_exporter.access"):
        response, _, _ = asyncio.run(_exchange(app, _json(GOOD), headers))
    assert response.headers["x-request-id"] == "client-id-7"
    lines = [record for record in caplog.records if record.name == "llmopt_exporter.access"]
    posts = [record for record in lines if record.getMessage() == "POST /v1/events 200"]
    assert len(posts) == 1
    context = posts[0].context  # type: ignore[attr-defined]
    assert {name: context[name] for name in ("method", "path", "status", "client")} == {
        "method": "POST",
        "path": "/v1/events",
        "status": 200,
        "client": "127.0.0.1",
    }
    assert context["duration_ms"] >= 0


def test_other_methods_on_the_ingest_path_are_not_allowed() -> None:
    app = create_app(Settings(**SETTINGS), clock=lambda: CLOCK)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            return await client.get("/v1/events")

    response = asyncio.run(get())
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["x-request-id"]
