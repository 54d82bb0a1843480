"""Operating the optimizer against a real Prometheus with our rules: a critical log entry pages, the
halt guard follows the error budget, and the incident context report names what a responder needs.

One Prometheus (scrape and rule evaluation every second, exemplar storage on) scrapes two exporters:
``cluster="guard"`` gets the halt guard's hand-made traffic, ``cluster="incident"`` the simulator's.
The rules are rendered from the shipped alerts/config.yml with one-minute SLO windows and every
group evaluated each second, so budgets move within seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from llmopt_client import Client, HaltGuard, TraceContext, get_logger, trace_context

from app.errors import normalise_error_type
from mixin import rules
from tests.exposition import key, samples
from tests.processes import EXPORTER, PROMETHEUS, exporter_process, free_port, running
from tools.simulate import Simulation, ticks

ROOT = Path(__file__).resolve().parents[1]
SIMULATION = {"duration": 6, "rate": 100, "seed": 7}

T = TypeVar("T")


def wait_for(read: Callable[[], T], is_done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Poll ``read`` until ``is_done`` holds for its value; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if is_done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s; last seen: {value!r}")
        time.sleep(0.25)


def api(prometheus: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{prometheus}{path}{query}", timeout=5) as response:
        document = json.loads(response.read())
    assert document["status"] == "success", document
    return document["data"]


def alerts(prometheus: str, name: str, **labels: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in api(prometheus, "/api/v1/alerts")["alerts"]
        if alert["labels"]["alertname"] == name and labels.items() <= alert["labels"].items()
    ]


def render_rules(directory: Path) -> Path:
    """The shipped rules with one-minute SLO windows, every group evaluated at the global interval."""
    config = yaml.safe_load((ROOT / "alerts" / "config.yml").read_text(encoding="utf-8"))
    config["slos"]["availability"]["window"] = "1m"
    config["slos"]["latency"]["window"] = "1m"
    config_file = directory / "config.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    output = directory / "rules"
    assert rules.main(["--config", str(config_file), "--output", str(output)]) == 0
    for path in output.glob("*.rules.yml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document["groups"]:
            group.pop("interval", None)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return output


@contextlib.contextmanager
def prometheus_process(directory: Path, targets: dict[str, str]) -> Iterator[str]:
    """A real Prometheus scraping ``targets`` (cluster label -> exporter URL); yields its URL."""
    rules_dir = render_rules(directory)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_dir / "*.rules.yml")],
        "scrape_configs": [
            {
                "job_name": "llmopt-exporter",
                "static_configs": [
                    {"targets": [url.removeprefix("http://")], "labels": {"cluster": cluster}}
                    for cluster, url in targets.items()
                ],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    argv = [
        PROMETHEUS,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    ]
    with running(argv, f"{url}/-/ready", directory / "prometheus.log"):
        yield url


@dataclass(frozen=True)
class Stack:
    prometheus: str
    guard: str  # exporter of cluster="guard"
    incident: str  # exporter of cluster="incident"
    simulator: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("operations")
    with contextlib.ExitStack() as stack:
        guard = stack.enter_context(exporter_process(directory))
        incident = stack.enter_context(exporter_process(directory))
        prometheus = stack.enter_context(
            prometheus_process(directory, {"guard": guard, "incident": incident})
        )
        # Traffic before the first scrape would show up in counters as a jump that rate() cannot see.
        wait_for(
            lambda: api(prometheus, "/api/v1/query", query='count(up{job="llmopt-exporter"} == 1)')["result"],
            lambda result: bool(result) and result[0]["value"][1] == "2",
            timeout=30,
            what="Prometheus scrapes both exporters",
        )
        log = stack.enter_context((directory / "simulator.log").open("wb"))
        simulator = subprocess.Popen(
            [str(EXPORTER), "simulate", "--url", incident, *(f"--{k}={v}" for k, v in SIMULATION.items())],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stack.callback(lambda: simulator.poll() is None and simulator.kill())
        yield Stack(prometheus, guard, incident, simulator)


# --- The structured logger pages -----------------------------------------------------------------


def test_a_critical_entry_moves_the_counter_and_fires_the_alert(stack: Stack) -> None:
    with Client(stack.incident, flush_interval=60) as client:
        logger = get_logger("optimizer-api", "test", client=client, component="rollout", stream=io.StringIO())
        logger.critical("Performance degradation detected", action="initiating_rollback")
        assert client.flush(timeout=5)
    with urllib.request.urlopen(f"{stack.incident}/metrics", timeout=5) as response:
        exposed = samples(response.read().decode())
    assert exposed[key("llmopt_log_events_total", level="critical", component="rollout")] == 1

    states: list[str] = []

    def state() -> str | None:
        found = alerts(stack.prometheus, "LLMOptCriticalEventLogged", component="rollout", cluster="incident")
        if found:
            states.append(found[0]["state"])
        return found[0]["state"] if found else None

    wait_for(state, lambda seen: seen == "firing", timeout=20, what="LLMOptCriticalEventLogged fires")
    (alert,) = alerts(stack.prometheus, "LLMOptCriticalEventLogged", component="rollout")
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("/LLMOptCriticalEventLogged.md")
    assert set(states) <= {"pending", "firing"}


# --- The halt guard ------------------------------------------------------------------------------


class Feeder:
    """Posts LLM calls to an exporter ten times a second, all failing once ``is_failing`` is set."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            event: dict[str, Any] = {"type": "llm_request", "model": "guarded", "latency_ms": 40}
            if self.is_failing:
                event.update(status="error", error_type="GuardTestError")
            body = json.dumps({"events": [event] * 10}).encode()
            request = urllib.request.Request(
                f"{self.url}/v1/events", data=body, headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=5).close()

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_the_halt_guard_follows_the_error_budget(stack: Stack) -> None:
    guard = HaltGuard(stack.prometheus, selector='cluster="guard"', cache_seconds=0)
    with Feeder(stack.guard) as feeder:
        healthy = wait_for(
            guard.check,
            lambda d: d.source == "prometheus" and d.budget_remaining.get("availability", 0) > 0.9,
            timeout=20,
            what="the guard sees the availability budget above 90 %",
        )
        assert not healthy.should_halt
        assert healthy.budget_remaining == {"availability": 1.0, "latency": 1.0}
        assert "above the halt threshold" in healthy.reason

        feeder.is_failing = True
        halted = wait_for(
            guard.check,
            lambda d: d.should_halt,
            timeout=20,
            what="the guard halts once calls fail",
        )
    assert halted.source == "prometheus"
    assert halted.budget_remaining["availability"] < 0.1
    assert "below the halt threshold" in halted.reason


def test_with_prometheus_down_the_guard_keeps_its_last_reading_then_applies_the_policy(stack: Stack) -> None:
    now = [0.0]
    guard = HaltGuard(
        stack.prometheus, selector='cluster="incident"', cache_seconds=0, max_stale=60, clock=lambda: now[0]
    )
    reading = wait_for(guard.check, lambda d: d.source == "prometheus", timeout=20, what="a reading")

    guard.prometheus_url = f"http://127.0.0.1:{free_port()}"  # Prometheus is gone
    now[0] = 30.0
    stale = guard.check()
    assert (stale.source, stale.should_halt, stale.budget_remaining) == (
        "stale",
        reading.should_halt,
        reading.budget_remaining,
    )
    now[0] = 61.0
    assert (guard.check().source, guard.should_halt_optimization()) == ("unreachable", True)
    guard.on_unreachable = "continue"
    now[0] = 62.0
    assert guard.should_halt_optimization() is False


# --- Incident context ----------------------------------------------------------------------------


def _simulated_events() -> list[dict[str, Any]]:
    """Every event ``llmopt-exporter simulate`` posted (the story is deterministic for a seed)."""
    simulation = Simulation(SIMULATION["duration"], SIMULATION["rate"], SIMULATION["seed"])
    events = simulation.opening()
    for progress in ticks(simulation.duration, 1.0):
        events += simulation.step(progress, 1.0)
    return events + simulation.closing()


def _section(report: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", report, re.MULTILINE | re.DOTALL)
    assert match is not None, f"no section {title!r} in:\n{report}"
    return match.group(1)


def _rows(section: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| ---")
    ][1:]


def test_incident_context_names_the_alert_errors_traces_and_experiments(stack: Stack) -> None:
    assert stack.simulator.wait(timeout=30) == 0
    events = _simulated_events()
    errors = Counter(
        (normalise_error_type(e["error_type"]), e["model"]) for e in events if e.get("status") == "error"
    )
    ok_traces = {e["trace_id"] for e in events if e.get("type") == "llm_request"}
    failed_traces = {
        e["trace_id"]: normalise_error_type(e["error_type"]) for e in events if e.get("status") == "error"
    }
    with Client(stack.incident) as client:
        logger = get_logger(
            "optimizer-api", "test", client=client, component="incident-test", stream=io.StringIO()
        )
        with trace_context(TraceContext.new()) as critical_trace:
            logger.critical("Quality collapsed on the new prompt")
        assert client.flush(timeout=5)
    # 3 % of the calls fail: far more than the availability SLO's 0.1 % budget.
    wait_for(
        lambda: alerts(stack.prometheus, "LLMOptErrorBudgetLow", slo="availability", cluster="incident"),
        lambda found: any(alert["state"] == "firing" for alert in found),
        timeout=20,
        what="LLMOptErrorBudgetLow fires for the simulated traffic",
    )
    time.sleep(2)  # two more scrapes: every simulated event is in Prometheus

    result = subprocess.run(
        [
            str(EXPORTER),
            "incident-context",
            "--prometheus",
            stack.prometheus,
            "--since",
            "5m",
            "--match",
            'cluster="incident"',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = result.stdout
    print(report)

    assert report.startswith("# Incident context\n")
    assert 'scope: `cluster="incident"`' in report
    firing = _section(report, "Alerts")
    assert re.search(
        r"^- \*\*LLMOptErrorBudgetLow\*\* \(warning, firing since .*"
        r"`cluster=\"incident\", slo=\"availability\"`.*\[Runbook\]\(https://\S+/LLMOptErrorBudgetLow\.md\)$",
        firing,
        re.MULTILINE,
    ), firing
    assert 'cluster="guard"' not in report

    budgets = {row[0]: row[1] for row in _rows(_section(report, "SLIs and error budgets"))}
    assert budgets["Optimization halted (budget under threshold)"] == "yes"
    assert float(budgets["Error budget left: availability"].removesuffix(" %")) < 10

    by_type = {(row[0], row[1]): int(row[2]) for row in _rows(_section(report, "Errors by type"))}
    assert by_type == dict(errors)

    traces = _section(report, "Traces of the slowest and the failed LLM calls")
    slowest, failed = traces.split("Latest failed:")
    slow_rows, failed_rows = _rows(slowest), _rows(failed)
    assert slow_rows and {row[0].strip("`") for row in slow_rows} <= ok_traces
    assert failed_rows and {row[0].strip("`"): row[1] for row in failed_rows}.items() <= failed_traces.items()
    latencies = [float(row[1].split()[0]) * (1 if row[1].endswith(" s") else 0.001) for row in slow_rows]
    assert latencies == sorted(latencies, reverse=True)

    experiments = {row[0]: row for row in _rows(_section(report, "Active experiments"))}
    assert set(experiments) == {"system-prompt-v2"}  # prompt-optimization-v5 completed at the end
    assert experiments["system-prompt-v2"][1] == "concise"

    logs = _section(report, "Error and critical log entries")
    logged = {
        (row[0], row[1]): row[2] for row in _rows(logs.split("Traces of the latest critical entries:")[0])
    }
    assert logged[("critical", "incident-test")] == "1"
    assert f"`{critical_trace.trace_id}` | incident-test |" in logs

    deployments = {row[0]: row[1:3] for row in _rows(_section(report, "Deployments and rollbacks"))}
    assert deployments == {"optimizer": ["1", "0"]}


def test_incident_context_without_prometheus_says_so() -> None:
    result = subprocess.run(
        [
            str(EXPORTER),
            "incident-context",
            "--prometheus",
            f"http://127.0.0.1:{free_port()}",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert "cannot query Prometheus" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(["--since", "an hour"], "not a duration", id="bad-window"),
        pytest.param(["--match", "cluster=prod"], "not a matcher", id="bad-matcher"),
    ],
)
def test_incident_context_refuses_bad_arguments(arguments: list[str], message: str) -> None:
    result = subprocess.run(
        [str(EXPORTER), "incident-context", "--prometheus", "http://127.0.0.1:9", *arguments],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
