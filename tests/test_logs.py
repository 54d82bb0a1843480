"""``JsonFormatter``: one JSON object per record, with request context and any value as text."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from app.logs import JsonFormatter, request_id_var, trace_id_var


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
