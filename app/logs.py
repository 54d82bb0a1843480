"""Structured logs: one JSON object per line, with service, environment and request context.

Fields: ``timestamp`` (RFC 3339, UTC), ``level``, ``message``, ``logger``, ``service``,
``environment``, ``request_id`` and ``trace_id`` when a request is being served, anything passed
as ``extra={"context": {...}}``, and for errors ``error`` with ``type``, ``message`` and ``stack``.
"""

from __future__ import annotations

import logging
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)

# Loggers that uvicorn creates; routed through our formatter so every line is JSON.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# msgspec writes the same JSON (compact; anything it does not know as its str()) in a fifth of
# the time, which counts for the access log: one line per request.
_ENCODER = msgspec.json.Encoder(enc_hook=str)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def __init__(self, service: str, environment: str) -> None:
        super().__init__()
        self._service = service
        self._environment = environment

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "logger": record.name,
            "service": self._service,
            "environment": self._environment,
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        trace_id = trace_id_var.get()
        if trace_id is not None:
            entry["trace_id"] = trace_id
        context = getattr(record, "context", None)
        if isinstance(context, dict):
            entry["context"] = context
        if record.exc_info and record.exc_info[0] is not None:
            kind, error, stack = record.exc_info
            entry["error"] = {
                "type": kind.__name__,
                "message": str(error),
                "stack": "".join(traceback.format_exception(kind, error, stack)),
            }
        return _ENCODER.encode(entry).decode()


def configure_logging(level: str, service: str, environment: str) -> None:
    """Send our logs and uvicorn's to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service, environment))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # No line shows the thread or process a record was made in: not collecting them is the
    # logging HOWTO's advice for speed ("Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers[:] = []
        server_logger.propagate = True
    # Our access log replaces uvicorn's, which has no request id and no duration.
    logging.getLogger("uvicorn.access").disabled = True
