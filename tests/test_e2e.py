"""End to end through the real chain: events -> exporter -> Prometheus -> Alertmanager -> PagerDuty,
Slack, email and the dead man's switch.

One chain serves the module. Every daemon runs on a free loopback port with its own temp dir and is
stopped by PID: the exporter process; Prometheus (exemplar storage on) with our prometheus.yml and the
rule files rendered by ``python -m mixin.rules`` from a copy of alerts/config.yml whose ``for``
durations are short; Alertmanager with alerts/alertmanager.yml, its secret files written, its
endpoints pointed at a local HTTP receiver and SMTP sink and its timers short. Routes, receivers,
templates, inhibition, thresholds and rule expressions are the shipped ones.

The checks share the chain, so they run in file order on purpose: the slow calls come before the
error burst, whose fast calls would hide slow ones from the latency rules for the rest of the run.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixin import rules
from tests.processes import ALERTMANAGER, EXPORTER, PROMETHEUS, free_port, running, wait_until
from tests.receivers import Delivery, HttpReceiver, SmtpSink

ROOT = Path(__file__).resolve().parents[1]
ALERTMANAGER_CONFIG = yaml.safe_load((ROOT / "alerts" / "alertmanager.yml").read_text(encoding="utf-8"))
RULES_CONFIG = yaml.safe_load(rules.DEFAULT_CONFIG.read_text(encoding="utf-8"))
RUNBOOKS = RULES_CONFIG["runbook_url_base"]

# Contents of the secret files alertmanager.yml names (by file name); {receiver} is the local
# receiver's URL. Newer secrets in the config fail the chain's start until they are added here.
SECRETS = {
    "pagerduty-routing-key": "0123456789abcdef0123456789abcdef",
    "slack-alerts-url": "{receiver}/slack/alerts",
    "slack-info-url": "{receiver}/slack/info",
    "smtp-password": "e2e-smtp-password",
    "deadmans-switch-token": "e2e-heartbeat-token",
}
# Alertmanager's timers for the test: notifications within a second, repeats every two.
SHORT_TIMERS = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "2s"}
LLM_LABELS = {"model": "gpt-4o-mini", "provider": "openai", "task_type": "summarization"}
SLOW_MS = 8000.0  # above the latency SLO threshold (1 s) and the LLMOptHighLatency threshold (5 s)


# --- The chain -----------------------------------------------------------------------------------


def shortened_rules_config() -> dict[str, Any]:
    """alerts/config.yml with the ``for`` durations of the alerts checked here cut to seconds.

    Thresholds stay as shipped. As in the shipped config (10m against 2m), LLMOptHighLatency waits
    longer than the latency burn page, so the warning reaches Alertmanager after the critical that
    inhibits it.
    """
    config: dict[str, Any] = copy.deepcopy(RULES_CONFIG)
    alerts = config["alerts"]
    alerts["high_error_rate"]["for"] = "2s"
    alerts["high_latency"]["for"] = "4s"
    alerts["budget_exceeded"]["for"] = "0s"
    for window in alerts["error_budget_burn"]:
        window["for"] = "0s"
    return config


def prometheus_config(exporter: str, alertmanager: str) -> dict[str, Any]:
    """prometheus.yml scraping and evaluating every second, with the chain's addresses.

    Its rule_files (alerts/*.rules.yml, relative to the config file) are the test-rendered ones.
    """
    config: dict[str, Any] = yaml.safe_load((ROOT / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    # The exporter's job only: no node_exporter runs in this chain.
    (job,) = (job for job in config["scrape_configs"] if job["job_name"] == RULES_CONFIG["exporter_job"])
    job["static_configs"] = [{"targets": [exporter]}]
    config["scrape_configs"] = [job]
    return config


def alertmanager_config(secrets: Path, receiver: str, smarthost: str) -> dict[str, Any]:
    """alerts/alertmanager.yml with its secrets in ``secrets``, its endpoints local and short timers."""
    config: dict[str, Any] = copy.deepcopy(ALERTMANAGER_CONFIG)

    def relocate_secrets(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith("_file"):
                    name = Path(value).name
                    (secrets / name).write_text(SECRETS[name].format(receiver=receiver), encoding="utf-8")
                    node[key] = str(secrets / name)
                else:
                    relocate_secrets(value)
        elif isinstance(node, list):
            for item in node:
                relocate_secrets(item)

    def shorten_timers(route: dict[str, Any]) -> None:
        for key in SHORT_TIMERS.keys() & route.keys():
            route[key] = SHORT_TIMERS[key]
        for child in route.get("routes", []):
            shorten_timers(child)

    secrets.mkdir()
    relocate_secrets(config)
    shorten_timers(config["route"])
    config["global"]["pagerduty_url"] = f"{receiver}/pagerduty"
    config["global"]["smtp_smarthost"] = smarthost
    # The sink speaks plain SMTP; the credentials still go through AUTH.
    config["global"]["smtp_require_tls"] = False
    for entry in config["receivers"]:
        for webhook in entry.get("webhook_configs", []):
            # Alertmanager 0.25 has no url_file: the heartbeat URL is inline.
            webhook["url"] = f"{receiver}/heartbeat"
    return config


def _write_yaml(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@dataclass(frozen=True)
class Chain:
    exporter: str
    prometheus: str
    alertmanager: str
    receiver: HttpReceiver
    smtp: SmtpSink
    logs: tuple[Path, ...]
    started_at: float  # Unix time

    def post(self, *events: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.exporter}/v1/events",
            data=json.dumps({"events": list(events)}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 202), response.read()

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        result: list[dict[str, Any]] = _get_json(url)["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds, with its state (active, suppressed) and inhibitors."""
        alerts: list[dict[str, Any]] = _get_json(f"{self.alertmanager}/api/v2/alerts")
        return alerts


def llm_call(
    *,
    latency_ms: float = 120.0,
    failed: bool = False,
    trace_id: str | None = None,
    span_id: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "llm_request", **LLM_LABELS, "latency_ms": latency_ms}
    if failed:
        event |= {"status": "error", "error_type": "RateLimitError"}
    if trace_id is not None:
        event |= {"trace_id": trace_id, "span_id": span_id}
    return event


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    tmp = tmp_path_factory.mktemp("chain")
    config = _write_yaml(tmp / "config.yml", shortened_rules_config())
    assert rules.main(["--config", str(config), "--output", str(tmp / "alerts")]) == 0
    exporter = f"127.0.0.1:{free_port()}"
    prometheus = f"127.0.0.1:{free_port()}"
    alertmanager = f"127.0.0.1:{free_port()}"
    logs = tuple(tmp / f"{name}.log" for name in ("exporter", "alertmanager", "prometheus"))
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(HttpReceiver())
        smtp = stack.enter_context(SmtpSink())
        _write_yaml(tmp / "prometheus.yml", prometheus_config(exporter, alertmanager))
        _write_yaml(
            tmp / "alertmanager.yml",
            alertmanager_config(tmp / "secrets", receiver.url, f"127.0.0.1:{smtp.port}"),
        )
        host, port = exporter.split(":")
        stack.enter_context(
            running(
                [str(EXPORTER), "--host", host, "--port", port],
                f"http://{exporter}/readyz",
                logs[0],
                # Scrapes every second would bury everything else in the log.
                env={"LLMOPT_ACCESS_LOG": "false"},
            )
        )
        chain = Chain(
            f"http://{exporter}",
            f"http://{prometheus}",
            f"http://{alertmanager}",
            receiver,
            smtp,
            logs,
            time.time(),
        )
        # Series must exist before the checks raise them, or rate() sees no increase: one good and
        # one failed call, in the first scrape.
        chain.post(llm_call(), llm_call(failed=True))
        stack.enter_context(
            running(
                [
                    ALERTMANAGER,
                    f"--config.file={tmp / 'alertmanager.yml'}",
                    f"--storage.path={tmp / 'alertmanager-data'}",
                    f"--web.listen-address={alertmanager}",
                    f"--web.external-url={chain.alertmanager}",
                    "--cluster.listen-address=",
                ],
                f"{chain.alertmanager}/-/ready",
                logs[1],
            )
        )
        stack.enter_context(
            running(
                [
                    PROMETHEUS,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'prometheus-data'}",
                    f"--web.listen-address={prometheus}",
                    f"--web.external-url={chain.prometheus}",
                    "--enable-feature=exemplar-storage",
                    # Alerts that fire before Alertmanager is discovered (the Watchdog) are dropped
                    # and sent again only after this delay (1m by default).
                    "--rules.alert.resend-delay=1s",
                ],
                f"{chain.prometheus}/-/ready",
                logs[2],
            )
        )
        # Prometheus applies discovered targets and Alertmanagers every 5 s.
        wait_until(lambda: chain.query("llmopt_llm_request_errors_total") or None, "the first scrape")
        wait_until(
            lambda: (
                _get_json(f"{chain.prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"] or None
            ),
            "Alertmanager discovered by Prometheus",
        )
        yield chain


@pytest.fixture(autouse=True)
def _daemon_logs_on_failure(request: pytest.FixtureRequest, chain: Chain) -> Iterator[None]:
    """Print every daemon's log after a failed check (pytest shows it with the failure)."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        for log in chain.logs:
            print(f"--- {log.name} ---\n{log.read_text(errors='replace')}")


# --- What the receivers got ----------------------------------------------------------------------


def alert_labels(details: str) -> list[dict[str, str]]:
    """The label sets in Alertmanager's default PagerDuty details ("Labels:\\n - name = value...")."""
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in details.splitlines():
        if line == "Labels:":
            current = {}
            found.append(current)
        elif line.startswith(" - ") and current is not None:
            name, _, value = line.removeprefix(" - ").partition(" = ")
            current[name] = value
        else:
            current = None
    return found


def is_page(delivery: Delivery, action: str, labels: dict[str, str]) -> bool:
    """A PagerDuty event of ``action`` (trigger, resolve) that carries an alert with ``labels``."""
    if delivery.path != "/pagerduty" or delivery.body["event_action"] != action:
        return False
    details = delivery.body["payload"]["custom_details"]
    alerts = alert_labels(details["firing"]) + alert_labels(details["resolved"])
    return any(labels.items() <= alert.items() for alert in alerts)


def slack_title(delivery: Delivery) -> str | None:
    if not delivery.path.startswith("/slack/"):
        return None
    title: str = delivery.body["attachments"][0]["title"]
    return title


def runbook(alertname: str) -> str:
    assert (ROOT / "docs" / "runbooks" / f"{alertname}.md").is_file()
    return f"{RUNBOOKS}/{alertname}.md"


def assert_page(page: Delivery, alertname: str, summary: str) -> None:
    body = page.body
    assert body["routing_key"] == SECRETS["pagerduty-routing-key"]
    assert body["payload"]["summary"] == f"{alertname}: {summary}"
    assert body["payload"]["severity"] == "critical"
    assert body["links"] == [{"href": runbook(alertname), "text": "Runbook"}]


# --- The checks ----------------------------------------------------------------------------------


def test_the_watchdog_reaches_the_dead_mans_switch(chain: Chain) -> None:
    inbox = chain.receiver.inbox
    ping = inbox.wait_for(lambda delivery: delivery.path == "/heartbeat", "Watchdog heartbeat")
    assert ping.headers["authorization"] == f"Bearer {SECRETS['deadmans-switch-token']}"
    assert ping.body["receiver"] == "deadmans-switch"
    assert ping.body["status"] == "firing"
    assert [alert["labels"] for alert in ping.body["alerts"]] == [
        {"alertname": "LLMOptWatchdog", "severity": "none"}
    ]
    # A heartbeat only helps if it keeps coming.
    inbox.wait_for(
        lambda delivery: delivery.path == "/heartbeat" and delivery.received_at > ping.received_at,
        "a second Watchdog heartbeat",
    )


def test_a_slow_calls_trace_id_is_an_exemplar(chain: Chain) -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    chain.post(llm_call(latency_ms=SLOW_MS, trace_id=trace_id, span_id=span_id))
    query = urllib.parse.urlencode(
        {
            "query": "llmopt_llm_request_duration_seconds_bucket",
            "start": chain.started_at - 60,
            "end": time.time() + 60,
        }
    )

    def exemplars() -> list[tuple[dict[str, str], dict[str, Any]]] | None:
        found = [
            (series["seriesLabels"], exemplar)
            for series in _get_json(f"{chain.prometheus}/api/v1/query_exemplars?{query}")["data"]
            for exemplar in series["exemplars"]
            if exemplar["labels"].get("trace_id") == trace_id
        ]
        return found or None

    [(series, exemplar)] = wait_until(exemplars, f"an exemplar with trace_id {trace_id}")
    assert series == {
        "__name__": "llmopt_llm_request_duration_seconds_bucket",
        "instance": chain.exporter.removeprefix("http://"),
        "job": RULES_CONFIG["exporter_job"],
        **LLM_LABELS,
        "le": "10.24",
    }
    assert exemplar["labels"] == {"trace_id": trace_id, "span_id": span_id}
    assert float(exemplar["value"]) == SLOW_MS / 1000


def test_a_warning_is_inhibited_while_its_critical_fires(chain: Chain) -> None:
    """Slow calls raise LLMOptHighLatency (warning) and the latency burn page (critical); both carry
    slo="latency", so Alertmanager holds the warning back while the page fires."""
    chain.post(*(llm_call(latency_ms=SLOW_MS) for _ in range(5)))
    burn = {"alertname": "LLMOptErrorBudgetBurn", "severity": "critical", "slo": "latency"}
    page = chain.receiver.inbox.wait_for(lambda d: is_page(d, "trigger", burn), "the latency burn page")
    assert_page(page, "LLMOptErrorBudgetBurn", "The latency SLO is burning its error budget too fast.")

    def suppressed_warning() -> tuple[dict[str, Any], list[dict[str, str]]] | None:
        alerts = chain.alerts()
        labels_of = {alert["fingerprint"]: alert["labels"] for alert in alerts}
        for alert in alerts:
            status = alert["status"]
            if alert["labels"]["alertname"] == "LLMOptHighLatency" and status["state"] == "suppressed":
                return alert, [labels_of[fingerprint] for fingerprint in status["inhibitedBy"]]
        return None

    warning, inhibitors = wait_until(suppressed_warning, "LLMOptHighLatency suppressed in Alertmanager")
    seen_at = time.monotonic()
    assert warning["labels"] == {
        "alertname": "LLMOptHighLatency",
        "severity": "warning",
        "slo": "latency",
        "quantile": "0.95",
    }
    assert inhibitors
    assert all(burn.items() <= labels.items() for labels in inhibitors), inhibitors
    # The page repeats every 2 s on Slack. One that arrives after the warning's group has been
    # flushed (group_wait 1 s, then every second) shows Slack was reachable and the warning held back.
    chain.receiver.inbox.wait_for(
        lambda d: (
            slack_title(d) == "[FIRING] LLMOptErrorBudgetBurn (critical)" and d.received_at > seen_at + 2
        ),
        "a later Slack message of the latency burn page",
    )
    titles = {slack_title(delivery) for delivery in chain.receiver.inbox.items()}
    assert not {title for title in titles if title and "LLMOptHighLatency" in title}


def test_an_error_burst_pages_then_resolves(chain: Chain) -> None:
    high_error_rate = {"alertname": "LLMOptHighErrorRate", "severity": "critical", "slo": "availability"}
    inbox = chain.receiver.inbox
    chain.post(*(llm_call(failed=True) for _ in range(10)))

    page = inbox.wait_for(lambda d: is_page(d, "trigger", high_error_rate), "the LLMOptHighErrorRate page")
    assert_page(page, "LLMOptHighErrorRate", "LLM calls are failing at a high rate.")
    assert alert_labels(page.body["payload"]["custom_details"]["firing"]) == [high_error_rate]

    message = inbox.wait_for(
        lambda d: slack_title(d) == "[FIRING] LLMOptHighErrorRate (critical)",
        "the LLMOptHighErrorRate Slack message",
    )
    assert message.path == "/slack/alerts"
    assert message.body["channel"] == "#llmopt-alerts"
    summary, description, link = message.body["attachments"][0]["text"].splitlines()
    assert summary == "*LLM calls are failing at a high rate.*"
    assert re.fullmatch(
        r"[0-9.]+% of LLM calls failed over the last 5 minutes \(threshold 5%\)\.", description
    ), description
    assert link == f"Runbook: {runbook('LLMOptHighErrorRate')}"

    # The errors stop; successful calls bring the 5-minute error ratio back under 5 %.
    stopped_at = time.monotonic()
    chain.post(*(llm_call() for _ in range(400)))
    resolved = inbox.wait_for(
        lambda d: is_page(d, "resolve", high_error_rate) and d.received_at > stopped_at,
        "the LLMOptHighErrorRate resolve event",
    )
    assert resolved.body["dedup_key"] == page.body["dedup_key"]
    inbox.wait_for(
        lambda d: (
            slack_title(d) == "[RESOLVED] LLMOptHighErrorRate (critical)" and d.received_at > stopped_at
        ),
        "the resolved LLMOptHighErrorRate Slack message",
    )
    early = [
        d for d in inbox.items() if is_page(d, "resolve", high_error_rate) and d.received_at < stopped_at
    ]
    assert not early, "resolved while the errors went on"


def test_spend_over_the_daily_budget_pages_and_emails(chain: Chain) -> None:
    budget_usd = RULES_CONFIG["alerts"]["budget_exceeded"]["daily_budget_usd"]
    chain.post({"type": "budget", "action": "spend", "category": "compute", "amount_usd": budget_usd * 1.25})

    exceeded = {"alertname": "LLMOptBudgetExceeded", "severity": "critical"}
    page = chain.receiver.inbox.wait_for(lambda d: is_page(d, "trigger", exceeded), "the budget page")
    assert_page(page, "LLMOptBudgetExceeded", "Daily spend is over the budget.")
    assert alert_labels(page.body["payload"]["custom_details"]["firing"]) == [exceeded]

    mail = chain.smtp.inbox.wait_for(
        lambda mail: "LLMOptBudgetExceeded" in mail.message["Subject"], "the budget email"
    )
    smtp = ALERTMANAGER_CONFIG["global"]
    (receiver,) = (entry for entry in ALERTMANAGER_CONFIG["receivers"] if entry["name"] == "pagerduty-email")
    assert mail.message["Subject"] == "[FIRING:1] LLMOptBudgetExceeded (critical)"
    assert mail.mail_from == smtp["smtp_from"]
    assert mail.rcpt_tos == (receiver["email_configs"][0]["to"],)
    assert (mail.login, mail.password) == (smtp["smtp_auth_username"], SECRETS["smtp-password"])
    html = mail.message.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert re.search(
        rf"\$[0-9]+\.[0-9]{{2}} was spent in the last 24 hours; the daily budget is \${budget_usd}\.", content
    )
    assert runbook("LLMOptBudgetExceeded") in content
