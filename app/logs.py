"""Structured logs: one JSON object per line, with service, environment and request context.

Fields: ``timestamp`` (RFC 3339, UTC), ``level``, ``message``, ``logger``, ``service``,
``environment``, ``request_id`` and ``trace_id`` when a request is being served, anything passed
as ``extra={"context": {...}}``, and for errors ``error`` with ``type``, ``message`` and ``stack``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

import msgspec

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)
# What the access log line of a refused request adds: its error code and, for invalid events, the
# first problem's event index and field (set by whatever refuses; see app.edge).
refusal_var: ContextVar[dict[str, Any] | None] = ContextVar("refusal", default=None)
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None] | None

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
        context = getattr(record, "context", None)
        return self.line(
            record.created,
            record.levelname,
            record.getMessage(),
            record.name,
            context if isinstance(context, dict) else None,
            record.exc_info,
        )

    def line(
        self,
        created: float,
        level: str,
        message: str,
        logger: str,
        context: dict[str, Any] | None,
        exc_info: ExcInfo = None,
    ) -> str:
        """The line of a record with these attributes (``format`` reads them off the record)."""
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
            "level": level.lower(),
            "message": message,
            "logger": logger,
            "service": self._service,
            "environment": self._environment,
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        trace_id = trace_id_var.get()
        if trace_id is not None:
            entry["trace_id"] = trace_id
        if context is not None:
            entry["context"] = context
        if exc_info and exc_info[0] is not None:
            kind, error, stack = exc_info
            entry["error"] = {
                "type": kind.__name__,
                "message": str(error),
                "stack": "".join(traceback.format_exception(kind, error, stack)),
            }
        return _ENCODER.encode(entry).decode()


class JsonLines(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_logging` installs: JSON lines (``JsonFormatter``) on a stream."""

    def __init__(self, stream: TextIO, formatter: JsonFormatter) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self.json = formatter

    def write_line(self, level: str, message: str, logger: str, context: dict[str, Any]) -> None:
        """Write the line ``emit`` would write for such a record, without making the record."""
        line = self.json.line(time.time(), level, message, logger, context)
        with self.lock or contextlib.nullcontext():
            try:
                self.stream.write(line + self.terminator)
                self.flush()
            except (OSError, ValueError):  # as emit: a log line never fails a request
                pass


def info_writer(logger: logging.Logger) -> Callable[[str, dict[str, Any]], None] | None:
    """A function writing ``logger``'s INFO lines (message, context) straight to the JSON handler,
    as logging would, when that handler is the only place they go: INFO enabled, no filter and
    no other handler on the way. None otherwise; then log as usual. For the access log, one line
    per request: it skips the record and the dispatch, about half the line's cost. Taken as the
    configuration is when called."""
    if not logger.isEnabledFor(logging.INFO):
        return None
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.disabled or current.filters:
            return None
        handlers += current.handlers
        current = current.parent if current.propagate else None
    if len(handlers) != 1 or not isinstance(handlers[0], JsonLines):
        return None
    handler = handlers[0]
    if handler.filters or handler.level > logging.INFO:
        return None
    name = logger.name

    def write(message: str, context: dict[str, Any]) -> None:
        handler.write_line("INFO", message, name, context)

    return write


def configure_logging(level: str, service: str, environment: str) -> None:
    """Send our logs and uvicorn's to stderr as JSON lines at ``level``."""
    handler = JsonLines(sys.stderr, JsonFormatter(service, environment))
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
