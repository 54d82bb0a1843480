"""The traffic simulator tells its story to a real exporter, every event valid."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from tests.exposition import key, samples
from tests.processes import EXPORTER, exporter_process
from tools.simulate import Simulation, ticks


def test_same_seed_same_events() -> None:
    def story(seed: int) -> list[object]:
        simulation = Simulation(duration=10, rate=20, seed=seed)
        return [
            simulation.opening(),
            *(simulation.step(p, 1.0) for p in ticks(10, 1.0)),
            simulation.closing(),
        ]

    assert story(3) == story(3)
    assert story(3) != story(4)


def test_simulate_command_feeds_a_real_exporter(tmp_path: Path) -> None:
    with exporter_process(tmp_path) as url:
        result = subprocess.run(
            [str(EXPORTER), "simulate", "--url", url, "--duration", "30", "--rate", "40", "--fast"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        posted = int(result.stdout.split()[1])
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            after = samples(response.read().decode())
    accepted = sum(v for (name, _), v in after.items() if name == "llmopt_exporter_events_accepted_total")
    rejected = sum(v for (name, _), v in after.items() if name == "llmopt_exporter_events_rejected_total")
    assert (accepted, rejected) == (posted, 0)
    assert posted > 30 * 40 * 0.8
    error_types = {
        dict(labels)["error_type"] for (name, labels) in after if name == "llmopt_llm_request_errors_total"
    }
    assert len(error_types) >= 3
    assert after[key("llmopt_experiments_completed_total", outcome="won")] == 1
    assert after[key("llmopt_experiments_active")] == 1
    pulls = {dict(labels)["arm"]: 0.0 for (name, labels) in after if name == "llmopt_bandit_pulls_total"}
    for (name, labels), value in after.items():
        if name == "llmopt_bandit_pulls_total":
            pulls[dict(labels)["arm"]] += value
    assert max(pulls, key=lambda arm: pulls[arm]) == "t0.7"
    assert after[key("llmopt_deployments_total", component="optimizer", action="deployed")] == 1
    assert after[key("llmopt_bandit_convergence_duration_seconds", bandit="temperature")] == 30
    savings = sum(v for (n, _), v in after.items() if n == "llmopt_llm_baseline_cost_usd_total") - sum(
        v for (n, _), v in after.items() if n == "llmopt_llm_cost_usd_total"
    )
    assert savings > 0


def test_simulate_reports_an_unreachable_exporter() -> None:
    from tests.processes import free_port

    result = subprocess.run(
        [str(EXPORTER), "simulate", "--url", f"http://127.0.0.1:{free_port()}", "--duration", "1", "--fast"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "cannot post" in result.stderr
