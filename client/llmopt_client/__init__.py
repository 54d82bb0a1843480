"""Python client of the llmopt-exporter event API.

    from llmopt_client import Client, BanditReward

    with Client("http://127.0.0.1:9477") as client:
        with client.llm_call("gpt-4o-mini", provider="openai") as call:
            answer = ask_the_model(prompt)
            call.record(input_tokens=120, output_tokens=40, cost_usd=0.0002, quality=88)
        client.emit(BanditReward(arm_id="t0.7", reward=0.8))

Also: a structured logger whose errors and critical entries reach the exporter (``get_logger``),
spans of the request flow (``OptimizerTracer``), the error budget halt guard
(``should_halt_optimization``, ``HaltGuard``) and the rules' verdict on an experiment
(``experiment_decision``).

Standard library only; OpenTelemetry's current span is used when OpenTelemetry is installed.
"""

from llmopt_client.client import DEFAULT_URL, Client, ClientStats
from llmopt_client.decision import ExperimentDecision, experiment_decision
from llmopt_client.events import (
    ALL_EVENTS,
    BanditConverged,
    BanditPull,
    BanditReward,
    BudgetLimit,
    BudgetSpend,
    BudgetViolation,
    Business,
    Deployment,
    Event,
    ExperimentCompleted,
    ExperimentProgress,
    ExperimentRolledBack,
    ExperimentStarted,
    Feedback,
    IncidentOpened,
    IncidentResolved,
    LlmRequest,
    LogEvent,
    ModelHealth,
    ModelSwitch,
    ParameterUpdate,
)
from llmopt_client.halt import HaltDecision, HaltGuard, PrometheusUnavailable, should_halt_optimization
from llmopt_client.instrument import CallLabels, LlmCall, Outcome, current_call
from llmopt_client.logs import ExporterHandler, JsonFormatter, StructuredLogger, get_logger
from llmopt_client.replicas import (
    STATE_KEY,
    ClientOptions,
    ReplicaClient,
    replica_order,
    replica_urls,
    routing_key,
)
from llmopt_client.spans import OptimizerTracer, Span
from llmopt_client.tracing import TraceContext, current_trace, trace_context

__version__ = "0.1.0"

__all__ = [
    "ALL_EVENTS",
    "DEFAULT_URL",
    "STATE_KEY",
    "BanditConverged",
    "BanditPull",
    "BanditReward",
    "BudgetLimit",
    "BudgetSpend",
    "BudgetViolation",
    "Business",
    "CallLabels",
    "Client",
    "ClientOptions",
    "ClientStats",
    "Deployment",
    "Event",
    "ExperimentCompleted",
    "ExperimentDecision",
    "ExperimentProgress",
    "ExperimentRolledBack",
    "ExperimentStarted",
    "ExporterHandler",
    "Feedback",
    "HaltDecision",
    "HaltGuard",
    "IncidentOpened",
    "IncidentResolved",
    "JsonFormatter",
    "LlmCall",
    "LlmRequest",
    "LogEvent",
    "ModelHealth",
    "ModelSwitch",
    "OptimizerTracer",
    "Outcome",
    "ParameterUpdate",
    "PrometheusUnavailable",
    "ReplicaClient",
    "Span",
    "StructuredLogger",
    "TraceContext",
    "__version__",
    "current_call",
    "current_trace",
    "experiment_decision",
    "get_logger",
    "replica_order",
    "replica_urls",
    "routing_key",
    "should_halt_optimization",
    "trace_context",
]
