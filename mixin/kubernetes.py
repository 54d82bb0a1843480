"""``deploy/kubernetes/prometheusrule.yaml``: the rendered rule files as one PrometheusRule.

prometheus-operator loads rules from PrometheusRule objects, not files. This one holds the groups
of ``alerts/recording.rules.yml``, ``alerts/slo.rules.yml`` and ``alerts/alerting.rules.yml``,
unchanged and in that order. ``make rules`` writes it after rendering the files; a test fails when
it differs from a fresh conversion of the committed files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from mixin import rules

RULE_FILE_ORDER = (rules.RECORDING_FILE, rules.SLO_FILE, rules.ALERTING_FILE)
DEFAULT_OUTPUT = rules.ROOT / "deploy" / "kubernetes" / "prometheusrule.yaml"
NAME = "llmopt-exporter"

HEADER = """\
# The rules of alerts/*.rules.yml for prometheus-operator. Rendered by `make rules`
# (python -m mixin.kubernetes) from those files; do not edit: change alerts/config.yml and render.
# Prometheus loads it when its ruleSelector matches these labels (kube-prometheus-stack selects
# release: <its release name> by default: add that label, e.g. in kustomization.yaml).
"""


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_str)


def prometheus_rule(rules_dir: Path) -> str:
    """The PrometheusRule manifest holding every group of the rule files in ``rules_dir``."""
    groups = []
    for name in RULE_FILE_ORDER:
        document = yaml.safe_load((rules_dir / name).read_text(encoding="utf-8"))
        groups += document["groups"]
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/name": NAME}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mixin.kubernetes",
        description="Write the PrometheusRule of deploy/kubernetes from the rule files of alerts/.",
    )
    parser.add_argument("--rules", type=Path, default=rules.DEFAULT_OUTPUT, help="rule files (%(default)s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="manifest (%(default)s)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if out of date")
    args = parser.parse_args(argv)
    text = prometheus_rule(args.rules)
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"out of date: {args.output} (run make rules)", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
