"""The halt guard: should the optimizer stop experimenting because an SLO's error budget is low?

The answer is the one Prometheus records with the llmopt rules: ``llmopt:optimization_halt:bool``
is 1 when an SLO (availability or latency) has less than its threshold (10 % by default, in
``alerts/config.yml``) of its error budget left; ``llmopt:slo_error_budget_remaining:ratio{slo}``
is the budget behind it. The guard reads both through Prometheus' HTTP API and keeps the answer
for ``cache_seconds``.

When Prometheus cannot be read (unreachable, an error, or no halt series because the rules are not
loaded), the guard answers with the last good reading for up to ``max_stale`` seconds, then with
``on_unreachable``: ``"halt"`` (the default: with no budget to see, stop starting experiments;
serving goes on with the current configuration) or ``"continue"``. Failed reads are cached too,
so a Prometheus outage costs at most one timeout per ``cache_seconds``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("llmopt_client")

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
PROMETHEUS_URL_ENV = "LLMOPT_PROMETHEUS_URL"
HALT_SERIES = "llmopt:optimization_halt:bool"
BUDGET_SERIES = "llmopt:slo_error_budget_remaining:ratio"

OnUnreachable = Literal["halt", "continue"]
Source = Literal["prometheus", "stale", "unreachable"]


class PrometheusUnavailable(Exception):
    """Prometheus could not answer a query (the message says why)."""


@dataclass(frozen=True)
class HaltDecision:
    """One answer of the guard, with what it rests on."""

    should_halt: bool
    reason: str
    # SLO name -> share of its error budget left (1 untouched, 0 or less spent; NaN without traffic).
    budget_remaining: Mapping[str, float] = field(default_factory=dict)
    # "prometheus": read now (or within cache_seconds); "stale": the last good reading, Prometheus
    # being unreadable now; "unreachable": no usable reading, on_unreachable decided.
    source: Source = "prometheus"
    checked_at: float = 0.0  # Unix time of the reading


def query(
    prometheus_url: str, expr: str, *, timeout: float = 2.0, headers: Mapping[str, str] | None = None
) -> list[tuple[dict[str, str], float]]:
    """An instant query: the labels and value of every series of the result.

    Raises :class:`PrometheusUnavailable` when Prometheus cannot be reached or refuses the query.
    """
    url = f"{prometheus_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            document = json.loads(response.read())
    except (OSError, ValueError) as err:  # URLError, HTTPError, timeouts and bad JSON
        raise PrometheusUnavailable(f"{type(err).__name__}: {err}") from err
    if not isinstance(document, dict) or document.get("status") != "success":
        raise PrometheusUnavailable(f"query {expr!r} failed: {document!r:.300}")
    try:
        return [(dict(item["metric"]), float(item["value"][1])) for item in document["data"]["result"]]
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise PrometheusUnavailable(f"unexpected answer to {expr!r}: {document!r:.300}") from err


class HaltGuard:
    """Reads the halt signal from Prometheus; see the module documentation for its behaviour.

    ``selector`` narrows the series to one deployment, e.g. ``'cluster="prod"'`` (label matchers
    without braces); with several deployments and no selector, any one halting halts.
    """

    def __init__(
        self,
        prometheus_url: str | None = None,
        *,
        selector: str = "",
        cache_seconds: float = 30.0,
        max_stale: float = 300.0,
        on_unreachable: OnUnreachable = "halt",
        timeout: float = 2.0,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if on_unreachable not in ("halt", "continue"):
            raise ValueError(f"on_unreachable must be 'halt' or 'continue', got {on_unreachable!r}")
        for name, value in (("cache_seconds", cache_seconds), ("max_stale", max_stale), ("timeout", timeout)):
            if value < 0 or math.isnan(value):
                raise ValueError(f"{name} must not be negative, got {value!r}")
        self.prometheus_url = (
            prometheus_url or os.environ.get(PROMETHEUS_URL_ENV) or DEFAULT_PROMETHEUS_URL
        ).rstrip("/")
        self.selector = selector.strip().strip("{}")
        self.cache_seconds = cache_seconds
        self.max_stale = max_stale
        self.on_unreachable: OnUnreachable = on_unreachable
        self.timeout = timeout
        self._headers = dict(headers or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, HaltDecision] | None = None
        self._last_good: tuple[float, HaltDecision] | None = None
        self._is_failing = False

    def should_halt_optimization(self) -> bool:
        """True when the optimizer should not start experiments or change parameters now."""
        return self.check().should_halt

    def check(self) -> HaltDecision:
        """The current decision, from the cache when it is younger than ``cache_seconds``."""
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            try:
                decision = self._read()
            except PrometheusUnavailable as err:
                decision = self._without_prometheus(now, str(err))
            else:
                if self._is_failing:
                    log.info("halt guard: reading %s again", self.prometheus_url)
                self._is_failing = False
                self._last_good = (now, decision)
            self._cached = (now, decision)
            return decision

    def _series(self, name: str) -> str:
        return f"{name}{{{self.selector}}}" if self.selector else name

    def _read(self) -> HaltDecision:
        halts = query(
            self.prometheus_url, self._series(HALT_SERIES), timeout=self.timeout, headers=self._headers
        )
        if not halts:
            raise PrometheusUnavailable(f"no {HALT_SERIES} series: are the llmopt rules loaded?")
        budgets = query(
            self.prometheus_url,
            f"min by (slo) ({self._series(BUDGET_SERIES)})",
            timeout=self.timeout,
            headers=self._headers,
        )
        remaining = {
            labels.get("slo", ""): value for labels, value in sorted(budgets, key=lambda item: str(item[0]))
        }
        should_halt = max(value for _, value in halts) >= 1
        shown = (
            ", ".join(f"{slo} {_percent(value)}" for slo, value in remaining.items()) or "no budget series"
        )
        reason = (
            f"an SLO's error budget is below the halt threshold ({shown})"
            if should_halt
            else f"error budgets above the halt threshold ({shown})"
        )
        return HaltDecision(should_halt, reason, remaining, "prometheus", time.time())

    def _without_prometheus(self, now: float, problem: str) -> HaltDecision:
        if not self._is_failing:
            log.warning("halt guard: cannot read %s: %s", self.prometheus_url, problem)
        self._is_failing = True
        if self._last_good is not None and now - self._last_good[0] <= self.max_stale:
            good = self._last_good[1]
            return HaltDecision(
                good.should_halt,
                f"{good.reason}; last reading, Prometheus is unreadable now ({problem})",
                good.budget_remaining,
                "stale",
                good.checked_at,
            )
        return HaltDecision(
            self.on_unreachable == "halt",
            f"Prometheus at {self.prometheus_url} cannot be read ({problem}); "
            f"on_unreachable={self.on_unreachable}",
            {},
            "unreachable",
            time.time(),
        )


def _percent(ratio: float) -> str:
    return "no traffic" if math.isnan(ratio) else f"{ratio * 100:.1f} % left"


_guards: dict[str, HaltGuard] = {}
_guards_lock = threading.Lock()


def should_halt_optimization(prometheus_url: str | None = None) -> bool:
    """Whether the optimizer should halt, answered by Prometheus (see :class:`HaltGuard`).

    ``prometheus_url`` defaults to ``$LLMOPT_PROMETHEUS_URL``, else ``http://127.0.0.1:9090``. One
    guard per URL is shared by the process, with the default cache and failure behaviour; make a
    :class:`HaltGuard` to choose them.
    """
    url = (prometheus_url or os.environ.get(PROMETHEUS_URL_ENV) or DEFAULT_PROMETHEUS_URL).rstrip("/")
    with _guards_lock:
        guard = _guards.get(url)
        if guard is None:
            guard = _guards[url] = HaltGuard(url)
    return guard.should_halt_optimization()
