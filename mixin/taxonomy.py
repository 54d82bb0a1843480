"""Where each field of the event taxonomy lives: a metric, PromQL over metrics, or the logs.

One row per ID of ``docs/taxonomy-fields.txt``. ``served_by`` is PromQL (or a metric name) a user
can paste into Prometheus, or, where ``is_promql`` is false, words saying where the value lives.
The recording rule that precomputes a field, if any, says so itself (``serves`` in
:mod:`mixin.rules`); the catalog shows both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaxonomyRow:
    id: str
    served_by: str
    note: str = ""
    is_promql: bool = True


def _words(id_: str, served_by: str, note: str = "") -> TaxonomyRow:
    """A row served by something PromQL cannot say: a log field, a label, a formula in words."""
    return TaxonomyRow(id_, served_by, note, is_promql=False)


def _ratio(numerator: str, denominator: str) -> str:
    return f"{numerator} / {denominator}"


_REQ = "sum(rate(llmopt_llm_requests_total[5m]))"
_ERR = "sum(rate(llmopt_llm_request_errors_total[5m]))"
_DUR = "llmopt_llm_request_duration_seconds"


def _quantile(q: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({_DUR}_bucket[5m])))"


def _mean(metric: str, by: str = "", window: str = "1h") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({metric}_sum[{window}])) / sum{grouping}(rate({metric}_count[{window}]))"


_NPS = "llmopt_feedback_nps_responses_total"
_THUMBS = "llmopt_feedback_thumbs_total"
_ARM_MEAN = (
    "sum by (bandit, arm) (increase(llmopt_bandit_reward_sum[1d])) / "
    "sum by (bandit, arm) (increase(llmopt_bandit_reward_count[1d]))"
)

ROWS: tuple[TaxonomyRow, ...] = (
    # --- BusinessMetrics ------------------------------------------------------------------------
    TaxonomyRow(
        "BusinessMetrics.totalCost.value",
        "sum(increase(llmopt_spend_usd_total[1d]))",
        "`llmopt_spend_usd_total` sums token, compute and infrastructure spend.",
    ),
    _words(
        "BusinessMetrics.totalCost.period",
        "the range of `increase(llmopt_spend_usd_total[1h|1d|30d])`",
        "A period is a query window, not a stored value.",
    ),
    TaxonomyRow(
        "BusinessMetrics.totalCost.breakdown.tokenCost",
        'sum(increase(llmopt_spend_usd_total{category="token"}[1d]))',
        "From llm_request.cost_usd.",
    ),
    TaxonomyRow(
        "BusinessMetrics.totalCost.breakdown.computeCost",
        'sum(increase(llmopt_spend_usd_total{category="compute"}[1d]))',
        "From budget spend events.",
    ),
    TaxonomyRow(
        "BusinessMetrics.totalCost.breakdown.infrastructureCost",
        'sum(increase(llmopt_spend_usd_total{category="infrastructure"}[1d]))',
        "From budget spend events.",
    ),
    TaxonomyRow(
        "BusinessMetrics.costSavings.absolute",
        "sum(increase(llmopt_llm_baseline_cost_usd_total[1d])) - sum(increase(llmopt_llm_cost_usd_total[1d]))",
        "Baseline = what the same calls would have cost on the baseline configuration.",
    ),
    TaxonomyRow(
        "BusinessMetrics.costSavings.relative",
        "1 - sum(increase(llmopt_llm_cost_usd_total[1d])) / sum(increase(llmopt_llm_baseline_cost_usd_total[1d]))",
        "A ratio 0-1 (0.23 = 23 % cheaper).",
    ),
    TaxonomyRow(
        "BusinessMetrics.costSavings.confidence",
        "llmopt_cost_savings_confidence_ratio",
        "Reported by business events.",
    ),
    TaxonomyRow("BusinessMetrics.qualityImprovement.baseline", "llmopt_quality_baseline_score"),
    TaxonomyRow("BusinessMetrics.qualityImprovement.current", _mean("llmopt_llm_quality_score")),
    TaxonomyRow(
        "BusinessMetrics.qualityImprovement.improvement",
        f"({_mean('llmopt_llm_quality_score')}) / scalar(llmopt_quality_baseline_score) - 1",
        "A ratio (0.05 = 5 % better than baseline).",
    ),
    TaxonomyRow(
        "BusinessMetrics.qualityImprovement.confidence", "llmopt_quality_improvement_confidence_ratio"
    ),
    TaxonomyRow(
        "BusinessMetrics.userSatisfaction.nps",
        f'100 * (sum(increase({_NPS}{{category="promoter"}}[7d])) - sum(increase({_NPS}{{category="detractor"}}[7d]))) / sum(increase({_NPS}[7d]))',
        "-100 to 100.",
    ),
    TaxonomyRow(
        "BusinessMetrics.userSatisfaction.csat",
        "sum(increase(llmopt_feedback_csat_satisfied_total[7d])) / sum(increase(llmopt_feedback_csat_responses_total[7d]))",
        "Share of answers 4-5 on a 1-5 scale, 0-1.",
    ),
    TaxonomyRow(
        "BusinessMetrics.userSatisfaction.thumbsUpRate",
        f'sum(increase({_THUMBS}{{rating="up"}}[1d])) / sum(increase({_THUMBS}[1d]))',
    ),
    TaxonomyRow(
        "BusinessMetrics.userSatisfaction.thumbsDownRate",
        f'sum(increase({_THUMBS}{{rating="down"}}[1d])) / sum(increase({_THUMBS}[1d]))',
    ),
    TaxonomyRow("BusinessMetrics.roi.optimizationCost", "llmopt_optimization_cost_usd_total"),
    TaxonomyRow("BusinessMetrics.roi.valueDerived", "llmopt_value_derived_usd_total"),
    TaxonomyRow(
        "BusinessMetrics.roi.roiMultiple",
        "sum(increase(llmopt_value_derived_usd_total[30d])) / sum(increase(llmopt_optimization_cost_usd_total[30d]))",
    ),
    TaxonomyRow(
        "BusinessMetrics.roi.paybackPeriod",
        "sum(increase(llmopt_optimization_cost_usd_total[30d])) / sum(rate(llmopt_value_derived_usd_total[30d]))",
        "Seconds to earn back 30 days of optimization cost at the value rate of those days (/ 86400 for days).",
    ),
    # --- SystemMetrics --------------------------------------------------------------------------
    TaxonomyRow("SystemMetrics.requests.total", "sum(llmopt_llm_requests_total)"),
    TaxonomyRow(
        "SystemMetrics.requests.successful",
        "sum(llmopt_llm_requests_total) - sum(llmopt_llm_request_errors_total)",
        "Total minus failed: Prometheus practice keeps totals and failures, not a status label.",
    ),
    TaxonomyRow("SystemMetrics.requests.failed", "sum(llmopt_llm_request_errors_total)"),
    TaxonomyRow("SystemMetrics.requests.rate", _REQ, "Requests per second."),
    TaxonomyRow("SystemMetrics.requests.successRate", f"1 - {_ERR} / {_REQ}", "A ratio 0-1."),
    TaxonomyRow("SystemMetrics.latency.mean", _mean(_DUR, window="5m"), "Seconds."),
    TaxonomyRow("SystemMetrics.latency.median", _quantile("0.5")),
    TaxonomyRow("SystemMetrics.latency.p75", _quantile("0.75")),
    TaxonomyRow("SystemMetrics.latency.p90", _quantile("0.9")),
    TaxonomyRow("SystemMetrics.latency.p95", _quantile("0.95")),
    TaxonomyRow("SystemMetrics.latency.p99", _quantile("0.99")),
    TaxonomyRow("SystemMetrics.latency.p999", _quantile("0.999")),
    TaxonomyRow(
        "SystemMetrics.latency.max",
        _quantile("1"),
        "An upper bound: the highest non-empty bucket. Exact per-call maxima are in the "
        "trace behind each latency exemplar.",
    ),
    TaxonomyRow("SystemMetrics.errors.total", "sum(llmopt_llm_request_errors_total)"),
    TaxonomyRow("SystemMetrics.errors.rate", _ERR, "Errors per second."),
    TaxonomyRow("SystemMetrics.errors.errorRate", f"{_ERR} / {_REQ}", "A ratio 0-1."),
    TaxonomyRow(
        "SystemMetrics.errors.byType", "sum by (error_type) (rate(llmopt_llm_request_errors_total[5m]))"
    ),
    _words(
        "SystemMetrics.errors.recentErrors.timestamp",
        "the structured log (`timestamp`)",
        "Individual errors are log lines, not series: see the logging section of the README. Errors "
        "the client's logger reports (`log` events) are also written to the exporter's log and counted "
        "in `llmopt_log_events_total{level,component}`.",
    ),
    _words(
        "SystemMetrics.errors.recentErrors.type",
        "the structured log (`error.type`)",
        "Counted per type in `llmopt_llm_request_errors_total{error_type}`.",
    ),
    _words(
        "SystemMetrics.errors.recentErrors.message",
        "the structured log (`error.message`)",
        "Messages are unbounded, so never a label.",
    ),
    _words("SystemMetrics.errors.recentErrors.stackTrace", "the structured log (`error.stack`)"),
    TaxonomyRow(
        "SystemMetrics.availability.uptime",
        "1 - sum(increase(llmopt_llm_request_errors_total[30d])) / sum(increase(llmopt_llm_requests_total[30d]))",
        "The availability SLI (successful / total requests), 0-1.",
    ),
    TaxonomyRow(
        "SystemMetrics.availability.uptimeSeconds",
        "30 * 86400 - sum(increase(llmopt_incident_downtime_seconds_total[30d]))",
        "Over the 30-day SLO window.",
    ),
    TaxonomyRow(
        "SystemMetrics.availability.downtimeSeconds",
        "sum(increase(llmopt_incident_downtime_seconds_total[30d]))",
        "Time from opening to resolution of incidents.",
    ),
    TaxonomyRow("SystemMetrics.availability.incidentCount", "sum(increase(llmopt_incidents_total[30d]))"),
    TaxonomyRow(
        "SystemMetrics.availability.mtbf",
        "(30 * 86400 - sum(increase(llmopt_incident_downtime_seconds_total[30d]))) / sum(increase(llmopt_incidents_total[30d]))",
        "Seconds.",
    ),
    TaxonomyRow(
        "SystemMetrics.availability.mttr",
        "sum(increase(llmopt_incident_downtime_seconds_total[30d])) / sum(increase(llmopt_incidents_resolved_total[30d]))",
        "Seconds.",
    ),
    # --- OptimizationMetrics --------------------------------------------------------------------
    TaxonomyRow("OptimizationMetrics.abTesting.activeExperiments", "llmopt_experiments_active"),
    TaxonomyRow(
        "OptimizationMetrics.abTesting.completedExperiments", "sum(llmopt_experiments_completed_total)"
    ),
    TaxonomyRow(
        "OptimizationMetrics.abTesting.winRate",
        'sum(increase(llmopt_experiments_completed_total{outcome="won"}[30d])) / sum(increase(llmopt_experiments_completed_total[30d]))',
    ),
    TaxonomyRow(
        "OptimizationMetrics.abTesting.avgImprovementWhenWon",
        _mean("llmopt_experiment_winner_improvement_ratio", window="30d"),
    ),
    TaxonomyRow(
        "OptimizationMetrics.abTesting.avgSampleSize", _mean("llmopt_experiment_sample_size", window="30d")
    ),
    TaxonomyRow(
        "OptimizationMetrics.abTesting.avgDurationHours",
        _mean("llmopt_experiment_duration_seconds", window="30d"),
        "Seconds (base unit); / 3600 for hours.",
    ),
    TaxonomyRow(
        "OptimizationMetrics.abTesting.experimentsRolledBack", "llmopt_experiments_rolled_back_total"
    ),
    TaxonomyRow("OptimizationMetrics.bandit.totalPulls", "sum by (bandit) (llmopt_bandit_pulls_total)"),
    TaxonomyRow(
        "OptimizationMetrics.bandit.explorationRate",
        'sum by (bandit) (rate(llmopt_bandit_pulls_total{decision="explore"}[1h])) / sum by (bandit) (rate(llmopt_bandit_pulls_total[1h]))',
        "A ratio 0-1.",
    ),
    TaxonomyRow("OptimizationMetrics.bandit.cumulativeRegret", "llmopt_bandit_regret_total"),
    TaxonomyRow(
        "OptimizationMetrics.bandit.avgReward",
        "sum by (bandit) (increase(llmopt_bandit_reward_sum[1d])) / sum by (bandit) (increase(llmopt_bandit_reward_count[1d]))",
        "Over the last day: windows survive exporter restarts, lifetime totals do not.",
    ),
    TaxonomyRow(
        "OptimizationMetrics.bandit.convergenceTime",
        "llmopt_bandit_convergence_duration_seconds",
        "Seconds (the taxonomy counts hours; divide by 3600).",
    ),
    _words(
        "OptimizationMetrics.bandit.armStatistics.armId", "the `arm` label of `llmopt_bandit_pulls_total`"
    ),
    TaxonomyRow(
        "OptimizationMetrics.bandit.armStatistics.pulls",
        "sum by (bandit, arm) (increase(llmopt_bandit_pulls_total[1d]))",
    ),
    TaxonomyRow(
        "OptimizationMetrics.bandit.armStatistics.avgReward",
        _ARM_MEAN,
        "Over the last day: windows survive exporter restarts, lifetime totals do not.",
    ),
    _words(
        "OptimizationMetrics.bandit.armStatistics.confidence",
        "S / n ± 1.96 * sqrt((Q - S^2 / n) / (n - 1) / n), with S, Q and n the increase(...[1d]) of llmopt_bandit_reward_sum, llmopt_bandit_reward_squares_total and llmopt_bandit_reward_count",
        "95 % normal interval with the sample variance (n - 1), absent below two rewards; the rule "
        "records the lower and the upper bound.",
    ),
    TaxonomyRow(
        "OptimizationMetrics.parameterOptimization.parametersOptimized",
        "count by (parameter) (llmopt_parameter_updates_total)",
        "The `parameter` label values.",
    ),
    TaxonomyRow(
        "OptimizationMetrics.parameterOptimization.optimizationFrequency",
        "sum(increase(llmopt_parameter_updates_total[1h]))",
        "Updates per hour; add by (parameter) for each parameter.",
    ),
    TaxonomyRow(
        "OptimizationMetrics.parameterOptimization.stabilityScore", "llmopt_parameter_stability_ratio"
    ),
    TaxonomyRow(
        "OptimizationMetrics.parameterOptimization.performanceGain", "llmopt_parameter_performance_gain_ratio"
    ),
    TaxonomyRow(
        "OptimizationMetrics.costOptimization.budgetUtilization",
        'sum(increase(llmopt_spend_usd_total[1d])) / max(llmopt_budget_limit_usd{period="day"})',
        "A ratio (1 = the daily budget is spent). The rule divides by the daily budget of "
        "alerts/config.yml, the number BudgetExceeded alerts on.",
    ),
    TaxonomyRow(
        "OptimizationMetrics.costOptimization.budgetViolations", "sum(llmopt_budget_violations_total)"
    ),
    TaxonomyRow("OptimizationMetrics.costOptimization.modelSwitches", "sum(llmopt_model_switches_total)"),
    TaxonomyRow(
        "OptimizationMetrics.costOptimization.avgCostPerRequest",
        "sum(rate(llmopt_llm_cost_usd_total[1h])) / sum(rate(llmopt_llm_requests_total[1h]))",
    ),
    _words(
        "OptimizationMetrics.costOptimization.costTrend",
        "sign of sum(increase(llmopt_spend_usd_total[1d])) / sum(increase(llmopt_spend_usd_total[1d] offset 1d)) - 1",
        "increasing / stable / decreasing: +1 / 0 / -1, stable within ±5 %.",
    ),
    # --- ModelMetrics ---------------------------------------------------------------------------
    TaxonomyRow("ModelMetrics.tokens.input", 'sum(llmopt_llm_tokens_total{direction="input"})'),
    TaxonomyRow("ModelMetrics.tokens.output", 'sum(llmopt_llm_tokens_total{direction="output"})'),
    TaxonomyRow("ModelMetrics.tokens.total", "sum(llmopt_llm_tokens_total)"),
    TaxonomyRow(
        "ModelMetrics.tokens.avgPerRequest", _mean("llmopt_llm_request_tokens"), "Calls that reported tokens."
    ),
    TaxonomyRow(
        "ModelMetrics.tokens.cached", "sum(llmopt_llm_cached_tokens_total)", "A subset of the input tokens."
    ),
    TaxonomyRow(
        "ModelMetrics.tokens.cacheHitRate",
        'sum(rate(llmopt_llm_cached_tokens_total[1h])) / sum(rate(llmopt_llm_tokens_total{direction="input"}[1h]))',
        "Cached share of input tokens, 0-1.",
    ),
    TaxonomyRow("ModelMetrics.modelUsage.requestCount", "sum by (model) (llmopt_llm_requests_total)"),
    TaxonomyRow("ModelMetrics.modelUsage.tokenCount", "sum by (model) (llmopt_llm_tokens_total)"),
    TaxonomyRow("ModelMetrics.modelUsage.totalCost", "sum by (model) (llmopt_llm_cost_usd_total)"),
    TaxonomyRow("ModelMetrics.modelUsage.avgLatency", _mean(_DUR, by="model")),
    TaxonomyRow("ModelMetrics.modelUsage.avgQuality", _mean("llmopt_llm_quality_score", by="model")),
    TaxonomyRow("ModelMetrics.modelHealth.isAvailable", "llmopt_model_available"),
    TaxonomyRow("ModelMetrics.modelHealth.latency", "llmopt_model_probe_latency_seconds"),
    TaxonomyRow("ModelMetrics.modelHealth.errorRate", "llmopt_model_error_ratio"),
    TaxonomyRow("ModelMetrics.modelHealth.lastChecked", "llmopt_model_last_check_timestamp_seconds"),
    TaxonomyRow(
        "ModelMetrics.qualityMetrics.accuracy",
        'sum by (model) (rate(llmopt_llm_quality_dimension_score_sum{dimension="accuracy"}[1h])) / sum by (model) (rate(llmopt_llm_quality_dimension_score_count{dimension="accuracy"}[1h]))',
    ),
    TaxonomyRow(
        "ModelMetrics.qualityMetrics.relevance",
        'sum by (model) (rate(llmopt_llm_quality_dimension_score_sum{dimension="relevance"}[1h])) / sum by (model) (rate(llmopt_llm_quality_dimension_score_count{dimension="relevance"}[1h]))',
    ),
    TaxonomyRow(
        "ModelMetrics.qualityMetrics.coherence",
        'sum by (model) (rate(llmopt_llm_quality_dimension_score_sum{dimension="coherence"}[1h])) / sum by (model) (rate(llmopt_llm_quality_dimension_score_count{dimension="coherence"}[1h]))',
    ),
    TaxonomyRow(
        "ModelMetrics.qualityMetrics.completeness",
        'sum by (model) (rate(llmopt_llm_quality_dimension_score_sum{dimension="completeness"}[1h])) / sum by (model) (rate(llmopt_llm_quality_dimension_score_count{dimension="completeness"}[1h]))',
    ),
    TaxonomyRow("ModelMetrics.qualityMetrics.composite", _mean("llmopt_llm_quality_score", by="model")),
    # --- InfrastructureMetrics ------------------------------------------------------------------
    _words(
        "InfrastructureMetrics.cpu",
        "rate(process_cpu_seconds_total[5m]) (this exporter); node_cpu_seconds_total (hosts, node_exporter)",
        "Hosts are node_exporter's job in prometheus.yml; we do not re-implement it.",
    ),
    _words(
        "InfrastructureMetrics.memory",
        "process_resident_memory_bytes (this exporter); node_memory_MemAvailable_bytes (hosts)",
    ),
    _words(
        "InfrastructureMetrics.network",
        "node_network_receive_bytes_total, node_network_transmit_bytes_total (hosts)",
    ),
    _words(
        "InfrastructureMetrics.storage", "node_filesystem_avail_bytes, node_filesystem_size_bytes (hosts)"
    ),
)
