"""The Prometheus rule files of ``alerts/``, rendered from ``alerts/config.yml``:

``recording.rules.yml``
    one recording rule per derived value of the metrics taxonomy (rates, ratios, quantiles, means,
    savings, NPS, bandit arm intervals...);
``slo.rules.yml``
    the SLIs over their windows, error ratios and burn rates per alerting window, the normalised
    error budget remaining and the optimization halt signal;
``alerting.rules.yml``
    the optimizer alerts, the absence alerts, the Watchdog and the SLO alerts.

The series every recording rule writes are declared in :mod:`mixin.recorded`, with their names;
the rules here say how each is computed, and refer to each other through those declarations, as
the alerts, dashboards, runbooks and catalog do. Every aggregation sums the replica labels away and
sums numerators and denominators before dividing, so several exporter replicas give the same
answer as one. Every metric a rule names comes from :mod:`app.metrics`. The rules also say which
taxonomy IDs they serve (:func:`taxonomy_map`), for the metrics catalog.

``make generate`` (``python -m tools.generate``) writes the files; commit them.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from app import metrics as m
from app.dimensions import DIMENSIONED
from app.dimensions import Declared as DeclaredDimensions
from app.events import LABEL_PATTERN
from app.metrics import MetricSpec
from mixin import recorded as rec
from mixin.recorded import Recorded

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "alerts" / "config.yml"
RULES_DIR = "alerts"

RECORDING_FILE = "recording.rules.yml"
SLO_FILE = "slo.rules.yml"
ALERTING_FILE = "alerting.rules.yml"

LATENCY_QUANTILES = ("0.5", "0.75", "0.9", "0.95", "0.99", "0.999", "1")
TTFT_QUANTILES = ("0.5", "0.95", "0.99")
# Rule groups with windows of a day or more run every 3 minutes: cheap, and still under the
# 5-minute lookback, so queries of their results never fall into a gap.
SLOW_INTERVAL = "3m"

# --- Configuration -------------------------------------------------------------------------------

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]+[smhdw]$")]
Severity = Literal["critical", "warning", "info"]
Ratio = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AvailabilitySlo(_Section):
    objective: Ratio
    window: Duration


class LatencySlo(_Section):
    objective: Ratio
    threshold_seconds: Positive
    window: Duration


class TtftSlo(_Section):
    objective: Ratio
    threshold_seconds: Positive
    window: Duration


class QualitySlo(_Section):
    min_average_score: Annotated[float, Field(ge=0, le=100)]
    window: Duration


class CostSlo(_Section):
    max_usd_per_successful_request: Positive
    window: Duration


class Slos(_Section):
    availability: AvailabilitySlo
    latency: LatencySlo
    ttft: TtftSlo
    quality: QualitySlo
    cost: CostSlo


class HighErrorRate(_Section):
    error_ratio_above: Ratio
    for_: Duration = Field(alias="for")
    severity: Severity


class HighLatency(_Section):
    p95_seconds_above: Positive
    for_: Duration = Field(alias="for")
    severity: Severity


def _label_value(value: str) -> str:
    if not re.match(LABEL_PATTERN, value):
        raise ValueError(f"{value!r} is not a label value the exporter accepts")
    return value


class BudgetExceeded(_Section):
    daily_budget_usd: Positive
    # Daily budgets of scopes: dimension -> its value -> US dollars per day.
    scopes: dict[str, dict[Annotated[str, AfterValidator(_label_value)], Positive]] = Field(
        default_factory=dict
    )
    for_: Duration = Field(alias="for")
    severity: Severity


class RatioAbove(_Section):
    """An alert on a share of calls over a threshold: truncated answers, fallbacks."""

    ratio_above: Ratio
    for_: Duration = Field(alias="for")
    severity: Severity


class QualityDegradation(_Section):
    score_below: Annotated[float, Field(gt=0, le=100)]
    for_: Duration = Field(alias="for")
    severity: Severity


class OptimizationStuck(_Section):
    no_improvement_for: Duration
    severity: Severity


class Held(_Section):
    """An alert whose condition is only a duration: exporter down, optimizer silent, SLO missed."""

    for_: Duration = Field(alias="for")
    severity: Severity


class ErrorBudgetLow(_Section):
    remaining_below: Ratio
    severity: Severity


class CriticalEventLogged(_Section):
    """A critical log entry of an optimizer service pages; the alert lasts ``window`` after it."""

    window: Duration
    severity: Severity


class BurnWindow(_Section):
    long: Duration
    short: Duration
    factor: Positive
    for_: Duration = Field(alias="for")
    severity: Severity


class Alerts(_Section):
    high_error_rate: HighErrorRate
    high_latency: HighLatency
    budget_exceeded: BudgetExceeded
    budget_exhaustion_forecast: Held
    quality_degradation: QualityDegradation
    truncation: RatioAbove
    fallback_storm: RatioAbove
    optimization_stuck: OptimizationStuck
    exporter_down: Held
    optimizer_silent: Held
    slo_missed: Held
    error_budget_low: ErrorBudgetLow
    error_budget_burn: tuple[BurnWindow, ...] = Field(min_length=1)
    critical_event_logged: CriticalEventLogged
    series_overflow: Held


ExperimentMetric = Literal["quality", "cost", "latency", "errors", "slow_calls", "thumbs_up"]


class SampleRatioMismatch(_Section):
    p_value_below: Ratio
    min_calls_per_variant: Annotated[int, Field(ge=1)]
    for_: Duration = Field(alias="for")
    severity: Severity


class Guardrail(_Section):
    metrics: tuple[ExperimentMetric, ...] = Field(min_length=1)
    for_: Duration = Field(alias="for")
    severity: Severity


class UnsupportedWinner(_Section):
    within: Duration
    severity: Severity


class ExperimentChecks(_Section):
    """How the rules judge the optimizer's experiments (see :mod:`mixin.experiments`)."""

    confidence: Ratio
    tuning: Positive
    min_samples_per_variant: Annotated[int, Field(ge=2)]
    primary_metric: ExperimentMetric
    sample_ratio_mismatch: SampleRatioMismatch
    guardrail: Guardrail
    unsupported_winner: UnsupportedWinner


class RulesConfig(_Section):
    """Everything ``alerts/config.yml`` may say; unknown keys are errors."""

    exporter_job: Annotated[str, StringConstraints(min_length=1)]
    replica_labels: tuple[str, ...]
    dimensions: DeclaredDimensions = Field(default_factory=dict)

    @model_validator(mode="after")
    def _scopes_are_dimensions(self) -> RulesConfig:
        for dimension in self.alerts.budget_exceeded.scopes:
            if dimension not in self.dimensions:
                declared = ", ".join(self.dimensions) or "none"
                raise ValueError(
                    f"alerts.budget_exceeded.scopes: {dimension!r} is not a declared dimension "
                    f"(dimensions: {declared})"
                )
        return self

    runbook_url_base: Annotated[str, StringConstraints(pattern=r"^https?://\S+[^/]$")]
    cost_trend_stable_within: Ratio
    slos: Slos
    alerts: Alerts
    experiments: ExperimentChecks


class ConfigError(ValueError):
    """The rules config cannot be rendered; the message names the file and the offending key."""


def load_config(path: Path) -> RulesConfig:
    """Read and validate a rules config file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: {err}") from err
    try:
        config = RulesConfig.model_validate(document)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in err.errors()
        )
        raise ConfigError(f"{path}: {problems}") from err
    # An SLI over a threshold reads the bucket at the threshold: it must be one.
    for slo in budget_slos(config):
        spec = slo.histogram
        if spec is not None and slo.threshold_seconds not in spec.buckets:
            bounds = ", ".join(bucket_bound(bound) for bound in spec.buckets)
            raise ConfigError(
                f"{path}: slos.{slo.name}.threshold_seconds: {slo.threshold_seconds} is not a bucket "
                f"boundary of {spec.name} ({bounds})"
            )
    return config


# --- Rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Serve:
    """A taxonomy ID a recording rule answers: see :func:`serve`."""

    taxonomy_id: str
    matcher: str
    is_family: bool


@dataclass(frozen=True)
class Recording:
    """A recording rule: the series it writes (declared in :mod:`mixin.recorded`, with the labels the
    rule sets) and how it is computed. ``serves`` lists the taxonomy IDs it answers."""

    series: Recorded
    expr: str
    serves: tuple[Serve, ...] = ()
    comment: str = ""


@dataclass(frozen=True)
class Alert:
    """An alerting rule; rendering adds the ``runbook_url`` annotation."""

    alert: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = "0s"
    labels: Mapping[str, str] = field(default_factory=dict)
    comment: str = ""


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Recording | Alert, ...]
    interval: str | None = None


def serve(taxonomy_id: str, matcher: str = "", *, is_family: bool = False) -> Serve:
    """A taxonomy ID a recording rule answers; ``matcher`` picks its series (``category="token"``).
    ``is_family``: every rule that writes the name answers it together (both bounds of an interval)."""
    return Serve(taxonomy_id, matcher, is_family)


def seconds(duration: str) -> int:
    """Seconds in a one-unit Prometheus duration such as ``30d``."""
    return int(duration[:-1]) * _UNIT_SECONDS[duration[-1]]


def human_duration(total_seconds: float) -> str:
    """The two largest units of a duration, rounded down: ``2d 2h``, ``1h 40m``, ``5d``."""
    remaining = round(total_seconds)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):
        count, remaining = divmod(remaining, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2]) or "0s"


def bucket_bound(value: float) -> str:
    """An ``le`` label value as prometheus_client writes it for latency buckets: 1.0, 0.64, 5.0."""
    return repr(float(value))


def num(value: float) -> str:
    """A number as PromQL and people read it: 0.001 rather than 0.0010000000000000009."""
    return format(value, ".12g")


def percent(ratio: float) -> str:
    return f"{num(ratio * 100)}%"


def usd(amount: float) -> str:
    return f"${num(amount)}" if amount == int(amount) else f"${amount:.2f}"


class Promql:
    """PromQL over the exporter's declared metrics, aggregated across replicas.

    ``keep`` names the domain labels the result keeps; every other label of the metric (the
    declared dimensions among them, on the metrics that carry them) and the replica labels are
    summed away with ``without``, so labels added by the scrape (cluster, environment) survive and
    deployments stay apart.
    """

    def __init__(self, replica_labels: Sequence[str], dimensions: Sequence[str] = ()) -> None:
        self.replica_labels = tuple(replica_labels)
        self.dimensions = tuple(dimensions)

    @classmethod
    def of(cls, config: RulesConfig) -> Promql:
        return cls(config.replica_labels, tuple(config.dimensions))

    def aggregate(
        self, spec: MetricSpec, inner: str, *, keep: Sequence[str] = (), suffix: str = "", op: str = "sum"
    ) -> str:
        labels = (*spec.labels, *self.dimensions) if spec in DIMENSIONED else spec.labels
        labels = (*labels, "le") if suffix == "_bucket" else labels
        dropped = [*self.replica_labels, *(label for label in labels if label not in keep)]
        return f"{op} without ({', '.join(dropped)}) ({inner})"

    def _range(
        self,
        function: str,
        spec: MetricSpec,
        window: str,
        keep: Sequence[str],
        suffix: str,
        match: str,
        offset: str,
    ) -> str:
        selector = f"{spec.name}{suffix}{{{match}}}" if match else f"{spec.name}{suffix}"
        shifted = f" offset {offset}" if offset else ""
        return self.aggregate(spec, f"{function}({selector}[{window}]{shifted})", keep=keep, suffix=suffix)

    def rate(
        self, spec: MetricSpec, window: str, *, keep: Sequence[str] = (), suffix: str = "", match: str = ""
    ) -> str:
        return self._range("rate", spec, window, keep, suffix, match, "")

    def increase(
        self,
        spec: MetricSpec,
        window: str,
        *,
        keep: Sequence[str] = (),
        suffix: str = "",
        match: str = "",
        offset: str = "",
    ) -> str:
        return self._range("increase", spec, window, keep, suffix, match, offset)

    def latest(self, spec: MetricSpec) -> str:
        """The highest value any replica reports for a gauge."""
        return self.aggregate(spec, spec.name, op="max")

    def mean(self, spec: MetricSpec, window: str, *, keep: Sequence[str] = ()) -> str:
        """Mean of a histogram or summary over a window: summed ``_sum`` over summed ``_count``."""
        total = self.rate(spec, window, keep=keep, suffix="_sum")
        count = self.rate(spec, window, keep=keep, suffix="_count")
        return f"{total}\n/\n{count}"


def block(*parts: str) -> str:
    """Parts of an expression in parentheses, one under the other, indented by two spaces."""
    body = "\n".join(textwrap.indent(part, "  ") for part in parts)
    return f"(\n{body}\n)"


def _or_zero(expr: str, like: str) -> str:
    """``expr``, or 0 for every series of ``like`` where ``expr`` has none yet (counters that appear
    on their first increment)."""
    return block(expr, "or", f"{like} * 0")


# --- Recording rules for the taxonomy ------------------------------------------------------------


def _requests_group(q: Promql) -> Group:
    finished = q.rate(m.LLM_FINISH_REASONS, "5m")
    truncated = q.rate(m.LLM_FINISH_REASONS, "5m", match='finish_reason="length"')
    req, err = rec.LLM_REQUESTS_RATE5M.selector, rec.LLM_REQUEST_ERRORS_RATE5M.selector
    retries = _or_zero(q.rate(m.LLM_RETRIES, "5m"), req)
    failures = q.rate(m.LLM_FAILURES, "5m")
    buckets = rec.LATENCY_BUCKETS_RATE5M.selector
    quantile_ids = {
        "0.5": "median",
        "0.75": "p75",
        "0.9": "p90",
        "0.95": "p95",
        "0.99": "p99",
        "0.999": "p999",
        "1": "max",
    }
    quantiles = tuple(
        Recording(
            rec.LATENCY_QUANTILE5M.where(quantile=quantile),
            f"histogram_quantile({quantile}, {buckets})",
            serves=(serve(f"SystemMetrics.latency.{quantile_ids[quantile]}"),),
            comment=(
                "Upper bound of the slowest non-empty bucket, not an exact maximum."
                if quantile == "1"
                else f"{quantile} quantile of LLM call latency, interpolated within buckets."
            ),
        )
        for quantile in LATENCY_QUANTILES
    )
    return Group(
        "llmopt.requests",
        (
            Recording(
                rec.LLM_REQUESTS_RATE5M,
                q.rate(m.LLM_REQUESTS, "5m"),
                serves=(serve("SystemMetrics.requests.rate"),),
                comment="LLM calls per second.",
            ),
            Recording(
                rec.LLM_REQUEST_ERRORS_RATE5M,
                _or_zero(q.rate(m.LLM_REQUEST_ERRORS, "5m"), req),
                serves=(serve("SystemMetrics.errors.rate"),),
                comment="Failed LLM calls per second; 0, not empty, before the first failure.",
            ),
            Recording(
                rec.LLM_REQUEST_ERRORS_RATIO5M,
                f"{err}\n/\n{req}",
                serves=(serve("SystemMetrics.errors.errorRate"),),
                comment="Share of LLM calls that failed.",
            ),
            Recording(
                rec.LLM_REQUESTS_SUCCESS_RATIO5M,
                f"1 - {err} / {req}",
                serves=(serve("SystemMetrics.requests.successRate"),),
                comment="Share of LLM calls that succeeded.",
            ),
            Recording(
                rec.ERRORS_BY_TYPE_RATE5M,
                q.rate(m.LLM_REQUEST_ERRORS, "5m", keep=("error_type",)),
                serves=(serve("SystemMetrics.errors.byType"),),
                comment="Failed LLM calls per second by type.",
            ),
            Recording(
                rec.LATENCY_BUCKETS_RATE5M,
                q.rate(m.LLM_REQUEST_DURATION, "5m", keep=("le",), suffix="_bucket"),
                comment="Latency bucket rates of all LLM calls; the quantiles below read them.",
            ),
            *quantiles,
            Recording(
                rec.LATENCY_MEAN5M,
                q.mean(m.LLM_REQUEST_DURATION, "5m"),
                serves=(serve("SystemMetrics.latency.mean"),),
                comment="Mean latency of LLM calls.",
            ),
            *(
                Recording(
                    rec.TTFT_QUANTILE5M.where(quantile=quantile),
                    f"histogram_quantile({quantile}, "
                    f"{q.rate(m.LLM_TIME_TO_FIRST_TOKEN, '5m', keep=('le',), suffix='_bucket')})",
                    comment=f"{quantile} quantile of the time to first token of streamed LLM calls.",
                )
                for quantile in TTFT_QUANTILES
            ),
            Recording(
                rec.OUTPUT_TOKENS_PER_SECOND5M,
                f"{q.rate(m.LLM_TIME_PER_OUTPUT_TOKEN, '5m', suffix='_count')}\n/\n"
                f"{q.rate(m.LLM_TIME_PER_OUTPUT_TOKEN, '5m', suffix='_sum')}",
                comment="Output tokens per second after the first token, of streamed calls: the inverse of "
                "the mean time per output token.",
            ),
            Recording(
                rec.TRUNCATED_RATIO5M,
                f"{_or_zero(truncated, finished)}\n/\n{finished}",
                comment="Share of the LLM calls reporting a finish reason that were cut at the token limit "
                "(finish_reason length).",
            ),
            Recording(
                rec.RETRIES_RATIO5M,
                f"{retries}\n/\n{req}",
                comment="Share of LLM calls that were a later try of a logical call (a retry or a fallback).",
            ),
            Recording(
                rec.LOGICAL_CALLS_RATE5M,
                f"{req} - {retries}",
                comment="Logical LLM calls per second: every call less the later tries.",
            ),
            Recording(
                rec.LOGICAL_CALL_ERRORS_RATIO5M,
                f"clamp_min({failures} - {retries}, 0)\n/\n{rec.LOGICAL_CALLS_RATE5M.selector}",
                comment="Share of logical LLM calls whose last try failed. Each later try follows a failed "
                "one, so the failures of logical calls are the failed tries less the later tries (both "
                "counted from a label set's first call on; the availability SLO counts the same way).",
            ),
            Recording(
                rec.FALLBACKS_RATE5M,
                q.rate(m.LLM_FALLBACKS, "5m", keep=("from_model", "model")),
                comment="Fallbacks per second, by the model replaced (from_model) and the model used.",
            ),
            Recording(
                rec.FALLBACKS_RATIO5M,
                f"{_or_zero(q.rate(m.LLM_FALLBACKS, '5m'), req)}\n/\n{req}",
                comment="Share of LLM calls made in place of another model's failed try.",
            ),
        ),
    )


def _models_group(q: Promql) -> Group:
    dimensions = ("accuracy", "relevance", "coherence", "completeness")
    input_tokens = q.rate(m.LLM_TOKENS, "1h", match='direction="input"')
    output_tokens = q.rate(m.LLM_TOKENS, "1h", match='direction="output"')
    return Group(
        "llmopt.models",
        (
            Recording(
                rec.QUALITY_MEAN5M,
                q.mean(m.LLM_QUALITY, "5m"),
                comment="Average quality score (0-100) of LLM responses; QualityDegradation reads it.",
            ),
            Recording(
                rec.QUALITY_MEAN1H,
                q.mean(m.LLM_QUALITY, "1h"),
                serves=(serve("BusinessMetrics.qualityImprovement.current"),),
                comment="Average quality score (0-100) of LLM responses over the last hour.",
            ),
            Recording(
                rec.QUALITY_IMPROVEMENT1H,
                f"{rec.QUALITY_MEAN1H.selector}\n/\n{q.latest(m.QUALITY_BASELINE)}\n- 1",
                serves=(serve("BusinessMetrics.qualityImprovement.improvement"),),
                comment="Quality now relative to the reported baseline (0.05 = 5 % better).",
            ),
            Recording(
                rec.MODEL_LATENCY_MEAN1H,
                q.mean(m.LLM_REQUEST_DURATION, "1h", keep=("model",)),
                serves=(serve("ModelMetrics.modelUsage.avgLatency"),),
                comment="Mean latency per model.",
            ),
            Recording(
                rec.MODEL_QUALITY_MEAN1H,
                q.mean(m.LLM_QUALITY, "1h", keep=("model",)),
                serves=(
                    serve("ModelMetrics.modelUsage.avgQuality"),
                    serve("ModelMetrics.qualityMetrics.composite"),
                ),
                comment="Average composite quality score per model.",
            ),
            Recording(
                rec.MODEL_DIMENSION_QUALITY_MEAN1H,
                q.mean(m.LLM_QUALITY_DIMENSION, "1h", keep=("model", "dimension")),
                serves=tuple(
                    serve(f"ModelMetrics.qualityMetrics.{d}", f'dimension="{d}"') for d in dimensions
                ),
                comment="Average score per model and quality dimension.",
            ),
            Recording(
                rec.TOKENS_PER_REQUEST_MEAN1H,
                q.mean(m.LLM_REQUEST_TOKENS, "1h"),
                serves=(serve("ModelMetrics.tokens.avgPerRequest"),),
                comment="Tokens (input + output) per LLM call that reported tokens.",
            ),
            Recording(
                rec.CACHED_TOKENS_RATIO1H,
                f"{_or_zero(q.rate(m.LLM_CACHED_TOKENS, '1h'), input_tokens)}\n/\n{input_tokens}",
                serves=(serve("ModelMetrics.tokens.cacheHitRate"),),
                comment="Share of input tokens served from the provider's prompt cache.",
            ),
            Recording(
                rec.REASONING_TOKENS_RATIO1H,
                f"{_or_zero(q.rate(m.LLM_REASONING_TOKENS, '1h'), output_tokens)}\n/\n{output_tokens}",
                comment="Share of output tokens the models spent on reasoning.",
            ),
        ),
    )


def _cost_group(q: Promql, config: RulesConfig) -> Group:
    spend = rec.SPEND1D.selector
    savings = rec.SAVINGS1D.selector
    change = rec.SPEND_CHANGE1D.selector
    stable = num(config.cost_trend_stable_within)
    requests_1h = q.rate(m.LLM_REQUESTS, "1h")
    successes_1h = block(requests_1h, "-", _or_zero(q.rate(m.LLM_REQUEST_ERRORS, "1h"), requests_1h))
    categories = (
        ("token", "tokenCost"),
        ("compute", "computeCost"),
        ("infrastructure", "infrastructureCost"),
    )
    return Group(
        "llmopt.cost",
        (
            Recording(
                rec.COST_PER_REQUEST1H,
                f"{q.rate(m.LLM_COST, '1h')}\n/\n{requests_1h}",
                serves=(serve("OptimizationMetrics.costOptimization.avgCostPerRequest"),),
                comment="US dollars per LLM call.",
            ),
            Recording(
                rec.COST_PER_SUCCESS1H,
                f"{q.rate(m.LLM_COST, '1h')}\n/\n{successes_1h}",
                comment="US dollars per successful LLM call (failed calls cost too).",
            ),
            Recording(
                rec.SPEND1D,
                q.increase(m.SPEND, "1d"),
                serves=(serve("BusinessMetrics.totalCost.value"),),
                comment="Everything spent in the last 24 hours (token, compute, infrastructure).",
            ),
            Recording(
                rec.SPEND_BY_CATEGORY1D,
                q.increase(m.SPEND, "1d", keep=("category",)),
                serves=tuple(
                    serve(f"BusinessMetrics.totalCost.breakdown.{field_}", f'category="{category}"')
                    for category, field_ in categories
                ),
                comment="Spend of the last 24 hours by category.",
            ),
            Recording(
                rec.BUDGET_UTILIZATION1D,
                f"{spend} / {num(config.alerts.budget_exceeded.daily_budget_usd)}",
                serves=(serve("OptimizationMetrics.costOptimization.budgetUtilization"),),
                comment="Spend of the last 24 hours over the daily budget of alerts/config.yml (1 = spent).",
            ),
            Recording(
                rec.SAVINGS1D,
                f"{q.increase(m.LLM_BASELINE_COST, '1d')}\n-\n{q.increase(m.LLM_COST, '1d')}",
                serves=(serve("BusinessMetrics.costSavings.absolute"),),
                comment="US dollars saved in the last 24 hours against the baseline configuration.",
            ),
            Recording(
                rec.SAVINGS_RATIO1D,
                f"{savings}\n/\n{q.increase(m.LLM_BASELINE_COST, '1d')}",
                serves=(serve("BusinessMetrics.costSavings.relative"),),
                comment="Savings as a share of the baseline cost (0.23 = 23 % cheaper).",
            ),
            Recording(
                rec.SPEND_CHANGE1D,
                f"{spend}\n/\n{q.increase(m.SPEND, '1d', offset='1d')}\n- 1",
                comment="Spend of the last 24 hours relative to the 24 hours before (0.1 = 10 % more).",
            ),
            Recording(
                rec.SPEND_TREND1D,
                f"({change} > bool {stable}) - ({change} < bool -{stable})",
                serves=(serve("OptimizationMetrics.costOptimization.costTrend"),),
                comment="Cost trend: 1 increasing, 0 stable "
                f"(within ±{percent(config.cost_trend_stable_within)}), -1 decreasing.",
            ),
        ),
    )


def _dimensions_groups(q: Promql, config: RulesConfig) -> tuple[Group, ...]:
    """Calls, errors, cost and availability by the declared dimensions, and the scoped budgets
    (only rendered when dimensions are declared); what reads a day or more, every SLOW_INTERVAL."""
    dimensions = tuple(config.dimensions)
    requests = rec.DIMENSIONS_REQUESTS_RATE5M.by(*dimensions).selector
    cost_rate = rec.DIMENSIONS_COST_RATE1H.by(*dimensions).selector
    rules: list[Recording] = [
        Recording(
            rec.DIMENSIONS_REQUESTS_RATE5M.by(*dimensions),
            q.rate(m.LLM_REQUESTS, "5m", keep=dimensions),
            comment=f"LLM calls per second by {', '.join(dimensions)}.",
        ),
        Recording(
            rec.DIMENSIONS_ERRORS_RATIO5M.by(*dimensions),
            f"{_or_zero(q.rate(m.LLM_REQUEST_ERRORS, '5m', keep=dimensions), requests)}\n/\n{requests}",
            comment=f"Share of LLM calls that failed, by {', '.join(dimensions)}.",
        ),
        Recording(
            rec.DIMENSIONS_COST_RATE1H.by(*dimensions),
            q.rate(m.LLM_COST, "1h", keep=dimensions),
            comment=f"US dollars per second spent on LLM calls, by {', '.join(dimensions)}.",
        ),
    ]
    slow: list[Recording] = [
        Recording(
            rec.DIMENSIONS_AVAILABILITY.over(config.slos.availability.window).by(*dimensions),
            f"1 - {block(_logical_failures(q, config.slos.availability.window, dimensions))}",
            comment=f"Availability SLI by {', '.join(dimensions)}: share of logical LLM calls that "
            f"succeeded over {config.slos.availability.window}.",
        ),
    ]
    for dimension, budgets in config.alerts.budget_exceeded.scopes.items():
        others = [name for name in dimensions if name != dimension]
        rate = rec.DIMENSIONS_COST_RATE1H.by(dimension).selector
        if others:  # else the rule above is this one
            rules.append(
                Recording(
                    rec.DIMENSIONS_COST_RATE1H.by(dimension),
                    f"sum without ({', '.join(others)}) ({cost_rate})",
                    comment=f"US dollars per second spent on LLM calls, by {dimension}.",
                )
            )
        budget = rec.SCOPE_BUDGET.by(dimension).selector
        spend = rec.SCOPE_SPEND1D.by(dimension).selector
        # The budgets of alerts/config.yml, else those the optimizer reports (budget limit events
        # of period day with the scope's labels).
        declared = [
            f'label_replace(vector({num(limit)}), "{dimension}", "{value}", "", "")'
            for value, limit in budgets.items()
        ]
        reported = q.aggregate(
            m.BUDGET_LIMIT,
            f'{m.BUDGET_LIMIT.name}{{period="day", {dimension}!=""}}',
            keep=(dimension,),
            op="max",
        )
        rules.append(
            Recording(
                rec.SCOPE_BUDGET.by(dimension),
                "\nor\n".join(declared) + (f"\nor on ({dimension})\n" if declared else "") + reported,
                comment=f"The daily budget of each {dimension}, in US dollars: alerts/config.yml's, else the "
                "one the optimizer reports (budget limit events of period day with its labels).",
            )
        )
        slow += [
            Recording(
                rec.SCOPE_SPEND1D.by(dimension),
                q.increase(m.LLM_COST, "1d", keep=(dimension,)),
                comment=f"What the LLM calls of each {dimension} cost in the last 24 hours.",
            ),
            Recording(
                rec.SCOPE_BUDGET_HOURS_LEFT.by(dimension),
                f"clamp_min({budget} - on ({dimension}) {spend}, 0)\n/ on ({dimension})\n({rate} * 3600)",
                comment=f"Hours until a {dimension}'s daily budget is spent at its spend rate of the last "
                "hour (+Inf while it spends nothing, 0 once spent).",
            ),
        ]
    return (
        Group("llmopt.dimensions", tuple(rules)),
        Group("llmopt.dimensions.slow", tuple(slow), interval=SLOW_INTERVAL),
    )


def _budget_alerts(config: RulesConfig) -> tuple[Alert, ...]:
    """Per scope of alerts.budget_exceeded.scopes: spent, and on the way to be spent today."""
    a = config.alerts
    alerts: list[Alert] = []
    for dimension in a.budget_exceeded.scopes:
        budget = rec.SCOPE_BUDGET.by(dimension).selector
        spend = rec.SCOPE_SPEND1D.by(dimension).selector
        rate = rec.DIMENSIONS_COST_RATE1H.by(dimension).selector
        scope = f"{{{{ $labels.{dimension} }}}}"
        exceeded = f"{spend} > on ({dimension}) {budget}"
        alerts += [
            Alert(
                "LLMOptBudgetExceeded",
                exceeded,
                a.budget_exceeded.severity,
                "A scope's daily spend is over its budget.",
                f'{dimension} {scope} spent ${{{{ $value | printf "%.2f" }}}} on LLM calls in the last 24 '
                "hours, more than its daily budget.",
                for_=a.budget_exceeded.for_,
                labels={"scope": dimension},
            ),
            Alert(
                "LLMOptBudgetExhaustionForecast",
                f"{rate} * 86400 > on ({dimension}) {budget}\nunless on ({dimension})\n{exceeded}",
                a.budget_exhaustion_forecast.severity,
                "A scope is on its way to spend more than its daily budget.",
                f"At its spend rate of the last hour, a day of the LLM calls of {dimension} {scope} costs "
                '${{ $value | printf "%.2f" }}: more than its daily budget.',
                for_=a.budget_exhaustion_forecast.for_,
                labels={"scope": dimension},
            ),
        ]
    return tuple(alerts)


def _feedback_group(q: Promql) -> Group:
    thumbs = rec.THUMBS1D.selector
    nps = rec.NPS_RESPONSES7D.selector

    def thumbs_ratio(rating: str) -> str:
        rated = q.increase(m.FEEDBACK_THUMBS, "1d", match=f'rating="{rating}"')
        return f"{_or_zero(rated, thumbs)}\n/\n{thumbs}"

    def nps_share(category: str) -> str:
        return _or_zero(q.increase(m.FEEDBACK_NPS, "7d", match=f'category="{category}"'), nps)

    return Group(
        "llmopt.feedback",
        (
            Recording(
                rec.THUMBS1D,
                q.increase(m.FEEDBACK_THUMBS, "1d"),
                comment="Thumbs given in the last 24 hours.",
            ),
            Recording(
                rec.THUMBS_UP_RATIO1D,
                thumbs_ratio("up"),
                serves=(serve("BusinessMetrics.userSatisfaction.thumbsUpRate"),),
                comment="Share of thumbs that were up.",
            ),
            Recording(
                rec.THUMBS_DOWN_RATIO1D,
                thumbs_ratio("down"),
                serves=(serve("BusinessMetrics.userSatisfaction.thumbsDownRate"),),
                comment="Share of thumbs that were down.",
            ),
            Recording(
                rec.NPS_RESPONSES7D,
                q.increase(m.FEEDBACK_NPS, "7d"),
                comment="NPS answers of the last 7 days.",
            ),
            Recording(
                rec.NPS7D,
                f"100 * {block(nps_share('promoter'), '-', nps_share('detractor'))}\n/\n{nps}",
                serves=(serve("BusinessMetrics.userSatisfaction.nps"),),
                comment="Net Promoter Score, -100 to 100: % promoters (9-10) minus % detractors (0-6).",
            ),
            Recording(
                rec.CSAT7D,
                f"{q.increase(m.FEEDBACK_CSAT_SATISFIED, '7d')}\n/\n{q.increase(m.FEEDBACK_CSAT, '7d')}",
                serves=(serve("BusinessMetrics.userSatisfaction.csat"),),
                comment="CSAT: share of answers of 4 or 5 on the 1-5 scale.",
            ),
        ),
        interval=SLOW_INTERVAL,
    )


def _optimization_group(q: Promql) -> Group:
    arm = ("bandit", "arm")
    reward_sum = rec.ARM_REWARD_SUM1D.selector
    reward_count = rec.ARM_REWARD_COUNT1D.selector
    reward_squares = rec.ARM_REWARD_SQUARES1D.selector
    arm_mean = rec.ARM_REWARD_MEAN1D.selector
    half_width = rec.ARM_REWARD_CI95_HALF_WIDTH1D.selector
    all_pulls = q.rate(m.BANDIT_PULLS, "1h", keep=("bandit",))
    completed = q.increase(m.EXPERIMENTS_COMPLETED, "30d")
    won = q.increase(m.EXPERIMENTS_COMPLETED, "30d", match='outcome="won"')
    explored = q.rate(m.BANDIT_PULLS, "1h", keep=("bandit",), match='decision="explore"')
    return Group(
        "llmopt.optimization",
        (
            Recording(
                rec.EXPERIMENTS_WON_RATIO30D,
                f"{won}\n/\n{completed}",
                serves=(serve("OptimizationMetrics.abTesting.winRate"),),
                comment="Share of the experiments completed in 30 days that found a winner.",
            ),
            Recording(
                rec.WINNER_IMPROVEMENT_MEAN30D,
                q.mean(m.EXPERIMENT_IMPROVEMENT, "30d"),
                serves=(serve("OptimizationMetrics.abTesting.avgImprovementWhenWon"),),
                comment="Average improvement of the winners of the last 30 days (0.05 = 5 %).",
            ),
            Recording(
                rec.EXPERIMENT_SAMPLE_SIZE_MEAN30D,
                q.mean(m.EXPERIMENT_SAMPLE_SIZE, "30d"),
                serves=(serve("OptimizationMetrics.abTesting.avgSampleSize"),),
                comment="Average sample size of the experiments completed in 30 days.",
            ),
            Recording(
                rec.EXPERIMENT_DURATION_MEAN30D,
                q.mean(m.EXPERIMENT_DURATION, "30d"),
                serves=(serve("OptimizationMetrics.abTesting.avgDurationHours"),),
                comment="Average duration in seconds of the experiments completed in 30 days.",
            ),
            Recording(
                rec.PARAMETER_UPDATES1H,
                q.increase(m.PARAMETER_UPDATES, "1h"),
                serves=(serve("OptimizationMetrics.parameterOptimization.optimizationFrequency"),),
                comment="Parameter updates in the last hour.",
            ),
            Recording(
                rec.BANDIT_EXPLORE_RATIO1H,
                f"{_or_zero(explored, all_pulls)}\n/\n{all_pulls}",
                serves=(serve("OptimizationMetrics.bandit.explorationRate"),),
                comment="Share of each bandit's pulls that explored.",
            ),
            Recording(
                rec.BANDIT_REWARD_MEAN1D,
                q.mean(m.BANDIT_REWARD, "1d", keep=("bandit",)),
                serves=(serve("OptimizationMetrics.bandit.avgReward"),),
                comment="Average reward of each bandit over the last 24 hours.",
            ),
            Recording(
                rec.ARM_REWARD_SUM1D,
                q.increase(m.BANDIT_REWARD, "1d", keep=arm, suffix="_sum"),
                comment="Per arm: sum of rewards (S) of the last 24 hours.",
            ),
            Recording(
                rec.ARM_REWARD_COUNT1D,
                q.increase(m.BANDIT_REWARD, "1d", keep=arm, suffix="_count"),
                comment="Per arm: number of rewards (n) of the last 24 hours.",
            ),
            Recording(
                rec.ARM_REWARD_SQUARES1D,
                q.increase(m.BANDIT_REWARD_SQUARES, "1d", keep=arm),
                comment="Per arm: sum of squared rewards (Q) of the last 24 hours.",
            ),
            Recording(
                rec.ARM_REWARD_MEAN1D,
                f"{reward_sum} / {reward_count}",
                serves=(serve("OptimizationMetrics.bandit.armStatistics.avgReward"),),
                comment="Per arm: mean reward S/n.",
            ),
            Recording(
                rec.ARM_REWARD_CI95_HALF_WIDTH1D,
                f"1.96 * sqrt(\n  clamp_min({reward_squares} - {reward_sum} ^ 2 / {reward_count}, 0)\n"
                f"  / ({reward_count} - 1 > 0)\n  / {reward_count}\n)",
                comment="Per arm: half width of the normal 95 % interval of the mean, 1.96 * sqrt(s^2 / n) "
                "with the sample variance s^2 = (Q - S^2/n) / (n - 1); absent below two rewards.",
            ),
            Recording(
                rec.ARM_REWARD_CI95_1D.where(bound="lower"),
                f"{arm_mean} - {half_width}",
                serves=(serve("OptimizationMetrics.bandit.armStatistics.confidence", is_family=True),),
                comment="Per arm: lower bound of the 95 % interval of the mean reward.",
            ),
            Recording(
                rec.ARM_REWARD_CI95_1D.where(bound="upper"),
                f"{arm_mean} + {half_width}",
                comment="Per arm: upper bound of the 95 % interval of the mean reward.",
            ),
            Recording(
                rec.ROI_MULTIPLE30D,
                f"{q.increase(m.VALUE_DERIVED, '30d')}\n/\n{q.increase(m.OPTIMIZATION_COST, '30d')}",
                serves=(serve("BusinessMetrics.roi.roiMultiple"),),
                comment="Value derived per dollar the optimization cost, over 30 days.",
            ),
            Recording(
                rec.ROI_PAYBACK30D,
                f"{q.increase(m.OPTIMIZATION_COST, '30d')}\n/\n{q.rate(m.VALUE_DERIVED, '30d')}",
                serves=(serve("BusinessMetrics.roi.paybackPeriod"),),
                comment="Seconds the value derived takes to repay 30 days of optimization cost, at the "
                "value rate of those 30 days.",
            ),
        ),
        interval=SLOW_INTERVAL,
    )


def _incidents_group(q: Promql) -> Group:
    incidents = rec.INCIDENTS30D.selector
    downtime = rec.INCIDENT_DOWNTIME30D.selector
    resolved = rec.INCIDENTS_RESOLVED30D.selector
    return Group(
        "llmopt.incidents",
        (
            Recording(
                rec.INCIDENTS30D,
                q.increase(m.INCIDENTS, "30d"),
                serves=(serve("SystemMetrics.availability.incidentCount"),),
                comment="Incidents opened in 30 days.",
            ),
            Recording(
                rec.INCIDENTS_RESOLVED30D,
                q.increase(m.INCIDENTS_RESOLVED, "30d"),
                comment="Incidents resolved in 30 days.",
            ),
            Recording(
                rec.INCIDENT_DOWNTIME30D,
                q.increase(m.INCIDENT_DOWNTIME, "30d"),
                serves=(serve("SystemMetrics.availability.downtimeSeconds"),),
                comment="Downtime of the incidents resolved in 30 days, in seconds.",
            ),
            Recording(
                rec.MTBF30D,
                f"({seconds('30d')} - {downtime})\n/\n{incidents}",
                serves=(serve("SystemMetrics.availability.mtbf"),),
                comment="MTBF: time up in the 30 days per incident, in seconds.",
            ),
            Recording(
                rec.MTTR30D,
                f"{downtime}\n/\n{resolved}",
                serves=(serve("SystemMetrics.availability.mttr"),),
                comment="MTTR: downtime per resolved incident, in seconds.",
            ),
        ),
        interval=SLOW_INTERVAL,
    )


# --- SLO rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetSlo:
    """An SLO with an error budget: availability, or calls within a threshold of a histogram
    (``histogram`` and ``threshold_seconds``: latency, time to first token)."""

    name: str
    objective: float
    window: str
    statement: str
    bad_calls: str
    histogram: MetricSpec | None = None
    threshold_seconds: float = 0.0

    @property
    def budget(self) -> float:
        return 1 - self.objective


def budget_slos(config: RulesConfig) -> tuple[BudgetSlo, ...]:
    slos = config.slos
    return (
        BudgetSlo(
            "availability",
            slos.availability.objective,
            slos.availability.window,
            f"{percent(slos.availability.objective)} of LLM calls succeed, over {slos.availability.window}",
            "LLM calls that failed",
        ),
        BudgetSlo(
            "latency",
            slos.latency.objective,
            slos.latency.window,
            f"{percent(slos.latency.objective)} of LLM calls within {num(slos.latency.threshold_seconds)}s, "
            f"over {slos.latency.window}",
            f"LLM calls slower than {num(slos.latency.threshold_seconds)}s",
            m.LLM_REQUEST_DURATION,
            slos.latency.threshold_seconds,
        ),
        BudgetSlo(
            "ttft",
            slos.ttft.objective,
            slos.ttft.window,
            f"{percent(slos.ttft.objective)} of streamed LLM calls get their first token within "
            f"{num(slos.ttft.threshold_seconds)}s, over {slos.ttft.window}",
            f"streamed LLM calls whose first token took longer than {num(slos.ttft.threshold_seconds)}s",
            m.LLM_TIME_TO_FIRST_TOKEN,
            slos.ttft.threshold_seconds,
        ),
    )


@dataclass(frozen=True)
class Slis:
    """The series of the four SLIs, over the windows of ``alerts/config.yml``."""

    availability: Recorded
    latency: Recorded
    ttft: Recorded
    quality: Recorded
    cost: Recorded


def slis(config: RulesConfig) -> Slis:
    slos = config.slos
    return Slis(
        rec.SLO_AVAILABILITY.over(slos.availability.window).where(slo="availability"),
        rec.SLO_LATENCY.over(slos.latency.window).where(slo="latency"),
        rec.SLO_TTFT.over(slos.ttft.window).where(slo="ttft"),
        rec.SLO_QUALITY.over(slos.quality.window).where(slo="quality"),
        rec.SLO_COST.over(slos.cost.window).where(slo="cost"),
    )


# The burn-rate tiers of alerts/config.yml are stated for an SLO over this window (the SRE
# workbook's). Each SLO gets them scaled to its own window, so that each tier fires once the same
# share of that SLO's error budget is spent, whatever its window.
REFERENCE_WINDOW = "30d"
# Scaled windows are no shorter than these: a rate needs a few scrapes of the exporter.
MIN_LONG_WINDOW = "5m"
MIN_SHORT_WINDOW = "1m"


@dataclass(frozen=True)
class BurnTier:
    """One multiwindow burn-rate alert of one SLO: the budget rate ``factor`` exceeded over ``long``
    and ``short``; at that rate, ``budget_share`` of the budget is gone when ``long`` has passed."""

    long: str
    short: str
    factor: float
    for_: str
    severity: Severity
    budget_share: float


def burn_tiers(config: RulesConfig, slo: BudgetSlo) -> tuple[BurnTier, ...]:
    """The tiers of ``alerts.error_budget_burn``, scaled from REFERENCE_WINDOW to the SLO's window.

    Windows and ``for`` scale with the window (whole minutes, or seconds for ``for``; windows no
    shorter than MIN_LONG_WINDOW and MIN_SHORT_WINDOW); the factor is then whatever makes the tier
    spend the same share of the budget over its long window as in the reference.
    """
    scale = seconds(slo.window) / seconds(REFERENCE_WINDOW)
    tiers = []
    for tier in config.alerts.error_budget_burn:
        share = tier.factor * seconds(tier.long) / seconds(REFERENCE_WINDOW)
        long = _minutes(max(seconds(MIN_LONG_WINDOW), seconds(tier.long) * scale))
        short = _minutes(max(seconds(MIN_SHORT_WINDOW), seconds(tier.short) * scale))
        factor = float(format(share * seconds(slo.window) / seconds(long), ".4g"))
        for_ = duration(seconds(tier.for_) * scale)
        tiers.append(BurnTier(long, short, factor, for_, tier.severity, share))
    return tuple(tiers)


def duration(total_seconds: float) -> str:
    """A one-unit Prometheus duration of whole seconds, in the largest unit that divides it."""
    whole = round(total_seconds)
    for unit in ("d", "h", "m"):
        if whole and whole % _UNIT_SECONDS[unit] == 0:
            return f"{whole // _UNIT_SECONDS[unit]}{unit}"
    return f"{whole}s"


def _minutes(total_seconds: float) -> str:
    return duration(max(1, round(total_seconds / 60)) * 60)


def _slo_windows(config: RulesConfig, slo: BudgetSlo) -> list[str]:
    tiers = burn_tiers(config, slo)
    windows = {t.long for t in tiers} | {t.short for t in tiers} | {slo.window}
    return sorted(windows, key=seconds)


def _is_slow(window: str) -> bool:
    return seconds(window) >= seconds("1d")


def _bad_ratio(q: Promql, slo: BudgetSlo, window: str) -> str:
    """Share of LLM calls that count against the SLO over a window.

    Availability counts logical calls: a call retried (or fallen back) until it succeeded is one
    call that succeeded. Every later try follows a failed one, so logical calls are the tries less
    the later tries, and failed logical calls (whose last try failed) the failed tries less the
    later tries. Both counters start at 0 with a label set's first call, so rate() misses no failure
    or retry after it (retries are taken as 0 where an older exporter has none)."""
    if slo.histogram is None:
        return _logical_failures(q, window)
    calls = q.rate(slo.histogram, window, suffix="_count")
    fast = q.rate(
        slo.histogram, window, suffix="_bucket", match=f'le="{bucket_bound(slo.threshold_seconds)}"'
    )
    return f"{block(calls, '-', fast)}\n/\n{calls}"


def _logical_failures(q: Promql, window: str, keep: Sequence[str] = ()) -> str:
    """Share of logical LLM calls whose last try failed over a window (see :func:`_bad_ratio`),
    keeping ``keep``."""
    requests = q.rate(m.LLM_REQUESTS, window, keep=keep)
    retries = _or_zero(q.rate(m.LLM_RETRIES, window, keep=keep), requests)
    failures = q.rate(m.LLM_FAILURES, window, keep=keep)
    failed = textwrap.indent(block(failures, "-", retries), "  ")
    return f"clamp_min(\n{failed},\n  0\n)\n/\n{block(requests, '-', retries)}"


def _slo_groups(q: Promql, config: RulesConfig) -> tuple[Group, ...]:
    fast: list[Recording] = []
    slow: list[Recording] = []
    for slo in budget_slos(config):
        slow.append(
            Recording(
                rec.SLO_OBJECTIVE.where(slo=slo.name),
                f"vector({num(slo.objective)})",
                comment=f"The {slo.name} SLO: {slo.statement}.",
            )
        )
        for window in _slo_windows(config, slo):
            errors = rec.SLO_ERRORS.over(window).where(slo=slo.name)
            target = slow if _is_slow(window) else fast
            target.append(
                Recording(
                    errors,
                    _bad_ratio(q, slo, window),
                    comment=f"{slo.name.capitalize()} SLO: share of {slo.bad_calls} over {window}.",
                )
            )
            if any(window in (t.long, t.short) for t in burn_tiers(config, slo)):
                target.append(
                    Recording(
                        rec.SLO_BURN_RATE.over(window).where(slo=slo.name),
                        f"{errors.selector} / {num(slo.budget)}",
                        comment=f"{slo.name.capitalize()} SLO: error budget burn rate over {window} "
                        "(1 = the budget lasts exactly the SLO window).",
                    )
                )
        slow.append(
            Recording(
                rec.SLO_BUDGET_REMAINING.where(slo=slo.name),
                f"1 - {rec.SLO_ERRORS.over(slo.window).where(slo=slo.name).selector} / {num(slo.budget)}",
                comment=f"{slo.name.capitalize()} SLO: share of the {slo.window} error budget left; "
                "1 untouched, 0 or less exhausted (not clamped, so overspend shows).",
            )
        )
    slos, sli = config.slos, slis(config)
    slow += [
        Recording(
            sli.availability,
            f"1 - {rec.SLO_ERRORS.over(slos.availability.window).where(slo='availability').selector}",
            serves=(serve("SystemMetrics.availability.uptime"),),
            comment=f"Availability SLI: share of LLM calls that succeeded over {slos.availability.window}.",
        ),
        Recording(
            sli.latency,
            f"1 - {rec.SLO_ERRORS.over(slos.latency.window).where(slo='latency').selector}",
            comment=f"Latency SLI: share of LLM calls within {num(slos.latency.threshold_seconds)}s "
            f"over {slos.latency.window}.",
        ),
        Recording(
            sli.ttft,
            f"1 - {rec.SLO_ERRORS.over(slos.ttft.window).where(slo='ttft').selector}",
            comment=f"Time-to-first-token SLI: share of streamed LLM calls whose first token came within "
            f"{num(slos.ttft.threshold_seconds)}s over {slos.ttft.window}.",
        ),
        Recording(
            sli.quality,
            q.mean(m.LLM_QUALITY, slos.quality.window),
            comment=f"Quality SLI: average quality score over {slos.quality.window}.",
        ),
        Recording(
            sli.cost,
            _cost_per_success(q, slos.cost.window),
            comment=f"Cost SLI: US dollars of LLM calls per successful LLM call over {slos.cost.window}.",
        ),
    ]
    below = config.alerts.error_budget_low.remaining_below
    slow.append(
        Recording(
            rec.OPTIMIZATION_HALT,
            f"max without (slo) ({rec.SLO_BUDGET_REMAINING.selector} < bool {num(below)})"
            "\nor on ()\nvector(0)",
            comment=f"1 when an SLO has less than {percent(below)} of its error budget left: the optimizer "
            "should halt (the client's should_halt_optimization reads it). 0 otherwise, also without "
            "traffic or data.",
        )
    )
    return (
        Group("llmopt.slo.short-windows", tuple(fast)),
        Group("llmopt.slo.long-windows", tuple(slow), interval=SLOW_INTERVAL),
    )


def _cost_per_success(q: Promql, window: str) -> str:
    requests = q.rate(m.LLM_REQUESTS, window)
    failures = _or_zero(q.rate(m.LLM_REQUEST_ERRORS, window), requests)
    return f"{q.rate(m.LLM_COST, window)}\n/\n{block(requests, '-', failures)}"


# --- Alerts --------------------------------------------------------------------------------------


def _optimizer_alerts(config: RulesConfig) -> tuple[Alert, ...]:
    a = config.alerts
    stuck = a.optimization_stuck.no_improvement_for
    stuck_seconds = seconds(stuck)
    q = Promql.of(config)
    # The latest improvement any replica reported in that time, restarts or not.
    last_improvement = q.aggregate(
        m.LAST_IMPROVEMENT, f"max_over_time({m.LAST_IMPROVEMENT.name}[{stuck}])", op="max"
    )
    return (
        Alert(
            "LLMOptHighErrorRate",
            f"{rec.LLM_REQUEST_ERRORS_RATIO5M.selector} > {num(a.high_error_rate.error_ratio_above)}",
            a.high_error_rate.severity,
            "LLM calls are failing at a high rate.",
            "{{ $value | humanizePercentage }} of LLM calls failed over the last 5 minutes "
            f"(threshold {percent(a.high_error_rate.error_ratio_above)}).",
            for_=a.high_error_rate.for_,
            labels={"slo": "availability"},
        ),
        Alert(
            "LLMOptHighLatency",
            f"{rec.LATENCY_QUANTILE5M.where(quantile='0.95').selector} "
            f"> {num(a.high_latency.p95_seconds_above)}",
            a.high_latency.severity,
            "LLM calls are slow.",
            "The 95th percentile latency of LLM calls is {{ $value | humanizeDuration }} over the last "
            f"5 minutes (threshold {num(a.high_latency.p95_seconds_above)}s).",
            for_=a.high_latency.for_,
            labels={"slo": "latency"},
        ),
        Alert(
            "LLMOptBudgetExceeded",
            f"{rec.SPEND1D.selector} > {num(a.budget_exceeded.daily_budget_usd)}",
            a.budget_exceeded.severity,
            "Daily spend is over the budget.",
            '${{ $value | printf "%.2f" }} was spent in the last 24 hours; '
            f"the daily budget is {usd(a.budget_exceeded.daily_budget_usd)}.",
            for_=a.budget_exceeded.for_,
        ),
        Alert(
            "LLMOptQualityDegradation",
            f"{rec.QUALITY_MEAN5M.selector} < {num(a.quality_degradation.score_below)}",
            a.quality_degradation.severity,
            "The quality of LLM responses has dropped.",
            'The average quality score of LLM responses is {{ $value | printf "%.1f" }} over the last '
            f"5 minutes (threshold {num(a.quality_degradation.score_below)}).",
            for_=a.quality_degradation.for_,
            labels={"slo": "quality"},
        ),
        Alert(
            "LLMOptAnswersTruncated",
            f"{rec.TRUNCATED_RATIO5M.selector} > {num(a.truncation.ratio_above)}",
            a.truncation.severity,
            "Many LLM answers are cut at the token limit.",
            "{{ $value | humanizePercentage }} of the LLM calls that reported a finish reason stopped at "
            f"the token limit (finish_reason length) over the last 5 minutes (threshold "
            f"{percent(a.truncation.ratio_above)}). Truncated answers lower quality silently.",
            for_=a.truncation.for_,
        ),
        Alert(
            "LLMOptFallbackStorm",
            f"{rec.FALLBACKS_RATIO5M.selector} > {num(a.fallback_storm.ratio_above)}",
            a.fallback_storm.severity,
            "Many LLM calls fall back to another model.",
            "{{ $value | humanizePercentage }} of LLM calls over the last 5 minutes were made in place of "
            f"another model's failed try (threshold {percent(a.fallback_storm.ratio_above)}). The primary "
            "models are failing, and the fallbacks cost more, or answer worse.",
            for_=a.fallback_storm.for_,
        ),
        Alert(
            "LLMOptOptimizationStuck",
            block(
                f"time() - {last_improvement} > {stuck_seconds}",
                "or",
                f"absent({last_improvement}) * {stuck_seconds}\n"
                f'and on () count(up{{job="{config.exporter_job}"}} offset {stuck}) > 0',
            ),
            a.optimization_stuck.severity,
            "The optimizer has not improved anything for a long time.",
            "No improvement (a parameter update that helped, or an experiment won) for "
            f"{{{{ $value | humanizeDuration }}}} (threshold {stuck}).",
            comment=f"The last improvement any replica reported over the last {stuck}, so that a "
            "restart or a replica that has seen none cannot postpone it; with none reported in that "
            f"time, it fires once the exporter has been scraped for {stuck}.",
        ),
    )


def _health_alerts(config: RulesConfig) -> tuple[Alert, ...]:
    a = config.alerts
    job = f'up{{job="{config.exporter_job}"}}'
    per_job = ", ".join(label for label in config.replica_labels if label != "job")
    healthy = f"sum without ({per_job}) ({job})"
    critical = f'{m.LAST_LOG_EVENT.name}{{level="critical"}}'
    q = Promql.of(config)
    return (
        Alert(
            "LLMOptExporterDown",
            f"{block(healthy, 'or', f'absent({job}) - 1')} < 1",
            a.exporter_down.severity,
            "Prometheus cannot scrape the llmopt exporter.",
            "{{ $value }} targets of job {{ $labels.job }} are up: no LLM metrics are collected, so the "
            "cost, error and SLO alerts cannot fire.",
            for_=a.exporter_down.for_,
            comment="The number of healthy exporter targets: 0 when all are down, and also when none is "
            "discovered (absent() - 1).",
        ),
        Alert(
            "LLMOptOptimizerSilent",
            f"{q.rate(m.EVENTS_ACCEPTED, '5m')} == 0",
            a.optimizer_silent.severity,
            "The optimizer has stopped sending events.",
            f"The exporter accepted {{{{ $value }}}} events per second for {a.optimizer_silent.for_}: the "
            "optimizer is not reporting, so the LLM metrics are flat.",
            for_=a.optimizer_silent.for_,
            comment="Quiet while the exporter is down: LLMOptExporterDown covers that.",
        ),
        Alert(
            "LLMOptCriticalEventLogged",
            f"time() - {q.aggregate(m.LAST_LOG_EVENT, critical, keep=('level', 'component'), op='max')}"
            f" < {seconds(a.critical_event_logged.window)}",
            a.critical_event_logged.severity,
            "An optimizer service logged a critical event.",
            "Component {{ $labels.component }} logged a critical event {{ $value | humanizeDuration }} ago "
            f"(the alert lasts {a.critical_event_logged.window} after the last one). Its message, error and "
            "trace id are in the exporter's log (logger llmopt_exporter.optimizer).",
            comment="A critical entry of the client's logger pages at once. The receive time of the last "
            "one, not the counter: increase() misses a series' first increment.",
        ),
        Alert(
            "LLMOptSeriesOverflow",
            block(
                f"{q.rate(m.LABEL_OVERFLOW, '5m', keep=('metric',))} > 0",
                "or",
                f"{q.rate(m.SERIES_OVERFLOW, '5m', keep=('metric',))} > 0",
            ),
            a.series_overflow.severity,
            "Updates of an LLM metric are counted under __overflow__.",
            "{{ $value }} updates per second of {{ $labels.metric }} go to its __overflow__ label set "
            f"(for {a.series_overflow.for_}): a label has more values than its cap, or the metric or the "
            "exporter holds as many series as the budget allows. Those updates are counted, but no "
            "longer apart.",
            for_=a.series_overflow.for_,
            comment="Past label_value_limit (label overflow) or max_series_per_metric / max_series "
            "(series overflow), from the exporter's self-metrics.",
        ),
        Alert(
            "LLMOptWatchdog",
            "vector(1)",
            "none",
            "The alerting pipeline is working.",
            "This alert always fires (value {{ $value }}) and goes to a dead man's switch, which pages "
            "when it stops arriving: then Prometheus, its rules or Alertmanager are broken.",
            comment="A dead man's switch: routed to a heartbeat receiver, never silenced or inhibited.",
        ),
    )


def _slo_alerts(config: RulesConfig) -> tuple[Alert, ...]:
    a = config.alerts
    alerts: list[Alert] = []
    for slo in budget_slos(config):
        for window in burn_tiers(config, slo):
            factor = num(window.factor)
            exhaustion = human_duration(seconds(slo.window) / window.factor)
            alerts.append(
                Alert(
                    "LLMOptErrorBudgetBurn",
                    f"{rec.SLO_BURN_RATE.over(window.long).where(slo=slo.name).selector} > {factor}\nand\n"
                    f"{rec.SLO_BURN_RATE.over(window.short).where(slo=slo.name).selector} > {factor}",
                    window.severity,
                    f"The {slo.name} SLO is burning its error budget too fast.",
                    f"The {slo.name} error budget ({slo.statement}) is burning at "
                    f'{{{{ $value | printf "%.1f" }}}}x the sustainable rate over the last {window.long}, '
                    f"and above {factor}x over the last {window.short}. "
                    f"At {factor}x, {percent(window.budget_share)} of the budget goes in {window.long} "
                    f"and all of it in {exhaustion}.",
                    for_=window.for_,
                    labels={"slo": slo.name, "long": window.long, "short": window.short},
                )
            )
        below = a.error_budget_low.remaining_below
        alerts.append(
            Alert(
                "LLMOptErrorBudgetLow",
                f"{rec.SLO_BUDGET_REMAINING.where(slo=slo.name).selector} < {num(below)}",
                a.error_budget_low.severity,
                f"The {slo.name} SLO's error budget is nearly spent.",
                f"{{{{ $value | humanizePercentage }}}} of the {slo.name} error budget ({slo.statement}) "
                f"is left; below {percent(below)} the optimizer halts ({rec.OPTIMIZATION_HALT.name} is 1).",
                labels={"slo": slo.name},
            )
        )
    slos, sli = config.slos, slis(config)
    alerts += [
        Alert(
            "LLMOptSLOMissed",
            f"{sli.quality.name} < {num(slos.quality.min_average_score)}",
            a.slo_missed.severity,
            "The quality SLO is not met.",
            f'The average quality score over {slos.quality.window} is {{{{ $value | printf "%.1f" }}}}; '
            f"the objective is at least {num(slos.quality.min_average_score)}.",
            for_=a.slo_missed.for_,
            labels={"slo": "quality"},
        ),
        Alert(
            "LLMOptSLOMissed",
            f"{sli.cost.name} > {num(slos.cost.max_usd_per_successful_request)}",
            a.slo_missed.severity,
            "The cost SLO is not met.",
            f'LLM calls cost ${{{{ $value | printf "%.4f" }}}} per successful call over {slos.cost.window}; '
            f"the objective is at most {usd(slos.cost.max_usd_per_successful_request)}.",
            for_=a.slo_missed.for_,
            labels={"slo": "cost"},
        ),
    ]
    return tuple(alerts)


# --- Output --------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(value: object) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def _rule_document(rule: Recording | Alert, runbook_url_base: str) -> dict[str, object]:
    if isinstance(rule, Recording):
        document: dict[str, object] = {"record": rule.series.name, "expr": rule.expr}
        if rule.series.labels:
            document["labels"] = dict(rule.series.labels)
        return document
    document = {"alert": rule.alert, "expr": rule.expr}
    if seconds(rule.for_):
        document["for"] = rule.for_
    document["labels"] = {"severity": rule.severity, **rule.labels}
    document["annotations"] = {
        "summary": rule.summary,
        "description": rule.description,
        "runbook_url": f"{runbook_url_base}/{rule.alert}.md",
    }
    return document


def _indent(text: str, spaces: int) -> list[str]:
    return [(" " * spaces + line) if line else line for line in text.splitlines()]


def render_rule_file(title: str, groups: Sequence[Group], runbook_url_base: str) -> str:
    """One rule file, with its title and a comment above every rule."""
    lines = [f"# {title}", "groups:"]
    for group in groups:
        lines.append(f"  - name: {group.name}")
        if group.interval:
            lines.append(f"    interval: {group.interval}")
        lines.append("    rules:")
        for rule in group.rules:
            lines += [f"      # {line}" for line in textwrap.wrap(rule.comment, 100)]
            lines += _indent(_dump([_rule_document(rule, runbook_url_base)]), 6)
    return "\n".join(lines) + "\n"


def rule_groups(config: RulesConfig) -> dict[str, tuple[str, tuple[Group, ...]]]:
    """File name -> (title, groups) of every rule file."""
    # The experiment checks are built from this module's parts, so they are imported here.
    from mixin import experiments

    q = Promql.of(config)
    return {
        RECORDING_FILE: (
            "Recording rules for the derived values of the metrics taxonomy.",
            (
                _requests_group(q),
                _models_group(q),
                _cost_group(q, config),
                _feedback_group(q),
                _optimization_group(q),
                _incidents_group(q),
                experiments.recording_group(q, config),
                *(_dimensions_groups(q, config) if config.dimensions else ()),
            ),
        ),
        SLO_FILE: (
            "SLIs, error budgets, burn rates and the optimization halt signal.",
            _slo_groups(q, config),
        ),
        ALERTING_FILE: (
            "Alerts: the optimizer's five, exporter and optimizer health, the Watchdog, and the SLO alerts.",
            (
                Group("llmopt.alerts", _optimizer_alerts(config)),
                Group("llmopt.health", _health_alerts(config)),
                Group("llmopt.slo.alerts", _slo_alerts(config)),
                Group("llmopt.experiments.alerts", experiments.alerts(q, config)),
                *(
                    (Group("llmopt.budgets.alerts", _budget_alerts(config)),)
                    if config.alerts.budget_exceeded.scopes
                    else ()
                ),
            ),
        ),
    }


def taxonomy_map(config: RulesConfig) -> dict[str, str]:
    """Taxonomy ID -> a selector of the series of the recording rule that serves it: the labels the
    rule sets where other rules write the same name (``quantile="0.95"``), then the ID's matcher."""
    recordings = [
        rule
        for _, groups in rule_groups(config).values()
        for group in groups
        for rule in group.rules
        if isinstance(rule, Recording)
    ]
    rules_per_name = Counter(rule.series.name for rule in recordings)
    served: dict[str, str] = {}
    for rule in recordings:
        for served_id in rule.serves:
            is_one_of_several = rules_per_name[rule.series.name] > 1 and not served_id.is_family
            series = rule.series if is_one_of_several else Recorded(rule.series.name)
            served[served_id.taxonomy_id] = (
                series.select(served_id.matcher) if served_id.matcher else series.selector
            )
    return served


def render(config: RulesConfig) -> dict[str, str]:
    """File name -> content of each rule file (``recording.rules.yml``...), for a directory of rules."""
    return {
        name: render_rule_file(title, groups, config.runbook_url_base)
        for name, (title, groups) in rule_groups(config).items()
    }


def render_files(config: RulesConfig) -> dict[str, str]:
    """Repository path -> content of the rule files of ``alerts/``."""
    return {f"{RULES_DIR}/{name}": text for name, text in render(config).items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Render the rule files of another config into a directory (a deployment of its own, a test).
    The files of this repository are written by ``make generate``."""
    parser = argparse.ArgumentParser(
        prog="python -m mixin.rules",
        description="Render the Prometheus rule files of a rules config (like alerts/config.yml) into a "
        "directory. The repository's own files are written by make generate.",
    )
    parser.add_argument("--config", type=Path, required=True, help="the rules config to render")
    parser.add_argument("--output", type=Path, required=True, help="the directory to write the files to")
    args = parser.parse_args(argv)
    try:
        files = render(load_config(args.config))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.output.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.output / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.output / name}")
    return 0


if __name__ == "__main__":
    # Run as mixin.rules, the module mixin.experiments builds on, not as a second copy of it.
    from mixin.rules import main as _main

    sys.exit(_main())
