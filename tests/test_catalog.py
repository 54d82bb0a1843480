"""The metric declarations follow Prometheus naming, and the taxonomy rows name declared metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.metrics import ALL_METRICS, MetricSpec
from mixin import promql, scaling
from mixin.taxonomy import ROWS, TaxonomyRow

ROOT = Path(__file__).resolve().parents[1]
# Labels that belong to the scrape (target labels) or to histogram/summary machinery.
RESERVED_LABELS = {
    "job",
    "instance",
    "le",
    "quantile",
    "service",
    "environment",
    "env",
    "region",
    "zone",
    "cluster",
}
UNBOUNDED_LABELS = {
    "user_id",
    "user",
    "request_id",
    "trace_id",
    "span_id",
    "event_id",
    "message",
    "incident_id",
}


def test_every_taxonomy_id_has_exactly_one_row() -> None:
    listed = [
        line.strip()
        for line in (ROOT / "docs" / "taxonomy-fields.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [row.id for row in ROWS] == listed


@pytest.mark.parametrize(
    "row", [row for row in ROWS if row.is_promql], ids=lambda row: row.id.removesuffix("Metrics")
)
def test_a_promql_row_parses_and_names_declared_series(row: TaxonomyRow) -> None:
    assert promql.series_names(row.served_by) <= set(scaling.exposed_names())


def test_a_row_in_words_names_declared_metrics() -> None:
    exposed = set(scaling.exposed_names())
    named = {
        (row.id, name)
        for row in ROWS
        if not row.is_promql
        for name in re.findall(r"\bllmopt_[a-z_]+\b", row.served_by)
    }
    assert named and not {(row_id, name) for row_id, name in named if name not in exposed}


@pytest.mark.parametrize("spec", ALL_METRICS, ids=lambda spec: spec.name)
def test_metric_follows_prometheus_naming(spec: MetricSpec) -> None:
    assert re.fullmatch(r"llmopt_[a-z][a-z0-9_]*[a-z0-9]", spec.name)
    assert spec.name.endswith("_total") == (spec.kind == "counter")
    assert not re.search(r"_(ms|milliseconds|percent|count|sum|bucket)(_total)?$", spec.name)
    assert not set(spec.labels) & (RESERVED_LABELS | UNBOUNDED_LABELS)
    assert spec.help.endswith(".")
    if spec.unit == "seconds":
        assert "_seconds" in spec.name
    if spec.unit == "usd":
        assert "_usd" in spec.name
    if spec.unit == "ratio":
        assert spec.name.endswith("_ratio")
    if spec.kind == "histogram":
        assert list(spec.buckets) == sorted(set(spec.buckets))


def test_names_and_help_texts_are_unique() -> None:
    assert len({spec.name for spec in ALL_METRICS}) == len(ALL_METRICS)
    assert len({spec.help for spec in ALL_METRICS}) == len(ALL_METRICS)


def test_latency_buckets_hold_the_slo_and_alert_thresholds() -> None:
    from app.metrics import LLM_QUALITY, LLM_REQUEST_DURATION

    assert {1.0, 5.0} <= set(LLM_REQUEST_DURATION.buckets)
    assert max(LLM_REQUEST_DURATION.buckets) >= 60
    assert {75, 80} <= set(LLM_QUALITY.buckets)
