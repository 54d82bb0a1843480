"""Helpers of the client tests: the real exporter as a process, its scrapes, and polling."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

REPO = Path(__file__).resolve().parents[2]
SampleKey = tuple[str, frozenset[tuple[str, str]]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def key(name: str, **labels: str) -> SampleKey:
    return name, frozenset(labels.items())


class Exporter:
    """The real exporter, run as a process on a loopback port."""

    def __init__(self, port: int, log_file: Path, env: dict[str, str] | None = None) -> None:
        self.port = port
        self._env = env
        self.url = f"http://127.0.0.1:{port}"
        self._log_file = log_file
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log = self._log_file.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(self.port), "--log-level", "warning"],
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(self._env or {})},
        )
        if not wait_until(self._is_ready, timeout=20):
            self.stop()
            pytest.fail(f"exporter on port {self.port} did not get ready:\n{self._log_file.read_text()}")

    def _is_ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            pytest.fail(f"exporter exited with {self._process.returncode}:\n{self._log_file.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()

    def scrape(self, accept: str = "text/plain") -> str:
        request = urllib.request.Request(f"{self.url}/metrics", headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.read().decode())

    def samples(self) -> dict[SampleKey, float]:
        """Every sample of the text exposition, by name and labels."""
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(self.scrape())
            for sample in family.samples
        }

    def openmetrics_samples(self) -> list[Sample]:
        """Every sample of the OpenMetrics exposition (the only one that carries exemplars)."""
        text = self.scrape("application/openmetrics-text; version=1.0.0")
        families = parse_openmetrics(text)  # type: ignore[no-untyped-call]
        return [sample for family in families for sample in family.samples]

    def exemplars(self, model: str) -> list[tuple[str, dict[str, str]]]:
        """The exemplars on the series of one model, by sample name, sorted."""
        return sorted(
            (sample.name, dict(sample.exemplar.labels))
            for sample in self.openmetrics_samples()
            if sample.labels.get("model") == model and sample.exemplar is not None
        )
