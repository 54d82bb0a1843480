"""Python client of the llmopt-exporter event API.

    from llmopt_client import Client, BanditReward

    with Client("http://127.0.0.1:9477") as client:
        with client.llm_call("gpt-4o-mini", provider="openai") as call:
            answer = ask_the_model(prompt)
            call.record(input_tokens=120, output_tokens=40, cost_usd=0.0002, quality=88)
        client.emit(BanditReward(arm_id="t0.7", reward=0.8))

Standard library only; OpenTelemetry's current span is used when OpenTelemetry is installed.
"""

from llmopt_client.client import DEFAULT_URL, Client, ClientStats
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
    ModelHealth,
    ModelSwitch,
    ParameterUpdate,
)
from llmopt_client.instrument import CallLabels, LlmCall, Outcome, current_call
from llmopt_client.replicas import (
    STATE_KEY,
    ClientOptions,
    ReplicaClient,
    replica_order,
    replica_urls,
    routing_key,
)
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
    "ExperimentProgress",
    "ExperimentRolledBack",
    "ExperimentStarted",
    "Feedback",
    "IncidentOpened",
    "IncidentResolved",
    "LlmCall",
    "LlmRequest",
    "ModelHealth",
    "ModelSwitch",
    "Outcome",
    "ParameterUpdate",
    "ReplicaClient",
    "TraceContext",
    "__version__",
    "current_call",
    "current_trace",
    "replica_order",
    "replica_urls",
    "routing_key",
    "trace_context",
]
