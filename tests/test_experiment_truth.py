"""The experiment rules compute what SciPy computes from the same samples, to 1e-6 relative.

A simulated experiment (tests/experiment_truth.py) is posted to a real exporter; its exposition is
then the input of two checks of every recorded statistic (per-variant means and variances,
differences, standard errors, confidence sequences, verdicts, the decide signal, the chi-squared
test of the split): a promtool test, and a live Prometheus scraping a real exporter process. The
live chain also runs the alerts on their own scenarios: a 50/50 plan with 60/40 traffic (sample
ratio mismatch) beside one with 50/50 traffic (none), a variant 20 % worse on errors (guardrail),
and that variant then declared the winner (unsupported winner).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from llmopt_client import experiment_decision
from llmopt_client.halt import query
from scipy import stats

from app import metrics as m
from app.events import MAX_VARIANTS
from mixin import experiments, rules
from mixin import recorded as rec
from mixin import stats as mixin_stats
from tests import experiment_truth as truth
from tests.conftest import make_exporter
from tests.processes import PROMTOOL, exporter_and_prometheus, wait_until

ROOT = Path(__file__).resolve().parents[1]
CONFIG = rules.load_config(ROOT / "alerts" / "tests" / "config.yml")
CHECKS = CONFIG.experiments
SLOW_ABOVE = CONFIG.slos.latency.threshold_seconds
METRICS = ("quality", "cost", "latency", "errors", "slow_calls", "thumbs_up")
RELATIVE = 1e-6
COPY = f"{truth.EXPERIMENT}-kept"
GROWING = 'experiment="growing"'
# Alerts and rules through a live Prometheus: a generous wait for a slow machine.
_wait = functools.partial(wait_until, timeout=60.0)

SAMPLES = truth.simulate()


def _effect(variant: str, metric: str) -> truth.Effect:
    return truth.effect(
        truth.metric_samples(SAMPLES[variant], metric, SLOW_ABOVE),
        truth.metric_samples(SAMPLES[truth.CONTROL], metric, SLOW_ABOVE),
        metric,
        confidence=CHECKS.confidence,
        tuning=CHECKS.tuning,
    )


def _verdict(variant: str, metric: str) -> int:
    verdict = _effect(variant, metric).verdict
    return verdict if metric in truth.HIGHER_IS_BETTER else -verdict


def _decision(variant: str) -> int:
    breached = any(_verdict(variant, metric) == -1 for metric in CHECKS.guardrail.metrics)
    return int(abs(_verdict(variant, CHECKS.primary_metric)) == 1 and not breached)


def expectations() -> list[tuple[str, float, bool]]:
    """(selector, true value, is exact) of every statistic the rules record for the experiment."""
    where = f'experiment="{truth.EXPERIMENT}"'
    expected: list[tuple[str, float, bool]] = []
    for variant, samples in SAMPLES.items():
        chosen = f'variant="{variant}"'
        for metric in METRICS:
            x = truth.metric_samples(samples, metric, SLOW_ABOVE)
            expected += [
                (rec.VARIANT_METRIC_COUNT.where(metric=metric).select(where, chosen), len(x), True),
                (rec.VARIANT_METRIC_MEAN.where(metric=metric).select(where, chosen), float(x.mean()), False),
                (
                    rec.VARIANT_METRIC_VARIANCE.where(metric=metric).select(where, chosen),
                    truth.variance(x, metric),
                    False,
                ),
            ]
        if variant == truth.CONTROL:
            continue
        for metric in METRICS:
            e = _effect(variant, metric)
            expected += [
                (rec.EFFECT_DIFFERENCE.where(metric=metric).select(where, chosen), e.difference, False),
                (rec.EFFECT_STDERR.where(metric=metric).select(where, chosen), e.stderr, False),
                (rec.EFFECT_SAMPLES.where(metric=metric).select(where, chosen), e.samples, True),
                (
                    rec.EFFECT_INTERVAL.where(bound="lower", metric=metric).select(where, chosen),
                    e.lower,
                    False,
                ),
                (
                    rec.EFFECT_INTERVAL.where(bound="upper", metric=metric).select(where, chosen),
                    e.upper,
                    False,
                ),
                (
                    rec.EFFECT_VERDICT.where(metric=metric).select(where, chosen),
                    _verdict(variant, metric),
                    True,
                ),
            ]
        expected.append((rec.DECISION.select(where, chosen), _decision(variant), True))
    calls = {variant: len(samples.failed) for variant, samples in SAMPLES.items()}
    df = len(truth.SPLIT) - 1
    critical = float(stats.chi2.isf(CHECKS.sample_ratio_mismatch.p_value_below, df))
    chi2 = truth.chi_squared(calls, truth.SPLIT)
    expected += [
        (rec.SRM_CHI_SQUARED.select(where), chi2, False),
        (rec.SRM_DEGREES_OF_FREEDOM.select(where), df, True),
        (rec.SRM_CRITICAL_VALUE.select(where), critical, False),
        (rec.SRM.select(where), int(chi2 > critical), True),
    ]
    return expected


def test_the_scenario_exercises_both_outcomes() -> None:
    """The simulated experiment has a variant the intervals call better and one they cannot tell."""
    assert _decision("better") == 1
    assert _decision("same") == 0
    assert _verdict("better", "quality") == 1
    assert _verdict("same", "quality") == 0


@pytest.mark.parametrize("p_value", sorted({CHECKS.sample_ratio_mismatch.p_value_below, 0.001, 0.05}))
def test_chi_squared_critical_values_are_scipys(p_value: float) -> None:
    for df in range(1, MAX_VARIANTS):
        assert mixin_stats.chi2_critical(p_value, df) == pytest.approx(stats.chi2.isf(p_value, df), rel=1e-12)
        statistic = float(stats.chi2.isf(p_value, df))
        assert mixin_stats.chi2_survival(statistic, df) == pytest.approx(p_value, rel=1e-9)


def test_the_rules_carry_every_critical_value_of_the_config() -> None:
    text = rules.render(CONFIG)[rules.RECORDING_FILE]
    for df, value in experiments.srm_critical_values(CONFIG).items():
        assert f"({rec.SRM_DEGREES_OF_FREEDOM.selector} == {df}) * 0 + {rules.num(value)}" in text


# --- promtool ------------------------------------------------------------------------------------


def _exposition_series() -> list[dict[str, str]]:
    """The experiment's series as a real exporter exposes them, as promtool input (constant)."""
    for exporter in make_exporter():
        assert exporter.post({"events": [truth.start_event()]}).status_code == 200
        for samples in SAMPLES.values():
            for start in range(0, len(samples.events), 1000):
                answer = exporter.post({"events": samples.events[start : start + 1000]})
                assert answer.status_code == 200, answer.text
        scraped = exporter.scrape()
    series = []
    for (name, labels), value in scraped.items():
        if not name.startswith(("llmopt_experiment_", "llmopt_feedback_thumbs_total")):
            continue
        labelled = ", ".join(
            f'{label}="{text}"'
            for label, text in (*labels, ("instance", "a:9477"), ("job", "llmopt-exporter"))
        )
        series.append({"series": f"{name}{{{labelled}}}", "values": f"{value!r}+0x10"})
    return series


def promtool_passes(tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]) -> None:
    """promtool runs ``checks`` (promql_expr_test cases) over ``series`` (1m apart) against the
    recording rules of the test config, and they all pass."""
    for name, text in rules.render(CONFIG).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    test = {
        "rule_files": [rules.RECORDING_FILE],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    (tmp_path / "rules.test.yml").write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "rules.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_promtool_records_what_scipy_computes(tmp_path: Path) -> None:
    checks = []
    for selector, value, is_exact in expectations():
        expr = f"sum({selector})" if is_exact else f"sum(round({selector} / {value!r}, {RELATIVE}))"
        checks.append(
            {
                "expr": expr,
                "eval_time": "5m",
                "exp_samples": [{"labels": "{}", "value": value if is_exact else 1}],
            }
        )
    promtool_passes(tmp_path, _exposition_series(), checks)


# --- A live Prometheus over a real exporter ------------------------------------------------------


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


class Live:
    def __init__(self, exporter: str, prometheus: str) -> None:
        self.exporter, self.prometheus = exporter, prometheus

    def post(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), 1000):
            request = urllib.request.Request(
                f"{self.exporter}/v1/events",
                data=json.dumps({"events": events[start : start + 1000]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        return query(self.prometheus, promql, timeout=10)

    def firing(self, alertname: str) -> list[dict[str, str]]:
        return [
            item["labels"]
            for item in _get(f"{self.prometheus}/api/v1/alerts")["data"]["alerts"]
            if item["labels"]["alertname"] == alertname and item["state"] == "firing"
        ]


def _calls(experiment: str, variant: str, count: int, failed: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "type": "llm_request",
            "model": truth.MODEL,
            "provider": "openai",
            "latency_ms": 200.0,
            "experiment_id": experiment,
            "variant_id": variant,
            **({"status": "error", "error_type": "timeout"} if i < failed else {}),
        }
        for i in range(count)
    ]


def _start(experiment: str, split: dict[str, float]) -> dict[str, Any]:
    return {
        "type": "experiment",
        "action": "started",
        "experiment_id": experiment,
        "variants": list(split),
        "traffic_split": split,
        "control_variant": next(iter(split)),
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("experiments")
    document = yaml.safe_load((ROOT / "alerts" / "tests" / "config.yml").read_text(encoding="utf-8"))
    config = copy.deepcopy(document)
    config["experiments"]["sample_ratio_mismatch"]["for"] = "0s"
    config["experiments"]["guardrail"]["for"] = "0s"
    rendered = rules.render(rules.RulesConfig.model_validate(config))
    loaded = {name: rendered[name] for name in (rules.RECORDING_FILE, rules.ALERTING_FILE)}
    with exporter_and_prometheus(tmp, loaded, CONFIG.exporter_job) as (exporter, prometheus):
        chain = Live(exporter, prometheus)
        chain.post([truth.start_event(), *(e for samples in SAMPLES.values() for e in samples.events)])
        # The same experiment under another id, for the client's reading (never completed).
        chain.post(
            [
                {**event, "experiment_id": COPY}
                for event in (
                    truth.start_event(),
                    *(e for samples in SAMPLES.values() for e in samples.events),
                )
            ]
        )
        # A 50/50 plan with 60/40 traffic, and one with 50/50 traffic.
        chain.post([_start("srm-60-40", {"a": 0.5, "b": 0.5}), *_calls("srm-60-40", "a", 600)])
        chain.post(_calls("srm-60-40", "b", 400))
        chain.post([_start("srm-50-50", {"a": 0.5, "b": 0.5}), *_calls("srm-50-50", "a", 500)])
        chain.post(_calls("srm-50-50", "b", 500))
        # Control fails 20 % of calls, the variant 24 %: 20 % worse.
        chain.post(
            [_start("guarded", {"control": 0.5, "worse": 0.5}), *_calls("guarded", "control", 5000, 1000)]
        )
        chain.post(_calls("guarded", "worse", 5000, 1200))
        # The same, for the client's reading (never completed).
        chain.post([_start("kept", {"control": 0.5, "worse": 0.5}), *_calls("kept", "control", 5000, 1000)])
        chain.post(_calls("kept", "worse", 5000, 1200))
        yield chain


def test_live_prometheus_records_what_scipy_computes(live: Live) -> None:
    expected = expectations()
    _wait(
        lambda: live.query(rec.DECISION.select(f'experiment="{truth.EXPERIMENT}"')) or None,
        "the decide signal",
    )
    for selector, value, _ in expected:
        result = live.query(selector)
        assert len(result) == 1, (selector, result)
        assert result[0][1] == pytest.approx(value, rel=RELATIVE), selector


def test_a_60_40_split_of_a_50_50_plan_is_a_mismatch_and_50_50_is_not(live: Live) -> None:
    firing = _wait(lambda: live.firing("LLMOptExperimentSampleRatioMismatch") or None, "the SRM alert")
    assert [labels["experiment"] for labels in firing] == ["srm-60-40"]
    statistics = dict(
        (labels["experiment"], value) for labels, value in live.query(rec.SRM_CHI_SQUARED.selector)
    )
    assert statistics["srm-60-40"] == pytest.approx(stats.chisquare([600, 400]).statistic, rel=RELATIVE)
    assert statistics["srm-50-50"] == 0
    # The truth-check experiment follows its plan: no alert for it either.
    assert statistics[truth.EXPERIMENT] == pytest.approx(
        truth.chi_squared({v: len(s.failed) for v, s in SAMPLES.items()}, truth.SPLIT), rel=RELATIVE
    )


def test_a_variant_20_percent_worse_on_errors_trips_the_guardrail_and_its_win_is_unsupported(
    live: Live,
) -> None:
    firing = _wait(lambda: live.firing("LLMOptExperimentGuardrail") or None, "the guardrail alert")
    assert sorted((labels["experiment"], labels["variant"], labels["metric"]) for labels in firing) == [
        ("guarded", "worse", "errors"),
        ("kept", "worse", "errors"),
    ]
    assert not live.firing("LLMOptExperimentUnsupportedWinner")
    # The truth check's verdicts are recorded before it completes.
    _wait(
        lambda: live.query(rec.DECISION.select(f'experiment="{truth.EXPERIMENT}"')) or None,
        "the decide signal",
    )
    # The optimizer declares the worse variant its winner, and the "better" one of the truth check.
    live.post(
        [
            {
                "type": "experiment",
                "action": "completed",
                "experiment_id": "guarded",
                "winner": "worse",
                "improvement": 0.05,
                "sample_size": 10000,
            },
            {
                "type": "experiment",
                "action": "completed",
                "experiment_id": truth.EXPERIMENT,
                "winner": "better",
                "improvement": 0.05,
                "sample_size": 2000,
            },
        ]
    )
    unsupported = _wait(
        lambda: live.firing("LLMOptExperimentUnsupportedWinner") or None, "the unsupported-winner alert"
    )
    assert [(labels["experiment"], labels["variant"]) for labels in unsupported] == [("guarded", "worse")]


def test_the_client_reads_the_rules_verdict_on_an_experiment(live: Live) -> None:
    def guarded() -> Any:
        decision = experiment_decision("kept", live.prometheus)
        return decision if decision.guardrails else None

    decision = _wait(guarded, "the guardrail of the kept experiment")
    assert decision.guardrails == (("worse", "errors"),)
    assert decision.should_stop and not decision.can_decide
    assert decision.reason == "guardrail breached: worse on errors"
    _wait(lambda: live.query(rec.SRM.select('experiment="srm-60-40"')) or None, "the SRM test")
    assert experiment_decision("srm-60-40", live.prometheus).sample_ratio_mismatch is True
    even = experiment_decision("srm-50-50", live.prometheus)
    assert even.sample_ratio_mismatch is False and not even.should_stop
    _wait(lambda: live.query(rec.DECISION.select(f'experiment="{COPY}"')) or None, "the decision")
    checked = experiment_decision(COPY, live.prometheus)
    assert dict(checked.decided) == {"better": True, "same": False}
    assert checked.can_decide and checked.sample_ratio_mismatch is False
    assert checked.reason == "decided for better"
    unknown = experiment_decision("never-started", live.prometheus)
    assert unknown.decided == {} and unknown.sample_ratio_mismatch is None and not unknown.can_decide


def test_live_p95_latency_per_variant_lies_in_the_bucket_of_the_true_p95(live: Live) -> None:
    bounds = (0.0, *m.VARIANT_DURATION.buckets)
    for variant, samples in SAMPLES.items():
        selector = rec.VARIANT_LATENCY_P95.select(f'experiment="{truth.EXPERIMENT}"', f'variant="{variant}"')
        ((_, recorded),) = _wait(lambda selector=selector: live.query(selector) or None, selector)
        true = float(np.quantile(samples.latency, 0.95))
        upper = next(bound for bound in bounds if bound >= true)
        lower = bounds[bounds.index(upper) - 1]
        assert lower <= recorded <= upper, (variant, true, recorded)


def test_the_decide_signal_turns_1_when_the_interval_first_excludes_zero(tmp_path: Path) -> None:
    """A variant one point better than control (sample variance 64 in both), samples growing by 200
    per variant a minute: the decide signal is 0 at every minute the interval (by the formula,
    written out here) still contains zero, and 1 from the first minute it excludes it."""
    steps, per_step, variance = 20, 200, 64.0
    means = {"control": 80.0, "better": 81.0}
    alpha = 1 - CHECKS.confidence
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / CHECKS.tuning

    def lower_bound(n: int) -> float:
        stderr, total = math.sqrt(2 * variance / n), 2 * n
        half = stderr * math.sqrt(
            2 * (total * rho2 + 1) * math.log(math.sqrt(total * rho2 + 1) / alpha) / (total * rho2)
        )
        return means["better"] - means["control"] - half

    lowers = [lower_bound(per_step * (k + 1)) for k in range(steps)]
    first = next(k for k, lower in enumerate(lowers) if lower > 0)
    assert 0 < first < steps - 1, "the scenario must cross within its minutes"
    labels = 'experiment="growing", job="llmopt-exporter", instance="a:9477"'
    series = [
        {"series": f'llmopt_experiment_control_info{{{labels}, variant="control"}}', "values": f"1x{steps}"}
    ]
    for variant, mean in means.items():
        # n samples with this mean and sample variance: sum n mean, squares (n - 1) variance + n mean^2.
        per = f'{labels}, variant="{variant}"'
        step_squares = per_step * (variance + mean**2)
        series += [
            {
                "series": f"llmopt_experiment_variant_quality_score_count{{{per}}}",
                "values": f"{per_step}+{per_step}x{steps}",
            },
            {
                "series": f"llmopt_experiment_variant_quality_score_sum{{{per}}}",
                "values": f"{per_step * mean!r}+{per_step * mean!r}x{steps}",
            },
            {
                "series": f"llmopt_experiment_variant_quality_score_squares_total{{{per}}}",
                "values": f"{step_squares - variance!r}+{step_squares!r}x{steps}",
            },
        ]
    decision = f"sum({rec.DECISION.select(GROWING)})"
    checks = [
        {"expr": decision, "eval_time": f"{k}m", "exp_samples": [{"labels": "{}", "value": int(k >= first)}]}
        for k in range(steps)
    ]
    promtool_passes(tmp_path, series, checks)
