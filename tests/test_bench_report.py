"""bench/report.py: the Targets table of docs/benchmarks.md is judged against bench/targets.toml.

No timing here: the inputs are made-up results, and what is checked is how they are judged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import report


def latency(req_per_s: float, p99_ms: float) -> dict[str, Any]:
    return {"default": {"req_per_s": req_per_s, "p99_ms": p99_ms}}


def throughput(events_per_s: float, floor_share: float) -> dict[str, Any]:
    return {
        "b1000": {
            "events_per_s": events_per_s,
            "floor_share": floor_share,
            "floor_cpu_share": 0.9,
            "floor_events_per_s": events_per_s / floor_share,
            "cpu_us_per_event": 5.0,
        }
    }


def verdicts(lines: list[str]) -> dict[str, str]:
    """The Targets table as {target: "met" or "not met"}."""
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "---" not in line]
    return {cells[0].removeprefix("| "): cells[2].strip(" |*") for cells in rows[1:]}


@pytest.mark.parametrize(
    ("measured", "expected"),
    [
        pytest.param(latency(9000, 8), "met", id="fast-enough"),
        pytest.param(latency(7000, 8), "not met", id="too-few-requests"),
        pytest.param(latency(9000, 12), "not met", id="p99-too-slow"),
    ],
)
def test_single_events_are_judged_by_the_declared_numbers(measured: dict[str, Any], expected: str) -> None:
    table = verdicts(report.targets_table({}, measured, {}, {}, {}))
    assert table == {"single events ≥ 8,000 req/s, p99 ≤ 10.0 ms at 32 connections": expected}


def test_ingest_targets_are_judged_each_on_its_own() -> None:
    table = verdicts(report.targets_table(throughput(150_000, 0.7), {}, {}, {}, {}))
    assert table == {
        "batch-1000 ingest ≥ 80% of the in-process floor": "not met",
        "batch-1000 ingest ≥ 100,000 events/s": "met",
    }


@pytest.mark.parametrize(("spans_per_s", "expected"), [(60_000, "met"), (40_000, "not met")])
def test_otlp_ingest_is_judged_by_the_declared_number(spans_per_s: float, expected: str) -> None:
    otlp = {
        "spans_per_body": 512,
        "spans_per_s": spans_per_s,
        "cpu_us_per_span": 1e6 / spans_per_s,
        "floor_spans_per_s": spans_per_s * 1.2,
    }
    table = verdicts(report.targets_table({}, {}, {}, {}, {}, otlp))
    assert table == {"OTLP ingest, batches of 512 spans ≥ 50,000 spans/s": expected}


def test_changing_a_number_in_targets_toml_changes_the_text_and_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = report.TARGETS.read_text(encoding="utf-8").replace(
        "min_req_per_s = 8_000", "min_req_per_s = 9_500"
    )
    assert changed != report.TARGETS.read_text(encoding="utf-8")
    (tmp_path / "targets.toml").write_text(changed, encoding="utf-8")
    monkeypatch.setattr(report, "TARGETS", tmp_path / "targets.toml")
    table = verdicts(report.targets_table({}, latency(9000, 8), {}, {}, {}))
    assert table == {"single events ≥ 9,500 req/s, p99 ≤ 10.0 ms at 32 connections": "not met"}


def test_the_published_tables_are_what_the_committed_results_render() -> None:
    """docs/benchmarks.md is written from bench/results/latest.json, never by hand."""
    results = json.loads(report.RESULTS.read_text(encoding="utf-8"))
    published = report.section(report.DOC.read_text(encoding="utf-8"))
    assert published.strip() == report.markdown(results).strip()
