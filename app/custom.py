"""Custom metrics: declared by the operator (setting ``custom_metrics``), updated by ``metric``
events, exposed under ``llmopt_custom_``.

A declaration names the metric's kind, help text, label names and (histograms) buckets; the
exporter builds one metric from it, with the caps every client-supplied label has (each label of a
custom metric keeps at most ``label_value_limit`` values, and the metric at most
``max_series_per_metric`` series). An event for an undeclared metric, of another kind, or with
labels other than the declared ones is refused naming the field, as every invalid event is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.events import MAX_CUSTOM_LABELS, NAME_MAX_LENGTH, NAME_PATTERN, CustomKind, MetricValue
from app.metrics import CUSTOM, MetricSpec

CUSTOM_PREFIX = "llmopt_custom_"
# Most custom metrics the settings may declare.
MAX_CUSTOM_METRICS = 100
# Most buckets a declared histogram may have (each is a series per label set).
MAX_CUSTOM_BUCKETS = 32
# Suffixes Prometheus gives the samples of counters and histograms: a name ending in one would
# read as a sample of another metric.
RESERVED_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created", "_info")
# Histogram buckets when a declaration gives none: prometheus_client's defaults.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_NAME = re.compile(NAME_PATTERN)


def _prometheus_name(value: str) -> str:
    if len(value) > NAME_MAX_LENGTH or not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a name: 1 to {NAME_MAX_LENGTH} letters, digits and _, "
            "not starting with a digit"
        )
    return value


def _metric_name(value: str) -> str:
    _prometheus_name(value)
    if value.endswith(RESERVED_SUFFIXES):
        raise ValueError(
            f"{value!r} ends in a suffix Prometheus gives samples ({', '.join(RESERVED_SUFFIXES)})"
        )
    return value


def _label_name(value: str) -> str:
    _prometheus_name(value)
    if value.startswith("__") or value == "le":
        raise ValueError(f"{value!r} is reserved (le, and names starting with __)")
    return value


MetricName = Annotated[str, AfterValidator(_metric_name)]
LabelName = Annotated[str, AfterValidator(_label_name)]


class CustomMetric(BaseModel):
    """One custom metric as the settings declare it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CustomKind = Field(description="counter, gauge or histogram.")
    help: str = Field(min_length=1, max_length=512, description="The help text /metrics shows.")
    labels: tuple[LabelName, ...] = Field(
        (), max_length=MAX_CUSTOM_LABELS, description="Its label names; every event gives each a value."
    )
    buckets: tuple[float, ...] | None = Field(
        None,
        min_length=1,
        max_length=MAX_CUSTOM_BUCKETS,
        description="A histogram's upper bounds, rising (default: prometheus_client's).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CustomMetric:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels are named twice")
        if self.buckets is not None:
            if self.kind != "histogram":
                raise ValueError(f"buckets are for histograms, not a {self.kind}")
            if not all(math.isfinite(bound) for bound in self.buckets):
                raise ValueError("buckets are finite numbers (+Inf is always added)")
            if any(low >= high for low, high in zip(self.buckets, self.buckets[1:], strict=False)):
                raise ValueError("buckets must rise")
        return self


CustomMetrics = Annotated[dict[MetricName, CustomMetric], Field(max_length=MAX_CUSTOM_METRICS)]


def spec_of(name: str, declared: CustomMetric) -> MetricSpec:
    """The metric a declaration makes."""
    exposed = CUSTOM_PREFIX + name + ("_total" if declared.kind == "counter" else "")
    buckets = (declared.buckets or DEFAULT_BUCKETS) if declared.kind == "histogram" else ()
    return MetricSpec(
        exposed,
        declared.kind,
        declared.help,
        declared.labels,
        buckets=buckets,
        category=CUSTOM,
        # A gauge has no value until an event sets one (and none again once it expires).
        is_unset_at_start=declared.kind == "gauge",
        is_custom=True,
    )


class CustomRegistry:
    """The declared custom metrics, by name: their metrics, and what makes an event for them valid."""

    def __init__(self, declared: Mapping[str, CustomMetric]) -> None:
        self.specs: dict[str, MetricSpec] = {name: spec_of(name, one) for name, one in declared.items()}
        # name -> (kind, label names): what a valid event says.
        self._expected = {name: (spec.kind, spec.labels) for name, spec in self.specs.items()}

    def is_valid(self, event: MetricValue) -> bool:
        """Whether ``event`` names a declared metric, its kind and exactly its labels."""
        expected = self._expected.get(event.name)
        return (
            expected is not None
            and expected[0] == event.kind
            and len(event.labels) == len(expected[1])
            and all(name in event.labels for name in expected[1])
        )

    def problems(self, event: MetricValue) -> list[tuple[str, str]]:
        """What makes ``event`` invalid, as (field, message) pairs; none when it is valid."""
        spec = self.specs.get(event.name)
        if spec is None:
            declared = ", ".join(sorted(self.specs)) or "none"
            return [("name", f"{event.name!r} is not a declared custom metric (custom_metrics: {declared})")]
        if spec.kind != event.kind:
            return [("kind", f"{event.name} is a {spec.kind}, not a {event.kind}")]
        found = [
            (
                f"labels.{label}",
                f"{label!r} is not a label of {event.name} (its labels: {', '.join(spec.labels) or 'none'})",
            )
            for label in event.labels
            if label not in spec.labels
        ]
        found += [
            (f"labels.{label}", f"{event.name} needs a value for its label {label!r}")
            for label in spec.labels
            if label not in event.labels
        ]
        return found

    def labels_of(self, event: MetricValue) -> tuple[MetricSpec, tuple[str, ...]]:
        """The metric of a valid ``event`` and its label values, in declared order."""
        spec = self.specs[event.name]
        return spec, tuple(event.labels[label] for label in spec.labels)
