"""Every series the recording rules write, declared once: its name and the labels its rule sets.

``mixin/rules.py`` says how each is computed; the alerts, the dashboards, the runbooks, the metrics
catalog and ``incident-context`` name them through these objects, never by typing a rule name, so
renaming one here renames it everywhere, and a test renders everything with another config and
finds every name still defined.

Names follow ``level:metric:operation``: the level is ``llmopt`` for values of the whole optimizer,
or the labels kept (``model``, ``error_type``, ``bandit_arm``...) followed by the full metric name;
the operation ends with its window. The SLO rules take their window from ``alerts/config.yml``, so
they are :class:`Windowed` families: ``SLO_QUALITY.over("7d")`` is ``llmopt:slo_quality:mean7d``.

Standard library only: ``tools/incident.py`` imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Recorded:
    """A series name recording rules write, with the labels one rule sets (none for the family)."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    def where(self, **labels: str) -> Recorded:
        """The series of the one rule of this family that sets ``labels``: ``quantile="0.95"``."""
        return Recorded(self.name, (*self.labels, *labels.items()))

    @property
    def selector(self) -> str:
        """A selector of exactly these series: the name, with the labels the rule sets."""
        return self.select()

    def select(self, *matchers: str) -> str:
        """A selector with more ``matchers`` (``'model=~"$model"'``) before the labels the rule sets."""
        parts = [*matchers, *(f'{label}="{value}"' for label, value in self.labels)]
        return f"{self.name}{{{', '.join(parts)}}}" if parts else self.name


@dataclass(frozen=True)
class Windowed:
    """Recorded series that differ only by a window ``alerts/config.yml`` sets: ``prefix<window>``."""

    prefix: str

    def over(self, window: str) -> Recorded:
        return Recorded(f"{self.prefix}{window}")

    @property
    def pattern(self) -> str:
        """The names for prose: ``llmopt:slo_burn_rate:ratio_rate<window>``."""
        return f"{self.prefix}<window>"

    @property
    def every(self) -> str:
        """A selector of the series over every window: ``{__name__=~"llmopt:slo_burn_rate:ratio_rate.+"}``."""
        return f'{{__name__=~"{re.escape(self.prefix)}.+"}}'


@dataclass(frozen=True)
class ByDimensions:
    """Recorded series that keep declared dimensions (``alerts/config.yml``, ``dimensions``): their
    level is the dimensions' names, ``team_application:llmopt_llm_cost_usd:rate1h``. Written only
    when dimensions are declared."""

    rest: str

    def by(self, *dimensions: str) -> Recorded:
        return Recorded(f"{'_'.join(dimensions)}:{self.rest}")

    def over(self, window: str) -> ByDimensions:
        """The family over a window ``alerts/config.yml`` sets (``rest`` ends where it goes)."""
        return ByDimensions(f"{self.rest}{window}")

    @property
    def pattern(self) -> str:
        """The names for prose: ``<dimensions>:llmopt_llm_cost_usd:rate1h``."""
        return f"<dimensions>:{self.rest}"


# --- LLM calls (group llmopt.requests) ------------------------------------------------------------
LLM_REQUESTS_RATE5M = Recorded("llmopt:llm_requests:rate5m")
LLM_REQUEST_ERRORS_RATE5M = Recorded("llmopt:llm_request_errors:rate5m")
LLM_REQUEST_ERRORS_RATIO5M = Recorded("llmopt:llm_request_errors:ratio_rate5m")
LLM_REQUESTS_SUCCESS_RATIO5M = Recorded("llmopt:llm_requests_success:ratio_rate5m")
ERRORS_BY_TYPE_RATE5M = Recorded("error_type:llmopt_llm_request_errors:rate5m")
LATENCY_BUCKETS_RATE5M = Recorded("llmopt:llm_request_duration_seconds_bucket:rate5m")
# One rule per quantile, with the label quantile="0.95".
LATENCY_QUANTILE5M = Recorded("llmopt:llm_request_duration_seconds:quantile_rate5m")
LATENCY_MEAN5M = Recorded("llmopt:llm_request_duration_seconds:mean5m")
# Streamed calls: one rule per quantile of the time to first token, with the label quantile="0.95".
TTFT_QUANTILE5M = Recorded("llmopt:llm_time_to_first_token_seconds:quantile_rate5m")
OUTPUT_TOKENS_PER_SECOND5M = Recorded("llmopt:llm_output_tokens_per_second:ratio_rate5m")
# Calls cut at the token limit (finish_reason length), of the calls that reported a finish reason.
TRUNCATED_RATIO5M = Recorded("llmopt:llm_truncated:ratio_rate5m")
RETRIES_RATIO5M = Recorded("llmopt:llm_retries:ratio_rate5m")
LOGICAL_CALLS_RATE5M = Recorded("llmopt:llm_logical_calls:rate5m")
LOGICAL_CALL_ERRORS_RATIO5M = Recorded("llmopt:llm_logical_call_errors:ratio_rate5m")
FALLBACKS_RATE5M = Recorded("from_model_model:llmopt_llm_fallbacks:rate5m")
FALLBACKS_RATIO5M = Recorded("llmopt:llm_fallbacks:ratio_rate5m")

# --- Models, quality, tokens (group llmopt.models) ------------------------------------------------
QUALITY_MEAN5M = Recorded("llmopt:llm_quality_score:mean5m")
QUALITY_MEAN1H = Recorded("llmopt:llm_quality_score:mean1h")
QUALITY_IMPROVEMENT1H = Recorded("llmopt:llm_quality_improvement:ratio_mean1h")
MODEL_LATENCY_MEAN1H = Recorded("model:llmopt_llm_request_duration_seconds:mean1h")
MODEL_QUALITY_MEAN1H = Recorded("model:llmopt_llm_quality_score:mean1h")
MODEL_DIMENSION_QUALITY_MEAN1H = Recorded("model_dimension:llmopt_llm_quality_dimension_score:mean1h")
TOKENS_PER_REQUEST_MEAN1H = Recorded("llmopt:llm_request_tokens:mean1h")
CACHED_TOKENS_RATIO1H = Recorded("llmopt:llm_cached_tokens:ratio_rate1h")
REASONING_TOKENS_RATIO1H = Recorded("llmopt:llm_reasoning_tokens:ratio_rate1h")

# --- Cost (group llmopt.cost) ---------------------------------------------------------------------
COST_PER_REQUEST1H = Recorded("llmopt:llm_cost_usd_per_request:ratio_rate1h")
COST_PER_SUCCESS1H = Recorded("llmopt:llm_cost_usd_per_successful_request:ratio_rate1h")
SPEND1D = Recorded("llmopt:spend_usd:increase1d")
SPEND_BY_CATEGORY1D = Recorded("category:llmopt_spend_usd:increase1d")
BUDGET_UTILIZATION1D = Recorded("llmopt:budget_utilization:ratio_increase1d")
SAVINGS1D = Recorded("llmopt:llm_cost_savings_usd:increase1d")
SAVINGS_RATIO1D = Recorded("llmopt:llm_cost_savings:ratio_increase1d")
SPEND_CHANGE1D = Recorded("llmopt:spend_usd:change_ratio_1d")
SPEND_TREND1D = Recorded("llmopt:spend_usd:trend_1d")

# --- By declared dimensions (group llmopt.dimensions) ---------------------------------------------
# Kept by every declared dimension at once.
DIMENSIONS_REQUESTS_RATE5M = ByDimensions("llmopt_llm_requests:rate5m")
DIMENSIONS_ERRORS_RATIO5M = ByDimensions("llmopt_llm_request_errors:ratio_rate5m")
DIMENSIONS_COST_RATE1H = ByDimensions("llmopt_llm_cost_usd:rate1h")
# The availability SLI (logical calls that succeeded) by every declared dimension, over the SLO's
# window: DIMENSIONS_AVAILABILITY.over("30d").by("team").
DIMENSIONS_AVAILABILITY = ByDimensions("llmopt_slo_availability:ratio_rate")
# Scoped budgets, by the one dimension the budgets of alerts/config.yml name: the daily budget of
# each scope (alerts/config.yml's, else the one budget limit events report), its spend of the last
# 24 hours, and the hours what is left of its budget lasts at its spend rate of the last hour
# (DIMENSIONS_COST_RATE1H by that dimension; +Inf while it spends nothing, 0 once spent).
SCOPE_BUDGET = ByDimensions("llmopt_budget_usd:daily")
SCOPE_SPEND1D = ByDimensions("llmopt_llm_cost_usd:increase1d")
SCOPE_BUDGET_HOURS_LEFT = ByDimensions("llmopt_budget_hours_left:rate1h")

# --- User feedback (group llmopt.feedback) --------------------------------------------------------
THUMBS1D = Recorded("llmopt:feedback_thumbs:increase1d")
THUMBS_UP_RATIO1D = Recorded("llmopt:feedback_thumbs_up:ratio_increase1d")
THUMBS_DOWN_RATIO1D = Recorded("llmopt:feedback_thumbs_down:ratio_increase1d")
NPS_RESPONSES7D = Recorded("llmopt:feedback_nps_responses:increase7d")
NPS7D = Recorded("llmopt:feedback_nps:score_increase7d")
CSAT7D = Recorded("llmopt:feedback_csat:ratio_increase7d")

# --- Experiments, bandits, parameters, ROI (group llmopt.optimization) ----------------------------
EXPERIMENTS_WON_RATIO30D = Recorded("llmopt:experiments_won:ratio_increase30d")
WINNER_IMPROVEMENT_MEAN30D = Recorded("llmopt:experiment_winner_improvement_ratio:mean30d")
EXPERIMENT_SAMPLE_SIZE_MEAN30D = Recorded("llmopt:experiment_sample_size:mean30d")
EXPERIMENT_DURATION_MEAN30D = Recorded("llmopt:experiment_duration_seconds:mean30d")
PARAMETER_UPDATES1H = Recorded("llmopt:parameter_updates:increase1h")
BANDIT_EXPLORE_RATIO1H = Recorded("bandit:llmopt_bandit_pulls_explore:ratio_rate1h")
BANDIT_REWARD_MEAN1D = Recorded("bandit:llmopt_bandit_reward:mean1d")
ARM_REWARD_SUM1D = Recorded("bandit_arm:llmopt_bandit_reward_sum:increase1d")
ARM_REWARD_COUNT1D = Recorded("bandit_arm:llmopt_bandit_reward_count:increase1d")
ARM_REWARD_SQUARES1D = Recorded("bandit_arm:llmopt_bandit_reward_squares:increase1d")
ARM_REWARD_MEAN1D = Recorded("bandit_arm:llmopt_bandit_reward:mean1d")
ARM_REWARD_CI95_HALF_WIDTH1D = Recorded("bandit_arm:llmopt_bandit_reward:ci95_half_width1d")
# Two rules, with the label bound="lower" and bound="upper".
ARM_REWARD_CI95_1D = Recorded("bandit_arm:llmopt_bandit_reward:ci95_1d")
ROI_MULTIPLE30D = Recorded("llmopt:roi_multiple:ratio_increase30d")
ROI_PAYBACK30D = Recorded("llmopt:roi_payback_period_seconds:ratio_rate30d")

# --- Experiment checks (group llmopt.experiments) ---------------------------------------------------
# Each variant of a running experiment: its calls, and per compared metric (label metric="quality",
# "errors"...) its sample count, mean (a share for errors, slow calls and thumbs up) and variance.
VARIANT_CALLS = Recorded("experiment_variant:llmopt_experiment_variant_requests:sum")
# The calls each variant would have by the planned split (its share of the experiment's calls).
VARIANT_EXPECTED_CALLS = Recorded("experiment_variant:llmopt_experiment_variant_requests:expected")
VARIANT_METRIC_COUNT = Recorded("experiment_variant:llmopt_experiment_metric:count")
VARIANT_METRIC_MEAN = Recorded("experiment_variant:llmopt_experiment_metric:mean")
VARIANT_METRIC_VARIANCE = Recorded("experiment_variant:llmopt_experiment_metric:variance")
VARIANT_LATENCY_P95 = Recorded("experiment_variant:llmopt_experiment_variant_request_duration_seconds:p95")
# Each variant against control, per metric, once both have the minimum sample: the difference
# (variant - control), its standard error, the samples behind it (variant + control), the half width
# of its always-valid interval, the interval (bound="lower" and bound="upper") and the verdict
# (1 better than control, -1 worse, 0 not known).
EFFECT_DIFFERENCE = Recorded("experiment_variant:llmopt_experiment_effect:difference")
EFFECT_STDERR = Recorded("experiment_variant:llmopt_experiment_effect:stderr")
EFFECT_SAMPLES = Recorded("experiment_variant:llmopt_experiment_effect:samples")
EFFECT_HALF_WIDTH = Recorded("experiment_variant:llmopt_experiment_effect:cs_half_width")
EFFECT_INTERVAL = Recorded("experiment_variant:llmopt_experiment_effect:cs")
EFFECT_VERDICT = Recorded("experiment_variant:llmopt_experiment_effect:verdict")
# 1 where a guardrail metric's verdict is worse; the decide signal per variant.
GUARDRAIL = Recorded("experiment_variant:llmopt_experiment_guardrail:bool")
DECISION = Recorded("experiment_variant:llmopt_experiment_decision:bool")
# Sample ratio mismatch per experiment: the chi-squared statistic of calls against the planned split
# (once every variant has the minimum), its degrees of freedom, the critical value, and 1 on mismatch.
SRM_CHI_SQUARED = Recorded("experiment:llmopt_experiment_srm:chi_squared")
SRM_DEGREES_OF_FREEDOM = Recorded("experiment:llmopt_experiment_srm:degrees_of_freedom")
SRM_CRITICAL_VALUE = Recorded("experiment:llmopt_experiment_srm:critical_value")
SRM = Recorded("experiment:llmopt_experiment_srm:bool")

# --- Incidents (group llmopt.incidents) -----------------------------------------------------------
INCIDENTS30D = Recorded("llmopt:incidents:increase30d")
INCIDENTS_RESOLVED30D = Recorded("llmopt:incidents_resolved:increase30d")
INCIDENT_DOWNTIME30D = Recorded("llmopt:incident_downtime_seconds:increase30d")
MTBF30D = Recorded("llmopt:incident_time_between_failures_seconds:mean30d")
MTTR30D = Recorded("llmopt:incident_time_to_recovery_seconds:mean30d")

# --- SLOs (slo.rules.yml); each rule of an SLO with budget carries the label slo="<name>" ----------
SLO_OBJECTIVE = Recorded("llmopt:slo_objective:ratio")
SLO_ERRORS = Windowed("llmopt:slo_errors:ratio_rate")
SLO_BURN_RATE = Windowed("llmopt:slo_burn_rate:ratio_rate")
SLO_BUDGET_REMAINING = Recorded("llmopt:slo_error_budget_remaining:ratio")
SLO_AVAILABILITY = Windowed("llmopt:slo_availability:ratio_rate")
SLO_LATENCY = Windowed("llmopt:slo_latency:ratio_rate")
SLO_TTFT = Windowed("llmopt:slo_ttft:ratio_rate")
SLO_QUALITY = Windowed("llmopt:slo_quality:mean")
SLO_COST = Windowed("llmopt:slo_cost_usd_per_successful_request:ratio_rate")
# 1 when an SLO's error budget is nearly spent: the optimizer halts (client: should_halt_optimization).
OPTIMIZATION_HALT = Recorded("llmopt:optimization_halt:bool")
