"""The traffic simulator tells its story to a real exporter, every event valid."""

from __future__ import annotations

import io
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.exposition import key, samples
from tests.processes import EXPORTER, exporter_process, free_port
from tests.receivers import HttpReceiver
from tools.simulate import EXPECTED_ALERTS, QUIET_ALERTS, Progress, Tally, story


def test_same_seed_same_events() -> None:
    assert story(10, 20, seed=3) == story(10, 20, seed=3)
    assert story(10, 20, seed=3) != story(10, 20, seed=4)


def test_simulate_command_feeds_a_real_exporter(tmp_path: Path) -> None:
    with exporter_process(tmp_path) as url:
        result = subprocess.run(
            [str(EXPORTER), "simulate", "--url", url, "--duration", "30", "--rate", "40", "--fast"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        posted = int(result.stdout.split()[1])
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            after = samples(response.read().decode())
    accepted = sum(v for (name, _), v in after.items() if name == "llmopt_exporter_events_accepted_total")
    rejected = sum(v for (name, _), v in after.items() if name == "llmopt_exporter_events_rejected_total")
    assert (accepted, rejected) == (posted, 0)
    assert posted > 30 * 40 * 0.8
    error_types = {
        dict(labels)["error_type"] for (name, labels) in after if name == "llmopt_llm_request_errors_total"
    }
    assert len(error_types) >= 3
    assert after[key("llmopt_experiments_completed_total", outcome="won")] == 1
    assert after[key("llmopt_experiments_active")] == 1
    pulls = {dict(labels)["arm"]: 0.0 for (name, labels) in after if name == "llmopt_bandit_pulls_total"}
    for (name, labels), value in after.items():
        if name == "llmopt_bandit_pulls_total":
            pulls[dict(labels)["arm"]] += value
    assert max(pulls, key=lambda arm: pulls[arm]) == "t0.7"
    assert after[key("llmopt_deployments_total", component="optimizer", action="deployed")] == 1
    assert after[key("llmopt_bandit_convergence_duration_seconds", bandit="temperature")] == 30
    savings = sum(v for (n, _), v in after.items() if n == "llmopt_llm_baseline_cost_usd_total") - sum(
        v for (n, _), v in after.items() if n == "llmopt_llm_cost_usd_total"
    )
    assert savings > 0


def test_simulate_reports_an_unreachable_exporter() -> None:
    result = subprocess.run(
        [str(EXPORTER), "simulate", "--url", f"http://127.0.0.1:{free_port()}", "--duration", "1", "--fast"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot post" in result.stderr


# --- Progress and summary ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_progress_is_a_line_every_interval() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, every=10, is_terminal=False, clock=clock)
    tally = Tally()
    for second in range(1, 31):  # a 60 s story, half told
        clock.now += 1
        tally.sent += 20
        tally.errors += 1 if second == 15 else 0
        progress.update(tally, second / 60)
    progress.finish(tally)
    assert stream.getvalue().splitlines() == [
        "simulate: 17%, 200 events sent, 20.0/s, 0 errors, 50s left",
        "simulate: 33%, 400 events sent, 20.0/s, 1 errors, 40s left",
        "simulate: 50%, 600 events sent, 20.0/s, 1 errors, 30s left",
    ]


def test_on_a_terminal_progress_is_a_bar_redrawn_in_place() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, is_terminal=True, clock=clock)
    clock.now += 90
    progress.update(Tally(sent=1800), 0.5)
    progress.finish(Tally(sent=3600))
    first, last = stream.getvalue().split("\r")[1:]
    assert first == f"[{'#' * 15}{'-' * 15}] 50%, 1800 events sent, 20.0/s, 0 errors, 1m30s left\x1b[K"
    assert last == f"[{'#' * 30}] 100%, 3600 events sent, 40.0/s, 0 errors, 0s left\x1b[K\n"


def test_simulate_shows_progress_in_a_log_and_ends_with_where_to_look(tmp_path: Path) -> None:
    """Not on a terminal (a pipe): progress lines on stderr, no carriage returns; the summary on stdout."""
    with exporter_process(tmp_path) as url:
        result = subprocess.run(
            [str(EXPORTER), "simulate", "--url", url, "--duration", "3", "--progress-every", "0.5"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    progress = result.stderr.splitlines()
    pattern = r"simulate: \d+%, \d+ events sent, [\d.]+/s, 0 errors, (\d+m)?\d+s left"
    assert progress and all(re.fullmatch(pattern, line) for line in progress), progress
    assert progress[-1].startswith("simulate: 100%, ")
    first, *rest = result.stdout.splitlines()
    totals = (
        rf"posted (\d+) events to {re.escape(url)} in \ds \([\d.]+/s\): \1 accepted, 0 duplicates, 0 errors"
    )
    assert re.fullmatch(totals, first), first
    summary = "\n".join(rest)
    for name in (*(name for name, _, _ in EXPECTED_ALERTS), *QUIET_ALERTS):
        assert name in summary
    for dashboard in ("System Health", "Optimization", "SLOs & error budgets", "Models & tokens"):
        assert dashboard in summary
    assert f"{url}/metrics" in summary


def test_simulate_names_the_token_setting_when_refused(tmp_path: Path) -> None:
    with exporter_process(tmp_path, env={"LLMOPT_INGEST_TOKENS": "right"}) as url:
        result = subprocess.run(
            [str(EXPORTER), "simulate", "--url", url, "--duration", "5", "--fast", "--token", "wrong"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "answered 401" in result.stderr and "--token or LLMOPT_SIMULATE_TOKEN" in result.stderr


@pytest.mark.parametrize("seed", [7, 8])
def test_each_llm_call_span_reaches_the_otlp_endpoint_with_its_events_ids(tmp_path: Path, seed: int) -> None:
    """The trace id of each LLM call (its exemplar) is a span's in the trace backend."""
    calls = [event for event in story(10, 20, seed) if event["type"] == "llm_request"]
    with exporter_process(tmp_path) as url, HttpReceiver() as backend:
        otlp = ["--rate", "20", "--fast", "--otlp", backend.url]
        result = subprocess.run(
            [str(EXPORTER), "simulate", "--url", url, "--duration", "10", "--seed", str(seed), *otlp],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        requests = [delivery.body for delivery in backend.on("/v1/traces")]
    assert f"spans: {len(calls)} LLM calls sent to {backend.url}, 0 failed" in result.stdout
    spans = [
        (resource, span)
        for request in requests
        for resource in request["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]
    assert [(span["traceId"], span["spanId"]) for _, span in spans] == [
        (call["trace_id"], call["span_id"]) for call in calls
    ]
    resource, span = spans[0]
    assert resource["resource"]["attributes"] == [
        {"key": "service.name", "value": {"stringValue": "llmopt-simulator"}}
    ]
    attributes = {item["key"]: item["value"] for item in span["attributes"]}
    assert attributes["gen_ai.request.model"] == {"stringValue": calls[0]["model"]}
    assert span["name"] == "llm_call" and span["kind"] == 3
    duration_ms = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6
    assert duration_ms == pytest.approx(calls[0]["latency_ms"], abs=0.001)
    failed = [span for _, span in spans if span["status"]["code"] == 2]
    assert len(failed) == sum(1 for call in calls if call.get("status") == "error") > 0
