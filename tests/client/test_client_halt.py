"""The halt guard when Prometheus cannot be reached: the documented policy decides, and failures are
cached. (Against a real Prometheus: tests/test_operations.py.)"""

from __future__ import annotations

import time

import pytest
from client_support import free_port
from llmopt_client import HaltGuard, should_halt_optimization


def _nowhere() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("on_unreachable", "should_halt"),
    [
        pytest.param("halt", True, id="halt-by-default-policy"),
        pytest.param("continue", False, id="continue-when-asked"),
    ],
)
def test_an_unreachable_prometheus_leaves_the_decision_to_the_policy(
    on_unreachable: str, should_halt: bool
) -> None:
    guard = HaltGuard(_nowhere(), on_unreachable=on_unreachable, timeout=1)  # type: ignore[arg-type]
    decision = guard.check()
    assert (decision.should_halt, decision.source, decision.budget_remaining) == (
        should_halt,
        "unreachable",
        {},
    )
    assert f"on_unreachable={on_unreachable}" in decision.reason
    assert guard.should_halt_optimization() is should_halt


def test_the_default_policy_is_to_halt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPT_PROMETHEUS_URL", _nowhere())
    assert HaltGuard().on_unreachable == "halt"
    assert should_halt_optimization() is True


def test_a_failed_read_is_cached_like_an_answer() -> None:
    now = [0.0]
    guard = HaltGuard(_nowhere(), cache_seconds=30, timeout=1, clock=lambda: now[0])
    first = guard.check()
    now[0] = 29.0
    started = time.monotonic()
    assert guard.check() is first  # no new attempt within cache_seconds
    assert time.monotonic() - started < 0.1
    now[0] = 31.0
    assert guard.check() is not first


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"on_unreachable": "maybe"}, id="unknown-policy"),
        pytest.param({"cache_seconds": -1}, id="negative-cache"),
        pytest.param({"timeout": float("nan")}, id="nan-timeout"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(arguments))):
        HaltGuard("http://127.0.0.1:9090", **arguments)  # type: ignore[arg-type]
