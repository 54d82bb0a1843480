"""A simulated experiment and what its statistics are, computed with SciPy and NumPy from the raw
samples: the truth the experiment rules are checked against (tests/test_experiment_truth.py).

Nothing here uses the rules' own code: each value is computed from the samples, by SciPy where it
has the test (chi-squared, Welch) and by the published formula otherwise (the confidence sequence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

EXPERIMENT = "truth-check"
CONTROL = "control"
SPLIT = {"control": 0.5, "better": 0.3, "same": 0.2}
# Calls per variant: near the split (no mismatch); "better" scores higher than control.
CALLS = {"control": 1000, "better": 610, "same": 390}
QUALITY_MEAN = {"control": 80.0, "better": 84.0, "same": 80.0}
THUMBS_UP = {"control": 0.7, "better": 0.8, "same": 0.7}
MODEL = "gpt-4o-mini"


@dataclass
class Samples:
    """The raw samples of one variant."""

    quality: np.ndarray
    cost: np.ndarray
    latency: np.ndarray  # seconds
    failed: np.ndarray  # 0/1
    thumbs_up: np.ndarray  # 0/1, one per feedback
    events: list[dict[str, Any]] = field(default_factory=list)


def simulate(seed: int = 20261204) -> dict[str, Samples]:
    """Samples and the events that report them, per variant (values rounded as a client sends them)."""
    rng = np.random.default_rng(seed)
    variants: dict[str, Samples] = {}
    for variant, calls in CALLS.items():
        quality = np.clip(np.round(rng.normal(QUALITY_MEAN[variant], 8.0, calls), 2), 0, 100)
        cost = np.round(rng.lognormal(-5.0, 0.5, calls), 6)
        latency_ms = np.round(rng.gamma(4.0, 150.0, calls), 1)
        failed = (rng.random(calls) < 0.05).astype(int)
        thumbs = (rng.random(calls // 2) < THUMBS_UP[variant]).astype(int)
        samples = Samples(quality, cost, latency_ms / 1000.0, failed, thumbs)
        for i in range(calls):
            event: dict[str, Any] = {
                "type": "llm_request",
                "model": MODEL,
                "provider": "openai",
                "task_type": "chat",
                "latency_ms": float(latency_ms[i]),
                "cost_usd": float(cost[i]),
                "quality": float(quality[i]),
                "experiment_id": EXPERIMENT,
                "variant_id": variant,
            }
            if failed[i]:
                event |= {"status": "error", "error_type": "timeout"}
            samples.events.append(event)
        samples.events += [
            {
                "type": "feedback",
                "model": MODEL,
                "experiment_id": EXPERIMENT,
                "variant_id": variant,
                "thumbs": "up" if up else "down",
            }
            for up in thumbs
        ]
        variants[variant] = samples
    return variants


def start_event() -> dict[str, Any]:
    return {
        "type": "experiment",
        "action": "started",
        "experiment_id": EXPERIMENT,
        "variants": list(SPLIT),
        "traffic_split": SPLIT,
        "control_variant": CONTROL,
    }


def metric_samples(samples: Samples, metric: str, slow_above: float) -> np.ndarray:
    """The samples behind one compared metric (0/1 for shares)."""
    return {
        "quality": samples.quality,
        "cost": samples.cost,
        "latency": samples.latency,
        "errors": samples.failed,
        "slow_calls": (samples.latency > slow_above).astype(int),
        "thumbs_up": samples.thumbs_up,
    }[metric]


SHARES = ("errors", "slow_calls", "thumbs_up")
HIGHER_IS_BETTER = ("quality", "thumbs_up")


@dataclass(frozen=True)
class Effect:
    difference: float
    stderr: float
    samples: int
    lower: float
    upper: float

    @property
    def verdict(self) -> int:
        return 1 if self.lower > 0 else -1 if self.upper < 0 else 0


def variance(x: np.ndarray, metric: str) -> float:
    """The variance of one sample: n - 1 for means, p (1 - p) for shares."""
    return float(np.mean(x) * (1 - np.mean(x))) if metric in SHARES else float(np.var(x, ddof=1))


def effect(
    variant: np.ndarray, control: np.ndarray, metric: str, *, confidence: float, tuning: float
) -> Effect:
    """Difference from control, its standard error (SciPy's Welch test for means, the unpooled
    two-proportion one for shares) and the asymptotic confidence sequence (Waudby-Smith et al.,
    eq. 9 with the rho of their eq. 161, as GrowthBook states them)."""
    difference = float(np.mean(variant) - np.mean(control))
    if metric in SHARES:
        stderr = math.sqrt(
            variance(variant, metric) / len(variant) + variance(control, metric) / len(control)
        )
    else:
        welch = stats.ttest_ind(variant, control, equal_var=False)
        stderr = difference / float(welch.statistic)
    n = len(variant) + len(control)
    alpha = 1 - confidence
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    s2 = stderr**2 * n  # the per-observation variance the formula takes
    half = math.sqrt(s2) * math.sqrt(
        2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / alpha) / (n**2 * rho2)
    )
    return Effect(difference, stderr, n, difference - half, difference + half)


def chi_squared(calls: dict[str, int], split: dict[str, float]) -> float:
    observed = [calls[variant] for variant in split]
    total = sum(observed)
    return float(stats.chisquare(observed, [total * share for share in split.values()]).statistic)
