"""An experiment's planned traffic split and control variant: kept as series while it runs, across
a restart through the snapshot, and gone when it ends; inconsistent plans refused, naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Exporter, make_exporter

PLAN = {
    "type": "experiment",
    "action": "started",
    "experiment_id": "exp-plan",
    "variants": ["control", "b", "c"],
    "traffic_split": {"control": 0.5, "b": 0.25, "c": 0.25},
    "control_variant": "control",
}


def _plan(exporter: Exporter) -> dict[tuple[str, str], float]:
    """The split and control series of the scrape, by (metric, variant)."""
    return {
        (name, dict(labels)["variant"]): value
        for (name, labels), value in exporter.scrape().items()
        if name in ("llmopt_experiment_traffic_split_ratio", "llmopt_experiment_control_info")
    }


def test_a_started_experiment_shows_its_plan_until_it_ends(exporter: Exporter) -> None:
    assert exporter.post(PLAN).status_code == 200
    assert _plan(exporter) == {
        ("llmopt_experiment_traffic_split_ratio", "control"): 0.5,
        ("llmopt_experiment_traffic_split_ratio", "b"): 0.25,
        ("llmopt_experiment_traffic_split_ratio", "c"): 0.25,
        ("llmopt_experiment_control_info", "control"): 1,
    }
    # Started again with another plan: the new plan replaces the old one whole.
    again = {**PLAN, "variants": [], "traffic_split": {"b": 0.6, "d": 0.4}, "control_variant": "d"}
    assert exporter.post(again).status_code == 200
    assert _plan(exporter) == {
        ("llmopt_experiment_traffic_split_ratio", "b"): 0.6,
        ("llmopt_experiment_traffic_split_ratio", "d"): 0.4,
        ("llmopt_experiment_control_info", "d"): 1,
    }
    ended = {"type": "experiment", "action": "completed", "experiment_id": "exp-plan", "sample_size": 10}
    assert exporter.post(ended).status_code == 200
    assert _plan(exporter) == {}


def test_the_plan_survives_a_restart_and_goes_when_the_experiment_ends(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for exporter in make_exporter(snapshot_file=path):
        assert exporter.post(PLAN).status_code == 200
        planned = _plan(exporter)
    for exporter in make_exporter(snapshot_file=path):
        assert _plan(exporter) == planned
        rolled_back = {"type": "experiment", "action": "rolled_back", "experiment_id": "exp-plan"}
        assert exporter.post(rolled_back).status_code == 200
        assert _plan(exporter) == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"traffic_split": {"control": 0.5, "b": 0.25, "c": 0.2}}, "traffic_split", id="sum"),
        pytest.param({"traffic_split": {"control": 0.5, "z": 0.5}}, "traffic_split", id="unknown-variant"),
        pytest.param({"traffic_split": {"control": 1.5, "b": -0.5}}, "traffic_split", id="range"),
        pytest.param({"traffic_split": {}}, "traffic_split", id="empty"),
        pytest.param({"control_variant": "z"}, "control_variant", id="unknown-control"),
        pytest.param(
            {"variants": [], "traffic_split": {"bad key!": 1.0}}, "traffic_split['bad key!']", id="label"
        ),
    ],
)
def test_an_inconsistent_plan_is_refused_naming_the_field(
    exporter: Exporter, change: dict[str, Any], field: str
) -> None:
    before = exporter.scrape()
    answer = exporter.post({**PLAN, **change})
    assert answer.status_code == 422, answer.text
    assert answer.json()["problems"][0]["field"].startswith(field)
    after = exporter.scrape()

    def rejected(scrape: dict[Any, float]) -> float:
        return sum(v for (name, _), v in scrape.items() if name == "llmopt_exporter_events_rejected_total")

    assert rejected(after) == rejected(before) + 1
    assert _plan(exporter) == {}
