"""The structured logger: JSON lines with the log entry's fields and the trace ids; errors and
critical entries reported to the exporter, critical ones at once."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from client_support import Exporter, key, wait_until
from llmopt_client import Client, ExporterHandler, LogEvent, TraceContext, get_logger, trace_context

TRACE = TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


class Captured:
    """A logger name of its own for one test, and the JSON lines written to its stream."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stream = io.StringIO()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def captured(request: pytest.FixtureRequest) -> Iterator[Captured]:
    captured = Captured(f"tests.logs.{request.node.name}")
    yield captured
    logging.getLogger(captured.name).handlers.clear()


def test_a_line_carries_the_documented_fields_and_the_trace(captured: Captured) -> None:
    logger = get_logger("optimizer-api", "staging", name=captured.name, stream=captured.stream)
    try:
        raise ValueError("variant store unreachable")
    except ValueError as err:
        with trace_context(TRACE) as trace:
            logger.error(
                "Optimization failed",
                err,
                experiment_id="exp-1",
                request_id="req-1",
                user_id="user-1",
                operation="run_optimization",
            )

    (line,) = captured.lines()
    error = line.pop("error")
    assert (error["name"], error["message"]) == ("ValueError", "variant store unreachable")
    assert error["stack"].startswith("Traceback (most recent call last):")
    assert error["stack"].endswith("ValueError: variant store unreachable\n")
    timestamp = line.pop("timestamp")
    assert timestamp.endswith("+00:00")
    assert line == {
        "level": "error",
        "message": "Optimization failed",
        "logger": captured.name,
        "context": {"service": "optimizer-api", "environment": "staging", "operation": "run_optimization"},
        "request_id": "req-1",
        "user_id": "user-1",
        "experiment_id": "exp-1",
        "trace_id": trace.trace_id,
        "span_id": trace.span_id,
    }


@pytest.mark.parametrize(
    ("method", "level"),
    [
        pytest.param("debug", "debug", id="debug"),
        pytest.param("info", "info", id="info"),
        pytest.param("warn", "warn", id="warn"),
        pytest.param("warning", "warn", id="warning-alias"),
        pytest.param("error", "error", id="error"),
        pytest.param("critical", "critical", id="critical"),
    ],
)
def test_levels_have_the_documented_names(captured: Captured, method: str, level: str) -> None:
    logger = get_logger(
        "optimizer-api", "test", name=captured.name, level=logging.DEBUG, stream=captured.stream
    )
    getattr(logger, method)("something happened", step=3)
    (line,) = captured.lines()
    assert (line["level"], line["message"], line["context"]) == (
        level,
        "something happened",
        {"service": "optimizer-api", "environment": "test", "step": 3},
    )
    assert "trace_id" not in line and "error" not in line


def test_plain_logging_calls_on_the_logger_are_formatted_too(captured: Captured) -> None:
    get_logger("optimizer-api", "test", name=captured.name, stream=captured.stream)
    logging.getLogger(captured.name).warning(
        "budget at %d %%", 85, extra={"context": {"period": "day"}, "experiment_id": "exp-2"}
    )
    (line,) = captured.lines()
    assert (line["level"], line["message"], line["experiment_id"], line["context"]) == (
        "warn",
        "budget at 85 %",
        "exp-2",
        {"service": "optimizer-api", "environment": "test", "period": "day"},
    )


def test_calling_get_logger_again_replaces_its_handlers(captured: Captured) -> None:
    earlier = io.StringIO()
    get_logger("svc", "test", name=captured.name, stream=earlier)
    get_logger("svc", "test", name=captured.name, stream=captured.stream).info("once")
    assert (earlier.getvalue(), len(captured.lines())) == ("", 1)


def test_errors_and_critical_entries_reach_the_exporter(
    exporter: Exporter, new_client: Callable[..., Client], captured: Captured
) -> None:
    client = new_client(exporter.url)
    logger = get_logger(
        "optimizer-api",
        "test",
        client=client,
        component="logs-reported",
        name=captured.name,
        stream=captured.stream,
    )
    logger.info("not reported")
    logger.warn("not reported either")
    logger.error("a failed step", RuntimeError("boom"))
    logger.error("x" * 5000)  # longer than the exporter takes: truncated, not refused
    with trace_context(TRACE) as trace:
        logger.critical("Performance degradation detected", action="initiating_rollback")
    logger.with_component("logs-other").critical("another component")
    assert client.flush(timeout=5)

    assert (client.stats.sent, client.stats.failed) == (4, 0)
    assert len(captured.lines()) == 6
    samples = exporter.samples()
    assert samples[key("llmopt_log_events_total", level="error", component="logs-reported")] == 2
    assert samples[key("llmopt_log_events_total", level="critical", component="logs-reported")] == 1
    assert samples[key("llmopt_log_events_total", level="critical", component="logs-other")] == 1
    exemplars = {
        (sample.labels["level"], sample.labels["component"]): dict(sample.exemplar.labels)
        for sample in exporter.openmetrics_samples()
        if sample.name == "llmopt_log_events_total" and sample.exemplar is not None
    }
    assert exemplars[("critical", "logs-reported")] == {"trace_id": trace.trace_id, "span_id": trace.span_id}


def test_a_critical_entry_is_sent_at_once(
    exporter: Exporter, new_client: Callable[..., Client], captured: Captured
) -> None:
    client = new_client(exporter.url, flush_interval=60.0)
    logger = get_logger(
        "svc", "test", client=client, component="logs-at-once", name=captured.name, stream=captured.stream
    )
    logger.error("waits for the batch")
    logger.critical("goes now, with what waited before it")
    counted = key("llmopt_log_events_total", level="critical", component="logs-at-once")
    assert wait_until(lambda: exporter.samples().get(counted) == 1, timeout=5)
    assert exporter.samples()[key("llmopt_log_events_total", level="error", component="logs-at-once")] == 1


class Recorder:
    """Stands in for a Client: keeps what the handler emits."""

    def __init__(self) -> None:
        self.events: list[LogEvent] = []

    def emit(self, event: LogEvent) -> None:
        self.events.append(event)


def test_the_handler_turns_records_into_bounded_events() -> None:
    recorder = Recorder()
    handler = ExporterHandler(recorder, component="tuner", service="svc")  # type: ignore[arg-type]
    logger = logging.getLogger("tests.logs.handler")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("below the handler's level")
        logging.getLogger("llmopt_client").addHandler(handler)
        logging.getLogger("llmopt_client").error("the client's own records are never reported")
        try:
            raise TimeoutError("t" * 3000)
        except TimeoutError:
            logger.exception("m" * 3000, extra={"component": "bandit", "request_id": "req-9"})
    finally:
        logging.getLogger("llmopt_client").removeHandler(handler)
        logger.removeHandler(handler)

    (event,) = recorder.events
    assert (event.level, event.component, event.service, event.logger, event.request_id) == (
        "error",
        "bandit",
        "svc",
        "tests.logs.handler",
        "req-9",
    )
    assert event.message is not None and len(event.message) == 1024
    assert (event.error_name, len(event.error_message or "")) == ("TimeoutError", 1024)
    assert event.error_stack is not None and event.error_stack.endswith("t" * 100 + "\n")
    assert len(event.error_stack) <= 16384
