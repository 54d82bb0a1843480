"""Idempotency, the cardinality guard, expiry, the admin API and restart safety."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import metrics as m
from app.config import Settings
from app.dedup import RecentIds
from app.main import create_app
from app.store import MetricStore
from tests.conftest import CLOCK, Exporter, make_exporter, moved_to_now
from tests.exposition import changed, key, samples
from tests.processes import exporter_process


def store_of(exporter: Exporter) -> MetricStore:
    store: MetricStore = exporter.client.app.state.exporter.store  # type: ignore[attr-defined]
    return store


def request(model: str = "m", event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    event = {"type": "llm_request", "model": model, "latency_ms": 100, "cost_usd": 0.5, **fields}
    if event_id is not None:
        event["event_id"] = event_id
    return event


REQUESTS = key("llmopt_llm_requests_total", model="m", provider="unknown", task_type="unknown")
SERIES_OVERFLOW = "llmopt_exporter_series_overflow_total"


# --- idempotency -------------------------------------------------------------------------------
def test_retried_events_are_acknowledged_not_reapplied(exporter: Exporter) -> None:
    first = exporter.post({"events": [request(event_id="a"), request(event_id="b")]})
    assert first.json() == {"accepted": 2, "by_type": {"llm_request": 2}, "duplicates": 0}
    retry = exporter.post({"events": [request(event_id="b"), request(event_id="c"), request(event_id="c")]})
    assert retry.status_code == 200
    assert retry.json() == {"accepted": 1, "by_type": {"llm_request": 1}, "duplicates": 2}
    after = exporter.scrape()
    assert after[REQUESTS] == 3
    assert after[key("llmopt_exporter_events_duplicate_total", type="llm_request")] == 2


def test_events_without_id_are_always_applied(exporter: Exporter) -> None:
    exporter.post(request())
    exporter.post(request())
    assert exporter.scrape()[REQUESTS] == 2


def test_a_refused_batch_does_not_burn_its_ids(exporter: Exporter) -> None:
    assert exporter.post({"events": [request(event_id="x"), request(latency_ms=-1)]}).status_code == 422
    assert exporter.post(request(event_id="x")).json()["accepted"] == 1


def test_window_forgets_by_size_and_age() -> None:
    now = [0.0]
    window = RecentIds(max_size=2, max_age_seconds=10, clock=lambda: now[0])
    window.remember(["a", "b", "c"])
    assert ("a" in window, "b" in window, "c" in window) == (False, True, True)
    now[0] = 11
    assert "c" not in window
    assert len(window) == 0


def test_dedup_can_be_turned_off() -> None:
    for exporter in make_exporter(dedup_window_size=0):
        exporter.post(request(event_id="same"))
        exporter.post(request(event_id="same"))
        assert exporter.scrape()[REQUESTS] == 2


# --- cardinality guard -------------------------------------------------------------------------
def test_label_values_past_the_cap_collapse_into_overflow() -> None:
    for exporter in make_exporter(label_value_limit=3, label_value_limits={"experiment": 1}):
        exporter.post({"events": [request(model=f"model-{n}") for n in range(5)]})
        after = exporter.scrape()
        requests = {
            dict(labels)["model"]: value
            for (name, labels), value in after.items()
            if name == "llmopt_llm_requests_total"
        }
        assert requests == {"model-0": 1, "model-1": 1, "model-2": 1, "__overflow__": 2}
        overflow = "llmopt_exporter_label_overflow_total"
        assert after[key(overflow, metric="llmopt_llm_requests_total", label="model")] == 2
        assert after[key(overflow, metric="llmopt_llm_cost_usd_total", label="model")] == 2
        assert after[key("llmopt_exporter_series", metric="llmopt_llm_requests_total")] == 4
        # A value admitted once keeps its own series afterwards.
        exporter.post(request(model="model-1"))
        assert (
            exporter.scrape()[
                key("llmopt_llm_requests_total", model="model-1", provider="unknown", task_type="unknown")
            ]
            == 2
        )
        # Per-label override: one experiment only.
        exporter.post({"events": [request(experiment_id=f"e{n}", variant_id="v") for n in range(2)]})
        variants = {
            dict(labels)["experiment"]
            for (name, labels) in exporter.scrape()
            if name == "llmopt_experiment_variant_requests_total"
        }
        assert variants == {"e0", "__overflow__"}


@pytest.mark.parametrize(
    ("limits", "limit_hit"),
    [
        pytest.param({"max_series_per_metric": 60}, "max_series_per_metric", id="per-metric"),
        pytest.param({"max_series": 150}, "max_series", id="exporter-wide"),
    ],
)
def test_series_stop_at_the_budget_and_overflow_is_counted(limits: dict[str, int], limit_hit: str) -> None:
    """Label sets, not only label values, are capped: 100k calls over 47 models x 47 providers
    x 47 task types, each far under the value cap, once made 702k series. Here 1000 calls over
    10 x 10 x 10, under a value cap of 20."""
    for exporter in make_exporter(label_value_limit=20, **limits):
        calls = [
            request(model=f"m{n % 10}", provider=f"p{n // 10 % 10}", task_type=f"t{n // 100}")
            for n in range(1000)
        ]
        assert exporter.post({"events": calls}).status_code == 200
        after = exporter.scrape()
        settings = exporter.client.app.state.exporter.settings  # type: ignore[attr-defined]
        families = [family for family in store_of(exporter).families.values() if family.guarded]
        named = [labels for family in families for labels in family.series if m.OVERFLOW_VALUE not in labels]
        assert 0 < len(named) <= settings.max_series
        # One more each: the overflow label set.
        assert max(len(family.series) for family in families) <= settings.max_series_per_metric + 1
        # Nothing is lost: what the budget refuses is counted under __overflow__, and counted.
        requests = {
            labels: value for (name, labels), value in after.items() if name == "llmopt_llm_requests_total"
        }
        assert sum(requests.values()) == 1000
        overflowed = requests[
            (("model", "__overflow__"), ("provider", "__overflow__"), ("task_type", "__overflow__"))
        ]
        assert overflowed > 0
        assert after[key(SERIES_OVERFLOW, metric="llmopt_llm_requests_total", limit=limit_hit)] == overflowed


def test_series_gauge_follows_removals() -> None:
    for exporter in make_exporter():
        exporter.post({"type": "experiment", "action": "progress", "experiment_id": "e", "progress": 0.5})
        series = key("llmopt_exporter_series", metric="llmopt_experiment_progress_ratio")
        assert exporter.scrape()[series] == 1
        exporter.post({"type": "experiment", "action": "rolled_back", "experiment_id": "e"})
        assert exporter.scrape()[series] == 0


# --- expiry ------------------------------------------------------------------------------------
def test_state_without_events_expires_but_counters_stay() -> None:
    now = [CLOCK]
    app = create_app(Settings(state_ttl_seconds=3600), clock=lambda: now[0])
    with TestClient(app) as client:
        exporter = Exporter(client)
        exporter.post(
            {
                "events": [
                    {"type": "experiment", "action": "started", "experiment_id": "stale"},
                    {"type": "model_health", "model": "retired", "available": True, "latency_ms": 5},
                    {
                        "type": "bandit",
                        "action": "pull",
                        "arm_id": "a",
                        "explored": True,
                        "parameter": "t",
                        "parameter_value": 0.3,
                    },
                    request(experiment_id="stale", variant_id="v"),
                ]
            }
        )
        now[0] += 1800
        exporter.post({"type": "experiment", "action": "started", "experiment_id": "fresh"})
        recorder = app.state.exporter.recorder
        assert recorder.expire(3600) == 0
        now[0] += 1801
        before = exporter.scrape()
        assert recorder.expire(3600) == 3
        after = exporter.scrape()
        gone = {name for name, labels in set(before) - set(after)}
        assert gone == {
            "llmopt_experiment_progress_ratio",
            "llmopt_experiment_samples",
            "llmopt_experiment_start_timestamp_seconds",
            "llmopt_model_available",
            "llmopt_model_probe_latency_seconds",
            "llmopt_model_last_check_timestamp_seconds",
            "llmopt_bandit_arm_parameter_value",
        }
        assert all(dict(labels).get("experiment") != "fresh" for _, labels in set(before) - set(after))
        assert after[key("llmopt_experiments_active")] == 1
        assert after[key("llmopt_experiment_variant_requests_total", experiment="stale", variant="v")] == 1
        assert after[key("llmopt_exporter_state_expired_total", kind="experiment")] == 1
        assert after[key("llmopt_exporter_state_expired_total", kind="model")] == 1
        assert after[key("llmopt_exporter_state_expired_total", kind="arm")] == 1


def test_expiry_frees_label_values_and_overflow_gauges_expire_too() -> None:
    now = [CLOCK]
    settings = Settings(label_value_limits={"experiment": 1}, state_ttl_seconds=3600)
    app = create_app(settings, clock=lambda: now[0])
    with TestClient(app) as client:
        exporter = Exporter(client)
        for experiment in ("e1", "e2"):  # e2 is past the cap: its gauges go to __overflow__
            exporter.post({"type": "experiment", "action": "started", "experiment_id": experiment})
        progress = "llmopt_experiment_progress_ratio"
        assert {dict(labels)["experiment"] for name, labels in exporter.scrape() if name == progress} == {
            "e1",
            "__overflow__",
        }
        now[0] += 3601
        # e1 and e2 (3 gauges each), and the 3 overflow gauges no update reached since.
        assert app.state.exporter.recorder.expire(3600) == 5
        after = exporter.scrape()
        assert not [labels for name, labels in after if name == progress]
        assert after[key("llmopt_exporter_state_expired_total", kind="overflow")] == 3
        # e1's value no longer holds a place under the cap.
        exporter.post({"type": "experiment", "action": "started", "experiment_id": "e3"})
        assert {dict(labels)["experiment"] for name, labels in exporter.scrape() if name == progress} == {
            "e3"
        }


# --- bounded state -----------------------------------------------------------------------------
def arm_pull(arm: str) -> dict[str, Any]:
    return {
        "type": "bandit",
        "action": "pull",
        "arm_id": arm,
        "explored": True,
        "parameter": "t",
        "parameter_value": 1,
    }


@pytest.mark.parametrize(
    ("kind", "event", "gauge", "label"),
    [
        pytest.param(
            "experiment",
            lambda name: {"type": "experiment", "action": "started", "experiment_id": name},
            "llmopt_experiment_progress_ratio",
            "experiment",
            id="experiments",
        ),
        pytest.param(
            "model",
            lambda name: {"type": "model_health", "model": name, "available": True},
            "llmopt_model_available",
            "model",
            id="models",
        ),
        pytest.param("arm", arm_pull, "llmopt_bandit_arm_parameter_value", "arm", id="arms"),
    ],
)
def test_state_keeps_at_most_its_cap_the_least_recently_seen_goes(
    kind: str, event: Any, gauge: str, label: str
) -> None:
    """1M experiment ids once made llmopt_experiments_active read 1,000,000 and held all of them."""
    for exporter in make_exporter(max_state_entries=3):
        exporter.post({"events": [event(f"x{n}") for n in range(5)]})  # x0 and x1 pushed out
        exporter.post(event("x1"))  # back, and now the most recent: x2 goes
        after = exporter.scrape()
        assert {dict(labels)[label] for name, labels in after if name == gauge} == {"x1", "x3", "x4"}
        assert after[key("llmopt_exporter_state_evicted_total", kind=kind)] == 3
        if kind == "experiment":
            assert after[key("llmopt_experiments_active")] == 3


def test_open_incidents_are_capped_and_expire() -> None:
    """Open incidents never expired (and each event counted them all: 1.6 s per batch at 20k open;
    now they are counted as they open and close)."""
    now = [CLOCK]
    app = create_app(Settings(max_state_entries=3, state_ttl_seconds=3600), clock=lambda: now[0])
    with TestClient(app) as client:
        exporter = Exporter(client)
        opened = [
            {"type": "incident", "action": "opened", "incident_id": f"i{n}", "severity": "sev1"}
            for n in range(5)
        ]
        exporter.post({"events": opened})
        open_now = key("llmopt_incidents_open", severity="sev1")
        assert exporter.scrape()[open_now] == 3
        resolved = {
            "type": "incident",
            "action": "resolved",
            "severity": "sev1",
            "opened_at": "2026-11-26T23:00:00Z",
        }
        exporter.post({**resolved, "incident_id": "i0"})  # pushed out already: open stays 3
        assert exporter.scrape()[open_now] == 3
        exporter.post({**resolved, "incident_id": "i4"})
        assert exporter.scrape()[open_now] == 2
        now[0] += 3601
        assert app.state.exporter.recorder.expire(3600) == 2
        after = exporter.scrape()
        assert after[open_now] == 0
        assert after[key("llmopt_exporter_state_expired_total", kind="incident")] == 2
        assert after[key("llmopt_exporter_state_evicted_total", kind="incident")] == 2
        assert after[key("llmopt_incidents_resolved_total", severity="sev1")] == 2


# --- admin API ---------------------------------------------------------------------------------
def test_deleting_an_experiment_removes_all_its_series(exporter: Exporter) -> None:
    exporter.post(
        {
            "events": [
                {
                    "type": "experiment",
                    "action": "progress",
                    "experiment_id": "old",
                    "leader": "b",
                    "progress": 1,
                },
                request(experiment_id="old", variant_id="b"),
                request(experiment_id="keep", variant_id="b"),
            ]
        }
    )
    response = exporter.client.delete("/v1/experiments/old")
    assert response.status_code == 200 and response.json()["series_removed"] > 0
    after = exporter.scrape()
    assert not [labels for _, labels in after if ("experiment", "old") in labels]
    assert after[key("llmopt_experiment_variant_requests_total", experiment="keep", variant="b")] == 1
    assert after[key("llmopt_experiments_active")] == 0
    assert after[key("llmopt_exporter_state_deleted_total", kind="experiment")] == 1


def test_deleting_a_model_removes_its_series(exporter: Exporter) -> None:
    exporter.post(
        {
            "events": [
                request(model="retired"),
                request(model="current"),
                {"type": "model_health", "model": "retired", "available": False},
            ]
        }
    )
    assert exporter.client.delete("/v1/models/retired").status_code == 200
    after = exporter.scrape()
    assert not [labels for _, labels in after if ("model", "retired") in labels]
    assert (
        after[key("llmopt_llm_requests_total", model="current", provider="unknown", task_type="unknown")] == 1
    )


# --- snapshots ---------------------------------------------------------------------------------
STATEFUL_EVENTS = {
    "events": [
        {
            "type": "experiment",
            "action": "started",
            "experiment_id": "exp",
            "timestamp": "2026-11-26T00:00:00Z",
        },
        {
            "type": "experiment",
            "action": "progress",
            "experiment_id": "exp",
            "leader": "b",
            "lead": 0.1,
            "confidence": 0.9,
            "progress": 0.4,
            "sample_size": 400,
        },
        {"type": "budget", "action": "limit", "period": "day", "limit_usd": 250},
        {"type": "model_health", "model": "m", "available": False, "latency_ms": 900, "error_rate": 0.3},
        {
            "type": "parameter_update",
            "parameter": "temperature",
            "value": 0.4,
            "stability_score": 0.8,
            "performance_gain": 0.02,
            "improved": True,
            "timestamp": "2026-11-27T12:00:00Z",
        },
        {"type": "incident", "action": "opened", "incident_id": "i1", "severity": "sev1"},
        request(),
    ]
}


def _state_series(exposition: dict[Any, float]) -> dict[Any, float]:
    """Series a restart must bring back: every non-self gauge."""
    from app import metrics as m

    gauges = {spec.name for spec in m.ALL_METRICS if spec.kind == "gauge" and spec.category != m.SELF}
    return {sample_key: value for sample_key, value in exposition.items() if sample_key[0] in gauges}


def test_snapshot_restores_state_in_process(tmp_path: Path) -> None:
    settings = Settings(snapshot_file=tmp_path / "state.json")
    with TestClient(create_app(settings, clock=lambda: CLOCK)) as client:
        Exporter(client).post(STATEFUL_EVENTS)
        saved = _state_series(Exporter(client).scrape())
    assert (tmp_path / "state.json").exists()  # written at shutdown
    with TestClient(create_app(settings, clock=lambda: CLOCK)) as client:
        restored = Exporter(client).scrape()
        assert _state_series(restored) == saved
        assert restored[key("llmopt_experiments_active")] == 1
        assert restored[key("llmopt_incidents_open", severity="sev1")] == 1
        # Counters restart from nothing: a reset Prometheus handles (see docs/security.md).
        assert REQUESTS not in restored
        # The restored experiment still completes with its original start time.
        Exporter(client).post(
            {
                "type": "experiment",
                "action": "completed",
                "experiment_id": "exp",
                "sample_size": 500,
                "timestamp": "2026-11-27T00:00:00Z",
            }
        )
        assert Exporter(client).scrape()[key("llmopt_experiment_duration_seconds_sum")] == 86400


def test_restart_of_the_real_process_restores_state(tmp_path: Path) -> None:
    """Start, post, SIGTERM (graceful: the snapshot is written), start again, compare."""
    env = {"LLMOPT_SNAPSHOT_FILE": str(tmp_path / "state.json")}
    body = json.dumps(moved_to_now(STATEFUL_EVENTS)).encode()

    def scrape(url: str) -> dict[Any, float]:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            return samples(response.read().decode())

    with exporter_process(tmp_path, env=env) as url:
        post = urllib.request.Request(
            f"{url}/v1/events", data=body, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(post, timeout=10).close()
        saved = _state_series(scrape(url))
    with exporter_process(tmp_path, env=env) as url:
        restored = scrape(url)
    assert _state_series(restored) == saved
    assert changed(saved, _state_series(restored)) == {}


def test_sigterm_is_a_graceful_stop(tmp_path: Path) -> None:
    import subprocess

    from tests.processes import EXPORTER, free_port, wait_http_ok

    port = free_port()
    log = (tmp_path / "log").open("wb")
    process = subprocess.Popen([str(EXPORTER), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", process=process)
        os.kill(process.pid, signal.SIGTERM)
        # The server drains and finishes, then re-raises the signal it caught (exit by SIGTERM).
        assert process.wait(15) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    messages = [json.loads(line)["message"] for line in (tmp_path / "log").read_text().splitlines()]
    assert "Shutting down" in messages
    assert messages[-1].startswith("Finished server process")


def test_dedup_survives_a_restart(tmp_path: Path) -> None:
    settings = Settings(snapshot_file=tmp_path / "state.json")
    event = request(event_id="retried-after-restart")
    with TestClient(create_app(settings, clock=lambda: CLOCK)) as client:
        assert Exporter(client).post(event).json()["accepted"] == 1
    with TestClient(create_app(settings, clock=lambda: CLOCK)) as client:
        answer = Exporter(client).post(event).json()
        assert (answer["accepted"], answer["duplicates"]) == (0, 1)


def test_restored_ids_keep_their_age() -> None:
    now = [100.0]
    window = RecentIds(max_size=10, max_age_seconds=60, clock=lambda: now[0])
    window.remember(["old"])
    now[0] = 150.0
    window.remember(["new"])
    saved = window.export()
    restored = RecentIds(max_size=10, max_age_seconds=60, clock=lambda: 1000.0)
    restored.restore(saved)
    assert ("old" in restored, "new" in restored) == (True, True)
    later = RecentIds(max_size=10, max_age_seconds=60, clock=lambda: 1000.0)
    later.restore([[event_id, age + 20] for event_id, age in saved])
    assert ("old" in later, "new" in later) == (False, True)


def test_known_ids_are_those_remembered_and_not_expired() -> None:
    now = [0.0]
    window = RecentIds(max_size=3, max_age_seconds=10, clock=lambda: now[0])
    window.remember(["a", "b"])
    now[0] = 5
    window.remember(["c", "a", "d"])  # "a" again: now the newest; "b", the oldest, goes
    assert window.known(["a", "b", "c", "d", "e"]) == {"a", "c", "d"}
    assert [event_id for event_id, _ in window.export()] == ["c", "a", "d"]
    now[0] = 15.5
    assert window.known(["a", "c", "d"]) == set()


def test_a_declared_winner_survives_a_restart_then_expires_as_state(tmp_path: Path) -> None:
    """The winner gauge the unsupported-winner alert reads is state: restored from the snapshot with
    when it was declared, and gone (counted) once that is older than the state TTL."""
    now = [CLOCK]
    winner = key("llmopt_experiment_winner_timestamp_seconds", experiment="won", variant="b")
    completed = {
        "type": "experiment",
        "action": "completed",
        "experiment_id": "won",
        "winner": "b",
        "improvement": 0.1,
        "sample_size": 1000,
    }
    settings = Settings(state_ttl_seconds=3600, snapshot_file=tmp_path / "state.json")
    with TestClient(create_app(settings, clock=lambda: now[0])) as client:
        assert Exporter(client).post(completed).status_code == 200
        assert Exporter(client).scrape()[winner] == CLOCK
    now[0] += 1800
    app = create_app(settings, clock=lambda: now[0])
    with TestClient(app) as client:
        exporter = Exporter(client)
        assert exporter.scrape()[winner] == CLOCK
        recorder = app.state.exporter.recorder
        assert recorder.expire(3600) == 0
        now[0] += 1801
        assert recorder.expire(3600) == 1
        after = exporter.scrape()
        assert winner not in after
        assert after[key("llmopt_exporter_state_expired_total", kind="winner")] == 1
