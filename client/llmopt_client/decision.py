"""Ask Prometheus whether an experiment can be decided: ``experiment_decision(experiment_id)``.

The llmopt rules judge each running experiment from what the exporter counts per variant (see the
exporter's docs/metrics.md, "Experiment checks"). This reads their verdict:

- the decide signal per variant (1 when the always-valid interval of the primary metric excludes
  zero and no guardrail is breached);
- the guardrails breached (variant, metric: worse than control beyond its interval);
- sample ratio mismatch (calls do not follow the planned split: nothing of the experiment can be
  trusted).

An optimizer completes an experiment when ``can_decide`` and stops it when ``should_stop``.
Standard library only, like the rest of the client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from llmopt_client.halt import DEFAULT_PROMETHEUS_URL, PROMETHEUS_URL_ENV, query

DECISION_SERIES = "experiment_variant:llmopt_experiment_decision:bool"
GUARDRAIL_SERIES = "experiment_variant:llmopt_experiment_guardrail:bool"
SRM_SERIES = "experiment:llmopt_experiment_srm:bool"


@dataclass(frozen=True)
class ExperimentDecision:
    """What the rules say of one experiment now."""

    experiment: str
    # Variant -> its decide signal; variants without enough samples yet are missing.
    decided: Mapping[str, bool]
    # (variant, metric) of every guardrail breached.
    guardrails: tuple[tuple[str, str], ...]
    # None until every variant has the calls the test needs (or without a planned split).
    sample_ratio_mismatch: bool | None

    @property
    def should_stop(self) -> bool:
        """Stop (roll back): a variant harms a guardrail metric, or the split is broken."""
        return bool(self.guardrails) or self.sample_ratio_mismatch is True

    @property
    def can_decide(self) -> bool:
        """Some variant's interval excludes zero on the primary metric, and nothing says stop."""
        return any(self.decided.values()) and not self.should_stop

    @property
    def reason(self) -> str:
        if self.sample_ratio_mismatch:
            return "calls do not follow the planned split (sample ratio mismatch)"
        if self.guardrails:
            breached = ", ".join(f"{variant} on {metric}" for variant, metric in self.guardrails)
            return f"guardrail breached: {breached}"
        if self.can_decide:
            return f"decided for {', '.join(v for v, is_decided in self.decided.items() if is_decided)}"
        if not self.decided:
            return "not enough samples yet"
        return "the intervals still contain zero"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def experiment_decision(
    experiment_id: str,
    prometheus_url: str | None = None,
    *,
    selector: str = "",
    timeout: float = 2.0,
    headers: Mapping[str, str] | None = None,
) -> ExperimentDecision:
    """The rules' verdict on ``experiment_id``, read from Prometheus.

    ``prometheus_url`` defaults to ``$LLMOPT_PROMETHEUS_URL``, else ``http://127.0.0.1:9090``;
    ``selector`` narrows the series to one deployment (``'cluster="prod"'``). Raises
    :class:`~llmopt_client.halt.PrometheusUnavailable` when Prometheus cannot answer.
    """
    url = (prometheus_url or os.environ.get(PROMETHEUS_URL_ENV) or DEFAULT_PROMETHEUS_URL).rstrip("/")
    matchers = ", ".join(
        part for part in (f"experiment={_quoted(experiment_id)}", selector.strip("{} ")) if part
    )

    def read(series: str) -> list[tuple[dict[str, str], float]]:
        return query(url, f"{series}{{{matchers}}}", timeout=timeout, headers=headers)

    decided = {labels.get("variant", ""): value >= 1 for labels, value in read(DECISION_SERIES)}
    guardrails = tuple(
        sorted(
            (labels.get("variant", ""), labels.get("metric", ""))
            for labels, value in read(GUARDRAIL_SERIES)
            if value >= 1
        )
    )
    mismatch = [value >= 1 for _, value in read(SRM_SERIES)]
    return ExperimentDecision(experiment_id, decided, guardrails, any(mismatch) if mismatch else None)
