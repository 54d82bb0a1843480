from __future__ import annotations

import json
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
# Every test exporter believes it is midnight, 2026-11-27 UTC, for events without a timestamp.
CLOCK = datetime(2026, 11, 27, tzinfo=UTC).timestamp()


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
