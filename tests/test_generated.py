"""Every generated file is a fresh render (tools/generate.py), says so in its first line, and names only
rules and metrics that exist, also after alerts/config.yml changes SLO windows and thresholds."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin import dashboards, promql, rules, runbooks, scaling
from tests.test_rules import PROMETHEUS_OWN
from tools import contract, generate

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "alerts" / "config.yml"
# A recording rule's name in prose or code: level:metric:operation with the exporter's prefix.
# Not a family's pattern for prose (`...ratio_rate<window>`) or its selector (`...ratio_rate.+`).
RULE_NAME = re.compile(r"\b(?:llmopt:[a-z0-9_]+|[a-z_]+:llmopt_[a-z0-9_]+):[a-z0-9_]+\b(?![<\w]|\.\+)")
# An exporter metric's name in prose (not part of a rule name, a module path or a call).
METRIC_NAME = re.compile(r"(?<![\w:./])llmopt_[a-z0-9_]*[a-z0-9](?![\w:.(])")
# Files written by hand that may name rules: every name they use must exist under any config.
HAND_WRITTEN = ("README.md", "docs/*.md", "client/llmopt_client/*.py", "tools/*.py", "app/*.py")


def test_every_generated_file_is_fresh() -> None:
    files = generate.render_all(generate.default_inputs())
    problems = [f"out of date: {path}" for path in generate.stale(files)]
    problems += [f"no longer generated: {path}" for path in generate.orphans(files)]
    assert not problems, "\n".join([*problems, "run `make generate` (python -m tools.generate) and commit"])


def test_every_generated_file_says_so_in_its_first_line() -> None:
    files = generate.render_all(generate.default_inputs())
    assert {Path(path).parent.as_posix() for path in files} >= {
        "alerts",
        "deploy/kubernetes",
        "docs",
        "docs/runbooks",
        "grafana/dashboards",
    }
    for path, content in files.items():
        if path.endswith(".json"):
            # JSON has no comments: the README of its directory says where it comes from.
            assert f"{Path(path).parent.as_posix()}/README.md" in files, path
        elif generate.SECTION_END in content:
            # A file written by hand with a generated section: the section starts with the notice.
            notices = [line for line in content.splitlines() if generate.MARK in line]
            assert notices and all("do not edit" in line for line in notices), path
        else:
            first = content.partition("\n")[0]
            assert generate.MARK in first and "do not edit" in first, f"{path}: {first}"


@pytest.fixture
def copy_of_the_repository_config(tmp_path: Path) -> Path:
    """A directory with the config and the hand-written files that hold generated sections."""
    (tmp_path / "alerts").mkdir()
    shutil.copy(CONFIG, tmp_path / "alerts" / "config.yml")
    for section in (contract.README_SECTION, contract.OPENTELEMETRY_SECTION):
        host = section.partition("#")[0]
        (tmp_path / host).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / host, tmp_path / host)
    return tmp_path


def test_check_mode_names_stale_and_orphaned_files(
    copy_of_the_repository_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_of_the_repository_config
    assert generate.main(["--check"], root=root) == 1
    assert "out of date: docs/metrics.md" in capsys.readouterr().err
    assert generate.main([], root=root) == 0
    assert generate.main(["--check"], root=root) == 0
    (root / "docs" / "runbooks" / "LLMOptWatchdog.md").write_text("edited by hand\n", encoding="utf-8")
    orphan = root / "docs" / "runbooks" / "LLMOptRetired.md"
    orphan.write_text(generate.notice(orphan.name, "mixin/runbooks/{file}") + "# LLMOptRetired\n")
    capsys.readouterr()
    assert generate.main(["--check"], root=root) == 1
    err = capsys.readouterr().err
    assert "out of date: docs/runbooks/LLMOptWatchdog.md" in err
    assert "no longer generated: docs/runbooks/LLMOptRetired.md" in err
    assert "run `make generate`" in err
    assert generate.main([], root=root) == 0
    assert not orphan.exists()
    assert generate.main(["--check"], root=root) == 0


def test_a_generated_section_is_rendered_in_place_and_checked(
    copy_of_the_repository_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_of_the_repository_config
    assert generate.main([], root=root) == 0
    readme = root / "README.md"
    shipped = readme.read_text(encoding="utf-8")
    readme.write_text(shipped.replace("| `llm_request` |", "| `llm_call` |"), encoding="utf-8")
    capsys.readouterr()
    assert generate.main(["--check"], root=root) == 1
    assert "out of date: README.md" in capsys.readouterr().err
    assert generate.main([], root=root) == 0
    assert readme.read_text(encoding="utf-8") == shipped, "only the section is rewritten"


def test_a_config_error_names_the_key(
    copy_of_the_repository_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = copy_of_the_repository_config / "alerts" / "config.yml"
    config.write_text(config.read_text().replace("objective: 0.999", "objective: 1.5"), encoding="utf-8")
    assert generate.main(["--check"], root=copy_of_the_repository_config) == 2
    assert "slos.availability.objective" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(
            "`{{ SLO_BUDGET_REMAINING }}`", "`llmopt:slo_error_budget_remaining:ratio`", id="series"
        ),
        pytest.param("{{ SLO_ERRORS 1d }}", "llmopt:slo_errors:ratio_rate1d", id="family-over-a-window"),
        pytest.param("{{SLO_BURN_RATE}}", "llmopt:slo_burn_rate:ratio_rate<window>", id="family-in-prose"),
        pytest.param("{{ SLI_QUALITY }}", "llmopt:slo_quality:mean7d", id="sli-of-the-config"),
        pytest.param('{quantile="0.95"}', '{quantile="0.95"}', id="promql-braces-stay"),
    ],
)
def test_runbook_placeholders_name_declared_series(template: str, expected: str) -> None:
    config = rules.load_config(CONFIG)
    assert runbooks.render_runbook(template, config) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param("{{ LLM_REQUESTS_RATE1M }}", "LLM_REQUESTS_RATE1M", id="unknown-name"),
        pytest.param(
            "{{ SLO_ERRORS 4h }}", "no rule writes llmopt:slo_errors:ratio_rate4h", id="window-not-in-config"
        ),
        pytest.param("{{ SLO_BUDGET_REMAINING 1h }}", "takes no window", id="window-on-a-series"),
        pytest.param("a\n{{ llmopt:spend_usd:increase1d }}", "line 2", id="not-a-placeholder"),
    ],
)
def test_runbook_templates_refuse_what_does_not_exist(template: str, message: str) -> None:
    with pytest.raises(runbooks.TemplateError, match=re.escape(message)):
        runbooks.render_runbook(template, rules.load_config(CONFIG), "LLMOptTest.md")


# --- A changed config leaves no stale name -------------------------------------------------------

CHANGES = {
    "slos.availability.window": "28d",
    "slos.latency.window": "2d",
    "slos.latency.threshold_seconds": 2.56,
    "slos.quality.window": "14d",
    "slos.cost.window": "7d",
    "alerts.high_latency.p95_seconds_above": 10,
    "alerts.budget_exceeded.daily_budget_usd": 250,
    "dimensions": {"team": 20},
    "alerts.budget_exceeded.scopes": {"team": {"search": 200}},
}


def _changed_config() -> rules.RulesConfig:
    document: dict[str, Any] = copy.deepcopy(yaml.safe_load(CONFIG.read_text(encoding="utf-8")))
    for dotted, value in CHANGES.items():
        *parents, key = dotted.split(".")
        node = document
        for part in parents:
            node = node[part]
        node[key] = value
    return rules.RulesConfig.model_validate(document)


def _queries(files: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(file, PromQL) of every query a generated file holds: rules, panels, runbook blocks."""
    for path, text in files.items():
        if path.endswith((".rules.yml", "prometheusrule.yaml")):
            document = yaml.safe_load(text)
            groups = document["groups"] if "groups" in document else document["spec"]["groups"]
            yield from ((path, rule["expr"]) for group in groups for rule in group["rules"])
        elif path.endswith(".json"):
            board = json.loads(text)
            yield from (
                (path, dashboards.as_promql(target["expr"]))
                for panel in board["panels"]
                for target in panel["targets"]
            )
            yield from (
                (path, dashboards.as_promql(annotation["target"]["expr"]))
                for annotation in board["annotations"]["list"]
            )
            yield from (
                (path, variable["query"]["query"].removeprefix("label_values(").split(",")[0])
                for variable in board["templating"]["list"][1:]
            )
        elif path.endswith(".md"):
            yield from ((path, query) for query in re.findall(r"```promql\n(.*?)```", text, re.DOTALL))


def _is_whole(text: str) -> bool:
    """Whether a rendered file is generated whole, not a hand-written file with a generated section."""
    return generate.SECTION_END not in text


def _hand_written() -> Iterator[tuple[str, str]]:
    rendered = generate.render_all(generate.default_inputs())
    for pattern in HAND_WRITTEN:
        for path in sorted(ROOT.glob(pattern)):
            relative = path.relative_to(ROOT).as_posix()
            if relative not in rendered or not _is_whole(rendered[relative]):
                yield relative, path.read_text(encoding="utf-8")


def test_a_changed_config_leaves_no_stale_name() -> None:
    """Change SLO windows and thresholds in a copy of alerts/config.yml, render everything, and find
    every rule, metric and alert that a rule, dashboard, runbook, doc or tool names still defined."""
    shipped = generate.render_all(generate.default_inputs())
    files = generate.render_all(generate.Inputs(_changed_config()))
    assert set(files) == set(shipped)
    changed = {path for path in files if files[path] != shipped[path]}
    # The new windows reach the dashboards, the runbooks and the catalog, not only the rules.
    assert {
        "grafana/dashboards/llmopt-slos.json",
        "docs/runbooks/LLMOptSLOMissed.md",
        "docs/metrics.md",
    } <= changed
    assert "llmopt:slo_quality:mean14d" in files["docs/runbooks/LLMOptSLOMissed.md"]
    assert "llmopt:slo_latency:ratio_rate2d" in files["grafana/dashboards/llmopt-slos.json"]

    recorded: set[str] = set()
    alerts: set[str] = set()
    for path, text in files.items():
        if path.endswith(".rules.yml"):
            for group in yaml.safe_load(text)["groups"]:
                recorded |= {rule["record"] for rule in group["rules"] if "record" in rule}
                alerts |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    exposed = set(scaling.exposed_names())
    known = exposed | recorded | PROMETHEUS_OWN

    unknown: set[tuple[str, str]] = set()
    for path, query in _queries(files):
        for selection in promql.selections(query):
            if selection.name not in known:
                unknown.add((path, selection.name))
            for label, operator, value in selection.matchers:
                if selection.name == "ALERTS" and label == "alertname":
                    named = value.split("|") if operator in ("=~", "!~") else [value]
                    unknown |= {
                        (path, alert) for alert in named if alert.isidentifier() and alert not in alerts
                    }
    for path, text in files.items():
        if path.endswith(".md") and _is_whole(text):
            unknown |= {(path, name) for name in METRIC_NAME.findall(text) if name not in exposed}
    for path, text in [*files.items(), *_hand_written()]:
        unknown |= {(path, name) for name in RULE_NAME.findall(text) if name not in recorded}
    assert not unknown
