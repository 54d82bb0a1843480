"""Many replicas, one truth: the same events give the same rule results on one exporter, spread over
three by ReplicaClient, and in a central store fed by remote_write; killing a replica mid-run
counts no event twice.

One run serves every test of this module. Seven real exporters form three deployments told apart
by a ``cluster`` target label: ``single`` (one replica), ``replicated`` (three) and ``failover``
(three, whose state owner is killed with SIGKILL mid-run). A real Prometheus (the edge) scrapes all
seven every half second and evaluates the rules rendered from alerts/tests/config.yml (every
``for`` set to 0s, a daily budget of $5, every group evaluated each second), and remote-writes the
raw series as prometheus.remote-write.yml does to a second Prometheus (the central store, with
``--web.enable-remote-write-receiver``) that evaluates the same rule files.

Rates differ between deployments by Prometheus's extrapolation alone: each series is extrapolated
to the window's end from its own last scrape, so two deployments scraped at different phases differ
by at most ~1.1 scrape intervals over the sampled span. Ratios, quantiles and budgets divide that
out; totals read without extrapolation agree exactly.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmopt_client import (
    STATE_KEY,
    BudgetLimit,
    BudgetSpend,
    Business,
    Client,
    ClientStats,
    Event,
    ExperimentProgress,
    ExperimentStarted,
    Feedback,
    LlmRequest,
    ModelHealth,
    ParameterUpdate,
    ReplicaClient,
    replica_order,
)

from app.metrics import ALL_METRICS
from mixin import rules
from tests.processes import EXPORTER, PROMETHEUS, PROMTOOL, free_port, stop, wait_http_ok

ROOT = Path(__file__).resolve().parents[1]
SCRAPE_INTERVAL = 0.25
ROUNDS = 10
EVENTS_PER_ROUND = 120
KILL_IN_ROUND = 5
DAILY_BUDGET_USD = 5
MODELS = ("scale-a", "scale-b")

# Test thresholds over the shipped numbers: alerts fire on their first evaluation.
RULE_CHANGES: Mapping[str, Any] = {
    "alerts.budget_exceeded.daily_budget_usd": DAILY_BUDGET_USD,
    "alerts.high_error_rate.for": "0s",
    "alerts.high_latency.for": "0s",
    "alerts.quality_degradation.for": "0s",
    "alerts.slo_missed.for": "0s",
}


# --- Processes -----------------------------------------------------------------------------------


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


@contextlib.contextmanager
def started(commands: Sequence[tuple[list[str], str, Path]]) -> Iterator[list[Started]]:
    """Start every command at once, then wait for each ready URL; stop them all by PID at the end,
    printing their logs when the block fails."""
    running: list[Started] = []
    try:
        for argv, url, log in commands:
            with log.open("wb") as output:
                process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
            running.append(Started(process, url, log))
        for item, (_, ready_url, _) in zip(running, commands, strict=True):
            wait_http_ok(ready_url, timeout=60, process=item.process)
        yield running
    except BaseException:
        for item in running:
            print(f"--- {item.log.name} ---\n{item.log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        for item in running:
            stop(item.process)


def exporter_command(tmp: Path, name: str) -> tuple[list[str], str, Path]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(EXPORTER), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return argv, f"{url}/readyz", tmp / f"exporter-{name}.log"


def prometheus_command(
    tmp: Path, name: str, config: Mapping[str, Any], *flags: str
) -> tuple[list[str], str, Path]:
    port = free_port()
    (tmp / f"{name}.yml").write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    argv = [
        PROMETHEUS,
        f"--config.file={tmp / f'{name}.yml'}",
        f"--storage.tsdb.path={tmp / f'{name}-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        *flags,
    ]
    return argv, f"http://127.0.0.1:{port}/-/ready", tmp / f"{name}.log"


class Prometheus:
    """Instant queries against a Prometheus HTTP API."""

    def __init__(self, ready_url: str) -> None:
        self.url = ready_url.removesuffix("/-/ready")

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        with urllib.request.urlopen(
            f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10
        ) as r:
            document = json.loads(r.read())
        assert document["status"] == "success", document
        return list(document["data"]["result"])

    def values(
        self, promql: str, at: float | None = None, drop: Sequence[str] = ()
    ) -> dict[frozenset[tuple[str, str]], float]:
        """Instant vector -> {labels without ``drop``: value}."""
        return {
            frozenset((k, v) for k, v in row["metric"].items() if k not in drop): float(row["value"][1])
            for row in self.query(promql, at)
        }


def settled(client: ReplicaClient, killed: str) -> bool:
    """The live replicas have taken every event, and what waits for the killed one (pinned: its
    attempt got no answer) has stopped moving for longer than the longest backoff."""

    def moves() -> dict[str, tuple[int, int]]:
        # Pinned events are retried on and on: count what was sent and what waits, not retries.
        return {url: (part.sent, part.pending) for url, part in client.replica_stats().items()}

    before = moves()
    if any(pending for url, (_, pending) in before.items() if url != killed):
        return False
    time.sleep(1.0)
    after = moves()
    print(f"failover: {before} then {after}")
    return after == before


def accepted_by(prometheus: Prometheus, cluster: str) -> float | None:
    """Events a deployment accepted, as last scraped."""
    query = f'sum(llmopt_exporter_events_accepted_total{{cluster="{cluster}"}})'
    rows = prometheus.query(query)
    return float(rows[0]["value"][1]) if rows else None


# The series every comparison reads: the rules' records and alerts of the compared deployments.
COMPARED = '{__name__=~"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+|ALERTS", cluster=~"single|replicated"}'


def stale_records(prometheus: Prometheus, at: float, since: float) -> list[str]:
    """The records and alerts of the compared deployments that, as read at ``at``, come from a rule
    evaluation before ``since`` (none, or the comparisons could read values computed while events
    were arriving). Series a rule no longer returns (an alert that resolved) are not read, so not
    counted. A range selector returns the samples' own timestamps; ``timestamp()`` would drop the
    names and collide."""

    def key(metric: Mapping[str, str]) -> frozenset[tuple[str, str]]:
        return frozenset(metric.items())

    present = {key(row["metric"]) for row in prometheus.query(COMPARED, at)}
    last = {
        key(row["metric"]): float(row["values"][-1][0]) for row in prometheus.query(f"{COMPARED}[5m]", at)
    }
    assert present, f"no records at {at}"
    return sorted(str(dict(series)) for series in present if last[series] < since)


def holds_samples_until(central: Prometheus, edge: Prometheus, at: float, killed: str) -> bool:
    """The central store holds a sample after ``at`` of every series the edge does (the killed
    replica's aside: it has none): remote_write has shipped everything up to ``at``."""
    selector = f'{{__name__=~"llmopt_.+", instance!="{killed}"}}'
    now = time.time()
    window = f"{selector}[{max(1, int((now - at) * 1000))}ms]"
    (total,) = edge.query(f"count({selector})", now)
    after = [len(p.query(window, now)) for p in (edge, central)]
    return after[0] == after[1] == int(total["value"][1])


def settled_instant(
    edge: Prometheus, central: Prometheus, scraped: Mapping[str, float], killed: str
) -> float:
    """An instant every comparison can read: both Prometheus servers hold every sample up to it, and
    each evaluated every rule after it had every event (``scraped``). A busy machine delays rule
    evaluations and remote_write; reading earlier would compare values of half-scraped traffic."""
    deadline = time.monotonic() + 60
    while True:
        at = time.time() - 0.05
        wait_for(
            lambda at=at: holds_samples_until(central, edge, at, killed),
            30,
            "remote_write to ship every sample",
        )
        stale = stale_records(edge, at, scraped["edge"]) + stale_records(central, at, scraped["central"])
        if not stale:
            return at
        assert time.monotonic() < deadline, f"no rule evaluation after the last events in 60 s: {stale[:5]}"
        print(f"{len(stale)} records at {at:.3f} were evaluated before the last events arrived: {stale[:3]}")
        time.sleep(0.5)


def longest_scrape_gap(prometheus: Prometheus, since: float, at: float) -> float:
    """The longest time between two successive scrapes of any compared exporter in ``since``..``at``
    (at least the configured interval): a busy machine delays scrapes, and extrapolation reaches
    as far as the samples lie apart, not as far as the configuration says."""
    window = f'up{{cluster=~"single|replicated"}}[{max(1, int((at - since) * 1000))}ms]'
    gaps = [SCRAPE_INTERVAL]
    for row in prometheus.query(window, at):
        times = [float(t) for t, _ in row["values"]]
        gaps += [later - earlier for earlier, later in itertools.pairwise(times)]
    return max(gaps)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


# --- The events ----------------------------------------------------------------------------------


def story(replicas: Sequence[str], seed: int = 11) -> list[list[Event]]:
    """A primer round, then ROUNDS rounds of optimizer traffic: 8 % of LLM calls fail, 20 % take
    over a second, about $0.008 a call, quality about 84, and a few state events (an experiment's
    progress, model health, a budget limit, a parameter update).

    The primer creates every counter series on each of ``replicas`` (one event each, by event id).
    Prometheus cannot see the increments a series had before its first scrape, so without it each
    replica would hide the first events of each of its series, and the rates of rare series (errors
    by type) would depend on how many replicas there are in a short run like this one. Each exporter
    gets its primer in one request, so that the first sample of every series holds all of it.
    """
    rng = random.Random(seed)
    now = time.time()

    def ids() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128)))

    def id_on(replica: str) -> str:
        while replica_order(event_id := ids(), replicas)[0] != replica:
            pass
        return event_id

    def call(
        model: str, *, error: str | None = None, slow: bool = False, event_id: str | None = None
    ) -> LlmRequest:
        return LlmRequest(
            event_id=event_id or ids(),
            timestamp=now,
            model=model,
            provider="acme",
            task_type="chat",
            status="error" if error else "success",
            error_type=error,
            latency_ms=rng.uniform(1100, 4000) if slow else rng.uniform(60, 900),
            input_tokens=rng.randint(50, 500),
            output_tokens=rng.randint(10, 200),
            cost_usd=round(rng.uniform(0.004, 0.012), 6),
            quality=round(rng.uniform(70, 98), 2),
        )

    primer: list[Event] = []
    for replica in replicas:
        primer += [
            call(model, error=error, slow=slow, event_id=id_on(replica))
            for model in MODELS
            for error in (None, "timeout", "rate_limit")
            for slow in (False, True)
        ]
        primer += [
            Feedback(event_id=id_on(replica), timestamp=now, model=model, thumbs=thumbs)
            for model in MODELS
            for thumbs in ("up", "down")
        ]
        primer.append(BudgetSpend(event_id=id_on(replica), timestamp=now, category="compute", amount_usd=0.5))
    primer += [
        ExperimentStarted(event_id=ids(), timestamp=now, experiment_id="scale-exp", variants=("a", "b")),
        BudgetLimit(event_id=ids(), timestamp=now, period="day", limit_usd=DAILY_BUDGET_USD),
        Business(event_id=ids(), timestamp=now, baseline_quality=80),
    ]
    rounds = [primer]
    for number in range(1, ROUNDS + 1):
        events: list[Event] = []
        for _ in range(EVENTS_PER_ROUND - 4):
            roll = rng.random()
            error = rng.choice(("timeout", "rate_limit")) if roll < 0.08 else None
            events.append(call(rng.choice(MODELS), error=error, slow=rng.random() < 0.2))
        events += [
            Feedback(
                event_id=ids(), timestamp=now, model=rng.choice(MODELS), thumbs=rng.choice(("up", "down"))
            ),
            ExperimentProgress(
                event_id=ids(), timestamp=now, experiment_id="scale-exp", progress=number / ROUNDS, leader="b"
            ),
            ModelHealth(
                event_id=ids(), timestamp=now, model=MODELS[number % 2], provider="acme", available=True
            ),
            ParameterUpdate(
                event_id=ids(),
                timestamp=now + number,
                parameter="temperature",
                value=0.5 + number / 100,
                improved=True,
            ),
        ]
        rng.shuffle(events)
        rounds.append(events)
    return rounds


# --- The run -------------------------------------------------------------------------------------

# The primer's events that create counter series on each replica (see story).
PRIMED = (LlmRequest, Feedback, BudgetSpend)


def post_whole(url: str, events: Sequence[Event]) -> None:
    """POST ``events`` in one request, which the exporter applies at once."""
    body = json.dumps({"events": [event.to_wire() for event in events]}).encode()
    request = urllib.request.Request(
        f"{url}/v1/events", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.read()


@dataclass
class Run:
    edge: Prometheus
    central: Prometheus
    at: float  # every comparison reads this instant
    emitted: int  # events emitted to each deployment
    emitted_calls: int  # LLM calls among them
    span: float  # seconds between the first scrape of the events and `at`
    scrape_gap: float  # the longest time between two scrapes of a compared exporter in the span
    failover_stats: ClientStats
    failover_live: dict[str, int]  # live replica instance -> events its client delivered
    killed: str  # instance of the replica killed
    rules_dir: Path


def _rule_files(directory: Path) -> None:
    """The rules rendered from alerts/tests/config.yml with RULE_CHANGES, every group run each second."""
    document = yaml.safe_load((ROOT / "alerts" / "tests" / "config.yml").read_text(encoding="utf-8"))
    for dotted, value in RULE_CHANGES.items():
        *parents, key = dotted.split(".")
        node = document
        for part in parents:
            node = node[part]
        node[key] = value
    for window in document["alerts"]["error_budget_burn"]:
        window["for"] = "0s"
    config = rules.RulesConfig.model_validate(document)
    directory.mkdir()
    for name, text in rules.render(config).items():
        if name.endswith(".rules.yml"):
            rendered = yaml.safe_load(text)
            for group in rendered["groups"]:
                group["interval"] = "1s"
            (directory / name).write_text(yaml.safe_dump(rendered, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("scaling")
    _rule_files(tmp / "rules")
    job = rules.load_config(ROOT / "alerts" / "tests" / "config.yml").exporter_job
    layout = {"single": 1, "replicated": 3, "failover": 3}
    exporters = {
        cluster: [exporter_command(tmp, f"{cluster}-{n}") for n in range(count)]
        for cluster, count in layout.items()
    }
    central_command = prometheus_command(
        tmp,
        "central",
        {"global": {"evaluation_interval": "1s"}, "rule_files": [str(tmp / "rules" / "*.rules.yml")]},
        "--web.enable-remote-write-receiver",
    )
    central_url = central_command[1].removesuffix("/-/ready")
    # The remote_write section of the documented variant, pointed at the central store.
    variant = yaml.safe_load((ROOT / "prometheus.remote-write.yml").read_text(encoding="utf-8"))
    remote = {**variant["remote_write"][0], "url": f"{central_url}/api/v1/write"}
    remote["queue_config"] = {**remote.get("queue_config", {}), "batch_send_deadline": "500ms"}
    edge_config = {
        "global": {
            "scrape_interval": f"{int(SCRAPE_INTERVAL * 1000)}ms",
            "scrape_timeout": f"{int(SCRAPE_INTERVAL * 1000)}ms",
            "evaluation_interval": "1s",
            "external_labels": {"prometheus": "edge"},
        },
        "rule_files": [str(tmp / "rules" / "*.rules.yml")],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [
                    {
                        "targets": [
                            url.removeprefix("http://").removesuffix("/readyz") for _, url, _ in commands
                        ],
                        "labels": {"cluster": cluster},
                    }
                    for cluster, commands in exporters.items()
                ],
            }
        ],
        "remote_write": [remote],
    }
    edge_command = prometheus_command(tmp, "edge", edge_config)
    commands = [*(c for cs in exporters.values() for c in cs), central_command, edge_command]
    with started(commands) as processes:
        edge, central = Prometheus(edge_command[1]), Prometheus(central_command[1])
        urls = {
            cluster: [url.removesuffix("/readyz") for _, url, _ in cs] for cluster, cs in exporters.items()
        }
        process_of = {item.url.removesuffix("/readyz"): item.process for item in processes}
        wait_for(
            lambda: len(edge.query(f'up{{job="{job}"}} == 1')) == 7, 30, "the first scrape of every exporter"
        )
        options: dict[str, Any] = {
            "flush_interval": 60,
            "batch_size": 25,
            "retry_initial": 0.05,
            "retry_max": 0.5,
            "close_timeout": 1.0,
        }
        with contextlib.ExitStack() as clients:
            single = clients.enter_context(Client(urls["single"][0], **options))
            replicated = clients.enter_context(ReplicaClient(urls["replicated"], **options))
            failover = clients.enter_context(ReplicaClient(urls["failover"], **options))
            owner = replica_order(STATE_KEY, failover.urls)[0]
            rounds = story(replicated.urls)
            first_scrape = 0.0  # when the primer was scraped
            for number, events in enumerate(rounds):
                if number > 0:  # one round a second after the primer was scraped
                    time.sleep(max(0.0, first_scrape + number - time.time()))
                whole: set[int] = set()
                if number == 0:
                    # Each compared exporter gets its share of the primer's counter events in one
                    # request, applied at once: no scrape sees a series part-way through its primer.
                    primed = [event for event in events if isinstance(event, PRIMED)]
                    post_whole(urls["single"][0], primed)
                    for replica in replicated.urls:
                        post_whole(
                            replica,
                            [
                                e
                                for e in primed
                                if replica_order(e.event_id or "", replicated.urls)[0] == replica
                            ],
                        )
                    whole = {id(event) for event in primed}
                for index, event in enumerate(events):
                    if number == KILL_IN_ROUND and index == len(events) // 2:
                        os.kill(process_of[owner].pid, signal.SIGKILL)
                    for client in (single, replicated, failover):
                        if client is failover or id(event) not in whole:
                            client.emit(event)
                assert single.flush(timeout=10) and replicated.flush(timeout=10)
                failover.flush(timeout=0.2)  # events pinned to the killed replica never settle
                if number == 0:
                    wait_for(
                        lambda: all(accepted_by(edge, cluster) == len(rounds[0]) for cluster in layout),
                        20,
                        "the primer to be scraped",
                    )
                    first_scrape = time.time()
            emitted = sum(len(events) for events in rounds)
            wait_for(lambda: settled(failover, owner), 20, "the failover deployment to settle")
            failover_stats = failover.stats
            failover_sent = failover.replica_stats()
        scraped = {}
        for name, prometheus in (("edge", edge), ("central", central)):
            wait_for(
                lambda p=prometheus: accepted_by(p, "single") == accepted_by(p, "replicated") == emitted,
                30,
                f"the last events to reach the {name}",
            )
            scraped[name] = time.time()
        # The longer the span, the less extrapolation weighs (see extrapolation_bound).
        time.sleep(max(0.0, first_scrape + 24 - time.time()))
        at = settled_instant(edge, central, scraped, killed=owner.removeprefix("http://"))
        yield Run(
            edge=edge,
            central=central,
            at=at,
            emitted=emitted,
            emitted_calls=sum(isinstance(event, LlmRequest) for events in rounds for event in events),
            span=at - first_scrape,
            failover_stats=failover_stats,
            failover_live={
                url.removeprefix("http://"): stats.sent
                for url, stats in failover_sent.items()
                if url != owner
            },
            killed=owner.removeprefix("http://"),
            rules_dir=tmp / "rules",
            scrape_gap=longest_scrape_gap(edge, first_scrape, at),
        )


# --- Agreement between one replica and three -----------------------------------------------------

RATES = [
    pytest.param("llmopt:llm_requests:rate5m", id="request-rate"),
    pytest.param("llmopt:llm_request_errors:rate5m", id="error-rate"),
    pytest.param("error_type:llmopt_llm_request_errors:rate5m", id="error-rate-by-type"),
    pytest.param("llmopt:spend_usd:increase1d", id="spend-1d"),
    pytest.param("category:llmopt_spend_usd:increase1d", id="spend-by-category"),
]
RATIOS = [
    pytest.param("llmopt:llm_request_errors:ratio_rate5m", id="error-ratio"),
    pytest.param("llmopt:llm_requests_success:ratio_rate5m", id="success-ratio"),
    pytest.param("llmopt:llm_request_duration_seconds:mean5m", id="latency-mean"),
    pytest.param("llmopt:llm_quality_score:mean5m", id="quality-mean"),
    pytest.param("llmopt:llm_cost_usd_per_request:ratio_rate1h", id="cost-per-request"),
    pytest.param("llmopt:slo_errors:ratio_rate30d", id="availability-30d"),
    pytest.param("llmopt:slo_errors:ratio_rate1d", id="slo-error-ratios-1d"),
    pytest.param("llmopt:feedback_thumbs_up:ratio_increase1d", id="thumbs-up-ratio"),
    pytest.param("llmopt:llm_quality_improvement:ratio_mean1h", id="quality-vs-baseline-gauge"),
]
# Shared-state gauges, read with the aggregation docs/scaling.md gives them: max over replicas.
STATE = [
    pytest.param("llmopt_experiments_active", id="experiments-active"),
    pytest.param("llmopt_experiment_progress_ratio", id="experiment-progress"),
    pytest.param("llmopt_experiment_leader_info", id="experiment-leader"),
    pytest.param("llmopt_budget_limit_usd", id="budget-limit"),
    pytest.param("llmopt_model_available", id="model-health"),
    pytest.param("llmopt_parameter_value", id="parameter-value"),
    pytest.param("llmopt_quality_baseline_score", id="quality-baseline"),
    pytest.param("llmopt_incidents_open", id="incidents-open"),
    pytest.param("llmopt_optimization_last_improvement_timestamp_seconds", id="last-improvement"),
]
TOTALS = [
    pytest.param("llmopt_llm_requests_total", id="requests"),
    pytest.param("llmopt_llm_request_errors_total", id="errors"),
    pytest.param("llmopt_llm_request_duration_seconds_bucket", id="latency-buckets"),
    pytest.param("llmopt_llm_cost_usd_total", id="cost"),
    pytest.param("llmopt_spend_usd_total", id="spend"),
    pytest.param("llmopt_exporter_events_accepted_total", id="events-accepted"),
    pytest.param("llmopt_experiments_started_total", id="experiments-started"),
]
REPLICA = ("instance", "pod", "job", "prometheus")


def by_cluster(
    prometheus: Prometheus, promql: str, at: float
) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for labels, value in prometheus.values(promql, at, drop=REPLICA).items():
        cluster = dict(labels)["cluster"]
        out.setdefault(cluster, {})[frozenset(item for item in labels if item[0] != "cluster")] = value
    return out


def assert_close(single: Mapping[Any, float], other: Mapping[Any, float], rel: float, what: str) -> None:
    assert single, f"{what}: no series"
    assert set(single) == set(other), what
    for labels, value in single.items():
        assert math.isclose(other[labels], value, rel_tol=rel, abs_tol=1e-9), (
            f"{what} {dict(labels)}: {other[labels]} against {value} on one replica"
        )


def extrapolation_bound(run: Run) -> float:
    """How far Prometheus's extrapolation lets two deployments' rates differ (see the docstring).

    Each of the two estimates may be off by up to about 1.1 scrape intervals over the span, and in
    opposite directions, so their difference is bounded by twice that (seen: 2.2 % apart with a
    one-sided bound of 1.6 %). The interval is the longest one measured, not the configured one:
    under load scrapes come late, and the extrapolation reaches as far as the samples lie apart.
    """
    return 2 * 1.1 * run.scrape_gap / run.span + 0.005


@pytest.mark.parametrize("record", RATES)
def test_rates_agree_within_extrapolation(run: Run, record: str) -> None:
    values = by_cluster(run.edge, record, run.at)
    assert_close(values["single"], values["replicated"], extrapolation_bound(run), record)


@pytest.mark.parametrize("record", RATIOS)
def test_ratios_agree(run: Run, record: str) -> None:
    values = by_cluster(run.edge, record, run.at)
    assert_close(values["single"], values["replicated"], extrapolation_bound(run), record)


def test_error_budgets_consumed_agree(run: Run) -> None:
    """The share of each error budget spent (1 - remaining): a ratio of ratios, so the same bound."""
    values = by_cluster(run.edge, "1 - llmopt:slo_error_budget_remaining:ratio", run.at)
    assert {dict(labels)["slo"] for labels in values["single"]} == {"availability", "latency"}
    assert_close(values["single"], values["replicated"], extrapolation_bound(run), "budget consumed")


def test_latency_percentiles_agree_in_rank(run: Run) -> None:
    """A histogram quantile moves across a bucket as fast as the bucket is sparse, so it is compared
    where the error lives, in rank: by one replica's bucket counts, the quantile estimated over
    three replicas cuts off q of the calls, up to the ratio bound on the smaller side (q or 1 - q).
    The maximum (q=1), the upper bound of the highest non-empty bucket, must be equal."""
    buckets = by_cluster(run.edge, "llmopt:llm_request_duration_seconds_bucket:rate5m", run.at)
    single_cdf = cdf({float(dict(labels)["le"]): value for labels, value in buckets["single"].items()})
    quantiles = by_cluster(run.edge, "llmopt:llm_request_duration_seconds:quantile_rate5m", run.at)
    for labels, single in quantiles["single"].items():
        q, replicated = float(dict(labels)["quantile"]), quantiles["replicated"][labels]
        if q == 1:
            assert replicated == single
            continue
        side = min(q, 1 - q)
        rank = single_cdf(replicated)
        assert abs(rank - q) <= extrapolation_bound(run) * side, (
            f"p{q}: {replicated} over three replicas is p{rank:.4f} on one ({single})"
        )


def cdf(cumulative: Mapping[float, float]) -> Callable[[float], float]:
    """The share of calls at or below a latency, interpolated within buckets as histogram_quantile
    does (the first bucket starts at 0)."""
    bounds = sorted(cumulative)
    total = cumulative[math.inf]

    def share(value: float) -> float:
        lower, below = 0.0, 0.0
        for bound in bounds:
            if value <= bound and bound != math.inf:
                return (below + (cumulative[bound] - below) * (value - lower) / (bound - lower)) / total
            lower, below = bound, cumulative[bound]
        return 1.0

    return share


@pytest.mark.parametrize("gauge", STATE)
def test_state_gauges_read_as_max_over_replicas_agree(run: Run, gauge: str) -> None:
    values = by_cluster(run.edge, f"max without (instance, pod, job) ({gauge})", run.at)
    assert values["single"] == values["replicated"]


@pytest.mark.parametrize("metric", TOTALS)
def test_totals_agree_exactly(run: Run, metric: str) -> None:
    """Counters read without extrapolation: the same sums (up to float addition order)."""
    values = by_cluster(run.edge, f"sum without (instance, pod, job) (last_over_time({metric}[10m]))", run.at)
    assert_close(values["single"], values["replicated"], 1e-12, metric)


def firing(prometheus: Prometheus, at: float) -> dict[str, set[frozenset[tuple[str, str]]]]:
    alerts: dict[str, set[frozenset[tuple[str, str]]]] = {}
    for row in prometheus.query('ALERTS{alertstate="firing", cluster!=""}', at):
        labels = {k: v for k, v in row["metric"].items() if k not in ("__name__", "prometheus", *REPLICA)}
        cluster = labels.pop("cluster")
        alerts.setdefault(cluster, set()).add(frozenset(labels.items()))
    return alerts


def test_the_alert_decisions_agree(run: Run) -> None:
    alerts = firing(run.edge, run.at)
    names = {dict(labels)["alertname"] for labels in alerts["single"]}
    assert {"LLMOptHighErrorRate", "LLMOptBudgetExceeded", "LLMOptErrorBudgetLow"} <= names
    assert not names & {"LLMOptHighLatency", "LLMOptQualityDegradation", "LLMOptExporterDown"}
    assert alerts["replicated"] == alerts["single"]
    halt = by_cluster(run.edge, "llmopt:optimization_halt:bool", run.at)
    assert (
        halt["single"]
        == halt["replicated"]
        == {frozenset({("__name__", "llmopt:optimization_halt:bool")}): 1}
    )


# --- A replica killed mid-run --------------------------------------------------------------------


def test_a_killed_replica_counts_no_event_twice(run: Run) -> None:
    stats = run.failover_stats
    assert stats.failed_over > 0, "events of the killed replica moved to the others"
    assert stats.failed == 0 and stats.sent + stats.dropped + stats.pending == run.emitted
    edge = run.edge
    # What every replica counted, read without extrapolation: its last scraped value.
    last = edge.values(
        'last_over_time(llmopt_exporter_events_accepted_total{cluster="failover"}[10m])', run.at
    )
    per_replica: dict[str, float] = {}
    for labels, value in last.items():
        instance = dict(labels)["instance"]
        per_replica[instance] = per_replica.get(instance, 0.0) + value
    assert sum(per_replica.values()) <= run.emitted
    live = {instance: count for instance, count in per_replica.items() if instance != run.killed}
    assert live == run.failover_live, (
        f"each live replica applied what its client delivered: {per_replica} {run}"
    )


def test_increase_never_exceeds_what_was_sent(run: Run) -> None:
    """increase() of every series, evaluated at its last scrape (so that extrapolation past the data,
    which a killed replica's series would get, adds nothing), summed: at most the calls sent."""
    edge = run.edge
    series = edge.query('llmopt_llm_requests_total{cluster="failover"}[10m]', run.at)
    total = 0.0
    for row in series:
        last_at = float(row["values"][-1][0])
        selector = ",".join(f'{k}="{v}"' for k, v in row["metric"].items() if k != "__name__")
        (result,) = edge.query(
            f"increase(llmopt_llm_requests_total{{{selector}}}[10m] @ {last_at:.3f})", run.at
        )
        total += float(result["value"][1])
    assert {dict(row["metric"])["instance"] for row in series} >= {run.killed}, (
        "the killed replica counted too"
    )
    assert 0.9 * run.emitted_calls <= total <= run.emitted_calls


# --- The central store -----------------------------------------------------------------------------


RECORDED = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")


def raw_recording_rules(directory: Path) -> list[tuple[str, str]]:
    """(record, expr) of the rules that read only the exporter's series, not other rules."""
    found = []
    for path in sorted(directory.glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "record" in rule and not RECORDED.search(rule["expr"]):
                    found.append((rule["record"], rule["expr"]))
    return found


def test_the_central_store_answers_the_same_rule_queries(run: Run) -> None:
    """Every rule that reads the exporter's series gives the same answer on both, to the bit: the
    central store holds the same samples, and no rule depends on where it runs."""
    checked = 0
    for record, expr in raw_recording_rules(run.rules_dir):
        edge = run.edge.values(expr, run.at, drop=("prometheus",))
        central = run.central.values(expr, run.at, drop=("prometheus",))
        assert central.keys() == edge.keys(), record
        for labels, value in edge.items():
            both_nan = math.isnan(value) and math.isnan(central[labels])
            assert both_nan or math.isclose(central[labels], value, rel_tol=1e-9), record
        checked += bool(edge)
    assert checked >= 20


@pytest.mark.parametrize("record", [*RATIOS, *RATES])
def test_the_central_rulers_records_agree(run: Run, record: str) -> None:
    edge = by_cluster(run.edge, record, run.at)
    central = by_cluster(run.central, record, run.at)
    for cluster in ("single", "replicated"):
        assert_close(edge[cluster], central[cluster], extrapolation_bound(run), f"{record} {cluster}")


def test_the_central_ruler_decides_the_same_alerts(run: Run) -> None:
    edge, central = firing(run.edge, run.at), firing(run.central, run.at)
    assert central["single"] == edge["single"] and central["replicated"] == edge["replicated"]


# --- The documented remote_write variant ---------------------------------------------------------


def test_the_remote_write_variant_is_valid_and_ships_only_raw_series() -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "config", "prometheus.remote-write.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    variant = yaml.safe_load((ROOT / "prometheus.remote-write.yml").read_text(encoding="utf-8"))
    (drop,) = variant["remote_write"][0]["write_relabel_configs"]
    assert (drop["source_labels"], drop["action"]) == (["__name__"], "drop")
    dropped = re.compile(f"^(?:{drop['regex']})$")
    names = {
        rule.get("record", "ALERTS")
        for path in (ROOT / "alerts").glob("*.rules.yml")
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }
    assert all(dropped.match(name) for name in names | {"ALERTS_FOR_STATE"})
    assert not any(dropped.match(spec.name) for spec in ALL_METRICS)
    assert (
        variant["scrape_configs"][0]["job_name"]
        == rules.load_config(ROOT / "alerts" / "config.yml").exporter_job
    )
