"""The metric store: the declared metrics in one registry, updated through bound children.

Looking up a labelled child (``metric.labels(...)``) costs more than the update itself, so the
store keeps every child it has bound. Writers are the event loop's ingest path only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from app.metrics import MetricSpec, build_metrics

Labels = tuple[str, ...]
Exemplar = Mapping[str, str] | None


class MetricStore:
    """Updates declared metrics by spec and label values."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._metrics = build_metrics(registry)
        self._children: dict[tuple[MetricSpec, Labels], Any] = {}

    def _child(self, spec: MetricSpec, labels: Labels) -> Any:
        key = (spec, labels)
        child = self._children.get(key)
        if child is None:
            if len(labels) != len(spec.labels):
                raise ValueError(f"{spec.name} takes labels {spec.labels}, got {labels!r}")
            metric = self._metrics[spec]
            child = metric.labels(*labels) if labels else metric
            self._children[key] = child
        return child

    def inc(
        self, spec: MetricSpec, labels: Labels = (), amount: float = 1.0, exemplar: Exemplar = None
    ) -> None:
        if exemplar:
            self._child(spec, labels).inc(amount, exemplar=exemplar)
        else:
            self._child(spec, labels).inc(amount)

    def observe(self, spec: MetricSpec, labels: Labels, value: float, exemplar: Exemplar = None) -> None:
        if exemplar and spec.kind == "histogram":
            self._child(spec, labels).observe(value, exemplar=exemplar)
        else:
            self._child(spec, labels).observe(value)

    def set(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        self._child(spec, labels).set(value)

    def touch(self, spec: MetricSpec, labels: Labels = ()) -> None:
        """Make a series exist (at zero) before its first update, so rate() sees it start."""
        self._child(spec, labels)

    def remove(self, spec: MetricSpec, labels: Labels) -> None:
        """Drop one series (state of something that ended); a missing series is not an error."""
        if self._children.pop((spec, labels), None) is not None:
            self._metrics[spec].remove(*labels)
