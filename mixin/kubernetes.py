"""``deploy/kubernetes/prometheusrule.yaml``: the rule files as one PrometheusRule.

prometheus-operator loads rules from PrometheusRule objects, not files. This one holds the groups
of ``alerts/recording.rules.yml``, ``alerts/slo.rules.yml`` and ``alerts/alerting.rules.yml``,
unchanged and in that order, read back from their rendered text. ``make generate`` writes it.
"""

from __future__ import annotations

import yaml

from mixin import rules
from mixin.rules import RulesConfig

RULE_FILE_ORDER = (rules.RECORDING_FILE, rules.SLO_FILE, rules.ALERTING_FILE)
PATH = "deploy/kubernetes/prometheusrule.yaml"
NAME = "llmopt-exporter"

HEADER = """\
# The rules of alerts/*.rules.yml for prometheus-operator. Prometheus loads it when its ruleSelector
# matches these labels (kube-prometheus-stack selects release: <its release name> by default: add
# that label, e.g. in kustomization.yaml).
"""


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_str)


def prometheus_rule(rule_files: dict[str, str]) -> str:
    """The PrometheusRule manifest holding every group of the rendered ``rule_files`` (name -> text)."""
    groups = []
    for name in RULE_FILE_ORDER:
        groups += yaml.safe_load(rule_files[name])["groups"]
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/name": NAME}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def render(config: RulesConfig) -> dict[str, str]:
    return {PATH: prometheus_rule(rules.render(config))}
