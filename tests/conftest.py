from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.exposition import SampleKey, samples

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# Every in-process test exporter believes it is noon, 2026-11-27 UTC: after every time of the
# examples, and within the window of event times it accepts.
CLOCK = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()
_TIME_FIELDS = ("timestamp", "opened_at")


class Exporter:
    """An in-process exporter with helpers to post events and read its metrics."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def post(self, body: Any, **headers: str) -> Any:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(
            "/v1/events", content=content, headers={"content-type": "application/json", **headers}
        )

    def post_example(self, name: str) -> Any:
        return self.post((EXAMPLES / f"{name}.json").read_bytes())

    def scrape(self) -> dict[SampleKey, float]:
        response = self.client.get("/metrics")
        assert response.status_code == 200
        return samples(response.text)


def make_exporter(**settings: Any) -> Iterator[Exporter]:
    app = create_app(Settings(**settings), clock=lambda: CLOCK)
    with TestClient(app) as client:
        yield Exporter(client)


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    yield from make_exporter()


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def moved_to_now(document: Any, now: float | None = None) -> Any:
    """``document`` (an event, a batch) with every event time moved as the clock moves from
    CLOCK to ``now`` (default: the real time), for exporters that run on the real clock."""
    shift = (time.time() if now is None else now) - CLOCK
    if isinstance(document, list):
        return [moved_to_now(item, CLOCK + shift) for item in document]
    if not isinstance(document, dict):
        return document
    moved = {name: moved_to_now(value, CLOCK + shift) for name, value in document.items()}
    for name in _TIME_FIELDS:
        value = document.get(name)
        if isinstance(value, str):
            moved[name] = datetime.fromtimestamp(ts(value) + shift, UTC).isoformat()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moved[name] = value + shift
    return moved
