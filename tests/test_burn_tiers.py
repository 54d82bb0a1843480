"""Each SLO's burn-rate alerts fire once the intended share of its error budget is spent, whatever
the SLO's window, proven with promtool against the shipped rules.

For every SLO with a budget and every tier of its LLMOptErrorBudgetBurn: a clean history as long
as the tier's long window, then calls going bad at BURN times the tier's factor. The long window's
burn rate then reaches the factor when the tier's budget share is spent. The tier must not be
firing while three quarters of that share is spent, and must be firing once the share is spent and
its ``for`` has passed (plus two evaluations)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import yaml

from mixin import rules
from tests.processes import PROMTOOL

ROOT = Path(__file__).resolve().parents[1]
# The configuration the rules' unit tests use (test_rules.py counts these cases as the firing and
# quiet cases of every tier); the shipped one is checked for the shares below.
CONFIG = rules.load_config(ROOT / "alerts" / "tests" / "config.yml")
SHIPPED = rules.load_config(ROOT / "alerts" / "config.yml")
BURN = 1.25  # the burn rate of the bad calls, in multiples of the tier's factor
CALLS = 1000  # calls per sample interval
TIERS = [(slo, tier) for slo in rules.budget_slos(CONFIG) for tier in rules.burn_tiers(CONFIG, slo)]


def _bad_calls_series(slo: rules.BudgetSlo, bad: list[int], total: list[int]) -> list[dict[str, str]]:
    """The input series of ``slo`` whose bad calls are ``bad`` of ``total`` (cumulative, per sample)."""
    labels = 'job="llmopt-exporter", instance="a:9477", model="m", provider="p", task_type="chat"'
    if slo.histogram is None:
        good_or_bad = (
            f'llmopt_llm_request_errors_total{{{labels}, error_type="timeout"}}',
            " ".join(map(str, bad)),
        )
        calls = f"llmopt_llm_requests_total{{{labels}}}"
    else:
        spec, threshold = slo.histogram, rules.bucket_bound(slo.threshold_seconds)
        good_or_bad = (
            f'{spec.name}_bucket{{{labels}, le="{threshold}"}}',
            " ".join(str(t - b) for t, b in zip(total, bad, strict=True)),
        )
        calls = f"{spec.name}_count{{{labels}}}"
    failures = (
        # What the exporter writes beside the errors: the failures the availability SLI reads.
        [{"series": f"llmopt_llm_request_failures_total{{{labels}}}", "values": " ".join(map(str, bad))}]
        if slo.histogram is None
        else []
    )
    return [
        {"series": good_or_bad[0], "values": good_or_bad[1]},
        *failures,
        {"series": calls, "values": " ".join(map(str, total))},
    ]


def _case(slo: rules.BudgetSlo, tier: rules.BurnTier) -> dict[str, object]:
    """A promtool test file for one tier."""
    long, short = rules.seconds(tier.long), rules.seconds(tier.short)
    # Seconds between samples and between evaluations: under the 5-minute lookback, so that every
    # series is read at every evaluation.
    step = max(15, min(long // 60, short // 4, 240))
    ratio = BURN * tier.factor * slo.budget
    assert ratio < 1, "the tier cannot be reached: its burn would need more bad calls than calls"
    crossing = tier.factor * long / (BURN * tier.factor)  # seconds after the burn starts
    quiet_at = long + 0.75 * crossing
    # Windows of a day or more are recorded in the group that runs every SLOW_INTERVAL.
    slowest = rules.seconds(rules.SLOW_INTERVAL) if long >= rules.seconds("1d") else step
    firing_at = long + crossing + rules.seconds(tier.for_) + 2 * max(step, slowest)
    quiet_at, firing_at = (step * math.floor(quiet_at / step), step * math.ceil(firing_at / step))
    samples = firing_at // step + 1
    total = [CALLS * i for i in range(samples)]
    began = long // step
    bad = [round(CALLS * ratio * max(0, i - began)) for i in range(samples)]
    firing = (
        'count(ALERTS{alertname="LLMOptErrorBudgetBurn", alertstate="firing", '
        f'slo="{slo.name}", long="{tier.long}", short="{tier.short}"}}) or vector(0)'
    )
    test = {
        "rule_files": ["slo.rules.yml", "alerting.rules.yml"],
        "evaluation_interval": f"{step}s",
        "tests": [
            {
                "name": f"{slo.name} {tier.long}/{tier.short}",
                "interval": f"{step}s",
                "input_series": _bad_calls_series(slo, bad, total),
                "promql_expr_test": [
                    {"expr": firing, "eval_time": f"{at}s", "exp_samples": [{"labels": "{}", "value": value}]}
                    for at, value in ((quiet_at, 0), (firing_at, 1))
                ],
            }
        ],
    }
    return test


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("burn-tiers")
    for name, text in rules.render(CONFIG).items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.mark.parametrize(
    ("slo", "tier"), TIERS, ids=[f"{slo.name}-{tier.long}-{tier.short}" for slo, tier in TIERS]
)
def test_a_tier_fires_once_its_share_of_the_budget_is_spent(
    rules_dir: Path, slo: rules.BudgetSlo, tier: rules.BurnTier
) -> None:
    test = _case(slo, tier)
    path = rules_dir / f"{slo.name}-{tier.long}-{tier.short}.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "test", "rules", path.name], cwd=rules_dir, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", [CONFIG, SHIPPED], ids=["unit-test-config", "shipped-config"])
def test_every_tier_spends_the_share_its_reference_tier_spends(config: rules.RulesConfig) -> None:
    """The tiers of each SLO spend the shares of the 30-day tiers of the configuration."""
    reference = [
        tier.factor * rules.seconds(tier.long) / rules.seconds(rules.REFERENCE_WINDOW)
        for tier in config.alerts.error_budget_burn
    ]
    for slo in rules.budget_slos(config):
        tiers = rules.burn_tiers(config, slo)
        spent = [t.factor * rules.seconds(t.long) / rules.seconds(slo.window) for t in tiers]
        assert spent == pytest.approx(reference, rel=1e-3)
        assert all(rules.seconds(t.short) < rules.seconds(t.long) <= rules.seconds(slo.window) for t in tiers)
