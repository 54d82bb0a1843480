"""``POST /v1/events`` as served (the edge's bare ASGI endpoint) answers exactly as the FastAPI
route declared for it: same status, JSON body, headers and metric changes, for good, bad,
unauthenticated, gzip and oversize requests."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.edge import Edge
from app.main import create_app
from tests.conftest import CLOCK
from tests.exposition import SampleKey, samples

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


# (body, headers): every request goes to both a fresh served app and a fresh route-only app.
REQUESTS = [
    pytest.param(_json(GOOD), AUTH, id="one-event"),
    pytest.param(_json({"events": [GOOD, FEEDBACK]}), AUTH, id="batch"),
    pytest.param(_json({"events": [GOOD, GOOD]}), AUTH, id="duplicate-in-batch"),
    pytest.param(_json(GOOD), {**AUTH, "traceparent": TRACEPARENT}, id="traceparent"),
    pytest.param(_json(GOOD), {**AUTH, "content-type": "application/cloudevents+json"}, id="json-suffix"),
    pytest.param(_json(GOOD), {"authorization": f"Bearer {TOKEN}"}, id="no-content-type"),
    pytest.param(_json(GOOD), {**AUTH, "content-type": "text/plain"}, id="not-json-media-type"),
    pytest.param(_json(GOOD), {"content-type": "application/json"}, id="no-token"),
    pytest.param(_json(GOOD), {**AUTH, "authorization": "Bearer wrong"}, id="wrong-token"),
    pytest.param(_json(GOOD), {**AUTH, "authorization": f"Basic {TOKEN}"}, id="wrong-scheme"),
    pytest.param(_json(GOOD), {**AUTH, "authorization": f"bearer  {TOKEN} "}, id="token-spaced"),
    pytest.param(b"{not json", AUTH, id="malformed"),
    pytest.param(b"", AUTH, id="empty"),
    pytest.param(_json({"type": "llm_request"}), AUTH, id="invalid-event"),
    pytest.param(_json({"events": [GOOD, {"type": "nope"}]}), AUTH, id="invalid-in-batch"),
    pytest.param(_json({"events": [FEEDBACK] * 4}), AUTH, id="too-many-events"),
    pytest.param(_json({"events": [FEEDBACK] * 60}), AUTH, id="body-too-large"),
    pytest.param(gzip.compress(_json({"events": [GOOD]})), {**AUTH, "content-encoding": "gzip"}, id="gzip"),
    pytest.param(
        gzip.compress(b" " * 9000 + _json(GOOD)), {**AUTH, "content-encoding": "gzip"}, id="gzip-over-cap"
    ),
    pytest.param(b"\x1f\x8b not gzip", {**AUTH, "content-encoding": "gzip"}, id="bad-gzip"),
    pytest.param(gzip.compress(_json(GOOD))[:-4], {**AUTH, "content-encoding": "gzip"}, id="gzip-truncated"),
    pytest.param(_json(GOOD), {**AUTH, "content-encoding": "br"}, id="unsupported-encoding"),
    pytest.param(_json(GOOD), {**AUTH, "x-request-id": "client-id-1"}, id="client-request-id"),
]


def _without_edge(app: FastAPI) -> FastAPI:
    """The app with none of its edge: the FastAPI route answers POST /v1/events."""
    app.user_middleware = [middleware for middleware in app.user_middleware if middleware.cls is not Edge]
    return app


async def _exchange(app: Any, body: bytes, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        response = await client.post("/v1/events", content=body, headers=headers)
        # The same body again: duplicates of applied events are acknowledged, not applied.
        again = await client.post("/v1/events", content=body, headers=headers)
        assert again.status_code == response.status_code
        return again, (await client.get("/metrics")).text


def _comparable(response: httpx.Response) -> tuple[int, Any, list[tuple[str, str]]]:
    headers = [(name, value) for name, value in response.headers.multi_items() if name != "x-request-id"]
    return response.status_code, response.json(), headers


def _counted(exposition: str) -> dict[SampleKey, float]:
    """Every sample but those that measure time (the ingest duration's buckets and sum)."""
    return {
        sample_key: value
        for sample_key, value in samples(exposition).items()
        if sample_key[0].startswith("llmopt_")
        and sample_key[0] not in ("llmopt_exporter_ingest_duration_seconds_bucket",)
        and sample_key[0] != "llmopt_exporter_ingest_duration_seconds_sum"
    }


@pytest.mark.parametrize(("body", "headers"), REQUESTS)
def test_served_endpoint_answers_as_the_route(body: bytes, headers: dict[str, str]) -> None:
    served = create_app(Settings(**SETTINGS), clock=lambda: CLOCK)
    routed = create_app(Settings(**SETTINGS), clock=lambda: CLOCK)
    served_response, served_metrics = asyncio.run(_exchange(served, body, headers))
    routed_response, routed_metrics = asyncio.run(_exchange(_without_edge(routed), body, headers))
    assert _comparable(served_response) == _comparable(routed_response)
    assert _counted(served_metrics) == _counted(routed_metrics)
    assert served_response.headers["x-request-id"]


def test_served_endpoint_keeps_the_client_request_id_and_logs_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings(**SETTINGS), clock=lambda: CLOCK)
    headers = {**AUTH, "x-request-id": "client-id-7", "traceparent": TRACEPARENT}
    with caplog.at_level(logging.INFO, logger="llmopt_exporter.access"):
        response, _ = asyncio.run(_exchange(app, _json(GOOD), headers))
    assert response.headers["x-request-id"] == "client-id-7"
    lines = [record for record in caplog.records if record.name == "llmopt_exporter.access"]
    posts = [record for record in lines if record.getMessage() == "POST /v1/events 200"]
    assert len(posts) == 2
    context = posts[0].context  # type: ignore[attr-defined]
    assert {name: context[name] for name in ("method", "path", "status", "client")} == {
        "method": "POST",
        "path": "/v1/events",
        "status": 200,
        "client": "127.0.0.1",
    }
    assert context["duration_ms"] >= 0


def test_other_methods_on_the_ingest_path_reach_the_app() -> None:
    app = create_app(Settings(**SETTINGS), clock=lambda: CLOCK)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            return await client.get("/v1/events")

    response = asyncio.run(get())
    assert response.status_code == 405
    assert response.headers["x-request-id"]
