"""docs/quickstart.md's pieces: its Alertmanager configuration sends every alert but the Watchdog to
the local Slack-compatible receiver and nothing off the machine, and that receiver prints what a
real Alertmanager posts to it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.processes import ALERTMANAGER, AMTOOL, free_port, running, stop

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "quickstart" / "alertmanager.yml"
RECEIVER = ROOT / "examples" / "slack_receiver.py"


def test_the_quickstart_configuration_is_valid() -> None:
    result = subprocess.run(
        [AMTOOL, "check-config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        pytest.param("alertname=LLMOptCriticalEventLogged severity=critical", "local-slack", id="critical"),
        pytest.param(
            "alertname=LLMOptErrorBudgetLow severity=warning slo=availability", "local-slack", id="warn"
        ),
        pytest.param("alertname=LLMOptWatchdog severity=none", "nowhere", id="watchdog-stays-home"),
    ],
)
def test_the_quickstart_routes(labels: str, receiver: str) -> None:
    result = subprocess.run(
        [AMTOOL, "config", "routes", "test", "--config.file", str(CONFIG), *labels.split()],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_the_quickstart_sends_nothing_off_the_machine() -> None:
    urls = re.findall(r"https?://[^\s'\"]+", CONFIG.read_text(encoding="utf-8").split("\nroute:")[1])
    assert urls == ["http://127.0.0.1:5001/slack"]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """examples/slack_receiver.py on a free port; its base URL and the file its output goes to."""
    port = free_port()
    output = tmp_path / "receiver.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(RECEIVER), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_text(output, f"waiting for Slack messages on {url}/slack")
        yield url, output
    finally:
        stop(process)


def _wait_for_text(path: Path, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {path}: {path.read_text(encoding='utf-8')!r}")


def test_an_alert_arrives_in_the_local_receiver(tmp_path: Path, receiver: tuple[str, Path]) -> None:
    """A real Alertmanager with the quickstart's configuration (pointed at the receiver's port) posts
    an alert; the receiver prints its title and text."""
    url, output = receiver
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    (slack,) = next(r for r in config["receivers"] if r["name"] == "local-slack")["slack_configs"]
    slack["api_url"] = f"{url}/slack"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    argv = [
        ALERTMANAGER,
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with running(argv, f"http://127.0.0.1:{port}/-/ready", tmp_path / "alertmanager.log"):
        alert = {
            "labels": {"alertname": "LLMOptCriticalEventLogged", "severity": "critical", "component": "qs"},
            "annotations": {
                "summary": "An optimizer service logged a critical event.",
                "description": "Component qs logged a critical event.",
                "runbook_url": "docs/runbooks/LLMOptCriticalEventLogged.md",
            },
            "startsAt": datetime.now(UTC).isoformat(),
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v2/alerts",
            data=json.dumps([alert]).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()
        printed = _wait_for_text(output, "Runbook: docs/runbooks/LLMOptCriticalEventLogged.md")
    assert printed.splitlines()[1:] == [
        "--- /slack #llmopt-alerts",
        "[FIRING] LLMOptCriticalEventLogged (critical)",
        "*An optimizer service logged a critical event.*",
        "Component qs logged a critical event.",
        "Runbook: docs/runbooks/LLMOptCriticalEventLogged.md",
    ]
