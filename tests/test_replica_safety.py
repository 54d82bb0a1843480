"""Every rule and every dashboard panel reads every metric so that N replicas give the answer of one:
counters summed over the replica labels, gauges read as mixin/scaling.py declares them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from app import metrics as m
from mixin import dashboards, rules, scaling

ROOT = Path(__file__).resolve().parents[1]
REPLICA_LABELS = ("instance", "pod", "job")


def test_every_gauge_is_declared_with_how_replicas_report_it() -> None:
    gauges = {spec for spec in m.ALL_METRICS if spec.kind == "gauge"}
    assert set(scaling.GAUGES) == gauges
    assert all(
        decided.kind == "replica" for spec, decided in scaling.GAUGES.items() if spec.category == m.SELF
    )


@pytest.mark.parametrize(
    ("expr", "problems"),
    [
        pytest.param(
            "sum without (instance, pod, job, model) (rate(llmopt_llm_requests_total[5m]))", [], id="without"
        ),
        pytest.param("sum by (model) (rate(llmopt_llm_requests_total[5m]))", [], id="by-domain-labels"),
        pytest.param("sum(rate(llmopt_llm_requests_total[5m])) by (model)", [], id="clause-after"),
        pytest.param(
            "histogram_quantile(0.9, sum by (le) "
            '(rate(llmopt_llm_request_duration_seconds_bucket{model="a"}[5m])))',
            [],
            id="quantile",
        ),
        pytest.param("max by (period) (llmopt_budget_limit_usd)", [], id="state-gauge-max"),
        pytest.param(
            "rate(llmopt_llm_requests_total[5m])",
            ["llmopt_llm_requests_total is not aggregated over replicas"],
            id="per-replica-rate",
        ),
        pytest.param(
            "sum by (instance) (rate(llmopt_llm_requests_total[5m]))",
            ["llmopt_llm_requests_total: sum by (instance) keeps ['instance']"],
            id="by-instance",
        ),
        pytest.param(
            "sum without (instance) (rate(llmopt_llm_requests_total[5m]))",
            ["llmopt_llm_requests_total: sum without (instance) keeps ['job', 'pod']"],
            id="without-too-few",
        ),
        pytest.param(
            "max(rate(llmopt_llm_requests_total[5m]))",
            ["llmopt_llm_requests_total (additive) is read with max; use sum"],
            id="counter-max",
        ),
        pytest.param(
            "sum(llmopt_optimization_last_improvement_timestamp_seconds)",
            ["llmopt_optimization_last_improvement_timestamp_seconds (latest) is read with sum; use max"],
            id="timestamp-summed",
        ),
        pytest.param(
            "sum by (bandit, arm) (llmopt_bandit_arm_parameter_value)",
            ["llmopt_bandit_arm_parameter_value (fact) is read with sum; use avg or max or min"],
            id="fact-summed",
        ),
        pytest.param(
            'time() - llmopt_deployment_timestamp_seconds{component="router"}',
            ["llmopt_deployment_timestamp_seconds is not aggregated over replicas"],
            id="raw-gauge",
        ),
    ],
)
def test_the_check_finds_per_replica_reads(expr: str, problems: list[str]) -> None:
    assert scaling.replica_problems(expr, REPLICA_LABELS) == problems


def _rule_exprs(documents: dict[str, str]) -> Iterator[tuple[str, str]]:
    for name, text in documents.items():
        if name.endswith(".rules.yml"):
            for group in yaml.safe_load(text)["groups"]:
                for rule in group["rules"]:
                    yield rule.get("record") or rule["alert"], rule["expr"]


@pytest.mark.parametrize(
    "replica_labels",
    [
        pytest.param(None, id="shipped-config"),
        pytest.param(["instance", "pod", "kubernetes_pod_name"], id="other-replica-labels"),
    ],
)
def test_every_rule_reads_every_metric_across_replicas(replica_labels: list[str] | None) -> None:
    document = yaml.safe_load((ROOT / "alerts" / "config.yml").read_text(encoding="utf-8"))
    if replica_labels is not None:
        document["replica_labels"] = replica_labels
    config = rules.RulesConfig.model_validate(document)
    problems = {
        name: found
        for name, expr in _rule_exprs(rules.render(config))
        if (found := scaling.replica_problems(expr, config.replica_labels, strict=True))
    }
    assert not problems


def _panel_exprs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _panel_exprs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _panel_exprs(value)


def test_every_dashboard_panel_reads_every_metric_across_replicas() -> None:
    """Panels of the exporter's own metrics may show replicas one by one; the others may not."""
    config = rules.load_config(ROOT / "alerts" / "config.yml")
    files = sorted((ROOT / "grafana" / "dashboards").rglob("*.json"))
    problems = {
        (path.name, expr): found
        for path in files
        for expr in _panel_exprs(json.loads(path.read_text(encoding="utf-8")))
        if (
            found := scaling.replica_problems(
                dashboards.as_promql(expr), config.replica_labels, skip_categories=(m.SELF,)
            )
        )
    }
    assert not problems


def test_docs_list_every_gauge_as_declared() -> None:
    assert scaling.gauge_table() in (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
