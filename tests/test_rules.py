"""The Prometheus rule files: rendered from alerts/config.yml, accepted by promtool, unit-tested with
promtool (a firing case and a near miss for every alert), naming only declared metrics, and every
alert carrying a severity, a summary, a description and a runbook that exists."""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import DEFAULT_PORT
from mixin import promql, rules, scaling
from mixin import recorded as rec
from tests.processes import PROMTOOL
from tests.scoped import scoped_documents

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "alerts"
RUNBOOKS = ROOT / "docs" / "runbooks"
UNIT_TESTS = sorted((ALERTS / "tests").glob("*.test.yml"))
UNIT_TEST_CONFIG = ALERTS / "tests" / "config.yml"
RULE_FILES = (rules.RECORDING_FILE, rules.SLO_FILE, rules.ALERTING_FILE)
SEVERITIES = {"critical", "warning", "info"}
WATCHDOG = "LLMOptWatchdog"
TAXONOMY_ID = re.compile(r"(Business|System|Optimization|Model|Infrastructure)Metrics(\.\w+)+")
# Series of Prometheus and Alertmanager themselves that rules and runbooks may name.
PROMETHEUS_OWN = {
    "up",
    "scrape_duration_seconds",
    "ALERTS",
    "prometheus_notifications_errors_total",
    "prometheus_notifications_alertmanagers_discovered",
    "alertmanager_notifications_failed_total",
}


@functools.cache
def _load(path: Path) -> Any:
    """A YAML file, parsed once per session; callers must not change what they get."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def _rules_in(documents: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for document in documents.values():
        for group in document["groups"]:
            yield from group["rules"]


def _committed() -> dict[str, Any]:
    return {name: _load(ALERTS / name) for name in RULE_FILES}


def _alerts(documents: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [rule for rule in _rules_in(documents) if "alert" in rule]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        pytest.param(
            'sum without (instance, job) (rate(a_total{le="1.0"}[5m] offset 1d)) / on () group_left b:c:d',
            {"a_total", "b:c:d"},
            id="aggregations-selectors-offsets",
        ),
        pytest.param(
            "histogram_quantile(0.95, x_bucket) > 1e3 and y < bool -0.5", {"x_bucket", "y"}, id="numbers"
        ),
        pytest.param('absent(up{job="x"}) - 1 or vector(0)', {"up"}, id="functions"),
        pytest.param("max_over_time(sum by (le) (a)[1h:5m]) or b offset 1d", {"a", "b"}, id="subquery"),
        pytest.param('{__name__="a", job="rate"} or sum(b) by (le)', {"a", "b"}, id="name-matcher"),
    ],
)
def test_series_names_finds_only_series(expr: str, names: set[str]) -> None:
    assert promql.series_names(expr) == names


def test_series_names_refuses_what_is_not_promql() -> None:
    with pytest.raises(promql.PromqlError, match="sum"):
        promql.series_names("sum(rate(a[5m])")


# --- Rendering -----------------------------------------------------------------------------------


def test_alerts_holds_only_the_rendered_rule_files() -> None:
    """Prometheus loads alerts/*.rules.yml: a stray file there would be loaded too."""
    assert {path.name for path in ALERTS.glob("*.rules.yml")} == set(RULE_FILES)


def _changed_config(change: Mapping[str, Any]) -> dict[str, Any]:
    """The shipped config as a document, with some keys (dotted paths) set to other values."""
    document: dict[str, Any] = copy.deepcopy(_load(ALERTS / "config.yml"))
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = document
        for part in parents:
            node = node[part]
        node[key] = value
    return document


def _render_with(change: Mapping[str, Any]) -> dict[str, Any]:
    config = rules.RulesConfig.model_validate(_changed_config(change))
    return {name: yaml.safe_load(text) for name, text in rules.render(config).items()}


def _expr(documents: Mapping[str, Any], name: str, **labels: str) -> str:
    for rule in _rules_in(documents):
        if (
            name in (rule.get("record"), rule.get("alert"))
            and labels.items() <= rule.get("labels", {}).items()
        ):
            return str(rule["expr"])
    raise AssertionError(f"no rule {name} {labels}")


@pytest.mark.parametrize(
    ("change", "rule", "labels", "expected"),
    [
        pytest.param(
            {"alerts.budget_exceeded.daily_budget_usd": 5000},
            "LLMOptBudgetExceeded",
            {},
            "> 5000",
            id="budget-alert",
        ),
        pytest.param(
            {"alerts.budget_exceeded.daily_budget_usd": 5000},
            rec.BUDGET_UTILIZATION1D.name,
            {},
            "/ 5000",
            id="budget-utilization",
        ),
        pytest.param(
            {"slos.availability.objective": 0.995},
            rec.SLO_BURN_RATE.over("1h").name,
            {"slo": "availability"},
            "/ 0.005",
            id="availability-objective",
        ),
        pytest.param(
            {"slos.latency.threshold_seconds": 5.0},
            rec.SLO_ERRORS.over("5m").name,
            {"slo": "latency"},
            'le="5.0"',
            id="latency-threshold",
        ),
        pytest.param(
            {"alerts.error_budget_low.remaining_below": 0.25},
            rec.OPTIMIZATION_HALT.name,
            {},
            "< bool 0.25",
            id="halt-threshold",
        ),
        pytest.param(
            {"alerts.high_error_rate.error_ratio_above": 0.02},
            "LLMOptHighErrorRate",
            {},
            "> 0.02",
            id="error-rate",
        ),
        pytest.param(
            {"replica_labels": ["instance", "pod"]},
            rec.LLM_REQUESTS_RATE5M.name,
            {},
            "sum without (instance, pod, model,",
            id="replica-labels",
        ),
    ],
)
def test_one_config_file_sets_the_numbers(
    change: Mapping[str, Any], rule: str, labels: dict[str, str], expected: str
) -> None:
    assert expected in _expr(_render_with(change), rule, **labels)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"alerts.high_error_rate.treshold": 1}, "alerts.high_error_rate.treshold", id="unknown-key"
        ),
        pytest.param(
            {"slos.latency.threshold_seconds": 1.5}, "not a bucket boundary", id="latency-off-bucket"
        ),
        pytest.param(
            {"slos.availability.objective": 1.0}, "slos.availability.objective", id="objective-of-one"
        ),
        pytest.param(
            {"alerts.high_latency.for": "ten minutes"}, "alerts.high_latency.for", id="bad-duration"
        ),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, change: Mapping[str, Any], message: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(_changed_config(change)), encoding="utf-8")
    with pytest.raises(rules.ConfigError, match=re.escape(message)):
        rules.load_config(path)


# --- promtool ------------------------------------------------------------------------------------


def test_promtool_checks_the_rule_files() -> None:
    result = subprocess.run(
        [
            PROMTOOL,
            "check",
            "rules",
            "--lint=all",
            "--lint-fatal",
            *(str(ALERTS / name) for name in RULE_FILES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_prometheus_yml() -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "config", "prometheus.yml"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rule files found" in result.stdout


def test_prometheus_yml_scrapes_the_exporter_and_node_exporter() -> None:
    prometheus = _load(ROOT / "prometheus.yml")
    config = rules.load_config(ALERTS / "config.yml")
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    exporter_targets = jobs[config.exporter_job]["static_configs"][0]["targets"]
    assert [target.rsplit(":", 1)[1] for target in exporter_targets] == [str(DEFAULT_PORT)]
    assert "node" in jobs
    assert prometheus["rule_files"] == ["alerts/*.rules.yml"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    retention = re.search(r"--storage\.tsdb\.retention\.time=(\d+)d", (ROOT / "prometheus.yml").read_text())
    assert retention is not None
    assert int(retention.group(1)) * 86400 >= rules.seconds(config.slos.availability.window)


@pytest.fixture(scope="module")
def unit_test_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Runs every promtool unit test file at once against rules rendered from the test config.

    Returns file name -> None when it passed, or promtool's report when it failed.
    """
    workdir = tmp_path_factory.mktemp("promtool")
    for name, text in rules.render(rules.load_config(UNIT_TEST_CONFIG)).items():
        (workdir / name).write_text(text, encoding="utf-8")
    (workdir / "tests").mkdir()
    for path in UNIT_TESTS:
        shutil.copy(path, workdir / "tests" / path.name)
    running = {
        path.name: subprocess.Popen(
            [PROMTOOL, "test", "rules", path.name],
            cwd=workdir / "tests",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in UNIT_TESTS
    }
    results: dict[str, str | None] = {}
    for name, process in running.items():
        output, _ = process.communicate(timeout=120)
        results[name] = None if process.returncode == 0 else output
    return results


@pytest.mark.parametrize("test_file", [path.name for path in UNIT_TESTS])
def test_promtool_unit_tests_pass(unit_test_results: dict[str, str | None], test_file: str) -> None:
    assert unit_test_results[test_file] is None, unit_test_results[test_file]


def _unit_test_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in UNIT_TESTS:
        for group in _load(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                yield path.name, case


def test_every_alert_rule_has_a_firing_case_and_a_near_miss() -> None:
    cases = [case for _, case in _unit_test_cases()]
    firing = [
        (case["alertname"], alert["exp_labels"]) for case in cases for alert in case.get("exp_alerts") or []
    ]
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    config = rules.load_config(UNIT_TEST_CONFIG)
    # Every tier of every SLO's burn-rate alert fires, and stays quiet before, in cases that
    # tests/test_burn_tiers.py writes from the tiers themselves.
    tiers = {
        ("LLMOptErrorBudgetBurn", slo.name, tier.long, tier.short)
        for slo in rules.budget_slos(config)
        for tier in rules.burn_tiers(config, slo)
    }
    quiet.add("LLMOptErrorBudgetBurn")
    for alert in _alerts({name: yaml.safe_load(text) for name, text in rules.render(config).items()}):
        name, labels = alert["alert"], alert["labels"]
        fired = any(got_name == name and labels.items() <= got.items() for got_name, got in firing) or (
            (name, labels.get("slo"), labels.get("long"), labels.get("short")) in tiers
        )
        assert fired, f"no firing case: {name} {labels}"
        assert name == WATCHDOG or name in quiet, f"no near miss: {name}"


def test_unit_tests_evaluate_their_groups_in_dependency_order() -> None:
    for path in UNIT_TESTS:
        document = _load(path)
        files = [Path(name).name for name in document["rule_files"]]
        assert files == sorted(files, key=RULE_FILES.index), path.name
        groups = [group["name"] for name in files for group in _load(ALERTS / name)["groups"]]
        assert document["group_eval_order"] == groups, path.name
        assert all("interval" in group for group in document["tests"]), path.name


# --- The contract and alert hygiene --------------------------------------------------------------


def test_rules_name_only_declared_metrics_and_recording_rules() -> None:
    documents = _committed()
    recorded = {rule["record"] for rule in _rules_in(documents) if "record" in rule}
    known = set(scaling.exposed_names()) | recorded | {"up"}
    unknown = {
        (rule.get("record") or rule.get("alert"), name)
        for rule in _rules_in(documents)
        for name in promql.series_names(rule["expr"])
        if name not in known
    }
    assert not unknown


def test_recording_rules_are_named_level_metric_operation() -> None:
    names = {rule["record"] for rule in _rules_in(_committed()) if "record" in rule}
    assert all(re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name) for name in names), names


@pytest.mark.parametrize(
    "alert",
    # The shipped alerts, and the scoped budget alerts of a config with dimensions.
    [*_alerts(_committed()), *(alert for alert in _alerts(scoped_documents()) if "scope" in alert["labels"])],
    ids=lambda alert: f"{alert['alert']}-{'-'.join(alert['labels'].values())}",
)
def test_alert_hygiene(alert: dict[str, Any]) -> None:
    name, labels, annotations = alert["alert"], alert["labels"], alert["annotations"]
    assert re.fullmatch(r"LLMOpt[A-Z][A-Za-z0-9]+", name)
    assert labels["severity"] in SEVERITIES or (name == WATCHDOG and labels["severity"] == "none")
    assert not any("{{" in value for value in labels.values()), (
        "a templated label changes the alert's identity"
    )
    assert re.fullmatch(r"[A-Z][^{}]+\.", annotations["summary"]), "summary: one static sentence"
    assert "{{ $value" in annotations["description"], "description: must carry the value"
    base = rules.load_config(ALERTS / "config.yml").runbook_url_base
    assert annotations["runbook_url"] == f"{base}/{name}.md"
    assert (RUNBOOKS / f"{name}.md").is_file()


def _runbook_queries() -> Iterator[tuple[str, str]]:
    for path in sorted(RUNBOOKS.glob("*.md")):
        for query in re.findall(r"```promql\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL):
            yield path.name, query.strip()


def test_runbooks_belong_to_alerts_and_have_every_section() -> None:
    # The alerts of the shipped rules, and those of scoped budgets (with dimensions declared).
    alert_names = {alert["alert"] for alert in _alerts({**_committed(), **scoped_documents()})}
    assert {path.stem for path in RUNBOOKS.glob("*.md")} == alert_names
    for path in RUNBOOKS.glob("*.md"):
        headings = re.findall(r"^## (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
        assert headings == ["Meaning", "Impact", "Diagnosis", "Mitigation"], path.name


def test_runbook_queries_parse_and_name_known_series(tmp_path: Path) -> None:
    queries = list(_runbook_queries())
    documents = [_committed(), scoped_documents()]  # with dimensions declared, and without
    recorded = {rule["record"] for document in documents for rule in _rules_in(document) if "record" in rule}
    known = set(scaling.exposed_names()) | recorded | PROMETHEUS_OWN
    named = {(runbook, name) for runbook, query in queries for name in promql.series_names(query)}
    assert not {(runbook, name) for runbook, name in named if name not in known}
    # promtool parses every query as a recording rule's expression.
    checked = [
        {"record": f"runbook:query:{index}", "expr": query} for index, (_, query) in enumerate(queries)
    ]
    checks = {"groups": [{"name": "runbooks", "rules": checked}]}
    path = tmp_path / "runbook-queries.yml"
    path.write_text(yaml.safe_dump(checks), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_taxonomy_map_names_rules_that_exist() -> None:
    mapping = rules.taxonomy_map(rules.load_config(ALERTS / "config.yml"))
    recorded: dict[str, list[dict[str, str]]] = {}
    for rule in _rules_in(_committed()):
        if "record" in rule:
            recorded.setdefault(rule["record"], []).append(rule.get("labels", {}))
    assert mapping
    for taxonomy_id, target in mapping.items():
        assert TAXONOMY_ID.fullmatch(taxonomy_id), taxonomy_id
        (name,) = promql.series_names(target)
        assert name in recorded, f"{taxonomy_id}: {name} is not a recording rule"
        # A matcher on a label the rule itself sets (quantile="0.95") must pick one of its rules.
        static = {
            key: value
            for key, value in promql.matchers(target).items()
            if any(key in labels for labels in recorded[name])
        }
        assert any(static.items() <= labels.items() for labels in recorded[name]), f"{taxonomy_id}: {target}"
