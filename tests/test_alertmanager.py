"""alerts/alertmanager.yml: accepted by amtool, every shipped alert routed to its channels,
secrets only from files, and inhibition checked on a real Alertmanager."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin import rules
from tests.processes import ALERTMANAGER, AMTOOL

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "alerts" / "alertmanager.yml"

# The channels: who hears about an alert, by name or severity.
RECEIVER_BY_ALERT = {
    "LLMOptWatchdog": "deadmans-switch",
    "LLMOptBudgetExceeded": "pagerduty-email",
    "LLMOptCriticalEventLogged": "pagerduty-slack",
}
RECEIVER_BY_SEVERITY = {"critical": "pagerduty-slack", "warning": "slack-warnings", "info": "slack-info"}
# Secret-bearing fields of Alertmanager 0.25; each must come from its *_file sibling instead.
INLINE_SECRETS = {
    "routing_key",
    "service_key",
    "api_url",
    "slack_api_url",
    "smtp_auth_password",
    "auth_password",
    "credentials",
    "password",
    "bearer_token",
    "api_key",
    "opsgenie_api_key",
    "victorops_api_key",
}


def _shipped_alerts() -> list[dict[str, str]]:
    """Label sets of the shipped alert rules: alertname plus the rule's static labels."""
    document = yaml.safe_load((ROOT / "alerts" / rules.ALERTING_FILE).read_text(encoding="utf-8"))
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for group in document["groups"]:
        for rule in group["rules"]:
            labels = {"alertname": rule["alert"], **rule["labels"]}
            labels.pop("long", None)
            labels.pop("short", None)
            seen[tuple(sorted(labels.items()))] = labels
    return list(seen.values())


def _expected_receiver(labels: dict[str, str]) -> str:
    return RECEIVER_BY_ALERT.get(labels["alertname"]) or RECEIVER_BY_SEVERITY[labels["severity"]]


def test_amtool_accepts_the_config() -> None:
    result = subprocess.run(
        [AMTOOL, "check-config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "labels",
    [
        *_shipped_alerts(),
        {"alertname": "SomethingElse", "severity": "critical"},
        {"alertname": "SomethingElse", "severity": "warning"},
        {"alertname": "SomethingElse", "severity": "info"},
    ],
    ids=lambda labels: "-".join(labels.values()),
)
def test_routes_follow_the_documented_channels(labels: dict[str, str]) -> None:
    receiver = _expected_receiver(labels)
    result = subprocess.run(
        [
            AMTOOL,
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={receiver}",
            *(f"{key}={value}" for key, value in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{labels} went to {result.stdout.strip()}, not {receiver}"


def test_a_critical_log_entry_pages_at_once_per_component() -> None:
    labels = {"alertname": "LLMOptCriticalEventLogged", "severity": "critical", "component": "bandit"}
    result = subprocess.run(
        [
            AMTOOL,
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            "--verify.receivers=pagerduty-slack",
            *(f"{key}={value}" for key, value in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    routes = yaml.safe_load(CONFIG.read_text())["route"]["routes"]
    (route,) = [route for route in routes if route["matchers"] == ['alertname="LLMOptCriticalEventLogged"']]
    assert (route["group_wait"], route["group_by"]) == ("0s", ["alertname", "component"])


def test_receivers_use_the_documented_integrations() -> None:
    receivers = {receiver["name"]: receiver for receiver in yaml.safe_load(CONFIG.read_text())["receivers"]}

    def integrations(name: str) -> set[str]:
        return {key.removesuffix("_configs") for key in receivers[name] if key.endswith("_configs")}

    assert integrations("pagerduty-slack") == {"pagerduty", "slack"}
    assert integrations("pagerduty-email") == {"pagerduty", "email"}
    assert integrations("slack-warnings") == {"slack"}
    assert integrations("slack-info") == {"slack"}
    assert integrations("deadmans-switch") == {"webhook"}
    channels = {
        name: receivers[name]["slack_configs"][0]["channel"] for name in ("slack-warnings", "slack-info")
    }
    assert channels["slack-warnings"] != channels["slack-info"], "info goes to its own low-priority channel"
    assert receivers["slack-warnings"]["slack_configs"][0]["send_resolved"] is True


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def test_secrets_come_from_files_only() -> None:
    keys = set(_keys(yaml.safe_load(CONFIG.read_text())))
    assert not keys & INLINE_SECRETS
    assert {"routing_key_file", "api_url_file", "smtp_auth_password_file", "credentials_file"} <= keys


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _request(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        payload = response.read()
    return json.loads(payload) if payload.strip() else None


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager with alerts/alertmanager.yml on a free loopback port; yields its URL.

    The secret files do not exist here, so nothing could be delivered even if a group were flushed.
    """
    port = _free_port()
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={CONFIG}",
            f"--storage.path={tmp_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_critical_alert_silences_the_warnings_of_its_slo(alertmanager: str) -> None:
    alerts = [
        {"alertname": "LLMOptHighErrorRate", "severity": "critical", "slo": "availability"},
        {"alertname": "LLMOptErrorBudgetLow", "severity": "warning", "slo": "availability"},
        {"alertname": "LLMOptHighLatency", "severity": "warning", "slo": "latency"},
        {"alertname": "LLMOptExporterDown", "severity": "critical"},
        {"alertname": "LLMOptOptimizerSilent", "severity": "warning"},
        {"alertname": "LLMOptOptimizationStuck", "severity": "info"},
    ]
    _request(f"{alertmanager}/api/v2/alerts", [{"labels": labels} for labels in alerts])
    expected = {
        "LLMOptHighErrorRate": "active",
        "LLMOptErrorBudgetLow": "suppressed",  # same SLO as the critical LLMOptHighErrorRate
        "LLMOptHighLatency": "active",  # another SLO
        "LLMOptExporterDown": "active",
        "LLMOptOptimizerSilent": "active",  # a critical without an SLO silences nothing
        "LLMOptOptimizationStuck": "active",
    }
    deadline = time.monotonic() + 5
    while True:
        states = {
            alert["labels"]["alertname"]: alert["status"]["state"]
            for alert in _request(f"{alertmanager}/api/v2/alerts")
        }
        if states == expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert states == expected
