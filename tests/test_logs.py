"""``JsonFormatter``: one JSON object per record, with request context and any value as text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.logs import JsonFormatter, JsonLines, info_writer, request_id_var, trace_id_var


def _record(message: str, context: object = None, exc_info: object = None) -> logging.LogRecord:
    extra = {"context": context} if context is not None else None
    logger = logging.getLogger("llmopt_exporter.test")
    return logger.makeRecord(logger.name, logging.ERROR, "", 0, message, (), exc_info, extra=extra)  # type: ignore[arg-type]


def test_a_line_holds_every_field_and_any_value_as_text() -> None:
    formatter = JsonFormatter("svc", "staging")
    request_token, trace_token = request_id_var.set("req-1"), trace_id_var.set("0af7651916cd43dd")
    try:
        line = formatter.format(_record('héllo\n"quoted"', {"path": Path("/tmp/x"), "n": 1.5, "ok": True}))
    finally:
        request_id_var.reset(request_token)
        trace_id_var.reset(trace_token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry.pop("timestamp").endswith("+00:00")
    assert entry == {
        "level": "error",
        "message": 'héllo\n"quoted"',
        "logger": "llmopt_exporter.test",
        "service": "svc",
        "environment": "staging",
        "request_id": "req-1",
        "trace_id": "0af7651916cd43dd",
        "context": {"path": "/tmp/x", "n": 1.5, "ok": True},
    }


def test_an_error_carries_its_type_message_and_stack() -> None:
    try:
        raise ValueError("bad value")
    except ValueError as err:
        line = JsonFormatter("svc", "env").format(
            _record("failed", exc_info=(ValueError, err, err.__traceback__))
        )
    error = json.loads(line)["error"]
    assert (error["type"], error["message"]) == ("ValueError", "bad value")
    assert "raise ValueError" in error["stack"]


@pytest.fixture
def json_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger under a parent that writes JSON lines to a buffer and stops propagation there;
    both outside logging's registry, so nothing else (pytest's capture) adds handlers to them."""
    stream = io.StringIO()
    top = logging.Logger("top")
    top.addHandler(logging.NullHandler())
    parent = logging.Logger("test_json_lines", logging.INFO)
    parent.parent = top
    parent.addHandler(JsonLines(stream, JsonFormatter("svc", "env")))
    parent.propagate = False
    logger = logging.Logger("test_json_lines.access")
    logger.parent = parent
    yield logger, stream


def test_info_writer_writes_the_line_logging_writes(json_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_logger
    write = info_writer(logger)
    assert write is not None
    context = {"method": "POST", "path": "/v1/events", "status": 200, "duration_ms": 0.5, "client": "1.2.3.4"}
    token = request_id_var.set("req-9")
    try:
        write("POST /v1/events 200", context)
        logger.info("%s %s %d", "POST", "/v1/events", 200, extra={"context": context})
    finally:
        request_id_var.reset(token)
    ours, theirs = (json.loads(line) for line in stream.getvalue().splitlines())
    assert ours.pop("timestamp") <= theirs.pop("timestamp")
    assert ours == theirs


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda logger: logger.addFilter(logging.Filter("elsewhere")), id="a-filter"),
        pytest.param(lambda logger: logger.addHandler(logging.NullHandler()), id="another-handler"),
        pytest.param(lambda logger: logger.setLevel(logging.WARNING), id="info-off"),
        pytest.param(lambda logger: setattr(logger.parent, "propagate", True), id="root-handlers-too"),
    ],
)
def test_info_writer_declines_when_logging_would_do_otherwise(
    json_logger: tuple[logging.Logger, io.StringIO], change: Any
) -> None:
    logger, _ = json_logger
    change(logger)
    assert info_writer(logger) is None


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "expected"),
    [
        pytest.param("GET", "/healthz", None, {}, {}, id="served"),
        pytest.param("POST", "/v1/events", b"{}", {}, {"error": "unauthorized"}, id="ingest-401"),
        pytest.param(
            "POST",
            "/v1/events",
            b'{"events": [{"type": "feedback", "thumbs": "up"}, {"type": "llm_request", "model": "m"}]}',
            {"Authorization": "Bearer ingest-token"},
            {"error": "invalid_events", "problem_index": 1, "problem_field": "latency_ms"},
            id="ingest-422",
        ),
        pytest.param(
            "POST",
            "/v1/events",
            b"{",
            {"Authorization": "Bearer ingest-token"},
            {"error": "malformed_body"},
            id="ingest-400",
        ),
        pytest.param("PUT", "/v1/events", b"{}", {}, {"error": "method_not_allowed"}, id="ingest-405"),
        pytest.param("GET", "/metrics", None, {}, {"error": "unauthorized"}, id="metrics-401"),
        pytest.param("DELETE", "/v1/experiments/e1", None, {}, {"error": "unauthorized"}, id="admin-401"),
    ],
)
def test_a_refused_requests_access_line_says_why(
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    expected: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app

    app = create_app(
        Settings(ingest_tokens=["ingest-token"], metrics_bearer_token="metrics-token", access_log=True)
    )
    with TestClient(app) as client, caplog.at_level(logging.INFO, logger="llmopt_exporter.access"):
        status = client.request(method, path, content=body, headers=headers).status_code
    [line] = [record for record in caplog.records if record.name == "llmopt_exporter.access"]
    context: dict[str, Any] = line.context  # type: ignore[attr-defined]
    assert context["status"] == status
    assert {
        name: context[name]
        for name in context
        if name not in ("method", "path", "status", "duration_ms", "client")
    } == expected
