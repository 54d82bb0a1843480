"""The example optimizer loop runs against the real exporter and reports only valid events."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

from client_support import REPO, Exporter, free_port, key

from tests.receivers import HttpReceiver


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


def _run_example(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "optimizer_loop.py"), "--url", url, "--pause", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_example_prints_one_status_line_per_round(exporter: Exporter) -> None:
    result = _run_example(exporter.url, "--iterations", "120", "--seed", "7")
    assert result.returncode == 0, result.stderr
    *rounds, done = result.stdout.splitlines()
    status = (
        r"round (\d)/3: (\d+) requests, \d+ failed; best arm t[\d.]+ \(reward [\d.]+\); "
        r"quality control [\d.]+, concise [\d.]+; events sent \d+, pending \d+, failed 0, dropped 0"
    )
    matches = [re.fullmatch(status, line) for line in rounds]
    assert all(matches), rounds
    assert [(m.group(1), m.group(2)) for m in matches if m] == [("1", "50"), ("2", "100"), ("3", "120")]
    assert done.startswith("done: 120 requests; events sent ")
    assert f"{exporter.url}/metrics" in done


def test_the_examples_spans_reach_the_otlp_endpoint_and_match_the_exemplars(
    new_exporter: Callable[..., Exporter],
) -> None:
    server = new_exporter()
    server.start()
    with HttpReceiver() as backend:
        result = _run_example(server.url, "--iterations", "30", "--seed", "7", "--otlp", backend.url)
        assert result.returncode == 0, result.stderr
        spans = [
            span
            for delivery in backend.on("/v1/traces")
            for resource in delivery.body["resourceSpans"]
            for scope in resource["scopeSpans"]
            for span in scope["spans"]
        ]
    by_name = Counter(span["name"] for span in spans)
    assert by_name["process_request"] == by_name["bandit_selection"] == by_name["llm_call"] == 30
    roots = {span["spanId"]: span["traceId"] for span in spans if span["name"] == "process_request"}
    calls = [span for span in spans if span["name"] == "llm_call"]
    assert all(roots[call["parentSpanId"]] == call["traceId"] for call in calls)
    exemplar_traces = {
        sample.exemplar.labels["trace_id"]
        for sample in server.openmetrics_samples()
        if sample.labels.get("model") == "toy-model" and sample.exemplar is not None
    }
    assert exemplar_traces
    assert exemplar_traces <= {call["traceId"] for call in calls}
