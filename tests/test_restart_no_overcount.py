"""Restarts against a real Prometheus: counters are never over-counted, state gauges come back.

Counters restart at zero (they are not in the snapshot), so Prometheus sees a reset and counts what
was posted before and after exactly once. A counter restored from a snapshot older than the last
scrape would instead go backwards: Prometheus takes the drop for a reset and counts the restored
part a second time (or, when no scrape sees the drop, misses the events posted since).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app import metrics as m
from app.snapshot import SNAPSHOT_GAUGES
from tests.exposition import SampleKey, samples
from tests.processes import EXPORTER, PROMETHEUS, free_port, running

EXPERIMENT = "prompt-optimization-v5"
# Gauges a restart must bring back: the snapshotted ones and those derived from the restored state.
STATE_GAUGES = frozenset(
    spec.name for spec in (*SNAPSHOT_GAUGES, m.EXPERIMENTS_ACTIVE, m.INCIDENTS_OPEN, m.LAST_IMPROVEMENT)
)
STATE: list[dict[str, Any]] = [
    {"type": "experiment", "action": "started", "experiment_id": EXPERIMENT},
    {"type": "experiment", "action": "progress", "experiment_id": EXPERIMENT, "progress": 0.42},
    {"type": "budget", "action": "limit", "period": "day", "limit_usd": 1000},
    {"type": "model_health", "model": "gpt-4o-mini", "provider": "openai", "available": True},
]
BEFORE, AFTER = 7, 5  # llm_request events posted before and after the restart
BEFORE_SNAPSHOT = 4  # of BEFORE, posted before the last snapshot
# Long enough that the next periodic snapshot comes after Prometheus scraped the later events.
SNAPSHOT_INTERVAL = 5.0
BEFORE_COST, AFTER_COST = 0.25, 0.125  # US dollars per call, exact in binary


def llm_requests(count: int, cost_usd: float, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "llm_request",
            "event_id": f"{prefix}-{index}",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "latency_ms": 120,
            "cost_usd": cost_usd,
        }
        for index in range(count)
    ]


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path
    ports: dict[str, int]  # exporter port per scrape job

    def query(self, expr: str) -> list[dict[str, Any]]:
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(address, timeout=5) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The value of a one-element instant vector, or None while it is empty."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus scraping, every second, one exporter port per test (started later)."""
    directory = tmp_path_factory.mktemp("prometheus")
    ports = {"kill": free_port(), "term": free_port()}
    jobs = [
        {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        for job, port in ports.items()
    ]
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": jobs}
    (directory / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    listen = f"127.0.0.1:{free_port()}"
    argv = [
        PROMETHEUS,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address={listen}",
    ]
    log = directory / "prometheus.log"
    with running(argv, f"http://{listen}/-/ready", log):
        yield Prometheus(f"http://{listen}", log, ports)


@contextlib.contextmanager
def shown_on_failure(*logs: Path) -> Iterator[None]:
    """Print the logs of daemons that outlived (or died before) the failing block."""
    try:
        yield
    except BaseException:
        for log in logs:
            print(f"--- {log} ---\n{log.read_text(errors='replace') if log.exists() else '(none)'}")
        raise


def post(url: str, events: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["accepted"] == len(events)


def scrape(url: str) -> dict[SampleKey, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return samples(response.read().decode())


def state_gauges(exposed: dict[SampleKey, float]) -> dict[SampleKey, float]:
    return {sample: value for sample, value in exposed.items() if sample[0] in STATE_GAUGES}


def wait_until(is_done: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not is_done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.2)


def counted(values: list[float]) -> float:
    """All a counter series counted: its first value plus every rise, where a drop is a reset
    (the counter restarted from zero and its new value was counted since) - Prometheus' rule."""
    total = values[0]
    for previous, current in itertools.pairwise(values):
        total += current - previous if current >= previous else current
    return total


def raw_total(prometheus: Prometheus, metric: str, job: str) -> float:
    """What Prometheus' raw samples of the last 5 minutes say was counted, over all series."""
    series = prometheus.query(f'{metric}{{job="{job}"}}[5m]')
    assert series, f"Prometheus has no samples of {metric}"
    return sum(counted([float(value) for _, value in one["values"]]) for one in series)


def restart_and_check(
    prometheus: Prometheus, tmp_path: Path, job: str, end: Callable[[subprocess.Popen[bytes]], None]
) -> None:
    """Post, let Prometheus scrape, ``end`` the exporter, start it again on the same port and
    snapshot file, post more; then the state is back and nothing was counted twice.

    Some events are posted after the last periodic snapshot and scraped before the exporter ends:
    a counter restored from that snapshot would go backwards, and Prometheus would count it twice.
    """
    port = prometheus.ports[job]
    url = f"http://127.0.0.1:{port}"
    argv = [str(EXPORTER), "--host", "127.0.0.1", "--port", str(port)]
    # After a kill only a periodic snapshot can help; after SIGTERM only the one written at shutdown.
    interval = SNAPSHOT_INTERVAL if job == "kill" else 3600.0
    env = {
        "LLMOPT_SNAPSHOT_FILE": str(tmp_path / "state.json"),
        "LLMOPT_SNAPSHOT_INTERVAL_SECONDS": str(interval),
    }
    requests_total = f'sum(llmopt_llm_requests_total{{job="{job}"}})'
    first_log, second_log = tmp_path / "exporter-first.log", tmp_path / "exporter-second.log"
    with shown_on_failure(prometheus.log):
        with running(argv, f"{url}/readyz", first_log, env=env) as first:
            post(url, [*STATE, *llm_requests(BEFORE_SNAPSHOT, BEFORE_COST, "before-snapshot")])
            if job == "kill":
                posted_at = time.time()
                wait_until(lambda: last_snapshot(url) > posted_at, "a periodic snapshot", 2 * interval)
            post(url, llm_requests(BEFORE - BEFORE_SNAPSHOT, BEFORE_COST, "before"))
            late_posted_at = time.time()
            wait_until(lambda: prometheus.value(requests_total) == BEFORE, "Prometheus to scrape the events")
            state_before = state_gauges(scrape(url))
            assert state_before[("llmopt_experiment_progress_ratio", (("experiment", EXPERIMENT),))] == 0.42
            if job == "kill":
                assert last_snapshot(url) < late_posted_at, "the snapshot must predate the last scrape"
            end(first)
        with shown_on_failure(first_log), running(argv, f"{url}/readyz", second_log, env=env):
            restarted = scrape(url)
            assert state_gauges(restarted) == state_before
            assert not [sample for sample in restarted if sample[0] == "llmopt_llm_requests_total"]
            post(url, llm_requests(AFTER, AFTER_COST, "after"))
            wait_until(lambda: prometheus.value(requests_total) == AFTER, "Prometheus to scrape the restart")
            requests_counted = raw_total(prometheus, "llmopt_llm_requests_total", job)
            cost_counted = raw_total(prometheus, "llmopt_llm_cost_usd_total", job)
            increase = prometheus.value(f'sum(increase(llmopt_llm_requests_total{{job="{job}"}}[5m]))')
    assert requests_counted == BEFORE + AFTER
    assert math.isclose(cost_counted, BEFORE * BEFORE_COST + AFTER * AFTER_COST)
    # increase() extrapolates to the window's edges, so it is only bounded, not exact. On its own it
    # cannot see an over-count: it never counts a series' first sample.
    assert increase is not None and increase <= (BEFORE + AFTER) * 1.25


def last_snapshot(url: str) -> float:
    return scrape(url).get(("llmopt_exporter_snapshot_last_success_timestamp_seconds", ()), 0.0)


def kill_9(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def terminate(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGTERM)
    # uvicorn shuts down gracefully, then raises the signal again: the status says what stopped it.
    assert process.wait(10) in (0, -signal.SIGTERM)


def test_kill_9_restart_counts_nothing_twice_and_restores_the_last_snapshot(
    prometheus: Prometheus, tmp_path: Path
) -> None:
    restart_and_check(prometheus, tmp_path, "kill", kill_9)


def test_sigterm_restart_counts_nothing_twice_and_restores_the_state(
    prometheus: Prometheus, tmp_path: Path
) -> None:
    restart_and_check(prometheus, tmp_path, "term", terminate)
