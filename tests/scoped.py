"""The rules config of the promtool cases of alerts/tests/scoped: alerts/tests/config.yml with two
declared dimensions and daily budgets of two teams. The rules by dimension and the scoped budget
alerts exist only where dimensions and scopes are declared, which the shipped config does not."""

from __future__ import annotations

from typing import Any

import yaml

from mixin import rules
from tests.conftest import ROOT

DIMENSIONS = {"team": 20, "application": 50}
SCOPES = {"team": {"search": 200, "ads": 50}}
TESTS = ROOT / "alerts" / "tests" / "scoped"


def scoped_config() -> rules.RulesConfig:
    document = yaml.safe_load((ROOT / "alerts" / "tests" / "config.yml").read_text(encoding="utf-8"))
    document["dimensions"] = DIMENSIONS
    document["alerts"]["budget_exceeded"]["scopes"] = SCOPES
    return rules.RulesConfig.model_validate(document)


def scoped_documents() -> dict[str, Any]:
    """The rule files rendered from it, as documents, by file name."""
    return {name: yaml.safe_load(text) for name, text in rules.render(scoped_config()).items()}
