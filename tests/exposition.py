"""Reading an exposition the way Prometheus does, for exact assertions in tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Sample

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def key(name: str, **labels: str) -> SampleKey:
    return name, tuple(sorted(labels.items()))


def samples(text: str) -> dict[SampleKey, float]:
    """Every sample of a Prometheus text exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parse_text(text)
        for sample in family.samples
    }


def domain(metrics: Mapping[SampleKey, float]) -> dict[SampleKey, float]:
    """The samples of the optimizer's metrics: all but the exporter's own (and the runtime's)."""
    return {
        sample_key: value
        for sample_key, value in metrics.items()
        if sample_key[0].startswith("llmopt_") and not sample_key[0].startswith("llmopt_exporter_")
    }


def openmetrics_samples(text: str) -> list[Sample]:
    return [sample for family in parse_openmetrics(text) for sample in family.samples]


def changed(
    before: Mapping[SampleKey, float],
    after: Mapping[SampleKey, float],
    ignore_prefixes: Iterable[str] = ("llmopt_exporter_", "process_", "python_"),
) -> dict[SampleKey, float]:
    """Samples that are new or have a new value, with their new value (self-metrics left out)."""
    prefixes = tuple(ignore_prefixes)
    return {
        sample_key: value
        for sample_key, value in after.items()
        if before.get(sample_key) != value and not sample_key[0].startswith(prefixes)
    }
