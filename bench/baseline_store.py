"""The stock baseline: the metric store as it was before the purpose-built one (app/store.py).

The declared metrics as prometheus_client objects in one registry, updated through bound children
(``labels()`` is called once per series, then the child is cached), rendered by
``generate_latest``. Kept here, unchanged but for its name and imports and a ``label_set`` the
recorder now asks for (it updates through the same methods), so every benchmark run can compare
against it on the same machine at the same moment.

Looking up a labelled child (``metric.labels(...)``) costs more than the update itself, so the
store keeps every child it has bound. It also guards cardinality: each client-supplied label
(``metrics.GUARDED_LABELS``) keeps at most a fixed number of distinct values; later values are
counted under ``__overflow__`` and the overflow is itself counted, per metric and label. Writers
are the event loop's ingest path only.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from app import metrics as m
from app.metrics import GUARDED_LABELS, OVERFLOW_VALUE, MetricSpec, build_metrics
from app.store import LabelGuard

Labels = tuple[str, ...]
Exemplar = Mapping[str, str] | None


class PrometheusClientStore:
    """Updates declared metrics by spec and label values."""

    def __init__(self, registry: CollectorRegistry, guard: LabelGuard | None = None) -> None:
        self.registry = registry
        self._metrics = build_metrics(registry)
        self._guard = guard or LabelGuard(limit=1_000_000)
        self._children: dict[tuple[MetricSpec, Labels], Any] = {}
        self._series: Tally[MetricSpec] = Tally()

    def _child(self, spec: MetricSpec, labels: Labels) -> Any:
        child = self._children.get((spec, labels))
        if child is not None:
            return child
        if len(labels) != len(spec.labels):
            raise ValueError(f"{spec.name} takes labels {spec.labels}, got {labels!r}")
        admitted = self._admit(spec, labels)
        child = self._children.get((spec, admitted))
        if child is None:
            metric = self._metrics[spec]
            child = metric.labels(*admitted) if admitted else metric
            self._children[(spec, admitted)] = child
            self._count_series(spec, +1)
        return child

    def _admit(self, spec: MetricSpec, labels: Labels) -> Labels:
        """``labels`` with every value past its label's cap replaced by the overflow value."""
        admitted = list(labels)
        for index, name in enumerate(spec.labels):
            if name in GUARDED_LABELS and not self._guard.admit(name, labels[index]):
                admitted[index] = OVERFLOW_VALUE
                self.inc(m.LABEL_OVERFLOW, (spec.name, name))
        return tuple(admitted)

    def _count_series(self, spec: MetricSpec, change: int) -> None:
        self._series[spec] += change
        if spec is not m.SERIES:
            self.set(m.SERIES, (spec.name,), self._series[spec])

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

    def label_set(self, labels: Labels) -> LabelSet:
        """What the recorder asks of app.store.MetricStore; here, updates through this store."""
        return LabelSet(self, labels)

    def remove(self, spec: MetricSpec, labels: Labels) -> None:
        """Drop one series (state of something that ended); a missing series is not an error."""
        if self._children.pop((spec, labels), None) is not None:
            self._metrics[spec].remove(*labels)
            self._count_series(spec, -1)

    def remove_matching(self, label: str, value: str) -> int:
        """Drop every series, of any metric, whose ``label`` is ``value``; return how many."""
        doomed = [
            (spec, labels)
            for spec, labels in self._children
            if label in spec.labels and labels[spec.labels.index(label)] == value
        ]
        for spec, labels in doomed:
            self.remove(spec, labels)
        self._guard.release(label, value)
        return len(doomed)

    def gauge_values(self, specs: frozenset[MetricSpec]) -> Iterator[tuple[MetricSpec, Labels, float]]:
        """The current value of every series of the given gauges."""
        for (spec, labels), child in list(self._children.items()):
            if spec in specs:
                yield spec, labels, float(child._value.get())


class LabelSet:
    """``label_set[spec].inc(...)`` as ``store.inc(spec, labels, ...)``: the recorder's view of
    several metrics under one label set, kept to this store's own update path."""

    def __init__(self, store: PrometheusClientStore, labels: Labels) -> None:
        self.store = store
        self.labels = labels

    def __getitem__(self, key: MetricSpec | tuple[MetricSpec, str]) -> Updates:
        if isinstance(key, tuple):
            return Updates(self.store, key[0], (*self.labels, key[1]))
        return Updates(self.store, key, self.labels)


class Updates:
    def __init__(self, store: PrometheusClientStore, spec: MetricSpec, labels: Labels) -> None:
        self.store = store
        self.spec = spec
        self.labels = labels

    def inc(self, amount: float, exemplar: Exemplar) -> None:
        self.store.inc(self.spec, self.labels, amount, exemplar)

    def observe(self, value: float, exemplar: Exemplar) -> None:
        self.store.observe(self.spec, self.labels, value, exemplar)

    def set(self, value: float) -> None:
        self.store.set(self.spec, self.labels, value)
