"""The metric declarations follow Prometheus naming, and docs/metrics.md is generated from them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.metrics import ALL_METRICS, MetricSpec
from mixin.catalog import render
from mixin.taxonomy import ROWS

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


def test_docs_metrics_md_is_current() -> None:
    assert (ROOT / "docs" / "metrics.md").read_text() == render(), "docs/metrics.md is stale: run `make docs`"


def test_every_taxonomy_id_has_exactly_one_row() -> None:
    listed = [
        line.strip()
        for line in (ROOT / "docs" / "taxonomy-fields.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [row.id for row in ROWS] == listed


def test_every_metric_a_taxonomy_row_names_is_declared() -> None:
    declared = {spec.name for spec in ALL_METRICS}
    for row in ROWS:
        for name in re.findall(r"\bllmopt_[a-z_]+\b", row.served_by):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in declared or base in declared, f"{row.id} names undeclared {name}"


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
