"""The metric store: every declared metric as plain series that remember their exposition text.

Each label set of a metric is one :class:`Series` holding its numbers (a value; or a count and a
sum; or per-bucket counts and a sum) and the text it rendered last, in each format. An update
changes the numbers and drops that text; a scrape (see ``app.render``) re-renders only the series
whose text was dropped. Series are bound once per label set and cached, so an update costs one
dict lookup and a few float operations; prometheus_client's ``labels()`` lock and validation are
not on the ingest path.

The numbers follow prometheus_client's exactly (float counters that refuse to go down, histogram
buckets counted apart and summed at render time, exemplars stamped with wall-clock time), and
:meth:`MetricStore.collect` presents the store to prometheus_client as a collector, so its own
encoders can render it too: that is the reference the fast renderer is tested against, and the
path for the rarely used exposition variants (a ``name[]`` filter, other escapings).

The store also keeps a series budget. Each client-supplied label (``metrics.GUARDED_LABELS``)
keeps at most a fixed number of distinct values (later values are counted under ``__overflow__``,
and the overflow per metric and label); each metric with such labels keeps at most
``max_series_per_metric`` label sets, and all of them together at most ``max_series``: past
either, a new label set is counted under the metric's overflow label set (every client-supplied
label ``__overflow__``), and that overflow is counted too. A label value holds its slot, and a
series its place in the budget, only while it exists: removing series frees them. Writers are the
event loop's only.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import ClassVar, cast

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar as StampedExemplar
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from app import metrics as m
from app.metrics import ALL_METRICS, GUARDED_LABELS, OVERFLOW_VALUE, MetricSpec

Labels = tuple[str, ...]
Exemplar = Mapping[str, str] | None
_INF = math.inf
# How prometheus_client writes a number (Go's float formatting); typed for our callers.
format_value: Callable[[float], str] = floatToGoString
_new_tuple = tuple.__new__
# Label values that take no slot of a label's cap: absent, and the overflow itself.
_SLOTLESS = frozenset({"", OVERFLOW_VALUE})
# Most label sets MetricStore.label_set keeps before it starts afresh.
_LABEL_SETS_KEPT = 10_000


def _stamped(exemplar: Mapping[str, str], value: float) -> StampedExemplar:
    """prometheus_client's Exemplar stamped now; built as the tuple it is, skipping the Python
    ``__new__`` a namedtuple has (exemplars are stamped on the ingest path)."""
    return _new_tuple(StampedExemplar, (exemplar, value, time.time()))


def escape_label_value(value: str) -> str:
    """A label value as both exposition formats quote it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def label_string(names: Iterable[str], values: Iterable[str]) -> str:
    """``a="x",b="y"``, sorted by label name as prometheus_client writes them ('' for none)."""
    return ",".join(
        f'{name}="{escape_label_value(value)}"' for name, value in sorted(zip(names, values, strict=True))
    )


class Series:
    """One label set of a metric. ``text`` and ``om`` hold its rendered lines (text format and
    OpenMetrics, encoded); None means an update made them stale."""

    __slots__ = ("labels", "labelstr", "om", "text")

    def __init__(self, labels: Labels, labelstr: str) -> None:
        self.labels = labels
        self.labelstr = labelstr
        self.text: bytes | None = None
        self.om: bytes | None = None

    def samples(self) -> list[Sample]:
        """This series as prometheus_client's samples (suffix, sample labels, value, exemplar)."""
        raise NotImplementedError

    # Each kind overrides the updates it takes; the others are a programming error.
    def inc(self, amount: float, exemplar: Exemplar) -> None:
        raise TypeError(f"{type(self).__name__} cannot be incremented")

    def set(self, value: float) -> None:
        raise TypeError(f"{type(self).__name__} cannot be set")

    def observe(self, amount: float, exemplar: Exemplar) -> None:
        raise TypeError(f"{type(self).__name__} takes no observations")


class CounterSeries(Series):
    __slots__ = ("exemplar", "value")

    def __init__(self, labels: Labels, labelstr: str) -> None:
        super().__init__(labels, labelstr)
        self.value = 0.0
        self.exemplar: StampedExemplar | None = None

    def inc(self, amount: float, exemplar: Exemplar) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount
        if exemplar:
            self.exemplar = _stamped(exemplar, amount)
        self.text = self.om = None

    def samples(self) -> list[Sample]:
        return [Sample("_total", {}, self.value, None, self.exemplar)]


class GaugeSeries(Series):
    __slots__ = ("value",)

    def __init__(self, labels: Labels, labelstr: str) -> None:
        super().__init__(labels, labelstr)
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)
        self.text = self.om = None

    def inc(self, amount: float, exemplar: Exemplar) -> None:
        self.value += amount
        self.text = self.om = None

    def samples(self) -> list[Sample]:
        return [Sample("", {}, self.value, None, None)]


class SummarySeries(Series):
    __slots__ = ("count", "sum")

    def __init__(self, labels: Labels, labelstr: str) -> None:
        super().__init__(labels, labelstr)
        self.count = 0.0
        self.sum = 0.0

    def observe(self, amount: float, exemplar: Exemplar) -> None:
        self.count += 1
        self.sum += amount
        self.text = self.om = None

    def samples(self) -> list[Sample]:
        return [Sample("_count", {}, self.count, None, None), Sample("_sum", {}, self.sum, None, None)]


class HistogramSeries(Series):
    """Counts per bucket (not cumulative, as prometheus_client keeps them) and the sum.
    ``lead`` and ``tail`` are the label string before and after ``le``, which sorts among them."""

    __slots__ = ("bounds", "buckets", "exemplars", "lead", "sum", "tail")

    def __init__(
        self, labels: Labels, labelstr: str, bounds: tuple[float, ...], lead: str, tail: str
    ) -> None:
        super().__init__(labels, labelstr)
        self.bounds = bounds
        self.buckets = [0.0] * len(bounds)
        self.sum = 0.0
        self.exemplars: list[StampedExemplar | None] | None = None
        self.lead = lead
        self.tail = tail

    def observe(self, amount: float, exemplar: Exemplar) -> None:
        self.sum += amount
        if amount == amount:  # NaN falls in no bucket, as with prometheus_client
            index = bisect_left(self.bounds, amount)  # the first bucket with amount <= bound
            self.buckets[index] += 1
            if exemplar:
                if self.exemplars is None:
                    self.exemplars = [None] * len(self.bounds)
                self.exemplars[index] = _stamped(exemplar, amount)
        self.text = self.om = None

    def samples(self) -> list[Sample]:
        exemplars = self.exemplars or [None] * len(self.bounds)
        samples = []
        total = 0.0
        for bound, count, exemplar in zip(self.bounds, self.buckets, exemplars, strict=True):
            total += count
            samples.append(Sample("_bucket", {"le": format_value(bound)}, total, None, exemplar))
        samples.append(Sample("_count", {}, total, None, None))
        if self.bounds[0] >= 0:
            samples.append(Sample("_sum", {}, self.sum, None, None))
        return samples


class Family:
    """Every series of one declared metric, in the order they were first bound."""

    KINDS: ClassVar[Mapping[str, type[Series]]] = {
        "counter": CounterSeries,
        "gauge": GaugeSeries,
        "summary": SummarySeries,
        "histogram": HistogramSeries,
    }

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        self.series: dict[Labels, Series] = {}
        bounds = tuple(float(bound) for bound in spec.buckets)
        if spec.kind == "histogram" and (not bounds or bounds[-1] != _INF):
            bounds += (_INF,)
        self.bounds = bounds
        # Histogram samples carry `le`, which prometheus_client sorts among the other labels.
        self.le_position = sum(1 for name in spec.labels if name < "le")
        # Where the client-supplied labels are, with the name their values are capped under: the
        # series budget applies to these families only. Every label of a custom metric is the
        # client's, capped for that metric alone.
        self.guarded = tuple(
            (index, f"{spec.name}:{name}" if spec.is_custom else name)
            for index, name in enumerate(spec.labels)
            if spec.is_custom or name in GUARDED_LABELS or name in spec.dimensions
        )
        if not spec.labels and not spec.is_unset_at_start:
            self.add(())

    def overflow_labels(self, labels: Labels) -> Labels:
        """``labels`` with every client-supplied value replaced by the overflow value."""
        overflow = list(labels)
        for index, _ in self.guarded:
            overflow[index] = OVERFLOW_VALUE
        return tuple(overflow)

    def add(self, labels: Labels) -> Series:
        spec = self.spec
        labelstr = label_string(spec.labels, labels)
        series: Series
        if spec.kind == "histogram":
            pairs = [
                f'{name}="{escape_label_value(value)}"'
                for name, value in sorted(zip(spec.labels, labels, strict=True))
            ]
            lead = "".join(pair + "," for pair in pairs[: self.le_position])
            tail = "".join("," + pair for pair in pairs[self.le_position :])
            series = HistogramSeries(labels, labelstr, self.bounds, lead, tail)
        else:
            series = self.KINDS[spec.kind](labels, labelstr)
        self.series[labels] = series
        return series

    def metric(self, series: Iterable[Series]) -> Metric:
        """``series`` as the prometheus_client family its own metric objects would collect."""
        spec = self.spec
        family = Metric(spec.base_name, spec.help, spec.kind)
        for one in series:
            base = dict(zip(spec.labels, one.labels, strict=True))
            for suffix, labels, value, timestamp, exemplar, _ in one.samples():
                family.add_sample(spec.base_name + suffix, {**base, **labels}, value, timestamp, exemplar)
        return family


class LabelGuard:
    """At most ``limit`` distinct values per label name (``limits`` overrides per label).

    A value holds its slot while series use it: :meth:`hold` and :meth:`drop` count them, and the
    slot is free again once the last one is dropped. The empty value (a label an update does not
    give, which Prometheus reads as absent) and the overflow value hold none.
    """

    def __init__(self, limit: int, limits: Mapping[str, int] | None = None) -> None:
        self._limit = limit
        self._limits = dict(limits or {})
        self._values: dict[str, Tally[str]] = {}

    def admits(self, label: str, value: str) -> bool:
        """True when ``value`` may be used for ``label``: known, or room for one more."""
        held = self._values.get(label, ())
        if value in held or value in _SLOTLESS:
            return True
        return len(held) < self._limits.get(label, self._limit)

    def hold(self, label: str, value: str) -> None:
        """One more series uses ``value``."""
        if value not in _SLOTLESS:
            self._values.setdefault(label, Tally())[value] += 1

    def drop(self, label: str, value: str) -> None:
        """One series fewer uses ``value``; the last one frees its slot."""
        held = self._values.get(label)
        if held is not None and value in held:
            held[value] -= 1
            if held[value] <= 0:
                del held[value]

    def admit(self, label: str, value: str) -> bool:
        """:meth:`admits`, and :meth:`hold` when it does (for a store that never drops series)."""
        if not self.admits(label, value):
            return False
        self.hold(label, value)
        return True

    def release(self, label: str, value: str) -> None:
        """Forget ``value`` whatever holds it: its slot is free."""
        self._values.get(label, Tally()).pop(value, None)


class LabelSet(dict[MetricSpec | tuple[MetricSpec, str], Series]):
    """The series of several metrics under one label set, for code that updates many of them at
    once: ``label_set[spec]`` is the series ``MetricStore.inc(spec, labels)`` (or ``observe``,
    ``set``) would update, found with one lookup instead of one per update; and
    ``label_set[spec, value]`` the one of ``spec`` under ``labels`` and one label more, last.

    A series is kept here only once it is bound under exactly these label values; a label set
    that the cardinality guard sends to the overflow goes through the store every time, so each
    of its updates is counted as an overflow, as through the store.
    """

    __slots__ = ("labels", "store")

    def __init__(self, store: MetricStore, labels: Labels) -> None:
        super().__init__()
        self.store = store
        self.labels = labels

    def __missing__(self, key: MetricSpec | tuple[MetricSpec, str]) -> Series:
        if isinstance(key, tuple):
            spec, labels = key[0], (*self.labels, key[1])
        else:
            spec, labels = key, self.labels
        series = self.store.series(spec, labels)
        if self.store.is_bound_as_is(spec, labels, series):
            self[key] = series
        return series


class MetricStore:
    """Updates declared metrics by spec and label values; a prometheus_client collector too.

    ``registry``, when given, gets the store registered as a collector (it is then everything a
    scrape shows, with whatever else the registry holds). ``guard`` caps values per label;
    ``max_series`` and ``max_series_per_metric`` are the series budget (see the module's text);
    ``clock`` tells when an overflow gauge was last set, for :meth:`expire_overflow`.
    ``as_kept`` gives a declared metric as this store keeps it (with declared dimensions, some
    carry them among their labels: ``app.dimensions``); callers still name it by its declaration.
    ``custom`` are the metrics declared by the operator (``app.custom``), exposed after them.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        guard: LabelGuard | None = None,
        *,
        max_series: int = 10_000_000,
        max_series_per_metric: int = 10_000_000,
        clock: Callable[[], float] = time.time,
        as_kept: Callable[[MetricSpec], MetricSpec] | None = None,
        custom: Iterable[MetricSpec] = (),
    ) -> None:
        # By declaration; each family's own spec has the labels its series carry.
        self.families: dict[MetricSpec, Family] = {
            spec: Family(as_kept(spec) if as_kept else spec) for spec in (*ALL_METRICS, *custom)
        }
        self._guard = guard or LabelGuard(limit=1_000_000)
        self._max_series = max_series
        self._max_series_per_metric = max_series_per_metric
        self._clock = clock
        # Every series bound so far, by the label values it was bound with (after the guard).
        self._bound: dict[tuple[MetricSpec, Labels], Series] = {}
        self._series: Tally[MetricSpec] = Tally()
        self._total = 0
        # When each gauge series that overflow updates go to was last updated.
        self._overflow_gauges: dict[tuple[MetricSpec, Labels], float] = {}
        # Label sets handed out by label_set(); dropped whenever a series is removed.
        self._label_sets: dict[Labels, LabelSet] = {}
        self.registry = registry
        if registry is not None:
            registry.register(self)

    def _child(self, spec: MetricSpec, labels: Labels) -> Series:
        series = self._bound.get((spec, labels))
        if series is not None:
            return series
        family = self.families[spec]
        if len(labels) != len(family.spec.labels):
            raise ValueError(f"{spec.name} takes labels {family.spec.labels}, got {labels!r}")
        if not family.guarded:  # every label from a fixed set: bounded by the declaration
            return self._bind(family, labels)
        admitted = self._admit(family, labels)
        series = self._bound.get((spec, admitted))
        if series is None:
            limit = self._limit_reached(spec)
            if limit is not None:
                self.inc(m.SERIES_OVERFLOW, (spec.name, limit))
                admitted = family.overflow_labels(admitted)
                series = self._bound.get((spec, admitted))
            if series is None:
                series = self._bind(family, admitted)
        if spec.kind == "gauge" and OVERFLOW_VALUE in admitted:
            self._overflow_gauges[(spec, admitted)] = self._clock()
        return series

    def _admit(self, family: Family, labels: Labels) -> Labels:
        """``labels`` with every value past its label's cap replaced by the overflow value."""
        admitted = list(labels)
        for index, name in family.guarded:
            if not self._guard.admits(name, labels[index]):
                admitted[index] = OVERFLOW_VALUE
                self.inc(m.LABEL_OVERFLOW, (family.spec.name, family.spec.labels[index]))
        return tuple(admitted)

    def _limit_reached(self, spec: MetricSpec) -> str | None:
        """The setting whose limit a new label set of ``spec`` is past, or None."""
        if self._series[spec] >= self._max_series_per_metric:
            return "max_series_per_metric"
        if self._total >= self._max_series:
            return "max_series"
        return None

    def _bind(self, family: Family, labels: Labels) -> Series:
        spec = family.spec
        series = family.series.get(labels) or family.add(labels)
        self._bound[(spec, labels)] = series
        for index, name in family.guarded:
            self._guard.hold(name, labels[index])
        self._count_series(spec, +1)
        return series

    def _count_series(self, spec: MetricSpec, change: int) -> None:
        self._series[spec] += change
        self._total += change
        if spec is not m.SERIES:
            self.set(m.SERIES, (spec.name,), self._series[spec])

    def series(self, spec: MetricSpec, labels: Labels) -> Series:
        """The series an update of ``spec`` with ``labels`` goes to (bound now if new)."""
        return self._bound.get((spec, labels)) or self._child(spec, labels)

    def is_bound_as_is(self, spec: MetricSpec, labels: Labels, series: Series) -> bool:
        """Whether ``series`` is bound under exactly ``labels`` (not overflowed into)."""
        return self._bound.get((spec, labels)) is series

    def label_set(self, labels: Labels) -> LabelSet:
        """The series of every metric under ``labels``, as :class:`LabelSet` finds them."""
        found = self._label_sets.get(labels)
        if found is None:
            # Bounded: label sets past the cardinality caps come and go.
            if len(self._label_sets) >= _LABEL_SETS_KEPT:
                self._label_sets.clear()
            found = self._label_sets[labels] = LabelSet(self, labels)
        return found

    def inc(
        self, spec: MetricSpec, labels: Labels = (), amount: float = 1.0, exemplar: Exemplar = None
    ) -> None:
        (self._bound.get((spec, labels)) or self._child(spec, labels)).inc(amount, exemplar)

    def observe(self, spec: MetricSpec, labels: Labels, value: float, exemplar: Exemplar = None) -> None:
        (self._bound.get((spec, labels)) or self._child(spec, labels)).observe(value, exemplar)

    def set(self, spec: MetricSpec, labels: Labels, value: float) -> None:
        (self._bound.get((spec, labels)) or self._child(spec, labels)).set(value)

    def touch(self, spec: MetricSpec, labels: Labels = ()) -> None:
        """Make a series exist (at zero) before its first update, so rate() sees it start."""
        self._child(spec, labels)

    def remove(self, spec: MetricSpec, labels: Labels) -> None:
        """Drop one series (state of something that ended); a missing series is not an error."""
        if not spec.labels and not spec.is_unset_at_start:
            raise ValueError(f"{spec.name} has no labels: its one series cannot be removed")
        if self._bound.pop((spec, labels), None) is not None:
            self._label_sets.clear()
            family = self.families[spec]
            del family.series[labels]
            for index, name in family.guarded:
                self._guard.drop(name, labels[index])
            self._overflow_gauges.pop((spec, labels), None)
            self._count_series(spec, -1)

    def remove_matching(self, label: str, value: str) -> int:
        """Drop every series, of any metric, whose ``label`` is ``value``; return how many."""
        families = self.families
        doomed = [
            (spec, labels)
            for spec, labels in self._bound
            if label in (kept := families[spec].spec.labels) and labels[kept.index(label)] == value
        ]
        for spec, labels in doomed:
            self.remove(spec, labels)
        return len(doomed)

    def expire_overflow(self, horizon: float) -> int:
        """Drop the gauges that overflow updates go to, if none came since ``horizon``; return
        how many. (Gauges of named things expire with the recorder's state; these stand for
        many things at once, so they go when none of them is heard of.)"""
        stale = [key for key, updated in self._overflow_gauges.items() if updated < horizon]
        for spec, labels in stale:
            self.remove(spec, labels)
        return len(stale)

    def gauge_series(self, specs: Iterable[MetricSpec]) -> list[tuple[MetricSpec, list[GaugeSeries]]]:
        """The series of the given gauges, each metric's listed in one step (a snapshot reads
        their labels and values later, in another thread)."""
        listed = []
        for spec in specs:
            if spec.kind != "gauge":
                raise ValueError(f"{spec.name} is a {spec.kind}, not a gauge")
            if spec.labels or (spec, ()) in self._bound:
                listed.append((spec, cast(list[GaugeSeries], list(self.families[spec].series.values()))))
        return listed

    # --- prometheus_client's view --------------------------------------------------------------
    def describe(self) -> list[Metric]:
        return [Metric(spec.base_name, spec.help, spec.kind) for spec in self.families]

    def collect(self) -> Iterator[Metric]:
        """Every family, as prometheus_client's metric objects would collect it. Safe from another
        thread: each family's series are listed in one step."""
        for family in list(self.families.values()):
            yield family.metric(list(family.series.values()))
