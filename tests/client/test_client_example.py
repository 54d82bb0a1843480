"""The example optimizer loop runs against the real exporter and reports only valid events."""

from __future__ import annotations

import subprocess
import sys

from client_support import REPO, Exporter, key


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
