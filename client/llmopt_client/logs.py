"""Structured logs for optimizer services, on the standard library's ``logging``.

:class:`JsonFormatter` writes one JSON object per line with the fields of a log entry
(``timestamp``, ``level``, ``message``, ``context`` with ``service`` and ``environment``,
``request_id``, ``user_id``, ``experiment_id``, ``error`` with ``name``, ``message`` and ``stack``)
and the current ``trace_id`` and ``span_id``. :class:`ExporterHandler` reports every record at
``ERROR`` or above to the exporter as a ``log`` event, so ``llmopt_log_events_total{level,component}``
moves and a critical entry pages (``LLMOptCriticalEventLogged``). :class:`StructuredLogger` is the
a structured logger API over a stdlib logger, and :func:`get_logger` wires the three together.

Plain ``logging`` calls work too: ``logging.getLogger("optimizer").critical("...")`` on a logger
with these handlers is formatted and reported the same way.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from llmopt_client.events import LogEvent
from llmopt_client.tracing import current_trace

if TYPE_CHECKING:
    from llmopt_client.client import Client

# The level names of a log line: WARNING is "warn".
LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# Context keys that are fields of their own in a log line, in every log line.
LIFTED_FIELDS = ("request_id", "user_id", "experiment_id")
# What the exporter accepts in a log event's text fields.
MESSAGE_LIMIT = 1024
STACK_LIMIT = 16384


def level_name(levelno: int) -> str:
    """The log-line name of a stdlib level: debug, info, warn, error or critical."""
    if levelno >= logging.CRITICAL:
        return "critical"
    return LEVEL_NAMES.get(levelno) or logging.getLevelName(levelno).lower()


def _error_of(record: logging.LogRecord) -> dict[str, str] | None:
    if not record.exc_info or record.exc_info[0] is None:
        return None
    kind, error, stack = record.exc_info
    return {
        "name": kind.__name__,
        "message": str(error),
        "stack": "".join(traceback.format_exception(kind, error, stack)),
    }


def _trace_of(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """The trace ids captured when the record was made, else the current ones."""
    trace_id = getattr(record, "trace_id", None)
    if isinstance(trace_id, str):
        span_id = getattr(record, "span_id", None)
        return trace_id, span_id if isinstance(span_id, str) else None
    trace = current_trace()
    return (trace.trace_id, trace.span_id) if trace is not None else (None, None)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (one line) with the fields of a log entry.

    ``context`` holds ``service``, ``environment`` and whatever the record carries as
    ``extra={"context": {...}}``; ``request_id``, ``user_id`` and ``experiment_id`` (given as
    ``extra`` fields) are fields of their own; ``error`` comes from ``exc_info``.
    """

    def __init__(self, service: str, environment: str) -> None:
        super().__init__()
        self.service = service
        self.environment = environment

    def format(self, record: logging.LogRecord) -> str:
        context: dict[str, object] = {"service": self.service, "environment": self.environment}
        extra_context = getattr(record, "context", None)
        if isinstance(extra_context, Mapping):
            context.update(extra_context)
        entry: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": level_name(record.levelno),
            "message": record.getMessage(),
            "logger": record.name,
            "context": context,
        }
        for name in LIFTED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        trace_id, span_id = _trace_of(record)
        if trace_id is not None:
            entry["trace_id"] = trace_id
            entry["span_id"] = span_id
        error = _error_of(record)
        if error is not None:
            entry["error"] = error
        return json.dumps(entry, default=str, separators=(",", ":"))


class ExporterHandler(logging.Handler):
    """Reports each record at ``level`` (default ``ERROR``) or above to the exporter as a ``log``
    event: ``error``, or ``critical`` for ``CRITICAL``, which the client sends at once.

    ``component`` (a label value) is the default; a record's ``extra={"component": ...}`` overrides
    it. Message, error and stack go to the exporter's log, truncated to what it accepts. Never
    raises into the caller; the client's own records are never reported (no loops).
    """

    def __init__(
        self,
        client: Client,
        component: str = "optimizer",
        service: str | None = None,
        level: int = logging.ERROR,
    ) -> None:
        super().__init__(max(level, logging.ERROR))
        self.client = client
        self.component = component
        self.service = service

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "llmopt_client" or record.name.startswith("llmopt_client."):
            return
        try:
            self.client.emit(self.to_event(record))
        except Exception:  # logging must never break the caller: report it the stdlib way
            self.handleError(record)

    def to_event(self, record: logging.LogRecord) -> LogEvent:
        """The ``log`` event of a record."""
        component = getattr(record, "component", None)
        error = _error_of(record)
        trace_id, span_id = _trace_of(record)
        return LogEvent(
            level="critical" if record.levelno >= logging.CRITICAL else "error",
            component=component if isinstance(component, str) else self.component,
            message=_head(record.getMessage(), MESSAGE_LIMIT),
            service=self.service,
            logger=_head(record.name, MESSAGE_LIMIT),
            error_name=_head(error["name"], MESSAGE_LIMIT) if error else None,
            error_message=_head(error["message"], MESSAGE_LIMIT) if error else None,
            # The end of a stack trace is where the error is.
            error_stack=error["stack"][-STACK_LIMIT:] if error else None,
            request_id=_text(getattr(record, "request_id", None)),
            experiment_id=_text(getattr(record, "experiment_id", None)),
            trace_id=trace_id,
            span_id=span_id if trace_id else None,
        )


def _head(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: object) -> str | None:
    return None if value is None else _head(str(value), MESSAGE_LIMIT)


class StructuredLogger:
    """A structured logger over a stdlib logger.

    ``logger.error("Optimization failed", err, experiment_id="exp-1", operation="run")``: keyword
    arguments are the context; ``request_id``, ``user_id`` and ``experiment_id`` become fields of
    their own. ``error()`` and ``critical()`` take the exception as second argument; with an
    :class:`ExporterHandler` on the logger they are counted by the exporter, and ``critical()``
    pages.
    """

    def __init__(self, logger: logging.Logger, component: str = "optimizer") -> None:
        self.logger = logger
        self.component = component

    def with_component(self, component: str) -> StructuredLogger:
        """The same logger, reporting under another component (a label value)."""
        return StructuredLogger(self.logger, component)

    def log(self, level: int, message: str, error: BaseException | None = None, /, **context: object) -> None:
        if not self.logger.isEnabledFor(level):
            return
        extra: dict[str, object] = {
            "component": self.component,
            "context": {name: value for name, value in context.items() if name not in LIFTED_FIELDS},
        }
        for name in LIFTED_FIELDS:
            if context.get(name) is not None:
                extra[name] = context[name]
        trace = current_trace()
        if trace is not None:
            extra["trace_id"] = trace.trace_id
            extra["span_id"] = trace.span_id
        exc_info = None if error is None else (type(error), error, error.__traceback__)
        # stacklevel 3: the record names the caller of debug()/info()/..., not this module.
        self.logger.log(level, message, exc_info=exc_info, extra=extra, stacklevel=3)

    def debug(self, message: str, **context: object) -> None:
        self.log(logging.DEBUG, message, None, **context)

    def info(self, message: str, **context: object) -> None:
        self.log(logging.INFO, message, None, **context)

    def warn(self, message: str, **context: object) -> None:
        self.log(logging.WARNING, message, None, **context)

    warning = warn

    def error(self, message: str, error: BaseException | None = None, **context: object) -> None:
        self.log(logging.ERROR, message, error, **context)

    def critical(self, message: str, error: BaseException | None = None, **context: object) -> None:
        self.log(logging.CRITICAL, message, error, **context)


class _JsonStreamHandler(logging.StreamHandler[TextIO]):
    """The stream handler :func:`get_logger` installs (and replaces when called again)."""


def get_logger(
    service: str,
    environment: str,
    *,
    client: Client | None = None,
    component: str = "optimizer",
    name: str | None = None,
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> StructuredLogger:
    """A :class:`StructuredLogger` on the stdlib logger ``name`` (default: ``service``).

    The logger writes JSON lines to ``stream`` (default stderr) and, with a ``client``, reports
    errors and critical entries to the exporter under ``component``. It does not propagate to the
    root logger, so lines are not printed twice. Calling again replaces the handlers it installed.
    """
    logger = logging.getLogger(name or service)
    for handler in list(logger.handlers):
        if isinstance(handler, (_JsonStreamHandler, ExporterHandler)):
            logger.removeHandler(handler)
    output = _JsonStreamHandler(stream if stream is not None else sys.stderr)
    output.setFormatter(JsonFormatter(service, environment))
    logger.addHandler(output)
    if client is not None:
        logger.addHandler(ExporterHandler(client, component, service))
    logger.setLevel(level)
    logger.propagate = False
    return StructuredLogger(logger, component)
