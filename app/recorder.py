"""Applies validated events to the metrics: the whole mapping from the wire contract to series.

Pure: no HTTP, no parsing. Each event type has one method; :meth:`Recorder.apply` dispatches.
State kept here (running experiments and their leaders, open incidents, models and bandit arms
with health or parameter gauges) is only what gauges need, and every gauge of a thing that ended
is removed, so finished experiments leave no series behind. Each kind of state is keyed by ids
that clients choose, so each is bounded (``max_state_entries``, the least recently seen entry
goes first) and expires (``expire``); every event costs O(1) whatever the state holds.
"""

from __future__ import annotations

import logging
import platform
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar, get_args

from app import __version__
from app import metrics as m
from app.custom import CustomRegistry
from app.dimensions import Dimensions
from app.errors import normalise_error_type
from app.events import (
    EVENT_TYPES,
    BanditConverged,
    BanditPull,
    BanditReward,
    BudgetLimit,
    BudgetPeriod,
    BudgetSpend,
    BudgetViolation,
    Business,
    Deployment,
    Event,
    ExperimentCompleted,
    ExperimentProgress,
    ExperimentRolledBack,
    ExperimentStarted,
    Feedback,
    IncidentOpened,
    IncidentResolved,
    LlmRequest,
    LogEvent,
    MetricValue,
    ModelHealth,
    ModelSwitch,
    ParameterUpdate,
    Severity,
    SpendCategory,
    seconds,
)
from app.metrics import MetricSpec
from app.prices import PriceTable
from app.providers import normalise_provider
from app.snapshot import SNAPSHOT_GAUGES, SNAPSHOT_GAUGES_BY_NAME, Snapshot, Streamed
from app.store import Exemplar, Labels, MetricStore
from app.tracked import Tracked

K = TypeVar("K")
V = TypeVar("V")
SEVERITIES: tuple[str, ...] = get_args(Severity)
QUALITY_DIMENSIONS = ("accuracy", "relevance", "coherence", "completeness")
LOG_LEVELS = {"error": logging.ERROR, "critical": logging.CRITICAL}

# Where the text of the optimizer's log events goes: the exporter's own structured log.
optimizer_log = logging.getLogger("llmopt_exporter.optimizer")


def nps_category(score: int) -> str:
    """Net Promoter Score bucket of one 0-10 answer."""
    if score >= 9:
        return "promoter"
    if score >= 7:
        return "passive"
    return "detractor"


class RunningExperiment(NamedTuple):
    """What the recorder keeps of a running experiment (replaced, never changed in place)."""

    started_at: float | None  # None when it was not seen starting
    leader: str | None = None
    split: tuple[str, ...] = ()  # the variants of its planned traffic split
    control: str | None = None


class Recorder:
    """Turns events into metric updates.

    ``max_state_entries`` bounds each kind of state (running experiments, open incidents, models,
    arms); ``clock`` gives the time state is last seen at, for expiry.
    """

    def __init__(
        self,
        store: MetricStore,
        clock: Callable[[], float] = time.time,
        max_state_entries: int = 1_000_000,
        prices: PriceTable | None = None,
        custom: CustomRegistry | None = None,
        dimensions: Dimensions | None = None,
    ) -> None:
        self._store = store
        self._prices = prices
        self._custom = custom or CustomRegistry({})
        self._dimensions = dimensions or Dimensions({})
        self._has_dimensions = bool(self._dimensions)
        self._clock = clock
        # By id, with when each last saw an event (receive time), least recently seen first.
        limit = max_state_entries
        self._experiments: Tracked[str, RunningExperiment] = Tracked(limit, self._evict_experiment)
        self._incidents: Tracked[str, str] = Tracked(limit, self._evict_incident)  # by severity
        self._models: Tracked[tuple[str, str], None] = Tracked(limit, self._evict_model)
        self._arms: Tracked[tuple[str, str, str], None] = Tracked(limit, self._evict_arm)
        # (experiment, winner) of completed experiments, for as long as their gauge is kept.
        self._winners: Tracked[tuple[str, str], None] = Tracked(limit, self._evict_winner)
        # Series of custom gauges, by metric and label values (as bound: capped), for expiry.
        self._custom_gauges: Tracked[tuple[MetricSpec, Labels], None] = Tracked(
            limit, self._evict_custom_gauge
        )
        self._open_by_severity: Tally[str] = Tally()
        self._started_at = clock()
        # The time of the latest improvement seen (None before the first, and no gauge: a start
        # is no improvement, and a restart must not postpone OptimizationStuck).
        self._last_improvement: float | None = None
        self._handlers: Mapping[type, Callable[[Any, float, Exemplar], None]] = {
            LlmRequest: self._llm_request,
            Feedback: self._feedback,
            ExperimentStarted: self._experiment_started,
            ExperimentProgress: self._experiment_progress,
            ExperimentCompleted: self._experiment_completed,
            ExperimentRolledBack: self._experiment_rolled_back,
            BanditPull: self._bandit_pull,
            BanditReward: self._bandit_reward,
            BanditConverged: self._bandit_converged,
            ParameterUpdate: self._parameter_update,
            BudgetSpend: self._budget_spend,
            BudgetLimit: self._budget_limit,
            BudgetViolation: self._budget_violation,
            ModelSwitch: self._model_switch,
            ModelHealth: self._model_health,
            Business: self._business,
            IncidentOpened: self._incident_opened,
            IncidentResolved: self._incident_resolved,
            Deployment: self._deployment,
            LogEvent: self._log,
            MetricValue: self._metric,
        }
        self._initialise()

    def _initialise(self) -> None:
        """Series that must exist from the first scrape: facts about us and known label sets."""
        store = self._store
        store.set(m.BUILD_INFO, (__version__, platform.python_version()), 1)
        store.set(m.START_TIME, (), self._started_at)
        store.set(m.EXPERIMENTS_ACTIVE, (), 0)
        for event_type in EVENT_TYPES:
            store.touch(m.EVENTS_ACCEPTED, (event_type,))
        for category in ("token", *get_args(SpendCategory)):
            store.touch(m.SPEND, (category,))
        for period in get_args(BudgetPeriod):
            store.touch(m.BUDGET_VIOLATIONS, (period,))
        for outcome in ("won", "no_winner"):
            store.touch(m.EXPERIMENTS_COMPLETED, (outcome,))
        for endpoint in ("ingest", "metrics", "admin"):
            store.touch(m.AUTH_FAILURES, (endpoint,))
        for kind in STATE_KINDS:
            store.touch(m.STATE_EXPIRED, (kind,))
            store.touch(m.STATE_EVICTED, (kind,))
        store.touch(m.STATE_EXPIRED, ("overflow",))
        for result in ("success", "failure"):
            store.touch(m.SNAPSHOT_WRITES, (result,))
        store.touch(m.REQUESTS_SHED)
        for outcome in m.OTLP_OUTCOMES:
            store.touch(m.OTLP_SPANS, (outcome,))
        for reason in m.OTLP_IGNORE_REASONS:
            store.touch(m.OTLP_SPANS_IGNORED, (reason,))
        for severity in SEVERITIES:
            store.touch(m.INCIDENTS, (severity,))
            store.touch(m.INCIDENTS_RESOLVED, (severity,))
            store.touch(m.INCIDENT_DOWNTIME, (severity,))
            store.set(m.INCIDENTS_OPEN, (severity,), 0)

    @property
    def dimensions(self) -> Dimensions:
        return self._dimensions

    def apply(self, event: Event, trace_id: str | None = None, span_id: str | None = None) -> None:
        """Apply one validated event. ``trace_id``/``span_id`` are the request's trace context,
        used for exemplars when the event carries none of its own."""
        when = self._clock() if event.timestamp is None else seconds(event.timestamp)
        exemplar = _exemplar(event.trace_id or trace_id, event.span_id if event.trace_id else span_id)
        self._handlers[type(event)](event, when, exemplar)

    # --- llm_request ---------------------------------------------------------------------------
    def _llm_request(self, e: LlmRequest, when: float, exemplar: Exemplar) -> None:
        store = self._store
        provider = normalise_provider(e.provider)
        labels = (e.model, provider, e.task_type)
        # Most updates share the label set: its series are found once (the hot path of ingest).
        by_labels = store.label_set(labels)
        # The metrics that carry the declared dimensions (app.dimensions): under the call's values
        # of them too.
        by_dims = (
            store.label_set((*labels, *self._dimensions.values(e.labels)))
            if self._has_dimensions
            else by_labels
        )
        by_dims[m.LLM_REQUESTS].inc(1.0, None)
        # Failures and later tries from the label set's first call on, at 0 until the first: the
        # availability SLI subtracts one from the other, which rate() gets right only so. Finding
        # a series binds it (at 0).
        failures = by_dims[m.LLM_FAILURES]
        if e.status == "error":
            failures.inc(1.0, None)
            error_type = "unknown" if e.error_type is None else normalise_error_type(e.error_type)
            by_dims[m.LLM_REQUEST_ERRORS, error_type].inc(1.0, exemplar)
        retries = by_dims[m.LLM_RETRIES]
        if e.attempt > 1:
            retries.inc(1.0, None)
        if e.fallback_from is not None:  # on a later try only (a rule of the contract)
            store.inc(m.LLM_FALLBACKS, (e.fallback_from, e.model))
        latency = e.latency_ms / 1000.0
        by_labels[m.LLM_REQUEST_DURATION].observe(latency, exemplar)
        if e.input_tokens:
            by_dims[m.LLM_TOKENS, "input"].inc(e.input_tokens, None)
        if e.output_tokens:
            by_dims[m.LLM_TOKENS, "output"].inc(e.output_tokens, None)
        if e.cached_tokens:
            by_dims[m.LLM_CACHED_TOKENS].inc(e.cached_tokens, None)
        if e.cache_write_tokens:
            by_dims[m.LLM_CACHE_WRITE_TOKENS].inc(e.cache_write_tokens, None)
        if e.reasoning_tokens:
            by_dims[m.LLM_REASONING_TOKENS].inc(e.reasoning_tokens, None)
        by_served = store.label_set((e.model, provider))
        if e.input_tokens or e.output_tokens:
            by_served[m.LLM_REQUEST_TOKENS].observe(e.input_tokens + e.output_tokens, None)
            by_served[m.LLM_INPUT_TOKENS].observe(e.input_tokens, None)
            by_served[m.LLM_OUTPUT_TOKENS].observe(e.output_tokens, None)
        by_served[m.LLM_OPERATIONS, e.operation].inc(1.0, None)
        if e.finish_reason is not None:
            by_labels[m.LLM_FINISH_REASONS, e.finish_reason].inc(1.0, None)
        first_token = per_token = None
        if e.time_to_first_token_ms is not None:
            first_token = e.time_to_first_token_ms / 1000.0
            by_labels[m.LLM_TIME_TO_FIRST_TOKEN].observe(first_token, exemplar)
            if e.output_tokens >= 2:
                per_token = (e.latency_ms - e.time_to_first_token_ms) / 1000.0 / (e.output_tokens - 1)
                by_labels[m.LLM_TIME_PER_OUTPUT_TOKEN].observe(per_token, exemplar)
        cost = e.cost_usd
        if self._prices is not None:
            price = self._prices.price(e.model, provider)
            if price is None:
                store.inc(m.UNPRICED_CALLS, (e.model,))
            else:
                priced = price.cost(e.input_tokens, e.output_tokens, e.cached_tokens, e.cache_write_tokens)
                by_labels[m.LLM_PRICED_COST].inc(priced, None)
                if cost is None:
                    cost = priced
                elif self._prices.is_mismatch(cost, priced):
                    store.inc(m.COST_MISMATCHES, (e.model,))
        if cost is None:
            cost = 0.0
        by_dims[m.LLM_COST].inc(cost, exemplar)
        store.inc(m.SPEND, ("token",), cost)
        # No baseline figure means the call cost what the baseline would have: no savings claimed.
        baseline = cost if e.baseline_cost_usd is None else e.baseline_cost_usd
        by_dims[m.LLM_BASELINE_COST].inc(baseline, None)
        if e.quality is not None:
            by_labels[m.LLM_QUALITY].observe(e.quality, exemplar)
        for dimension in QUALITY_DIMENSIONS:
            score = getattr(e, dimension)
            if score is not None:
                by_served[m.LLM_QUALITY_DIMENSION, dimension].observe(score, None)
        if e.experiment_id is not None and e.variant_id is not None:
            # The variant's sufficient statistics, all under one label set.
            by_variant = store.label_set((e.experiment_id, e.variant_id))
            by_variant[m.VARIANT_REQUESTS].inc(1.0, None)
            # Failures start at zero with the variant's first call, so rates see the first one.
            by_variant[m.VARIANT_ERRORS].inc(1.0 if e.status == "error" else 0.0, None)
            by_variant[m.VARIANT_COST].inc(cost, None)
            by_variant[m.VARIANT_COST_SQUARES].inc(cost * cost, None)
            by_variant[m.VARIANT_DURATION].observe(latency, None)
            by_variant[m.VARIANT_DURATION_SQUARES].inc(latency * latency, None)
            if e.quality is not None:
                by_variant[m.VARIANT_QUALITY].observe(e.quality, None)
                by_variant[m.VARIANT_QUALITY_SQUARES].inc(e.quality * e.quality, None)
            if first_token is not None:
                by_variant[m.VARIANT_TIME_TO_FIRST_TOKEN].observe(first_token, None)
            if per_token is not None:
                by_variant[m.VARIANT_TIME_PER_OUTPUT_TOKEN].observe(per_token, None)
        if e.arm_id is not None and e.parameter is not None and e.parameter_value is not None:
            self._set_arm_parameter((e.bandit_id, e.arm_id, e.parameter), e.parameter_value)

    def _set_arm_parameter(self, arm: tuple[str, str, str], value: float) -> None:
        self._arms.put(arm, None, self._clock())
        self._store.set(m.BANDIT_ARM_PARAMETER, arm, value)

    def _evict_arm(self, arm: tuple[str, str, str], _: None) -> None:
        self._store.remove(m.BANDIT_ARM_PARAMETER, arm)
        self._store.inc(m.STATE_EVICTED, ("arm",))

    # --- feedback ------------------------------------------------------------------------------
    def _feedback(self, e: Feedback, when: float, exemplar: Exemplar) -> None:
        store = self._store
        labels = (e.model, e.experiment_id or "", e.variant_id or "", *self._dimensions.values(e.labels))
        if e.thumbs is not None:
            store.inc(m.FEEDBACK_THUMBS, (*labels, e.thumbs))
        if e.nps is not None:
            store.inc(m.FEEDBACK_NPS, (*labels, nps_category(e.nps)))
        if e.csat is not None:
            store.inc(m.FEEDBACK_CSAT, labels)
            if e.csat >= 4:
                store.inc(m.FEEDBACK_CSAT_SATISFIED, labels)
            else:
                store.touch(m.FEEDBACK_CSAT_SATISFIED, labels)

    # --- experiment ----------------------------------------------------------------------------
    def _mark_running(
        self,
        experiment: str,
        started_at: float | None,
        leader: str | None = None,
        plan: tuple[tuple[str, ...], str | None] | None = None,
    ) -> RunningExperiment:
        """Note an event of a running experiment (``plan``: its split's variants and its control,
        from a start); return what was known of it before."""
        known = self._experiments.get(experiment) or RunningExperiment(None)
        running = known._replace(
            started_at=started_at if started_at is not None else known.started_at,
            leader=leader if leader is not None else known.leader,
        )
        if plan is not None:
            running = running._replace(split=plan[0], control=plan[1])
        self._experiments.put(experiment, running, self._clock())
        self._store.set(m.EXPERIMENTS_ACTIVE, (), len(self._experiments))
        if started_at is not None:
            self._store.set(m.EXPERIMENT_STARTED_AT, (experiment,), started_at)
        return known

    def _experiment_started(self, e: ExperimentStarted, when: float, exemplar: Exemplar) -> None:
        if e.experiment_id not in self._experiments:
            self._store.inc(m.EXPERIMENTS_STARTED)
        split = e.traffic_split or {}
        known = self._mark_running(e.experiment_id, when, plan=(tuple(split), e.control_variant))
        store = self._store
        store.set(m.EXPERIMENT_PROGRESS, (e.experiment_id,), 0)
        store.set(m.EXPERIMENT_SAMPLES, (e.experiment_id,), 0)
        # A start replaces whatever plan an earlier start of the same experiment gave.
        self._drop_plan(e.experiment_id, known)
        for variant, share in split.items():
            store.set(m.EXPERIMENT_TRAFFIC_SPLIT, (e.experiment_id, variant), share)
        if e.control_variant is not None:
            store.set(m.EXPERIMENT_CONTROL, (e.experiment_id, e.control_variant), 1)

    def _experiment_progress(self, e: ExperimentProgress, when: float, exemplar: Exemplar) -> None:
        store = self._store
        experiment = (e.experiment_id,)
        # A progress report for an experiment we have not seen start (we restarted) revives it.
        previous = self._mark_running(e.experiment_id, None, e.leader).leader
        if e.progress is not None:
            store.set(m.EXPERIMENT_PROGRESS, experiment, e.progress)
        if e.confidence is not None:
            store.set(m.EXPERIMENT_CONFIDENCE, experiment, e.confidence)
        if e.lead is not None:
            store.set(m.EXPERIMENT_LEAD, experiment, e.lead)
        if e.sample_size is not None:
            store.set(m.EXPERIMENT_SAMPLES, experiment, e.sample_size)
        if e.leader is not None:
            if previous is not None and previous != e.leader:
                store.remove(m.EXPERIMENT_LEADER, (e.experiment_id, previous))
            store.set(m.EXPERIMENT_LEADER, (e.experiment_id, e.leader), 1)

    def _end_experiment(self, experiment: str) -> float | None:
        """Forget a running experiment and drop its gauges; return its start time if known."""
        known = self._experiments.pop(experiment)
        self._drop_experiment(experiment, known)
        self._store.set(m.EXPERIMENTS_ACTIVE, (), len(self._experiments))
        return None if known is None else known.started_at

    def _evict_experiment(self, experiment: str, known: RunningExperiment) -> None:
        self._drop_experiment(experiment, known)
        self._store.inc(m.STATE_EVICTED, ("experiment",))

    def _drop_experiment(self, experiment: str, known: RunningExperiment | None) -> None:
        store = self._store
        for spec in (
            m.EXPERIMENT_PROGRESS,
            m.EXPERIMENT_CONFIDENCE,
            m.EXPERIMENT_LEAD,
            m.EXPERIMENT_SAMPLES,
            m.EXPERIMENT_STARTED_AT,
        ):
            store.remove(spec, (experiment,))
        if known is not None and known.leader is not None:
            store.remove(m.EXPERIMENT_LEADER, (experiment, known.leader))
        if known is not None:
            self._drop_plan(experiment, known)

    def _drop_plan(self, experiment: str, known: RunningExperiment) -> None:
        """Drop the series of the experiment's planned split and control."""
        for variant in known.split:
            self._store.remove(m.EXPERIMENT_TRAFFIC_SPLIT, (experiment, variant))
        if known.control is not None:
            self._store.remove(m.EXPERIMENT_CONTROL, (experiment, known.control))

    def _experiment_completed(self, e: ExperimentCompleted, when: float, exemplar: Exemplar) -> None:
        store = self._store
        started_at = self._end_experiment(e.experiment_id)
        if e.winner is not None and e.improvement is not None:
            # Receive time, as the gauge says when to check: a completion delivered late is checked.
            winner, now = (e.experiment_id, e.winner), self._clock()
            self._winners.put(winner, None, now)
            store.set(m.EXPERIMENT_WINNER, winner, now)
            store.inc(m.EXPERIMENTS_COMPLETED, ("won",))
            store.observe(m.EXPERIMENT_IMPROVEMENT, (), e.improvement)
            self._improved(when)
        else:
            store.inc(m.EXPERIMENTS_COMPLETED, ("no_winner",))
        store.observe(m.EXPERIMENT_SAMPLE_SIZE, (), e.sample_size)
        duration = e.duration_seconds
        if duration is None and started_at is not None:
            duration = max(0.0, when - started_at)
        if duration is not None:
            store.observe(m.EXPERIMENT_DURATION, (), duration)

    def _evict_winner(self, winner: tuple[str, str], _: None) -> None:
        self._store.remove(m.EXPERIMENT_WINNER, winner)
        self._store.inc(m.STATE_EVICTED, ("winner",))

    def _experiment_rolled_back(self, e: ExperimentRolledBack, when: float, exemplar: Exemplar) -> None:
        self._end_experiment(e.experiment_id)
        self._store.inc(m.EXPERIMENTS_ROLLED_BACK)

    # --- bandit --------------------------------------------------------------------------------
    def _bandit_pull(self, e: BanditPull, when: float, exemplar: Exemplar) -> None:
        decision = "explore" if e.explored else "exploit"
        self._store.inc(m.BANDIT_PULLS, (e.bandit_id, e.arm_id, decision))
        if e.parameter is not None and e.parameter_value is not None:
            self._set_arm_parameter((e.bandit_id, e.arm_id, e.parameter), e.parameter_value)

    def _bandit_reward(self, e: BanditReward, when: float, exemplar: Exemplar) -> None:
        arm = (e.bandit_id, e.arm_id)
        self._store.observe(m.BANDIT_REWARD, arm, e.reward)
        self._store.inc(m.BANDIT_REWARD_SQUARES, arm, e.reward * e.reward)
        if e.regret is not None:
            self._store.inc(m.BANDIT_REGRET, (e.bandit_id,), e.regret)

    def _bandit_converged(self, e: BanditConverged, when: float, exemplar: Exemplar) -> None:
        self._store.set(m.BANDIT_CONVERGENCE, (e.bandit_id,), e.convergence_seconds)

    # --- parameter_update ----------------------------------------------------------------------
    def _parameter_update(self, e: ParameterUpdate, when: float, exemplar: Exemplar) -> None:
        store = self._store
        parameter = (e.parameter,)
        store.inc(m.PARAMETER_UPDATES, parameter)
        store.set(m.PARAMETER_VALUE, parameter, e.value)
        if e.stability_score is not None:
            store.set(m.PARAMETER_STABILITY, parameter, e.stability_score)
        if e.performance_gain is not None:
            store.set(m.PARAMETER_GAIN, parameter, e.performance_gain)
        if e.improved:
            store.inc(m.PARAMETER_IMPROVEMENTS, parameter)
            self._improved(when)
        else:
            store.touch(m.PARAMETER_IMPROVEMENTS, parameter)

    def _improved(self, when: float) -> None:
        # An event delivered late must not move the last improvement back in time.
        if self._last_improvement is None or when > self._last_improvement:
            self._last_improvement = when
            self._store.set(m.LAST_IMPROVEMENT, (), when)

    # --- budget --------------------------------------------------------------------------------
    def _budget_spend(self, e: BudgetSpend, when: float, exemplar: Exemplar) -> None:
        self._store.inc(m.SPEND, (e.category,), e.amount_usd)

    def _budget_limit(self, e: BudgetLimit, when: float, exemplar: Exemplar) -> None:
        # With labels, the budget of a scope (a team's...): its values of the declared dimensions.
        self._store.set(m.BUDGET_LIMIT, (e.period, *self._dimensions.values(e.labels)), e.limit_usd)

    def _budget_violation(self, e: BudgetViolation, when: float, exemplar: Exemplar) -> None:
        self._store.inc(m.BUDGET_VIOLATIONS, (e.period,))
        if e.limit_usd is not None:
            self._store.set(m.BUDGET_LIMIT, (e.period, *self._dimensions.values(None)), e.limit_usd)

    def _model_switch(self, e: ModelSwitch, when: float, exemplar: Exemplar) -> None:
        self._store.inc(m.MODEL_SWITCHES, (e.from_model, e.to_model, e.reason))

    # --- model_health --------------------------------------------------------------------------
    def _model_health(self, e: ModelHealth, when: float, exemplar: Exemplar) -> None:
        store = self._store
        model = (e.model, normalise_provider(e.provider))
        self._models.put(model, None, self._clock())
        store.set(m.MODEL_AVAILABLE, model, 1 if e.available else 0)
        store.inc(m.MODEL_HEALTH_CHECKS, (*model, "available" if e.available else "unavailable"))
        if e.latency_ms is not None:
            store.set(m.MODEL_PROBE_LATENCY, model, e.latency_ms / 1000.0)
        if e.error_rate is not None:
            store.set(m.MODEL_ERROR_RATIO, model, e.error_rate)
        store.set(m.MODEL_LAST_CHECK, model, when)

    # --- business ------------------------------------------------------------------------------
    def _business(self, e: Business, when: float, exemplar: Exemplar) -> None:
        store = self._store
        if e.baseline_quality is not None:
            store.set(m.QUALITY_BASELINE, (), e.baseline_quality)
        if e.optimization_cost_usd is not None:
            store.inc(m.OPTIMIZATION_COST, (), e.optimization_cost_usd)
        if e.value_derived_usd is not None:
            store.inc(m.VALUE_DERIVED, (), e.value_derived_usd)
        if e.cost_savings_confidence is not None:
            store.set(m.COST_SAVINGS_CONFIDENCE, (), e.cost_savings_confidence)
        if e.quality_improvement_confidence is not None:
            store.set(m.QUALITY_IMPROVEMENT_CONFIDENCE, (), e.quality_improvement_confidence)

    # --- incident and deployment ---------------------------------------------------------------
    def _count_open_incident(self, severity: str, change: int) -> None:
        self._open_by_severity[severity] += change
        self._store.set(m.INCIDENTS_OPEN, (severity,), self._open_by_severity[severity])

    def _incident_opened(self, e: IncidentOpened, when: float, exemplar: Exemplar) -> None:
        if e.incident_id in self._incidents:
            return
        self._count_open_incident(e.severity, +1)
        self._incidents.put(e.incident_id, e.severity, self._clock())
        self._store.inc(m.INCIDENTS, (e.severity,))

    def _incident_resolved(self, e: IncidentResolved, when: float, exemplar: Exemplar) -> None:
        opened_as = self._incidents.pop(e.incident_id)
        if opened_as is not None:
            self._count_open_incident(opened_as, -1)
        self._store.inc(m.INCIDENTS_RESOLVED, (e.severity,))
        self._store.inc(m.INCIDENT_DOWNTIME, (e.severity,), max(0.0, when - seconds(e.opened_at)))

    def _evict_incident(self, incident: str, severity: str) -> None:
        self._count_open_incident(severity, -1)
        self._store.inc(m.STATE_EVICTED, ("incident",))

    def _deployment(self, e: Deployment, when: float, exemplar: Exemplar) -> None:
        self._store.inc(m.DEPLOYMENTS, (e.component, e.action))
        self._store.set(m.LAST_DEPLOYMENT, (e.component,), when)

    # --- log ----------------------------------------------------------------------------------
    def _log(self, e: LogEvent, when: float, exemplar: Exemplar) -> None:
        labels = (e.level, e.component)
        self._store.inc(m.LOG_EVENTS, labels, exemplar=exemplar)
        # Receive time, not the event's: a critical entry delivered late must still page.
        self._store.set(m.LAST_LOG_EVENT, labels, self._clock())
        context: dict[str, object] = {
            "component": e.component,
            "event_id": e.event_id,
            "event_timestamp": when,
            "trace_id": e.trace_id,
            "span_id": e.span_id,
            "service": e.service,
            "logger": e.logger,
            "request_id": e.request_id,
            "experiment_id": e.experiment_id,
        }
        if e.error_name is not None or e.error_message is not None or e.error_stack is not None:
            context["error"] = {"name": e.error_name, "message": e.error_message, "stack": e.error_stack}
        optimizer_log.log(
            LOG_LEVELS[e.level],
            e.message,
            extra={"context": {name: value for name, value in context.items() if value is not None}},
        )

    # --- metric (custom metrics) -------------------------------------------------------------
    def _metric(self, e: MetricValue, when: float, exemplar: Exemplar) -> None:
        spec, labels = self._custom.labels_of(e)
        series = self._store.series(spec, labels)
        if e.kind == "counter":
            series.inc(e.value, exemplar)
        elif e.kind == "histogram":
            series.observe(e.value, exemplar)
        else:
            series.set(e.value)
            # A gauge says how something is now: it goes when nothing has said so for a while.
            self._custom_gauges.put((spec, series.labels), None, self._clock())

    def _evict_custom_gauge(self, key: tuple[MetricSpec, Labels], _: None) -> None:
        self._store.remove(*key)
        self._store.inc(m.STATE_EVICTED, ("custom_gauge",))

    # --- expiry, deletion, snapshots ------------------------------------------------------------
    def expire(self, ttl_seconds: float) -> int:
        """Drop the state of experiments, models, arms and open incidents with no event for
        ``ttl_seconds``, and the overflow gauges no update reached for as long; return how many.

        Only gauges go: counters keep counting, so no rate() ever sees a silent reset.
        """
        horizon = self._clock() - ttl_seconds
        store = self._store
        expired = 0
        for experiment, known in self._experiments.expire(horizon):
            self._drop_experiment(experiment, known)
            store.inc(m.STATE_EXPIRED, ("experiment",))
            expired += 1
        store.set(m.EXPERIMENTS_ACTIVE, (), len(self._experiments))
        for model, _ in self._models.expire(horizon):
            self._drop_model_health(model)
            store.inc(m.STATE_EXPIRED, ("model",))
            expired += 1
        for arm, _ in self._arms.expire(horizon):
            store.remove(m.BANDIT_ARM_PARAMETER, arm)
            store.inc(m.STATE_EXPIRED, ("arm",))
            expired += 1
        for winner, _ in self._winners.expire(horizon):
            store.remove(m.EXPERIMENT_WINNER, winner)
            store.inc(m.STATE_EXPIRED, ("winner",))
            expired += 1
        for _, severity in self._incidents.expire(horizon):
            self._count_open_incident(severity, -1)
            store.inc(m.STATE_EXPIRED, ("incident",))
            expired += 1
        for key, _ in self._custom_gauges.expire(horizon):
            store.remove(*key)
            store.inc(m.STATE_EXPIRED, ("custom_gauge",))
            expired += 1
        overflow = store.expire_overflow(horizon)
        if overflow:
            store.inc(m.STATE_EXPIRED, ("overflow",), overflow)
        return expired + overflow

    def _drop_model_health(self, model: tuple[str, str]) -> None:
        for spec in (m.MODEL_AVAILABLE, m.MODEL_PROBE_LATENCY, m.MODEL_ERROR_RATIO, m.MODEL_LAST_CHECK):
            self._store.remove(spec, model)

    def _evict_model(self, model: tuple[str, str], _: None) -> None:
        self._drop_model_health(model)
        self._store.inc(m.STATE_EVICTED, ("model",))

    def delete_experiment(self, experiment: str) -> int:
        """Forget an experiment entirely, counters included (admin API); return series removed."""
        self._end_experiment(experiment)
        for key in [key for key in self._winners.copy()[0] if key[0] == experiment]:
            self._winners.pop(key)
        removed = self._store.remove_matching("experiment", experiment)
        self._store.inc(m.STATE_DELETED, ("experiment",))
        return removed

    def delete_model(self, model: str) -> int:
        """Forget a retired model entirely, counters included (admin API); return series removed."""
        for key in [key for key in self._models.copy()[0] if key[0] == model]:
            self._models.pop(key)
            self._drop_model_health(key)
        removed = self._store.remove_matching("model", model)
        self._store.inc(m.STATE_DELETED, ("model",))
        return removed

    def export_state(self) -> Callable[[], dict[str, object]]:
        """Everything a restart must not lose: state gauges and what they are derived from.

        Taken now, in one copy of each map (cheap: bounded by the caps, no per-entry Python work);
        the function returned makes the snapshot document of it and may run in another thread,
        where the gauges' values are read (a gauge updated meanwhile is saved with its newer value).

        Counters are not saved: they restart at zero, a reset Prometheus handles (see
        docs/security.md, "Restarts").
        """
        gauges = self._store.gauge_series(SNAPSHOT_GAUGES)
        experiments = self._experiments.copy()
        incidents = self._incidents.copy()
        models = self._models.copy()
        arms = self._arms.copy()
        last_improvement = self._last_improvement

        def document() -> dict[str, object]:
            return {
                "version": 1,
                "gauges": Streamed(
                    [spec.name, list(series.labels), series.value]
                    for spec, listed in gauges
                    for series in listed
                ),
                "experiments": Streamed(
                    ((key, known.started_at) for key, _, known in _entries(experiments)), True
                ),
                "experiments_seen": Streamed(((key, seen) for key, seen, _ in _entries(experiments)), True),
                "leaders": Streamed(
                    (
                        (key, known.leader)
                        for key, _, known in _entries(experiments)
                        if known.leader is not None
                    ),
                    True,
                ),
                "open_incidents": Streamed(
                    ((key, severity) for key, _, severity in _entries(incidents)), True
                ),
                "incidents_seen": Streamed(((key, seen) for key, seen, _ in _entries(incidents)), True),
                "models_seen": Streamed([*key, seen] for key, seen, _ in _entries(models)),
                "arms_seen": Streamed([*key, seen] for key, seen, _ in _entries(arms)),
                "last_improvement": last_improvement,
            }

        return document

    def import_state(self, snapshot: Snapshot) -> None:
        """Restore a checked snapshot into this (new) recorder. Nothing here can fail: the
        snapshot was checked whole. Entries past the caps push out those seen least recently."""
        store = self._store
        for name, labels, value in snapshot.gauges:
            store.set(SNAPSHOT_GAUGES_BY_NAME[name], tuple(labels), value)
        now = self._clock()
        experiments_seen = snapshot.experiments_seen
        # The plans come back with the gauges that show them.
        splits: dict[str, list[str]] = {}
        controls: dict[str, str] = {}
        winners: list[tuple[float, tuple[str, str]]] = []
        for name, labels, value in snapshot.gauges:
            if name == m.EXPERIMENT_WINNER.name:
                winners.append((value, (labels[0], labels[1])))
            elif name == m.EXPERIMENT_TRAFFIC_SPLIT.name:
                splits.setdefault(labels[0], []).append(labels[1])
            elif name == m.EXPERIMENT_CONTROL.name:
                controls[labels[0]] = labels[1]
        for experiment, started_at in sorted(
            snapshot.experiments.items(), key=lambda item: experiments_seen.get(item[0], now)
        ):
            known = RunningExperiment(
                started_at,
                snapshot.leaders.get(experiment),
                tuple(splits.get(experiment, ())),
                controls.get(experiment),
            )
            self._experiments.put(experiment, known, experiments_seen.get(experiment, now))
        incidents_seen = snapshot.incidents_seen
        for incident, severity in sorted(
            snapshot.open_incidents.items(), key=lambda item: incidents_seen.get(item[0], now)
        ):
            self._count_open_incident(severity, +1)
            self._incidents.put(incident, severity, incidents_seen.get(incident, now))
        # A winner is last seen when it was declared: its gauge holds that time.
        for declared, winner in sorted(winners):
            self._winners.put(winner, None, declared)
        for model, provider, seen in sorted(snapshot.models_seen, key=lambda entry: entry[-1]):
            self._models.put((model, provider), None, seen)
        for bandit, arm, parameter, seen in sorted(snapshot.arms_seen, key=lambda entry: entry[-1]):
            self._arms.put((bandit, arm, parameter), None, seen)
        if snapshot.last_improvement is not None:
            self._last_improvement = snapshot.last_improvement
            store.set(m.LAST_IMPROVEMENT, (), snapshot.last_improvement)
        store.set(m.EXPERIMENTS_ACTIVE, (), len(self._experiments))


# Kinds of state the recorder keeps, as the expiry and eviction self-metrics name them.
STATE_KINDS = ("experiment", "winner", "model", "arm", "incident", "custom_gauge")


def _entries(copied: tuple[list[K], list[tuple[float, V]]]) -> Iterator[tuple[K, float, V]]:
    """``(key, seen, value)`` of each entry of a :meth:`Tracked.copy`."""
    keys, entries = copied
    return ((key, seen, value) for key, (seen, value) in zip(keys, entries, strict=True))


def _exemplar(trace_id: str | None, span_id: str | None) -> Exemplar:
    if trace_id is None:
        return None
    if span_id is None:
        return {"trace_id": trace_id}
    return {"trace_id": trace_id, "span_id": span_id}
