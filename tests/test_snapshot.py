"""Snapshots: every unusable one leads to an empty start, nothing of it applied; writes are
bounded, and a failed write leaves nothing behind and does not stop later ones."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import os
import resource
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app, save_snapshot
from app.snapshot import SnapshotWriter, Streamed, encode, write_snapshot
from tests.conftest import CLOCK, Exporter
from tests.exposition import key, samples
from tests.processes import EXPORTER, free_port, stop, wait_http_ok
from tests.test_state import arm_pull

RESTORE_FAILURES = key("llmopt_exporter_snapshot_restore_failures_total")
BUDGET = key("llmopt_budget_limit_usd", period="day")
PROGRESS = key("llmopt_experiment_progress_ratio", experiment="exp")
# A usable snapshot: a day budget, a running experiment at 40 %, an open incident.
VALID: dict[str, Any] = {
    "version": 1,
    "gauges": [
        ["llmopt_budget_limit_usd", ["day"], 250.0],
        ["llmopt_experiment_progress_ratio", ["exp"], 0.4],
    ],
    "experiments": {"exp": CLOCK - 60},
    "experiments_seen": {"exp": CLOCK - 30},
    "leaders": {},
    "open_incidents": {"i1": "sev1"},
    "models_seen": [],
    "arms_seen": [],
    "last_improvement": CLOCK - 60,
}


def _with(**fields: Any) -> bytes:
    return json.dumps({**VALID, **fields}).encode()


def _start(settings: Settings) -> Iterator[tuple[Exporter, Any]]:
    app = create_app(settings, clock=lambda: CLOCK)
    with TestClient(app) as client:
        yield Exporter(client), app.state.exporter


def test_a_usable_snapshot_is_restored(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(_with())
    for exporter, _ in _start(Settings(snapshot_file=path)):
        after = exporter.scrape()
        assert (after[BUDGET], after[PROGRESS], after[RESTORE_FAILURES]) == (250, 0.4, 0)
        assert after[key("llmopt_experiments_active")] == 1
        assert after[key("llmopt_incidents_open", severity="sev1")] == 1


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"[1, 2]", id="not-an-object"),
        pytest.param(_with(version=99), id="unknown-version"),
        # Valid gauges first, then a wrong shape: the gauges must not be applied either.
        pytest.param(_with(experiments=[]), id="experiments-a-list"),
        pytest.param(_with(open_incidents={"i1": "sev9"}), id="unknown-severity"),
        pytest.param(_with(gauges=[["llmopt_llm_requests_total", [], 5]]), id="not-a-restorable-gauge"),
        pytest.param(_with(gauges=[["llmopt_budget_limit_usd", [], 5]]), id="gauge-labels-missing"),
        pytest.param(_with(models_seen=[["m", "p"]]), id="entry-too-short"),
        pytest.param(_with(last_improvement="yesterday"), id="mistyped"),
        pytest.param(_with(surprise=1), id="unknown-field"),
        pytest.param(b"[" * 500 + b"]" * 500, id="deeply-nested"),
        pytest.param(_with(leaders={"exp": "x" * 2000}), id="too-large"),
    ],
)
def test_an_unusable_snapshot_is_set_aside_and_nothing_of_it_applied(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    for exporter, _ in _start(Settings(snapshot_file=path, max_snapshot_bytes=1024)):
        after = exporter.scrape()
        assert after[RESTORE_FAILURES] == 1
        assert (BUDGET in after, PROGRESS in after) == (False, False)
        assert after[key("llmopt_experiments_active")] == 0
        assert after[key("llmopt_incidents_open", severity="sev1")] == 0
        assert exporter.client.get("/readyz").status_code == 200
    assert (tmp_path / "state.json.corrupt").read_bytes() == content


def test_a_directory_where_the_snapshot_should_be_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.mkdir()
    for exporter, _ in _start(Settings(snapshot_file=path)):
        assert exporter.scrape()[RESTORE_FAILURES] == 1
    assert (tmp_path / "state.json.corrupt").is_dir()
    assert json.loads(path.read_bytes())["version"] == 1  # written at shutdown, in its place


# --- writing -------------------------------------------------------------------------------------
def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_a_snapshot_over_its_limit_is_not_written_and_later_ones_are(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(_with())
    for exporter, state in _start(Settings(snapshot_file=path, max_snapshot_bytes=2048)):
        exporter.post(
            {
                "events": [
                    {"type": "experiment", "action": "started", "experiment_id": f"e{n}"} for n in range(30)
                ]
            }
        )
        asyncio.run(save_snapshot(state))
        after = exporter.scrape()
        assert after[key("llmopt_exporter_snapshot_writes_total", result="failure")] == 1
        assert _files(tmp_path) == ["state.json"] and path.read_bytes() == _with()  # as it was
        for n in range(30):
            assert exporter.client.delete(f"/v1/experiments/e{n}").status_code == 200
        asyncio.run(save_snapshot(state))
        after = exporter.scrape()
        assert after[key("llmopt_exporter_snapshot_writes_total", result="success")] == 1
        assert after[key("llmopt_exporter_snapshot_size_bytes")] == path.stat().st_size <= 2048


@contextlib.contextmanager
def _files_limited_to(size: int) -> Iterator[None]:
    """Writes past ``size`` bytes of any file fail (EFBIG), as they would on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_failed_write_removes_its_temporary_file_and_the_next_one_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_snapshot(path, {"version": 1, "note": "old"}, max_bytes=1 << 20)
    document = {"version": 1, "gauges": [["g", [f"label-{n}"], n] for n in range(2000)]}
    with _files_limited_to(4096), pytest.raises(OSError) as failure:
        write_snapshot(path, document, max_bytes=1 << 20)
    assert failure.value.errno == errno.EFBIG
    assert _files(tmp_path) == ["state.json"]
    assert json.loads(path.read_bytes()) == {"version": 1, "note": "old"}
    size = write_snapshot(path, document, max_bytes=1 << 20)
    assert json.loads(path.read_bytes()) == document and size == path.stat().st_size
    assert _files(tmp_path) == ["state.json"]


# --- start-up of the real process ---------------------------------------------------------------
_PR_CAPBSET_DROP = 24
# CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER: what lets root ignore file modes.
_FILE_MODE_OVERRIDES = (1, 2, 3)


def _obey_file_modes() -> None:
    """In the child, before exec: as root, give up the capabilities that bypass file modes, so
    an unreadable file or a read-only directory is one for the exporter too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in _FILE_MODE_OVERRIDES:
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _unreadable(path: Path) -> None:
    path.write_bytes(_with())
    path.chmod(0)


def _corrupt_in_read_only_directory(path: Path) -> None:
    path.write_bytes(_with(experiments=[]))
    path.parent.chmod(0o555)


@pytest.mark.parametrize(
    ("prepare", "is_set_aside"),
    [
        pytest.param(lambda path: path.write_bytes(_with(experiments=[])), True, id="wrong-shape"),
        pytest.param(lambda path: path.write_bytes(b"[" * 50_000), True, id="deeply-nested"),
        pytest.param(_unreadable, True, id="unreadable"),
        pytest.param(_corrupt_in_read_only_directory, False, id="corrupt-in-read-only-directory"),
    ],
)
def test_the_exporter_starts_empty_whatever_the_snapshot(
    tmp_path: Path, prepare: Callable[[Path], object], is_set_aside: bool
) -> None:
    """These once made the exporter exit with status 3 at every start: a crash loop."""
    directory = tmp_path / "state"
    directory.mkdir()
    path = directory / "state.json"
    prepare(path)
    port = free_port()
    log = tmp_path / "exporter.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(EXPORTER), "--host", "127.0.0.1", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LLMOPT_SNAPSHOT_FILE": str(path)},
            preexec_fn=_obey_file_modes if os.geteuid() == 0 else None,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{url}/readyz", process=process)
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            after = samples(response.read().decode())
        assert after[RESTORE_FAILURES] == 1
        assert (BUDGET in after, after[key("llmopt_experiments_active")]) == (False, 0)
    finally:
        stop(process)
        directory.chmod(0o755)
    assert process.returncode != 3
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    failures = [line for line in lines if line["message"] == "snapshot not restored; starting empty"]
    assert len(failures) == 1 and str(path) in failures[0]["context"]["reason"]
    assert (directory / "state.json.corrupt").exists() == is_set_aside


def test_only_the_latest_unusable_snapshot_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for content in (b"{first", b"{second"):
        path.write_bytes(content)
        for exporter, _ in _start(Settings(snapshot_file=path)):
            assert exporter.scrape()[RESTORE_FAILURES] == 1
    assert _files(tmp_path) == ["state.json", "state.json.corrupt"]
    assert (tmp_path / "state.json.corrupt").read_bytes() == b"{second"


def test_a_snapshot_holds_no_more_than_the_state_caps(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for exporter, _ in _start(Settings(snapshot_file=path, max_state_entries=3)):
        for n in range(10):
            progress = {"type": "experiment", "action": "progress", "experiment_id": f"e{n}", "leader": "b"}
            incident = {"type": "incident", "action": "opened", "incident_id": f"i{n}", "severity": "sev2"}
            health = {"type": "model_health", "model": f"m{n}", "available": True}
            exporter.post({"events": [progress, incident, health, arm_pull(f"a{n}")]})
    saved = json.loads(path.read_bytes())
    assert list(saved["experiments"]) == list(saved["leaders"]) == ["e7", "e8", "e9"]
    assert list(saved["open_incidents"]) == ["i7", "i8", "i9"]
    assert [model for model, _, _ in saved["models_seen"]] == ["m7", "m8", "m9"]
    assert [arm for _, arm, _, _ in saved["arms_seen"]] == ["a7", "a8", "a9"]
    leaders = {labels[0] for name, labels, _ in saved["gauges"] if name == "llmopt_experiment_leader_info"}
    assert leaders == {"e7", "e8", "e9"}


def test_a_snapshot_taken_earlier_never_replaces_one_taken_later(tmp_path: Path) -> None:
    """At shutdown the periodic write may still run in its thread while the final one is made."""
    path = tmp_path / "state.json"
    writer = SnapshotWriter()
    earlier, later = writer.take(), writer.take()
    assert writer.write(later, path, lambda: {"taken": "later"}, 1024) == len(b'{"taken":"later"}')
    assert writer.write(earlier, path, lambda: {"taken": "earlier"}, 1024) is None
    assert json.loads(path.read_bytes()) == {"taken": "later"}


def test_streamed_parts_are_encoded_in_pieces_as_plain_json() -> None:
    document = {
        "version": 1,
        "empty": Streamed([]),
        "ids": Streamed([f"id-{n}", n] for n in range(2500)),
        "seen": Streamed(((f"e{n}", n / 2) for n in range(1001)), is_object=True),
        "last": None,
    }
    pieces = list(encode(document))
    assert len(pieces) > 10  # the 3501 items in pieces of at most a thousand
    assert json.loads(b"".join(pieces)) == {
        "version": 1,
        "empty": [],
        "ids": [[f"id-{n}", n] for n in range(2500)],
        "seen": {f"e{n}": n / 2 for n in range(1001)},
        "last": None,
    }


@pytest.mark.parametrize("has_snapshot", [True, False], ids=["with-snapshot", "without-snapshot"])
def test_a_restart_never_reports_a_newer_last_improvement(tmp_path: Path, has_snapshot: bool) -> None:
    """The real exporter, restarted: the last improvement stays the one the optimizer reported (from
    the snapshot), or is absent (no snapshot); never the restart's time, which would postpone
    LLMOptOptimizationStuck by a day at each restart."""
    import time
    import urllib.request

    from tests.exposition import key, samples
    from tests.processes import exporter_process

    env = {"LLMOPT_SNAPSHOT_FILE": str(tmp_path / "state.json")} if has_snapshot else {}
    gauge = key("llmopt_optimization_last_improvement_timestamp_seconds")
    improved_at = time.time() - 3600
    update = {"type": "parameter_update", "parameter": "p", "value": 1, "improved": True}
    update["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(improved_at))

    def scrape(url: str) -> dict[Any, float]:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            return samples(response.read().decode())

    with exporter_process(tmp_path, env=env) as url:
        assert gauge not in scrape(url)  # a start is no improvement
        request = urllib.request.Request(
            f"{url}/v1/events",
            data=json.dumps(update).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert scrape(url)[gauge] == int(improved_at)
    with exporter_process(tmp_path, env=env) as url:
        restarted = scrape(url)
    if has_snapshot:
        assert restarted[gauge] == int(improved_at)
    else:
        assert gauge not in restarted
