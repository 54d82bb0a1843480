"""How every metric reads across exporter replicas, and a check that a query reads it that way.

Several replicas of the exporter each receive part of an optimizer's events (docs/scaling.md).
Counters, histograms and summaries add up: a query sums them over the replicas (``sum without
(instance, pod, job, ...)`` or ``sum by (<domain labels>)``). Gauges do not add up, so each is
declared here with what it is:

``state``
    set only by state events (experiments, parameter updates, budget limits, model health,
    business figures, incidents, bandit convergence), which the client sends to one replica, the
    state owner. The others hold no such series, or 0 for the counts they keep from the start, so
    ``max`` over the replicas reads the owner's value (``sum`` does too while one replica owns it).
``latest``
    a point in time that every replica may report (its own start time until an improvement, the
    last deployment it saw): ``max`` is the latest any replica saw; ``sum`` would be nonsense.
``fact``
    the same value on every replica that has the series (the parameter value an arm stands for):
    ``max`` reads it; ``sum`` would multiply it by the number of replicas.
``replica``
    a fact about one replica (its build, start time, series held, last snapshot): read per replica,
    or summed for a total of the deployment.

``python -m mixin.scaling`` prints the table of docs/scaling.md; a test keeps them equal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from app import metrics as m
from app.metrics import MetricSpec
from mixin import promql

GaugeKind = Literal["state", "latest", "fact", "replica"]


@dataclass(frozen=True)
class GaugeReading:
    kind: GaugeKind
    why: str


def _state(events: str) -> GaugeReading:
    return GaugeReading("state", f"set by {events}, which go to the state owner only")


GAUGES: Mapping[MetricSpec, GaugeReading] = {
    m.EXPERIMENTS_ACTIVE: GaugeReading(
        "state", "counted by the state owner from experiment events; 0 on the other replicas"
    ),
    m.EXPERIMENT_PROGRESS: _state("experiment events"),
    m.EXPERIMENT_CONFIDENCE: _state("experiment events"),
    m.EXPERIMENT_LEAD: _state("experiment events"),
    m.EXPERIMENT_LEADER: _state("experiment events"),
    m.EXPERIMENT_TRAFFIC_SPLIT: _state("experiment events"),
    m.EXPERIMENT_CONTROL: _state("experiment events"),
    m.EXPERIMENT_WINNER: _state("experiment events"),
    m.EXPERIMENT_SAMPLES: _state("experiment events"),
    m.EXPERIMENT_STARTED_AT: _state("experiment events"),
    m.BUDGET_LIMIT: _state("budget limit and violation events"),
    m.BANDIT_CONVERGENCE: _state("bandit convergence events"),
    m.PARAMETER_VALUE: _state("parameter updates"),
    m.PARAMETER_STABILITY: _state("parameter updates"),
    m.PARAMETER_GAIN: _state("parameter updates"),
    m.MODEL_AVAILABLE: _state("model health events"),
    m.MODEL_PROBE_LATENCY: _state("model health events"),
    m.MODEL_ERROR_RATIO: _state("model health events"),
    m.MODEL_LAST_CHECK: _state("model health events"),
    m.QUALITY_BASELINE: _state("business events"),
    m.QUALITY_IMPROVEMENT_CONFIDENCE: _state("business events"),
    m.COST_SAVINGS_CONFIDENCE: _state("business events"),
    m.INCIDENTS_OPEN: GaugeReading(
        "state", "counted by the state owner from incident events; 0 on the other replicas"
    ),
    m.LAST_IMPROVEMENT: GaugeReading("latest", "improvements are spread over the replicas"),
    m.LAST_DEPLOYMENT: GaugeReading("latest", "deployment events are spread over the replicas"),
    m.LAST_LOG_EVENT: GaugeReading("latest", "log events are spread over the replicas"),
    m.BANDIT_ARM_PARAMETER: GaugeReading(
        "fact", "LLM calls and pulls, spread over the replicas, carry the arm's parameter value"
    ),
    m.BUILD_INFO: GaugeReading("replica", "each replica's version"),
    m.START_TIME: GaugeReading("replica", "each replica's start"),
    m.SERIES: GaugeReading("replica", "series each replica holds; the sum is what Prometheus ingests"),
    m.SNAPSHOT_LAST_SUCCESS: GaugeReading("replica", "each replica writes its own snapshot"),
    m.SNAPSHOT_SIZE: GaugeReading("replica", "each replica writes its own snapshot"),
}

# The aggregations over replicas that give one right answer, by kind of metric.
READINGS: Mapping[str, frozenset[str]] = {
    "additive": frozenset({"sum"}),
    "state": frozenset({"max", "sum"}),
    "latest": frozenset({"max"}),
    "fact": frozenset({"max", "min", "avg"}),
}
# The one a rule uses: state gauges are read with max, which also keeps a stale copy left on a
# replica after a failover from adding to the owner's value.
PREFERRED = {"additive": "sum", "state": "max", "latest": "max", "fact": "max"}


def reading(spec: MetricSpec) -> str:
    """``additive`` for counters, histograms and summaries, else the gauge's kind."""
    return GAUGES[spec].kind if spec.kind == "gauge" else "additive"


def exposed_names() -> dict[str, MetricSpec]:
    """Every series name the exporter exposes (histograms and summaries with their suffixes)."""
    names: dict[str, MetricSpec] = {}
    for spec in m.ALL_METRICS:
        names[spec.name] = spec
        suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
        for suffix in suffixes.get(spec.kind, ()):
            names[spec.name + suffix] = spec
    return names


# --- Checking a query ----------------------------------------------------------------------------


def replica_problems(
    expr: str, replica_labels: Sequence[str], *, strict: bool = False, skip_categories: Iterable[str] = ()
) -> list[str]:
    """Why ``expr`` would not give N replicas the answer of one; empty when it would.

    Every series of the exporter that it names must sit, innermost, in an aggregation that drops
    every replica label (``without`` lists them all, ``by`` lists none) with an operation that
    reads its kind right (:data:`READINGS`; with ``strict``, only :data:`PREFERRED`). Metrics of
    the categories in ``skip_categories`` (e.g. the exporter's own, shown per replica) are not
    checked. ``expr`` is read by the PromQL parser (:mod:`mixin.promql`).
    """
    names = exposed_names()
    skipped = set(skip_categories)
    problems: list[str] = []
    for selection in promql.selections(expr):
        spec = names.get(selection.name)
        if spec is None or spec.category in skipped:
            continue
        kind = reading(spec)
        allowed = {PREFERRED[kind]} if strict else READINGS[kind]
        found = selection.aggregation
        if found is None:
            problems.append(f"{selection.name} is not aggregated over replicas")
            continue
        if found.op not in allowed:
            problems.append(
                f"{selection.name} ({kind}) is read with {found.op}; use {' or '.join(sorted(allowed))}"
            )
        labels = set(found.labels)
        kept = set(replica_labels) - labels if found.grouping == "without" else labels & set(replica_labels)
        if found.grouping and kept:
            clause = f"{found.op} {found.grouping} ({', '.join(found.labels)})"
            problems.append(f"{selection.name}: {clause} keeps {sorted(kept)}")
    return problems


# --- The table of docs/scaling.md ----------------------------------------------------------------


def gauge_table() -> str:
    """The Markdown table of every gauge, its kind and the aggregation that reads it."""
    lines = ["| gauge | kind | read with | why |", "|---|---|---|---|"]
    for spec, decided in GAUGES.items():
        how = "per replica" if decided.kind == "replica" else f"`{PREFERRED[decided.kind]}`"
        lines.append(f"| `{spec.name}` | {decided.kind} | {how} | {decided.why} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(gauge_table())
