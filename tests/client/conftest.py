"""Fixtures of the client tests: the real exporter as a process, and short-lived clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from client_support import Exporter, free_port
from llmopt_client import Client


@pytest.fixture(scope="session")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """One exporter for the tests that can share it (each uses its own label values)."""
    server = Exporter(free_port(), tmp_path_factory.mktemp("exporter") / "exporter.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def new_exporter(tmp_path: Path) -> Iterator[Callable[..., Exporter]]:
    """Makes a fresh exporter (on a free port unless given one, with extra environment variables),
    not started yet: the test decides when it comes up."""
    made: list[Exporter] = []

    def make(port: int | None = None, env: dict[str, str] | None = None) -> Exporter:
        server = Exporter(port or free_port(), tmp_path / f"exporter-{len(made)}.log", env)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def new_client() -> Iterator[Callable[..., Client]]:
    """Makes clients with test-sized timings (nothing is sent on a timer unless asked); closes them
    all at the end of the test."""
    made: list[Client] = []

    def make(
        url: str,
        *,
        flush_interval: float = 60.0,
        batch_size: int = 100,
        max_buffer: int = 10_000,
        timeout: float = 5.0,
    ) -> Client:
        client = Client(
            url,
            flush_interval=flush_interval,
            batch_size=batch_size,
            max_buffer=max_buffer,
            timeout=timeout,
            retry_initial=0.05,
            retry_max=0.2,
            close_timeout=2.0,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=0.5)
