"""Declared dimensions: extra labels (team, application) declared once in the rules config, carried
by calls and feedback in their labels object, added to the call, token, cost, error and feedback
metrics, capped like every client-supplied label, and summed away by the shipped rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from llmopt_client.halt import query

from app.config import ConfigError, Settings, load_settings
from app.dimensions import DIMENSIONED
from app.main import create_app
from mixin import recorded as rec
from mixin import rules
from mixin.promql import selections
from tests import scoped
from tests.conftest import CLOCK, ROOT, Exporter, make_exporter
from tests.exposition import domain, key
from tests.processes import PROMTOOL, exporter_and_prometheus, wait_until
from tests.spans import body, current, span

DIMENSIONS = {"team": 2, "application": 10}


def rules_config(tmp_path: Path, dimensions: Any) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"dimensions": dimensions}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def teams(tmp_path: Path) -> Iterator[Exporter]:
    yield from make_exporter(dimensions_file=rules_config(tmp_path, DIMENSIONS))


def call(**fields: Any) -> dict[str, Any]:
    return {"type": "llm_request", "model": "m", "provider": "openai", "latency_ms": 200, **fields}


def by(metric: str, scrape: dict[Any, float]) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (name, labels), value in scrape.items() if name == metric}


def test_calls_of_two_teams_give_per_team_request_cost_error_and_token_series(teams: Exporter) -> None:
    response = teams.post(
        {
            "events": [
                call(labels={"team": "search"}, cost_usd=0.5, input_tokens=10),
                call(labels={"team": "search", "application": "bot"}, cost_usd=0.25),
                call(labels={"team": "ads"}, cost_usd=2, status="error", error_type="Timeout"),
                call(cost_usd=1),  # no dimension: counted with empty values
            ]
        }
    )
    assert response.status_code == 200, response.text
    after = teams.scrape()
    llm = {"model": "m", "provider": "openai", "task_type": "unknown"}
    assert by("llmopt_llm_cost_usd_total", after) == {
        key("", **llm, team="search", application="")[1]: 0.5,
        key("", **llm, team="search", application="bot")[1]: 0.25,
        key("", **llm, team="ads", application="")[1]: 2.0,
        key("", **llm, team="", application="")[1]: 1.0,
    }
    assert sum(by("llmopt_llm_requests_total", after).values()) == 4
    assert by("llmopt_llm_request_errors_total", after) == {
        key("", **llm, team="ads", application="", error_type="Timeout")[1]: 1.0
    }
    assert (
        after[key("llmopt_llm_tokens_total", **llm, team="search", application="", direction="input")] == 10
    )
    # Latency is not split by team: its histogram keeps the call's labels only.
    assert after[key("llmopt_llm_request_duration_seconds_count", **llm)] == 4


def test_feedback_carries_the_dimensions_too(teams: Exporter) -> None:
    assert teams.post({"type": "feedback", "thumbs": "down", "labels": {"team": "ads"}}).status_code == 200
    thumbs = key(
        "llmopt_feedback_thumbs_total",
        model="unknown",
        experiment="",
        variant="",
        team="ads",
        application="",
        rating="down",
    )
    assert teams.scrape()[thumbs] == 1


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(call(labels={"tenant": "x"}), id="call"),
        pytest.param({"type": "feedback", "csat": 5, "labels": {"tenant": "x"}}, id="feedback"),
    ],
)
def test_an_undeclared_dimension_is_refused_naming_it_and_changes_nothing(
    teams: Exporter, event: dict[str, Any]
) -> None:
    before = teams.scrape()
    response = teams.post({"events": [call(labels={"team": "search"}), event]})
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [(p["index"], p["field"]) for p in problems] == [(1, "labels.tenant")]
    assert "not a declared dimension (dimensions: team, application)" in problems[0]["message"]
    assert domain(teams.scrape()) == domain(before)


def test_without_declared_dimensions_labels_are_refused(exporter: Exporter) -> None:
    response = exporter.post(call(labels={"team": "search"}))
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "labels.team"
    assert "(dimensions: none)" in response.json()["message"]


def test_each_dimension_keeps_its_declared_number_of_values(teams: Exporter) -> None:
    events = [call(labels={"team": team}) for team in ("a", "b", "c")]
    assert teams.post({"events": events}).status_code == 200
    after = teams.scrape()
    assert {dict(labels)["team"] for labels in by("llmopt_llm_requests_total", after)} == {
        "a",
        "b",
        "__overflow__",
    }
    overflow = key("llmopt_exporter_label_overflow_total", metric="llmopt_llm_requests_total", label="team")
    assert after[overflow] == 1


def test_an_otlp_span_gives_its_dimensions_as_llmopt_label_attributes(teams: Exporter) -> None:
    # The span's team wins over its resource's; the resource gives the application.
    exported = span(
        current(**{"llmopt.label.team": "search"}),
        resource={"llmopt.label.application": "bot", "llmopt.label.team": "ads"},
    )
    response = teams.client.post(
        "/v1/traces", content=body([exported]), headers={"content-type": "application/x-protobuf"}
    )
    assert response.status_code == 200, response.text
    requests = by("llmopt_llm_requests_total", teams.scrape())
    assert [(dict(labels)["team"], dict(labels)["application"]) for labels in requests] == [("search", "bot")]


@pytest.mark.parametrize(
    ("dimensions", "says"),
    [
        pytest.param({"model": 5}, "already uses", id="taken"),
        pytest.param({"9team": 5}, "not a label name", id="bad-name"),
        pytest.param({"team": 0}, "greater than or equal to 1", id="no-values"),
        pytest.param({f"d{i}": 5 for i in range(5)}, "at most 4", id="too-many"),
        pytest.param(["team"], "valid dictionary", id="not-a-mapping"),
    ],
)
def test_bad_dimensions_stop_the_start_naming_the_file(tmp_path: Path, dimensions: Any, says: str) -> None:
    path = rules_config(tmp_path, dimensions)
    with pytest.raises(ConfigError) as raised:
        load_settings(dimensions_file=path)
    assert "dimensions_file" in str(raised.value)
    assert str(path) in str(raised.value)
    assert says in str(raised.value)


def test_the_rules_sum_the_dimensions_away_wherever_they_read_a_metric_that_carries_them() -> None:
    """All but those of the groups llmopt.dimensions, which keep them."""
    document = yaml.safe_load((ROOT / "alerts" / "config.yml").read_text(encoding="utf-8"))
    config = rules.RulesConfig.model_validate({**document, "dimensions": DIMENSIONS})
    carrying = {spec.name.removesuffix("_total") for spec in DIMENSIONED}
    checked = 0
    for text in rules.render(config).values():
        groups = yaml.safe_load(text)["groups"]
        groups = [group for group in groups if not group["name"].startswith("llmopt.dimensions")]
        for rule in (rule for group in groups for rule in group["rules"]):
            for selection in selections(rule["expr"]):
                if selection.name.removesuffix("_total") not in carrying:
                    continue
                aggregation = selection.aggregation
                assert aggregation is not None and aggregation.grouping == "without", rule["expr"]
                assert {"team", "application"} <= set(aggregation.labels), rule["expr"]
                checked += 1
    assert checked > 20


def test_promtool_cases_of_the_rules_by_dimension_and_the_scoped_budgets_pass(tmp_path: Path) -> None:
    for name, text in rules.render(scoped.scoped_config()).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "tests" / "scoped").mkdir(parents=True)
    for path in scoped.TESTS.glob("*.test.yml"):
        shutil.copy(path, tmp_path / "tests" / "scoped" / path.name)
    done = subprocess.run(
        [PROMTOOL, "test", "rules", *(path.name for path in scoped.TESTS.glob("*.test.yml"))],
        cwd=tmp_path / "tests" / "scoped",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_scoped_budget_alert_has_a_firing_case_and_a_near_miss() -> None:
    cases = [
        case
        for path in scoped.TESTS.glob("*.test.yml")
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
        for case in group.get("alert_rule_test", [])
    ]
    for name in ("LLMOptBudgetExceeded", "LLMOptBudgetExhaustionForecast"):
        assert any(case["alertname"] == name and case.get("exp_alerts") for case in cases), name
        assert any(case["alertname"] == name and not case.get("exp_alerts") for case in cases), name


def test_scopes_must_name_a_declared_dimension() -> None:
    document = yaml.safe_load((ROOT / "alerts" / "config.yml").read_text(encoding="utf-8"))
    document["alerts"]["budget_exceeded"]["scopes"] = {"team": {"search": 100}}
    with pytest.raises(ValueError, match="'team' is not a declared dimension"):
        rules.RulesConfig.model_validate(document)


def test_two_teams_get_their_own_cost_errors_and_budget_alerts_through_a_real_prometheus(
    tmp_path: Path,
) -> None:
    """The exporter and the rules read the same dimensions from one file; Prometheus keeps each team
    apart in the rules by dimension and fires each scope's own budget alert."""
    document = yaml.safe_load((ROOT / "alerts" / "config.yml").read_text(encoding="utf-8"))
    document["dimensions"] = {"team": 10, "application": 10}
    # Daily budgets: search spends far under its budget, ads is on its way past its own, ops is past.
    document["alerts"]["budget_exceeded"]["scopes"] = {"team": {"search": 200, "ads": 50, "ops": 10}}
    document["alerts"]["budget_exhaustion_forecast"]["for"] = "0s"
    config_file = tmp_path / "config.yml"
    config_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    config = rules.load_config(config_file)
    rendered = rules.render(config)
    # Every group evaluated every second, the slow ones too (spend over a day, every 3 minutes
    # otherwise): the test cannot wait minutes.
    files = {}
    for name in (rules.RECORDING_FILE, rules.ALERTING_FILE):
        document = yaml.safe_load(rendered[name])
        for group in document["groups"]:
            group.pop("interval", None)
        files[name] = yaml.safe_dump(document, sort_keys=False)
    env = {"LLMOPT_DIMENSIONS_FILE": str(config_file)}
    with exporter_and_prometheus(tmp_path, files, config.exporter_job, env) as (exporter, prometheus):

        def post(*events: dict[str, Any]) -> None:
            request = urllib.request.Request(
                f"{exporter}/v1/events",
                data=json.dumps({"events": list(events)}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200

        def scraped(total: int) -> None:
            wait_until(
                lambda: query(prometheus, f"sum(llmopt_llm_requests_total) == {total}") or None,
                f"{total} calls scraped",
            )

        # Each team's series exist before the calls that count: rate() and increase() start there.
        # increase() over a day extrapolates a young series' few seconds by up to twice: ads' $20
        # stays under its $50 (its rate, over an hour, makes $480 a day), ops' $30 is over its $10.
        post(
            call(labels={"team": "search", "application": "bot"}, cost_usd=0),
            *(call(labels={"team": team}, cost_usd=0) for team in ("ads", "ops")),
            call(labels={"team": "ads"}, cost_usd=0, status="error", error_type="Timeout"),
        )
        scraped(4)
        post(
            call(labels={"team": "search", "application": "bot"}, cost_usd=1),
            call(labels={"team": "ads"}, cost_usd=20),
            call(labels={"team": "ads"}, cost_usd=0, status="error", error_type="Timeout"),
            call(labels={"team": "ops"}, cost_usd=30),
        )
        scraped(8)

        def firing(name: str) -> set[str] | None:
            teams = {
                labels["team"]
                for labels, _ in query(prometheus, f'ALERTS{{alertname="{name}", alertstate="firing"}}')
            }
            return teams or None

        assert wait_until(lambda: firing("LLMOptBudgetExceeded"), "a scope's budget alert") == {"ops"}
        assert wait_until(lambda: firing("LLMOptBudgetExhaustionForecast"), "a forecast") == {"ads"}
        errors = dict(
            (labels["team"], value)
            for labels, value in query(
                prometheus, rec.DIMENSIONS_ERRORS_RATIO5M.by("team", "application").selector
            )
        )
        assert errors["search"] == 0 and errors["ops"] == 0 and 0 < errors["ads"] <= 1
        spend = dict(
            (labels["team"], value)
            for labels, value in query(prometheus, rec.SCOPE_SPEND1D.by("team").selector)
        )
        assert spend["search"] < spend["ads"] < spend["ops"]
        availability = rec.DIMENSIONS_AVAILABILITY.over(config.slos.availability.window).by(
            "team", "application"
        )
        sli = {labels["team"]: value for labels, value in query(prometheus, availability.selector)}
        assert sli["search"] == 1 and sli["ops"] == 1 and 0 < sli["ads"] < 1


def test_a_scope_budget_from_a_limit_event_is_its_own_gauge_and_survives_a_restart(tmp_path: Path) -> None:
    settings = Settings(
        dimensions_file=rules_config(tmp_path, DIMENSIONS), snapshot_file=tmp_path / "state.json"
    )
    limits = [
        {"type": "budget", "action": "limit", "period": "day", "limit_usd": 10, "labels": {"team": "ops"}},
        {"type": "budget", "action": "limit", "period": "day", "limit_usd": 1000},
    ]
    for round_ in ("first", "after a restart"):
        with TestClient(create_app(settings, clock=lambda: CLOCK)) as client:
            exporter = Exporter(client)
            if round_ == "first":
                assert exporter.post({"events": limits}).status_code == 200
            assert by("llmopt_budget_limit_usd", exporter.scrape()) == {
                key("", period="day", team="ops", application="")[1]: 10.0,
                key("", period="day", team="", application="")[1]: 1000.0,
            }, round_
    # Only a limit takes labels among the budget's actions.
    for exporter in make_exporter(dimensions_file=rules_config(tmp_path, DIMENSIONS)):
        spend = {
            "type": "budget",
            "action": "spend",
            "category": "compute",
            "amount_usd": 1,
            "labels": {"team": "x"},
        }
        assert exporter.post(spend).json()["problems"][0]["field"] == "labels"
