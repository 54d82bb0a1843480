"""Rules that check the optimizer's A/B experiments, from the statistics the exporter keeps per variant.

For each variant (labels ``experiment``, ``variant``) the exporter counts calls, errors, and the
count, sum and sum of squares of quality, cost and latency; thumbs come from the feedback counter.
Those are sufficient statistics: the rules below turn them into, per compared metric
(:data:`COMPARED`), each variant's mean and variance, its difference from control with the standard
error (Welch for means, unpooled two-proportion for shares), and an always-valid confidence
sequence around it (the asymptotic one of Waudby-Smith et al., in the closed form GrowthBook uses),
which stays valid however often someone looks. From the intervals come a verdict per metric
(better, worse, not known), the guardrails and a decide signal; from the planned split (the
``started`` event's ``traffic_split``) a chi-squared test of sample ratio mismatch.

The statistics are the exporter's counter values summed over replicas: they cover what each
replica counted since it started. A restart without a snapshot restarts a replica's part for every
variant at once, which keeps the comparison fair (both arms lose the same stretch of time).
The checks run for running experiments: the control and the split are series only until the
experiment ends. The winner of a completed experiment is checked against the last verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app import metrics as m
from app.events import MAX_VARIANTS
from mixin import recorded as rec
from mixin import stats
from mixin.rules import (
    Alert,
    ExperimentMetric,
    Group,
    Promql,
    Recording,
    RulesConfig,
    block,
    bucket_bound,
    num,
    percent,
    seconds,
)

VARIANT = ("experiment", "variant")


@dataclass(frozen=True)
class Compared:
    """One metric the rules compare between each variant and control.

    ``kind`` "mean": ``total`` and ``squares`` are the sum and sum of squares of ``count`` samples;
    "share": ``total`` of ``count`` trials were hits (errors, slow calls, thumbs up).
    """

    name: ExperimentMetric
    kind: Literal["mean", "share"]
    is_higher_better: bool
    what: str
    unit: str  # a Grafana unit
    count: str
    total: str
    squares: str = ""


def _sum(q: Promql, spec: m.MetricSpec, suffix: str = "", match: str = "") -> str:
    """A counter's value per variant, summed over replicas (and every other label)."""
    selector = f"{spec.name}{suffix}{{{match}}}" if match else f"{spec.name}{suffix}"
    keep = (*VARIANT, "le") if suffix == "_bucket" and not match else VARIANT
    return q.aggregate(spec, selector, keep=keep, suffix=suffix)


def compared(q: Promql, config: RulesConfig) -> tuple[Compared, ...]:
    """Every metric the rules compare, in the order the dashboard shows them."""
    threshold = config.slos.latency.threshold_seconds
    calls = _sum(q, m.VARIANT_DURATION, "_count")
    fast = _sum(q, m.VARIANT_DURATION, "_bucket", f'le="{bucket_bound(threshold)}"')
    return (
        Compared(
            "quality",
            "mean",
            True,
            "mean quality score (0-100)",
            "none",
            _sum(q, m.VARIANT_QUALITY, "_count"),
            _sum(q, m.VARIANT_QUALITY, "_sum"),
            _sum(q, m.VARIANT_QUALITY_SQUARES),
        ),
        Compared(
            "cost",
            "mean",
            False,
            "mean cost per call (USD)",
            "currencyUSD",
            _sum(q, m.VARIANT_REQUESTS),
            _sum(q, m.VARIANT_COST),
            _sum(q, m.VARIANT_COST_SQUARES),
        ),
        Compared(
            "latency",
            "mean",
            False,
            "mean latency (seconds)",
            "s",
            calls,
            _sum(q, m.VARIANT_DURATION, "_sum"),
            _sum(q, m.VARIANT_DURATION_SQUARES),
        ),
        Compared(
            "errors",
            "share",
            False,
            "share of calls that failed",
            "percentunit",
            _sum(q, m.VARIANT_REQUESTS),
            _sum(q, m.VARIANT_ERRORS),
        ),
        Compared(
            "slow_calls",
            "share",
            False,
            f"share of calls slower than {num(threshold)}s (the latency SLO threshold)",
            "percentunit",
            calls,
            f"{calls}\n-\n{fast}",
        ),
        Compared(
            "thumbs_up",
            "share",
            True,
            "share of thumbs that were up",
            "percentunit",
            # Feedback outside any experiment has an empty experiment label: left out.
            _sum(q, m.FEEDBACK_THUMBS, match='experiment!=""'),
            _sum(q, m.FEEDBACK_THUMBS, match='experiment!="", rating="up"'),
        ),
    )


def alpha(config: RulesConfig) -> float:
    return 1 - config.experiments.confidence


def rho_squared(config: RulesConfig) -> float:
    """The mixing parameter of the confidence sequences, from the confidence and the tuning."""
    return stats.mixing_rho_squared(alpha(config), config.experiments.tuning)


def srm_critical_values(config: RulesConfig) -> dict[int, float]:
    """Degrees of freedom -> the chi-squared statistic above which a split is a mismatch."""
    p_value = config.experiments.sample_ratio_mismatch.p_value_below
    return {df: stats.chi2_critical(p_value, df) for df in range(1, MAX_VARIANTS)}


def _control(q: Promql) -> str:
    return q.aggregate(m.EXPERIMENT_CONTROL, m.EXPERIMENT_CONTROL.name, keep=VARIANT, op="max")


def _split(q: Promql) -> str:
    """The planned shares above zero, per variant of each running experiment."""
    spec = m.EXPERIMENT_TRAFFIC_SPLIT
    return f"{q.aggregate(spec, spec.name, keep=VARIANT, op='max')} > 0"


def _statistics(q: Promql, config: RulesConfig) -> list[Recording]:
    rules: list[Recording] = []
    for metric in compared(q, config):
        count = rec.VARIANT_METRIC_COUNT.where(metric=metric.name)
        mean = rec.VARIANT_METRIC_MEAN.where(metric=metric.name)
        rules.append(Recording(count, metric.count, comment=f"Per variant: samples of the {metric.what}."))
        rules.append(
            Recording(
                mean,
                f"{block(metric.total)}\n/\n{metric.count}",
                comment=f"Per variant: the {metric.what}.",
            )
        )
        if metric.kind == "mean":
            variance = (
                f"clamp_min({metric.squares} - {metric.total} ^ 2 / {metric.count}, 0)\n"
                f"/\n({metric.count} - 1 > 0)"
            )
            comment = "the sample variance (Q - S^2/n) / (n - 1); absent below two samples."
        else:
            variance = f"{mean.selector} * (1 - {mean.selector})"
            comment = "the variance p (1 - p) of one trial."
        rules.append(
            Recording(
                rec.VARIANT_METRIC_VARIANCE.where(metric=metric.name),
                variance,
                comment=f"Per variant, {metric.name}: {comment}",
            )
        )
    return rules


def _against_control(q: Promql, config: RulesConfig) -> list[Recording]:
    """Difference, standard error, interval and verdict of every variant but control, per metric."""
    minimum = config.experiments.min_samples_per_variant
    control = _control(q)
    count = rec.VARIANT_METRIC_COUNT.selector
    enough = f"{count} >= {minimum}"

    def versus_control(per_variant: str, op: str) -> str:
        """``per_variant`` of each variant ``op`` the same of its experiment's control, for metrics
        where both have the minimum sample; control itself is left out."""
        mine = f"({per_variant}) and ({enough})"
        return (
            f"{block(mine)}\n{op} ignoring (variant) group_left ()\n"
            f"{block(mine, f'and ignoring (metric) {control}')}\n"
            f"unless ignoring (metric) {control}"
        )

    samples, stderr = rec.EFFECT_SAMPLES.selector, rec.EFFECT_STDERR.selector
    difference, half_width = rec.EFFECT_DIFFERENCE.selector, rec.EFFECT_HALF_WIDTH.selector
    scaled = f"{samples} * {num(rho_squared(config))}"
    level = percent(config.experiments.confidence)
    rules = [
        Recording(
            rec.EFFECT_DIFFERENCE,
            versus_control(rec.VARIANT_METRIC_MEAN.selector, "-"),
            comment="Per variant and metric: mean (or share) minus control's.",
        ),
        Recording(
            rec.EFFECT_STDERR,
            f"sqrt(\n{versus_control(f'{rec.VARIANT_METRIC_VARIANCE.selector} / {count}', '+')}\n)",
            comment="Per variant and metric: standard error of the difference, sqrt(s1^2/n1 + s2^2/n2) "
            "(Welch for means; the unpooled two-proportion one for shares).",
        ),
        Recording(
            rec.EFFECT_SAMPLES,
            versus_control(count, "+"),
            comment="Per variant and metric: samples behind the difference (variant plus control).",
        ),
        Recording(
            rec.EFFECT_HALF_WIDTH,
            f"{stderr}\n* sqrt(2 * ({scaled} + 1) * ln(sqrt({scaled} + 1) / {num(alpha(config))})"
            f" / ({scaled}))",
            comment=f"Per variant and metric: half width of the {level} asymptotic confidence sequence, "
            "SE * sqrt(2 (n rho^2 + 1) ln(sqrt(n rho^2 + 1) / alpha) / (n rho^2)) with n the samples and "
            f"rho^2 = {num(rho_squared(config))} from the tuning {num(config.experiments.tuning)}.",
        ),
        Recording(
            rec.EFFECT_INTERVAL.where(bound="lower"),
            f"{difference} - {half_width}",
            comment=f"Per variant and metric: lower bound of the always-valid {level} interval.",
        ),
        Recording(
            rec.EFFECT_INTERVAL.where(bound="upper"),
            f"{difference} + {half_width}",
            comment=f"Per variant and metric: upper bound of the always-valid {level} interval.",
        ),
    ]
    for metric in compared(q, config):
        lower = rec.EFFECT_INTERVAL.where(bound="lower", metric=metric.name).selector
        upper = rec.EFFECT_INTERVAL.where(bound="upper", metric=metric.name).selector
        better, worse = (f"({lower} > bool 0)", f"({upper} < bool 0)")
        if not metric.is_higher_better:
            better, worse = f"({upper} < bool 0)", f"({lower} > bool 0)"
        rules.append(
            Recording(
                rec.EFFECT_VERDICT.where(metric=metric.name),
                f"{better}\n- ignoring (bound)\n{worse}",
                comment=f"Per variant, {metric.name}: 1 when the interval shows the variant better than "
                f"control ({'higher' if metric.is_higher_better else 'lower'} is better), -1 worse, "
                "0 while it contains zero.",
            )
        )
    return rules


def _decision(config: RulesConfig) -> list[Recording]:
    checks = config.experiments
    matcher = f'metric=~"{"|".join(checks.guardrail.metrics)}"'
    primary = rec.EFFECT_VERDICT.where(metric=checks.primary_metric).selector
    return [
        Recording(
            rec.GUARDRAIL,
            f"{rec.EFFECT_VERDICT.select(matcher)} == bool -1",
            comment="Per variant and guardrail metric: 1 when the variant is worse than control beyond "
            "its interval.",
        ),
        Recording(
            rec.DECISION,
            block(
                f"abs({primary})\nunless ignoring (metric)\n"
                f"max without (metric) ({rec.GUARDRAIL.selector}) == 1"
            )
            + f"\nor\n{primary} * 0",
            comment=f"Per variant: 1 when the interval of the primary metric ({checks.primary_metric}) "
            "excludes zero and no guardrail is breached: the experiment can be decided for this variant.",
        ),
    ]


def _sample_ratio(q: Promql, config: RulesConfig) -> list[Recording]:
    srm = config.experiments.sample_ratio_mismatch
    split = _split(q)
    calls, expected = rec.VARIANT_CALLS.selector, rec.VARIANT_EXPECTED_CALLS.selector
    df = rec.SRM_DEGREES_OF_FREEDOM.selector
    every_variant_ready = (
        f"count without (variant) ({calls} >= {srm.min_calls_per_variant} and {split})\n"
        f"==\ncount without (variant) ({split})"
    )
    critical = "\nor\n".join(
        f"({df} == {degrees}) * 0 + {num(value)}" for degrees, value in srm_critical_values(config).items()
    )
    return [
        Recording(
            rec.VARIANT_CALLS,
            _sum(q, m.VARIANT_REQUESTS),
            comment="Per variant: calls counted so far, over all replicas.",
        ),
        Recording(
            rec.VARIANT_EXPECTED_CALLS,
            f"{block(split)}\n* ignoring (variant) group_left ()\n"
            f"sum without (variant) ({calls} and {block(split)})",
            comment="Per variant of a running experiment with a split: the calls its planned share of "
            "the experiment's calls would be.",
        ),
        Recording(
            rec.SRM_DEGREES_OF_FREEDOM,
            f"count without (variant) ({split}) - 1 > 0",
            comment="Per experiment: degrees of freedom of the split (variants with a share, less one).",
        ),
        Recording(
            rec.SRM_CHI_SQUARED,
            f"sum without (variant) (({calls} - {expected}) ^ 2 / {expected})\n"
            f"and\n{block(every_variant_ready)}",
            comment="Per experiment: Pearson's chi-squared statistic of calls per variant against the "
            f"planned split, once every variant has {srm.min_calls_per_variant} calls.",
        ),
        Recording(
            rec.SRM_CRITICAL_VALUE,
            critical,
            comment=f"Per experiment: the chi-squared statistic with its degrees of freedom that has "
            f"p = {num(srm.p_value_below)}.",
        ),
        Recording(
            rec.SRM,
            f"{rec.SRM_CHI_SQUARED.selector} > bool {rec.SRM_CRITICAL_VALUE.selector}",
            comment="Per experiment: 1 when calls do not follow the planned split "
            f"(p < {num(srm.p_value_below)}).",
        ),
    ]


def recording_group(q: Promql, config: RulesConfig) -> Group:
    buckets = f"{m.VARIANT_DURATION.name}_bucket"
    p95 = q.aggregate(m.VARIANT_DURATION, buckets, keep=(*VARIANT, "le"), suffix="_bucket")
    return Group(
        "llmopt.experiments",
        (
            *_sample_ratio(q, config),
            *_statistics(q, config),
            Recording(
                rec.VARIANT_LATENCY_P95,
                f"histogram_quantile(0.95, {p95})",
                comment="Per variant: 95th percentile latency of its calls, interpolated within buckets.",
            ),
            *_against_control(q, config),
            *_decision(config),
        ),
    )


def alerts(q: Promql, config: RulesConfig) -> tuple[Alert, ...]:
    checks = config.experiments
    srm, guardrail, winner = checks.sample_ratio_mismatch, checks.guardrail, checks.unsupported_winner
    within = winner.within
    declared = q.aggregate(m.EXPERIMENT_WINNER, m.EXPERIMENT_WINNER.name, keep=VARIANT, op="max")
    primary = rec.EFFECT_VERDICT.where(metric=checks.primary_metric).selector
    last_primary = f"last_over_time({primary}[{within}])"
    control_lately = f"last_over_time({m.EXPERIMENT_CONTROL.name}[{within}])"
    was_control = q.aggregate(m.EXPERIMENT_CONTROL, control_lately, keep=VARIANT, op="max")
    # Only experiments the rules could judge: with a control (so with verdicts) while they ran.
    was_judged = q.aggregate(m.EXPERIMENT_CONTROL, control_lately, keep=("experiment",), op="max")
    level = percent(checks.confidence)
    return (
        Alert(
            "LLMOptExperimentSampleRatioMismatch",
            f"{rec.SRM_CHI_SQUARED.selector}\nand\n{rec.SRM.selector} == 1",
            srm.severity,
            "An experiment's traffic does not follow its planned split.",
            "Experiment {{ $labels.experiment }}: calls per variant differ from the planned split "
            f'(chi-squared {{{{ $value | printf "%.1f" }}}}, p < {num(srm.p_value_below)}). Assignment or '
            "logging is broken for some variant; its results cannot be trusted.",
            for_=srm.for_,
        ),
        Alert(
            "LLMOptExperimentGuardrail",
            f"{rec.EFFECT_DIFFERENCE.selector}\nand\n{rec.GUARDRAIL.selector} == 1",
            guardrail.severity,
            "An experiment variant is worse than control on a guardrail metric.",
            "Variant {{ $labels.variant }} of experiment {{ $labels.experiment }} is worse than control "
            'on {{ $labels.metric }} (variant minus control: {{ $value | printf "%.4g" }}); its '
            f"always-valid {level} interval excludes no harm.",
            for_=guardrail.for_,
        ),
        Alert(
            "LLMOptExperimentUnsupportedWinner",
            block(
                block(f"time() - {declared}", f"< {seconds(within)}"),
                f"and ignoring (variant)\n{was_judged}",
                f"unless ignoring (metric)\n{last_primary} == 1",
            )
            + "\nunless\n"
            + block(
                was_control,
                f"unless ignoring (variant)\nmax without (variant, metric) ({last_primary} == 1)",
            ),
            winner.severity,
            "An experiment was completed with a winner its data does not support.",
            "Experiment {{ $labels.experiment }} was completed {{ $value | humanizeDuration }} ago with "
            f"winner {{{{ $labels.variant }}}}, but the always-valid {level} interval of "
            f"{checks.primary_metric} does not show it better than control"
            " (or, with control as winner, shows another variant better).",
            comment=f"For {within} after the optimizer names a winner of an experiment with a control: "
            f"a variant whose last verdict on {checks.primary_metric} was not 'better', or control while "
            "some variant's was.",
        ),
    )
