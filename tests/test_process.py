"""The exporter as a user runs it: the console script, over real HTTP."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.conftest import EXAMPLES
from tests.exposition import key, samples
from tests.processes import EXPORTER, exporter_process


def http(
    method: str, url: str, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_console_script_serves_events_metrics_health_and_landing(tmp_path: Path) -> None:
    with exporter_process(tmp_path, "--log-level", "info") as url:
        status, headers, body = http(
            "POST",
            f"{url}/v1/events",
            (EXAMPLES / "llm_request.json").read_bytes(),
            **{"Content-Type": "application/json", "X-Request-ID": "req-42"},
        )
        assert (status, json.loads(body)) == (
            200,
            {"accepted": 1, "by_type": {"llm_request": 1}, "duplicates": 0},
        )
        assert headers["x-request-id"] == "req-42"
        status, _, body = http("GET", f"{url}/metrics")
        exposition = samples(body.decode())
        assert (
            exposition[
                key(
                    "llmopt_llm_requests_total",
                    model="gpt-4o-mini",
                    provider="openai",
                    task_type="summarization",
                )
            ]
            == 1
        )
        assert http("GET", f"{url}/healthz")[0] == 200
        assert http("GET", f"{url}/readyz")[0] == 200
        status, headers, body = http("GET", f"{url}/")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert b'href="/metrics"' in body
        status, _, body = http(
            "POST", f"{url}/v1/events", b'{"type":"llm_request"}', **{"Content-Type": "application/json"}
        )
        assert status == 422 and json.loads(body)["problems"][0]["field"] == "model"
    log_lines = [
        json.loads(line)
        for line in (tmp_path.glob("exporter-*.log").__next__()).read_text().splitlines()
        if line.startswith("{")
    ]
    first = next(
        line
        for line in log_lines
        if line["logger"] == "llmopt_exporter.access" and line["context"]["path"] == "/v1/events"
    )
    assert first["request_id"] == "req-42"
    assert first["context"]["status"] == 200 and first["context"]["path"] == "/v1/events"
    assert "error" not in first["context"]
    # A refused request's line says why: its error code and the first problem's event and field.
    refused = next(
        line
        for line in log_lines
        if line["logger"] == "llmopt_exporter.access" and line["context"]["status"] == 422
    )
    assert (
        refused["context"]["error"],
        refused["context"]["problem_index"],
        refused["context"]["problem_field"],
    ) == ("invalid_events", 0, "model")
    assert {"timestamp", "level", "message", "service", "environment"} <= set(first)
    assert first["service"] == "llmopt-exporter"


def test_help_and_version() -> None:
    import subprocess

    result = subprocess.run([str(EXPORTER), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "LLMOPT_MAX_BODY_BYTES" in result.stdout
    version = subprocess.run([str(EXPORTER), "--version"], capture_output=True, text=True, timeout=30)
    assert version.stdout.startswith("llmopt-exporter ")


def test_environment_settings_reach_the_logs(tmp_path: Path) -> None:
    with exporter_process(
        tmp_path, env={"LLMOPT_ENVIRONMENT": "staging", "LLMOPT_SERVICE_NAME": "opt-a"}
    ) as url:
        http("GET", f"{url}/healthz")
    lines = [
        json.loads(line)
        for line in next(tmp_path.glob("exporter-*.log")).read_text().splitlines()
        if line.startswith("{")
    ]
    assert lines and all((line["service"], line["environment"]) == ("opt-a", "staging") for line in lines)
