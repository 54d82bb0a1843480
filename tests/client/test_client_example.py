"""The example optimizer loop runs against the real exporter and reports only valid events."""

from __future__ import annotations

import subprocess
import sys

from client_support import REPO, Exporter, free_port, key


def rejected(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return sum(
        value for (name, _), value in samples.items() if name == "llmopt_exporter_events_rejected_total"
    )


def test_the_example_optimizer_reports_every_request(exporter: Exporter) -> None:
    before = exporter.samples()
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "optimizer_loop.py"),
            "--url",
            exporter.url,
            "--iterations",
            "60",
            "--pause",
            "0",
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    after = exporter.samples()
    labels = {"model": "toy-model", "provider": "toy", "task_type": "summarization"}
    assert after[key("llmopt_llm_requests_total", **labels)] == 60
    pulls = sum(
        value
        for (name, series), value in after.items()
        if name == "llmopt_bandit_pulls_total" and ("bandit", "temperature") in series
    )
    assert pulls == 60
    assert rejected(after) == rejected(before)


def test_the_example_starts_no_experiment_when_the_halt_guard_says_halt(exporter: Exporter) -> None:
    before = exporter.samples()
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "optimizer_loop.py"),
            "--url",
            exporter.url,
            "--iterations",
            "20",
            "--pause",
            "0",
            "--seed",
            "7",
            # Nothing listens there: the guard cannot see the error budget, and by default halts.
            "--prometheus",
            f"http://127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    after = exporter.samples()
    labels = {"model": "toy-model", "provider": "toy", "task_type": "summarization"}
    requests = key("llmopt_llm_requests_total", **labels)
    assert after[requests] - before.get(requests, 0) == 20  # serving goes on
    started = key("llmopt_experiments_started_total")
    assert after[started] == before[started]
    assert "Not starting the experiment: optimization is halted" in result.stderr
    assert rejected(after) == rejected(before)
