"""The Grafana dashboards of grafana/dashboards: rendered from mixin/dashboards.py, well-formed, accepted
by Grafana's own schema (@grafana/schema through tsc), naming only declared metrics and recording
rules, and every panel query answered with data by a real Prometheus that scrapes a real exporter fed
by the simulator. Also the provisioning files and docker-compose.yml that run them."""

from __future__ import annotations

import datetime
import functools
import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin import dashboards, promql, rules, scaling
from tests.processes import DOCKER_COMPOSE, EXPORTER, NODE, PROMETHEUS, PROMTOOL, free_port, running
from tools import simulate

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
SCHEMA_CHECK = ROOT / "grafana" / ".schema-check"
TSC = SCHEMA_CHECK / "node_modules" / "typescript" / "bin" / "tsc"
COMPOSE = ROOT / "docker-compose.yml"

# The uids are links and bookmarks: changing one breaks them, so they are pinned here.
UIDS = {
    "llmopt-system-health",
    "llmopt-optimization",
    "llmopt-experiments",
    "llmopt-slos",
    "llmopt-models",
    "llmopt-business",
}
PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Series of Prometheus itself that dashboards may name.
PROMETHEUS_OWN = {"ALERTS", "up"}
# Values the live test gives the dashboard variables: Grafana's built-ins, and values the simulator
# produces for ours.
VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "model": "gpt-4o-mini",
    "experiment": "prompt-optimization-v5",
    "running": simulate.RUNNING_EXPERIMENT,
    "bandit": "temperature",
}
# Queries that legitimately return nothing with minutes of history (or with the simulated traffic);
# they must still parse.
NEEDS_HISTORY = {
    ("llmopt-system-health", "Request rate, now and a day ago", "B"): "the same curve a day earlier",
    ("llmopt-optimization", "Spend, day over day", "A"): "compares the last 24 hours with the 24 before",
    ("llmopt-models", "Cost mismatches and unpriced calls", "B"): "every simulated model has a price",
}

Dashboard = dict[str, Any]
Query = tuple[str, str, str, str]  # dashboard uid, panel title, refId, expr


@functools.cache
def _committed() -> dict[str, Dashboard]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))
    }


def _dashboards() -> list[Dashboard]:
    return list(_committed().values())


def _queries() -> list[Query]:
    return [
        (dashboard["uid"], panel["title"], target["refId"], target["expr"])
        for dashboard in _dashboards()
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def _annotation_queries() -> list[Query]:
    """The annotation queries, once each: every dashboard has the same."""
    found = {
        annotation["name"]: ("annotations", annotation["name"], "Anno", annotation["target"]["expr"])
        for dashboard in _dashboards()
        for annotation in dashboard["annotations"]["list"]
    }
    return list(found.values())


def substitute(expr: str) -> str:
    """The expression as Prometheus receives it, with the variables set as in VARIABLES."""

    def value(match: re.Match[str]) -> str:
        return VARIABLES[match.group(1) or match.group(2)]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def _recorded() -> set[str]:
    recorded = set()
    for path in (ROOT / "alerts").glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            recorded |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return recorded


def _query_id(query: Query) -> str:
    return f"{query[0].removeprefix('llmopt-')}/{query[1]}/{query[2]}"


# --- Structure -----------------------------------------------------------------------------------


def test_uids_are_stable_unique_and_name_the_files() -> None:
    assert {name: dashboard["uid"] for name, dashboard in _committed().items()} == {
        f"{uid}.json": uid for uid in UIDS
    }
    titles = [dashboard["title"] for dashboard in _dashboards()]
    assert len(set(titles)) == len(titles)
    assert all(len(uid) <= 40 for uid in UIDS)


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda dashboard: dashboard["uid"])
def test_panels_are_well_formed(dashboard: Dashboard) -> None:
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids), "panel ids must be unique"
    for panel in panels:
        where = f"{dashboard['uid']}: {panel['title']!r}"
        assert panel["type"] in PANEL_TYPES, where
        assert panel["datasource"] == DATASOURCE, where
        assert panel["targets"], where
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"]), where
        assert panel["fieldConfig"]["defaults"]["unit"], where
        assert len(panel["description"]) > 20, where
        assert panel["title"] and panel["title"] == panel["title"].strip(), where
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), where


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda dashboard: dashboard["uid"])
def test_panels_fit_the_grid_without_overlapping(dashboard: Dashboard) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel[
            "title"
        ]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda dashboard: dashboard["uid"])
def test_data_source_is_the_variable_and_never_an_import_input(dashboard: Dashboard) -> None:
    text = json.dumps(dashboard)
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    assert "${DS_" not in text
    variables = dashboard["templating"]["list"]
    assert variables[0] | {"type": "datasource", "name": "datasource", "query": "prometheus"} == variables[0]
    assert [variable["type"] for variable in variables].count("datasource") == 1
    for variable in variables[1:]:
        assert variable["datasource"] == DATASOURCE
        assert re.fullmatch(r"label_values\(\w+, \w+\)", variable["query"]["query"]), variable["name"]
    for annotation in dashboard["annotations"]["list"]:
        assert annotation["datasource"] == DATASOURCE


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda dashboard: dashboard["uid"])
def test_variables_are_used(dashboard: Dashboard) -> None:
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    for variable in dashboard["templating"]["list"][1:]:
        assert f"${variable['name']}" in exprs, f"{dashboard['uid']}: ${variable['name']} is never used"


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda dashboard: dashboard["uid"])
def test_dashboards_link_to_each_other(dashboard: Dashboard) -> None:
    linked = {link["url"] for link in dashboard["links"]}
    assert linked == {f"/d/{uid}" for uid in UIDS - {dashboard["uid"]}}
    assert all(link["keepTime"] and link["includeVars"] for link in dashboard["links"])


@pytest.mark.parametrize("dashboard", _dashboards(), ids=lambda dashboard: dashboard["uid"])
def test_alerts_and_deployments_are_annotations(dashboard: Dashboard) -> None:
    annotations = {annotation["name"]: annotation for annotation in dashboard["annotations"]["list"]}
    assert set(annotations) == {"Alerts", "Deployments"}
    assert promql.series_names(substitute(annotations["Alerts"]["target"]["expr"])) == {"ALERTS"}
    assert 'alertstate="firing"' in annotations["Alerts"]["target"]["expr"]
    assert promql.series_names(substitute(annotations["Deployments"]["target"]["expr"])) == {
        "llmopt_deployments_total"
    }
    assert all(annotation["enable"] for annotation in annotations.values())


# A duration no panel writes, standing in for $__rate_interval while a query is parsed.
RATE_INTERVAL = datetime.timedelta(minutes=7, seconds=13)


@pytest.mark.parametrize("query", _queries(), ids=_query_id)
def test_queries_follow_the_conventions(query: Query) -> None:
    """Raw rates over $__rate_interval; raw metrics aggregated, so replicas add up to one answer."""
    expr = dashboards.as_promql(
        query[3], {**dashboards.INTERVAL_VARIABLES, "__rate_interval": f"{RATE_INTERVAL.seconds}s"}
    )
    for function, window in promql.range_calls(expr):
        if function in ("rate", "irate"):
            assert window == RATE_INTERVAL, f"{function} over {window}, not $__rate_interval"
    exposed = scaling.exposed_names()
    for selection in promql.selections(expr):
        if selection.name in exposed:
            assert selection.aggregation is not None, f"{selection.name} is not aggregated"
            if selection.aggregation.grouping == "without":
                assert "instance" in selection.aggregation.labels, selection


# --- The contract --------------------------------------------------------------------------------


def test_queries_name_only_declared_metrics_and_recording_rules() -> None:
    known = set(scaling.exposed_names()) | _recorded() | PROMETHEUS_OWN
    exprs = [query[3] for query in (*_queries(), *_annotation_queries())]
    exprs += [
        variable["query"]["query"].removeprefix("label_values(").split(",")[0]
        for dashboard in _dashboards()
        for variable in dashboard["templating"]["list"][1:]
    ]
    named = {name for expr in exprs for name in promql.series_names(substitute(expr))}
    assert named, "no names found: the parser is broken"
    assert not named - known


def test_dashboards_show_the_documented_panels() -> None:
    """The System Health and Optimization Performance views."""
    titles = {
        dashboard["uid"]: {panel["title"] for panel in dashboard["panels"]} for dashboard in _dashboards()
    }
    assert {
        "Request rate",
        "Success rate",
        "Average latency",
        "Latency percentiles",
        "Errors by type, last hour",
    } <= titles["llmopt-system-health"]
    assert {
        "Active A/B tests",
        "Running A/B tests",
        "Bandit arm selection share",
        "Cost trend, 7 days",
        "Saved vs. baseline (24h)",
        "Saved vs. baseline (%)",
    } <= titles["llmopt-optimization"]


# --- Grafana's own schema ------------------------------------------------------------------------

# A dashboard with mistakes Grafana would silently drop or choke on; each must fail the type check.
BROKEN = {
    "fieldConfg": "a misspelled panel key",
    '"rainbow"': "a stat colour mode that does not exist",
    '"graph"': "a removed (Angular) panel type",
}


def _typescript(dashboard: Dashboard) -> str:
    return (
        f"import type {{ LlmoptDashboard }} from '{SCHEMA_CHECK / 'dashboard'}';\n"
        f"export const dashboard = {json.dumps(dashboard, indent=2)} satisfies LlmoptDashboard;\n"
    )


def _broken() -> Dashboard:
    dashboard = json.loads(json.dumps(_committed()["llmopt-system-health.json"]))
    panels = dashboard["panels"]
    panels[0]["fieldConfg"] = panels[0].pop("fieldConfig")
    panels[1]["options"]["colorMode"] = "rainbow"
    panels[6]["type"] = "graph"
    return dashboard


def test_dashboards_satisfy_grafana_schema(tmp_path: Path) -> None:
    assert TSC.is_file() and Path(NODE).exists(), (
        "run make tools (scripts/ensure-tools.sh) for the schema check"
    )
    for name, dashboard in _committed().items():
        (tmp_path / name.replace(".json", ".ts")).write_text(_typescript(dashboard), encoding="utf-8")
    (tmp_path / "broken.ts").write_text(_typescript(_broken()), encoding="utf-8")
    (tmp_path / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "target": "es2022",
                    "module": "esnext",
                    "moduleResolution": "bundler",
                    "skipLibCheck": True,
                    "types": [],
                },
                "include": ["*.ts"],
            }
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [NODE, str(TSC), "-p", "tsconfig.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    errors = [line for line in result.stdout.splitlines() if ": error TS" in line]
    assert errors, f"tsc found nothing wrong, not even in broken.ts: {result.stdout}{result.stderr}"
    assert all(line.startswith("broken.ts(") for line in errors), "\n".join(errors)
    for mistake, meaning in BROKEN.items():
        assert any(mistake in line for line in errors), f"tsc missed {meaning}"


# --- Provisioning and docker-compose -------------------------------------------------------------


def test_provisioning_loads_the_dashboards_and_the_data_source() -> None:
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    interval = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())["global"]
    assert source["jsonData"]["timeInterval"] == interval["scrape_interval"], "drives $__rate_interval"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "llmopt.yml").read_text(encoding="utf-8"))
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_exemplars_link_to_the_trace_backend_that_receives_the_spans() -> None:
    """Prometheus keeps exemplars; Grafana turns their trace_id label into a link to Tempo, which
    receives the simulator's spans over OTLP; panels ask for the exemplars."""
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    (prometheus,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    (tempo,) = yaml.safe_load((PROVISIONING / "datasources" / "tempo.yml").read_text())["datasources"]
    # The label the exporter puts the trace id in (app/recorder.py) names the link.
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [
        {"name": "trace_id", "datasourceUid": tempo["uid"]}
    ]
    config = yaml.safe_load((ROOT / "deploy" / "compose" / "tempo.yml").read_text(encoding="utf-8"))
    assert tempo["type"] == "tempo"
    assert tempo["url"] == f"http://tempo:{config['server']['http_listen_port']}"
    otlp_http = config["distributor"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert otlp_http.startswith("0.0.0.0:"), "reachable from the other containers"
    simulator = simulate.build_parser().parse_args(services["simulator"]["command"][3:])
    assert simulator.otlp == f"http://tempo:{otlp_http.split(':')[1]}"
    assert "./deploy/compose/tempo.yml:/etc/tempo/tempo.yml:ro" in services["tempo"]["volumes"]
    assert services["tempo"]["command"] == ["-config.file=/etc/tempo/tempo.yml"]
    titles = {panel["title"] for _, panel, target in _exemplar_targets()}
    assert {"p95 latency per model", "Spend rate per model"} <= titles


def test_docker_compose_file_is_valid() -> None:
    """docker-compose parses and interpolates the file (no Docker engine needed)."""
    assert Path(DOCKER_COMPOSE).exists(), "run make tools (scripts/ensure-tools.sh) to install docker-compose"
    result = subprocess.run(
        [DOCKER_COMPOSE, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_runs_the_whole_stack_with_our_files() -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    assert set(services) == {
        "exporter",
        "simulator",
        "prometheus",
        "alertmanager",
        "tempo",
        "grafana",
        "node-exporter",
    }
    assert services["exporter"]["build"] == "."
    assert "LLMOPT_INGEST_TOKENS" in services["exporter"]["environment"], "it listens on 0.0.0.0"
    # The simulator runs the tools package from the source tree, with flags its parser takes.
    simulator = services["simulator"]
    assert simulator["command"][:3] == ["python", "-m", "tools.simulate"]
    assert "./tools:/opt/llmopt/tools:ro" in simulator["volumes"]
    assert simulator["working_dir"] == "/opt/llmopt"
    assert simulate.build_parser().parse_args(simulator["command"][3:]).url == "http://exporter:9477"
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{source} is mounted but missing"
    # Every secret file Alertmanager reads is provided (dummies) by the mounted directory.
    config = (ROOT / "alerts" / "alertmanager.yml").read_text(encoding="utf-8")
    secrets = set(re.findall(r"/etc/alertmanager/secrets/([\w-]+)", config))
    assert secrets and all((ROOT / "deploy" / "compose" / "secrets" / name).is_file() for name in secrets)


def test_compose_prometheus_matches_the_top_level_one() -> None:
    """Same jobs (the alerts watch the exporter's job name) and rule files, compose hostnames."""
    top = yaml.safe_load((ROOT / "prometheus.yml").read_text(encoding="utf-8"))
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text(encoding="utf-8"))
    assert [job["job_name"] for job in compose["scrape_configs"]] == [
        job["job_name"] for job in top["scrape_configs"]
    ]
    targets = [t for job in compose["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert targets == ["exporter:9477", "node-exporter:9100"]
    assert compose["rule_files"] == ["/etc/prometheus/alerts/*.rules.yml"]
    assert compose["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(ROOT / "deploy" / "compose" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Live: a real Prometheus scraping a real exporter fed by the simulator -----------------------


def _simulate(url: str, seed: int) -> int:
    result = subprocess.run(
        [
            str(EXPORTER),
            "simulate",
            "--url",
            url,
            "--duration",
            "60",
            "--rate",
            "50",
            "--fast",
            "--seed",
            str(seed),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[1])


def _api(base: str, expr: str, endpoint: str = "query") -> dict[str, Any]:
    """The answer of /api/v1/query, or of /api/v1/query_exemplars over the last hour."""
    parameters = {"query": expr}
    if endpoint == "query_exemplars":
        parameters.update(start=str(time.time() - 3600), end=str(time.time()))
    url = f"{base}/api/v1/{endpoint}?{urllib.parse.urlencode(parameters)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as err:
        answer = json.loads(err.read())
    return answer


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., dict[str, Any]]]:
    """A Prometheus (1 s scrapes and evaluations, our rules) over an exporter the simulator fed twice:
    once before the first scrape and once after it, so every counter has risen between two scrapes."""
    tmp = tmp_path_factory.mktemp("live")
    rule_dir = tmp / "rules"
    rule_dir.mkdir()
    for path in (ROOT / "alerts").glob("*.rules.yml"):
        # The slow groups evaluate every 3m; the test cannot wait for that, so they use the global 1s.
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document["groups"]:
            group.pop("interval", None)
            # Alerts fire on their first true evaluation, so the alert panels have something to show.
            for rule in group["rules"]:
                rule.pop("for", None)
        (rule_dir / path.name).write_text(yaml.safe_dump(document), encoding="utf-8")
    exporter_port, prometheus_port = free_port(), free_port()
    exporter_url = f"http://127.0.0.1:{exporter_port}"
    base = f"http://127.0.0.1:{prometheus_port}"
    job = rules.load_config(rules.DEFAULT_CONFIG).exporter_job
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [f"{rule_dir}/*.rules.yml"],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    exporter = [str(EXPORTER), "--host", "127.0.0.1", "--port", str(exporter_port)]
    # With the example price table, so the panels comparing reported and table costs have data.
    prices = {"LLMOPT_PRICES_FILE": str(ROOT / "deploy" / "prices.example.yml")}
    server = [
        PROMETHEUS,
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
        "--enable-feature=exemplar-storage",
    ]

    def query(expr: str, endpoint: str = "query") -> dict[str, Any]:
        return _api(base, expr, endpoint)

    def accepted() -> float:
        result = query("sum(llmopt_exporter_events_accepted_total)")["data"]["result"]
        return float(result[0]["value"][1]) if result else -1.0

    with (
        running(exporter, f"{exporter_url}/readyz", tmp / "exporter.log", env=prices),
        running(server, f"{base}/-/ready", tmp / "prometheus.log"),
    ):
        first = _simulate(exporter_url, seed=7)
        _wait_for(lambda: accepted() == first, "Prometheus scraped the first simulation")
        second = _simulate(exporter_url, seed=8)
        _wait_for(lambda: accepted() == first + second, "Prometheus scraped the second simulation")
        # Two more evaluations, so every rule (and rules reading rules) has seen the second scrape.
        scraped = time.time()
        _wait_for(
            lambda: any(
                float(sample["value"][0]) > scraped + 1
                for sample in query("timestamp(llmopt:optimization_halt:bool)")["data"]["result"]
            ),
            "the rules evaluated after the last scrape",
        )
        _wait_for(
            lambda: bool(query('ALERTS{alertstate="firing", slo!=""}')["data"]["result"]),
            "an SLO alert fired",
        )
        yield query


def _has_data(answer: dict[str, Any]) -> bool:
    return any(sample["value"][1] not in ("NaN", "+Inf", "-Inf") for sample in answer["data"]["result"])


@pytest.mark.parametrize("query", _queries(), ids=_query_id)
def test_panel_query_returns_data(prometheus: Callable[[str], dict[str, Any]], query: Query) -> None:
    expr = substitute(query[3])
    assert "$" not in expr, "a variable the test does not set"
    answer = prometheus(expr)
    assert answer["status"] == "success", answer.get("error")
    reason = NEEDS_HISTORY.get(query[:3])
    if reason is None:
        assert _has_data(answer), f"no data for {expr}"


def test_history_allowlist_names_real_queries() -> None:
    assert set(NEEDS_HISTORY) <= {query[:3] for query in _queries()}


@pytest.mark.parametrize("query", _annotation_queries(), ids=_query_id)
def test_annotation_query_returns_data(prometheus: Callable[[str], dict[str, Any]], query: Query) -> None:
    """The simulator deploys; the error budget alerts fire on its 3 % of failed calls."""
    answer = prometheus(substitute(query[3]))
    assert answer["status"] == "success", answer.get("error")
    assert _has_data(answer), query[3]


def test_variables_offer_the_values_the_test_uses(prometheus: Callable[[str], dict[str, Any]]) -> None:
    for dashboard in _dashboards():
        for variable in dashboard["templating"]["list"][1:]:
            metric, label = re.findall(r"\w+", variable["query"]["query"])[1:]
            values = {
                sample["metric"][label]
                for sample in prometheus(f"count by ({label}) ({metric})")["data"]["result"]
            }
            assert VARIABLES[variable["name"]] in values, (variable["name"], values)


def _exemplar_targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (dashboard["uid"], panel, target)
        for dashboard in _dashboards()
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("exemplar")
    ]


@pytest.mark.parametrize(
    ("uid", "panel", "target"),
    _exemplar_targets(),
    ids=[panel["title"] for _, panel, _ in _exemplar_targets()],
)
def test_exemplar_panels_show_the_trace_ids_of_llm_calls(
    prometheus: Callable[..., dict[str, Any]], uid: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    """Prometheus (exemplar storage on) answers the panel's exemplar query with the trace ids the
    simulator's LLM calls carried."""
    answer = prometheus(substitute(target["expr"]), "query_exemplars")
    assert answer["status"] == "success", answer.get("error")
    trace_ids = {
        exemplar["labels"]["trace_id"] for series in answer["data"] for exemplar in series["exemplars"]
    }
    assert trace_ids, f"{uid}/{panel['title']}: no exemplars"
    calls = {
        event["trace_id"]
        for seed in (7, 8)  # the fixture's two simulations
        for event in simulate.story(60, 50, seed)
        if event["type"] == "llm_request"
    }
    assert trace_ids <= calls


def test_the_alerts_the_simulator_announces_fire(prometheus: Callable[[str], dict[str, Any]]) -> None:
    """The simulator's summary names the alerts its traffic fires (their `for` aside), and one it
    stays under."""

    def firing() -> set[tuple[str, str]]:
        result = prometheus('ALERTS{alertstate="firing"}')["data"]["result"]
        return {(sample["metric"]["alertname"], sample["metric"].get("slo", "")) for sample in result}

    expected = {(name, slo) for name, slos, _ in simulate.EXPECTED_ALERTS for slo in slos or ("",)}
    # Rule groups evaluate one after another, and some alerts read recording rules of other groups.
    _wait_for(lambda: expected <= firing(), f"{sorted(expected)} fire")
    assert not set(simulate.QUIET_ALERTS) & {name for name, _ in firing()}


def _merged_tables() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{dashboard['uid']}/{panel['title']}", panel)
        for dashboard in _dashboards()
        for panel in dashboard["panels"]
        if any(step["id"] == "merge" for step in panel.get("transformations", []))
    ]


@pytest.mark.parametrize(("where", "panel"), _merged_tables(), ids=[where for where, _ in _merged_tables()])
def test_merged_table_rows_join(
    prometheus: Callable[[str], dict[str, Any]], where: str, panel: dict[str, Any]
) -> None:
    """Grafana's merge joins the queries of a table on their common labels: every query must carry
    the same key labels (and no metric name), or one entity spreads over several rows."""
    label_sets = []
    for target in panel["targets"]:
        result = prometheus(substitute(target["expr"]))["data"]["result"]
        assert result, target["expr"]
        label_sets.append({frozenset(sample["metric"]) for sample in result})
    keys = frozenset.intersection(*(labels for sets in label_sets for labels in sets))
    assert keys, f"{where}: the queries share no label to join on"
    for sets in label_sets:
        assert all("__name__" not in labels for labels in sets), where
        assert all(labels - keys <= {"variant"} for labels in sets), f"{where}: {sets} beyond {set(keys)}"
