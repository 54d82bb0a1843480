"""Declared dimensions: extra labels (team, application, environment...) that events carry in
their ``labels`` object, declared once in ``alerts/config.yml`` (section ``dimensions``).

The exporter reads that section (setting ``dimensions_file``) and the rules and dashboards are
rendered from it, so the labels the exporter adds are the ones the rules keep or sum away. Each
dimension keeps at most its declared number of values, as every client-supplied label does; an
event that names an undeclared dimension is refused naming it, and a call that names none of them
is counted with the dimension's label empty (Prometheus reads it as absent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from app import metrics as m
from app.events import NAME_PATTERN
from app.metrics import ALL_METRICS, MetricSpec

# Most dimensions that may be declared: each multiplies the series of the metrics that carry it.
MAX_DIMENSIONS = 4
# Labels a dimension may not be named: every label of a metric, and those Prometheus, the scrape
# and the rules give series.
RESERVED = frozenset(
    {label for spec in ALL_METRICS for label in spec.labels}
    | {"le", "quantile", "instance", "job", "pod", "slo"}
)

# The metrics that carry the declared dimensions, each with where they go among its labels: after
# the labels every update of the metric shares (the call's model, provider and task type; the
# feedback's model, experiment and variant), before the one label an update adds.
DIMENSIONED: Mapping[MetricSpec, int] = {
    m.LLM_REQUESTS: 3,
    m.LLM_REQUEST_ERRORS: 3,
    m.LLM_RETRIES: 3,
    m.LLM_FAILURES: 3,
    m.LLM_TOKENS: 3,
    m.LLM_CACHED_TOKENS: 3,
    m.LLM_CACHE_WRITE_TOKENS: 3,
    m.LLM_REASONING_TOKENS: 3,
    m.LLM_COST: 3,
    m.LLM_BASELINE_COST: 3,
    m.FEEDBACK_THUMBS: 3,
    m.FEEDBACK_NPS: 3,
    m.FEEDBACK_CSAT: 3,
    m.FEEDBACK_CSAT_SATISFIED: 3,
    m.BUDGET_LIMIT: 1,
}

_NAME = re.compile(NAME_PATTERN)


def _dimension_name(value: str) -> str:
    if not _NAME.match(value) or value.startswith("__"):
        raise ValueError(
            f"{value!r} is not a label name (letters, digits and _, not starting with a digit or __)"
        )
    if value in RESERVED:
        raise ValueError(f"{value!r} is a label the exporter or Prometheus already uses")
    return value


DimensionName = Annotated[str, AfterValidator(_dimension_name)]
# name -> the most values it keeps.
Declared = Annotated[
    dict[DimensionName, Annotated[int, Field(ge=1, le=100_000)]], Field(max_length=MAX_DIMENSIONS)
]
_DECLARED: TypeAdapter[dict[str, int]] = TypeAdapter(Declared)


class DimensionsError(ValueError):
    """The dimensions cannot be read; the message names the file and the key."""


def read_dimensions(path: Path) -> dict[str, int]:
    """The ``dimensions`` section of a rules config file (none when it has no such section)."""
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise DimensionsError(f"cannot read {path}: {err}") from err
    section = document.get("dimensions") if isinstance(document, dict) else None
    return parse_dimensions(section or {}, str(path))


def parse_dimensions(section: object, where: str = "dimensions") -> dict[str, int]:
    """A ``dimensions`` section, checked."""
    try:
        return _DECLARED.validate_python(section)
    except ValidationError as err:
        problem = err.errors()[0]
        key = ".".join(str(part) for part in problem["loc"])
        raise DimensionsError(f"{where}: dimensions{'.' + key if key else ''}: {problem['msg']}") from err


class Dimensions:
    """The declared dimensions: their names (in declared order), their caps, and the metrics that
    carry them (``spec(m.LLM_REQUESTS)``: the metric as the store keeps it)."""

    def __init__(self, declared: Mapping[str, int]) -> None:
        self.names: tuple[str, ...] = tuple(declared)
        self.caps: dict[str, int] = dict(declared)
        self.names_set = frozenset(self.names)
        self._specs: dict[MetricSpec, MetricSpec] = {
            spec: _with(spec, position, self.names) for spec, position in DIMENSIONED.items()
        }

    def __bool__(self) -> bool:
        return bool(self.names)

    def spec(self, spec: MetricSpec) -> MetricSpec:
        """``spec`` with the declared dimensions among its labels, if it carries them."""
        return self._specs.get(spec, spec)

    def values(self, labels: Mapping[str, str] | None) -> tuple[str, ...]:
        """The value of each dimension in an event's ``labels`` ('' where it names none)."""
        if not labels:
            return ("",) * len(self.names)
        return tuple(labels.get(name, "") for name in self.names)

    def undeclared(self, labels: Mapping[str, str] | None) -> list[str]:
        """The keys of an event's ``labels`` that are no declared dimension."""
        return [name for name in labels or () if name not in self.names_set]


def _with(spec: MetricSpec, position: int, names: tuple[str, ...]) -> MetricSpec:
    if not names:
        return spec
    labels = (*spec.labels[:position], *names, *spec.labels[position:])
    return replace(spec, labels=labels, dimensions=names)
