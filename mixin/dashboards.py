"""Renders the Grafana dashboards of ``grafana/dashboards/`` from code.

Six dashboards come out, linked to each other and tagged ``llm-optimizer``:

``llmopt-system-health``
    the System Health view: request rate, success rate and latency with their change,
    latency percentiles, errors by type, availability and error budget, the exporter itself;
``llmopt-optimization``
    the Optimization Performance view: running A/B tests (progress, leader, lead,
    confidence against the 95 % needed), variants compared, the bandit's arm shares and rewards,
    the 7-day cost trend, savings against the baseline, parameter tuning;
``llmopt-experiments``
    per running experiment: planned against observed split with the sample ratio test, each
    variant's effect on each compared metric with its always-valid interval, guardrails, the
    decide signal;
``llmopt-slos``
    per SLO: the SLI, the error budget left, burn rates over the alerting windows, the halt signal;
``llmopt-models``
    per model: calls, errors, latency, tokens, cost, cache hits, quality and its dimensions, health;
``llmopt-business``
    spend by category against the budget, savings, ROI and payback, NPS, CSAT and thumbs.

Conventions every dashboard follows (a test checks them): the data source is the dashboard variable
``${datasource}`` (no ``${DS_...}`` import inputs, so file provisioning works); panels are only
timeseries, stat, gauge, bargauge and table, each with a description and a unit; queries name only
metrics of :mod:`app.metrics` and the recorded series of :mod:`mixin.recorded` (never a rule name
typed here) and aggregate the replica labels away; raw rates use ``$__rate_interval``; firing alerts
and deployments are annotations. Thresholds and SLO windows come from ``alerts/config.yml``, the
file that sets the alerts and SLOs.

Why small builders of our own rather than grafana-foundation-sdk, Grafana's typed Python builders:
we tried it against these dashboards. Its PyPI releases put a timestamp epoch before the Grafana
version (``1769699379!11.6.0``), so a plain install or upgrade picks the highest epoch, the Grafana
10.1 types, and every upgrade needs a hand-picked pin; it is marked alpha. Its panels come out with
defaults of their own (``repeatDirection``, ``transparent``, schemaVersion 41, empty
``reduceOptions.calcs``, targets with an empty or no ``refId``), so every panel would have to
restate what these builders say once, and all five files would change without a visible difference
in Grafana. What its types would catch (a misspelled option, a wrong value) the tests already catch
by type-checking the rendered JSON against Grafana's own schema (``@grafana/schema``), and the point
the SDK's examples make, dashboards that refer to rule objects, holds here without it.

``make generate`` (``python -m tools.generate``) writes the JSON; commit it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict, Union, Unpack, get_args

from app import metrics as m
from mixin import recorded as rec
from mixin import rules
from mixin.rules import RulesConfig

DASHBOARDS_DIR = "grafana/dashboards"
TAG = "llm-optimizer"
SCHEMA_VERSION = 39
GRID_COLUMNS = 24
# The confidence a running A/B test needs before it may be concluded.
CONFIDENCE_NEEDED = 0.95

JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]
Json = dict[str, JsonValue]
PanelType = Literal["timeseries", "stat", "gauge", "bargauge", "table"]

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}

GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"

# Grafana's interval variables, and a duration each stands for when a panel query is read as PromQL.
INTERVAL_VARIABLES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}


def as_promql(expr: str, intervals: Mapping[str, str] = INTERVAL_VARIABLES) -> str:
    """A panel query as the PromQL parser reads it: Grafana's interval variables (``$__range``,
    ``${__rate_interval}``) replaced by durations. The dashboard variables (``$model``) sit in label
    values, which are strings to PromQL, and stay."""
    for name, duration in intervals.items():
        expr = expr.replace(f"${{{name}}}", duration).replace(f"${name}", duration)
    return expr


@dataclass(frozen=True)
class Query:
    """One PromQL target. ``instant`` asks for the value now; ``table`` also formats it as a table;
    ``exemplar`` shows the exemplars of the series it reads (dots that open their trace)."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False
    exemplar: bool = False


@dataclass(frozen=True)
class Panel:
    """A panel; its id and position are given when its dashboard is rendered."""

    type: PanelType
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    width: int
    height: int
    options: Json = field(default_factory=dict)
    defaults: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)
    overrides: tuple[Json, ...] = ()
    transformations: tuple[Json, ...] = ()
    extra: Json = field(default_factory=dict)


@dataclass(frozen=True)
class Variable:
    """A query variable over the values of one label of one metric."""

    name: str
    label: str
    metric: str
    label_name: str
    is_multi: bool = True
    description: str = ""

    @property
    def query(self) -> str:
        return f"label_values({self.metric}, {self.label_name})"


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    rows: tuple[tuple[Panel, ...], ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-24h"


# --- Small builders ------------------------------------------------------------------------------


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def now(expr: str, legend: str = "") -> Query:
    return Query(expr, legend, instant=True)


def table(expr: str) -> Query:
    return Query(expr, instant=True, table=True)


def thresholds(base: str, *steps: tuple[float, str]) -> Json:
    """Absolute thresholds: ``base`` below the first step, then each step's colour from its value."""
    levels: list[JsonValue] = [{"color": base, "value": None}]
    levels += [{"color": color, "value": value} for value, color in steps]
    return {"mode": "absolute", "steps": levels}


def value_text(*pairs: tuple[str, str, str]) -> list[JsonValue]:
    """Value mappings ``value -> (text, colour)``."""
    return [
        {
            "type": "value",
            "options": {value: {"text": text, "color": color, "index": index}},
        }
        for index, (value, text, color) in enumerate(pairs)
    ]


def override(field_name: str, **properties: JsonValue) -> Json:
    """Properties of one field (a table column or a series), by its display name."""
    return {
        "matcher": {"id": "byName", "options": field_name},
        "properties": [{"id": key.replace("__", "."), "value": value} for key, value in properties.items()],
    }


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator}\n/\n{denominator}"


STACKED: Json = {"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 35}
BARS: Json = {"drawStyle": "bars", "fillOpacity": 60, "barAlignment": 0}

# Width and height on the 24-column grid unless a panel says otherwise.
DEFAULT_SIZE: dict[PanelType, tuple[int, int]] = {
    "timeseries": (12, 8),
    "stat": (4, 5),
    "gauge": (4, 5),
    "bargauge": (8, 8),
    "table": (12, 8),
}


class PanelFields(TypedDict, total=False):
    width: int
    height: int
    options: Json
    defaults: Json
    custom: Json
    overrides: tuple[Json, ...]
    transformations: tuple[Json, ...]
    extra: Json


def _panel(
    type_: PanelType, title: str, description: str, unit: str, queries: tuple[Query, ...], fields: PanelFields
) -> Panel:
    width, height = DEFAULT_SIZE[type_]
    return Panel(
        type_,
        title,
        description,
        unit,
        queries,
        width=fields.get("width", width),
        height=fields.get("height", height),
        options=fields.get("options", {}),
        defaults=fields.get("defaults", {}),
        custom=fields.get("custom", {}),
        overrides=fields.get("overrides", ()),
        transformations=fields.get("transformations", ()),
        extra=fields.get("extra", {}),
    )


def timeseries(
    title: str, description: str, unit: str, *queries: Query, **fields: Unpack[PanelFields]
) -> Panel:
    return _panel("timeseries", title, description, unit, queries, fields)


def stat(title: str, description: str, unit: str, *queries: Query, **fields: Unpack[PanelFields]) -> Panel:
    return _panel("stat", title, description, unit, queries, fields)


def gauge(title: str, description: str, unit: str, *queries: Query, **fields: Unpack[PanelFields]) -> Panel:
    return _panel("gauge", title, description, unit, queries, fields)


def bargauge(
    title: str, description: str, unit: str, *queries: Query, **fields: Unpack[PanelFields]
) -> Panel:
    return _panel("bargauge", title, description, unit, queries, fields)


def table_panel(
    title: str, description: str, unit: str, *queries: Query, **fields: Unpack[PanelFields]
) -> Panel:
    return _panel("table", title, description, unit, queries, fields)


def merged_columns(columns: Mapping[str, str], *hidden: str) -> tuple[Json, ...]:
    """Table transformations: join the queries on their labels, then show ``columns`` (field ->
    title) in their order; the time and the ``hidden`` fields are left out."""
    return (
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True, **dict.fromkeys(hidden, True)},
                "indexByName": {name: index for index, name in enumerate(columns)},
                "renameByName": dict(columns),
            },
        },
    )


def percent_change(colour_mode: str = "standard") -> Json:
    """Stat options that show the value with its change since the start of the time range."""
    return {"showPercentChange": True, "percentChangeColorMode": colour_mode}


def _burn_windows(config: RulesConfig, slo: rules.BudgetSlo) -> list[str]:
    tiers = rules.burn_tiers(config, slo)
    return sorted({t.long for t in tiers} | {t.short for t in tiers}, key=rules.seconds)


def _burn_lines(config: RulesConfig, slo: rules.BudgetSlo) -> tuple[list[float], Json]:
    """The factors of the SLO's burn-rate alerts, and threshold lines at them: red for pages."""
    tiers = rules.burn_tiers(config, slo)
    factors = sorted({t.factor for t in tiers})
    pages = {t.factor for t in tiers if t.severity == "critical"}
    return factors, thresholds("transparent", *((f, RED if f in pages else ORANGE) for f in factors))


# --- The dashboards ------------------------------------------------------------------------------


def system_health(config: RulesConfig) -> Board:
    slos, alerts = config.slos, config.alerts
    latency_slo = slos.latency.threshold_seconds
    latency_alert = alerts.high_latency.p95_seconds_above
    error_alert = alerts.high_error_rate.error_ratio_above
    latency_colours = thresholds(GREEN, (latency_slo, YELLOW), (latency_alert, RED))
    up = f'up{{job="{config.exporter_job}"}}'
    headline = (
        stat(
            "Request rate",
            "LLM calls per second over 5 minutes, all replicas together. The percentage is the change "
            "since the start of the time range.",
            "reqps",
            q(rec.LLM_REQUESTS_RATE5M.selector, "calls/s"),
            options=percent_change(),
        ),
        stat(
            "Success rate",
            "Share of LLM calls that succeeded over 5 minutes. Red below "
            f"{rules.percent(1 - error_alert)} (the HighErrorRate alert), green from the availability "
            f"objective ({rules.percent(slos.availability.objective)}).",
            "percentunit",
            q(rec.LLM_REQUESTS_SUCCESS_RATIO5M.selector, "success"),
            options=percent_change(),
            defaults={
                "decimals": 2,
                "thresholds": thresholds(
                    RED, (1 - error_alert, YELLOW), (slos.availability.objective, GREEN)
                ),
            },
        ),
        stat(
            "Average latency",
            "Mean latency of LLM calls over 5 minutes. The percentage is the change since the start of "
            "the time range (down is good). Yellow from the latency SLO threshold "
            f"({rules.num(latency_slo)} s), red from the HighLatency threshold "
            f"({rules.num(latency_alert)} s).",
            "s",
            q(rec.LATENCY_MEAN5M.selector, "mean"),
            options=percent_change("inverted"),
            defaults={"thresholds": latency_colours},
        ),
        stat(
            "p95 latency",
            "95th percentile of LLM call latency over 5 minutes, interpolated within histogram buckets; "
            f"the HighLatency alert fires above {rules.num(latency_alert)} s.",
            "s",
            q(rec.LATENCY_QUANTILE5M.where(quantile="0.95").selector, "p95"),
            options=percent_change("inverted"),
            defaults={"thresholds": latency_colours},
        ),
        stat(
            f"Availability ({slos.availability.window})",
            f"Share of LLM calls that succeeded over the availability SLO window "
            f"({slos.availability.window}); the objective is {rules.percent(slos.availability.objective)}.",
            "percentunit",
            q(rules.slis(config).availability.name, "availability"),
            defaults={
                "decimals": 3,
                "thresholds": thresholds(RED, (slos.availability.objective, GREEN)),
            },
        ),
        stat(
            "Error budget left",
            "Share of the availability error budget left over its window: 1 untouched, 0 spent, "
            "below 0 overspent. Under "
            f"{rules.percent(alerts.error_budget_low.remaining_below)} the optimizer should halt "
            "(see SLOs & error budgets).",
            "percentunit",
            q(rec.SLO_BUDGET_REMAINING.where(slo="availability").selector, "availability"),
            defaults={
                "decimals": 1,
                "thresholds": thresholds(
                    RED, (alerts.error_budget_low.remaining_below, YELLOW), (0.5, GREEN)
                ),
            },
        ),
    )
    latency_row = (
        timeseries(
            "Latency percentiles",
            "p50, p95 and p99 of LLM call latency over 5-minute windows, from the latency histogram "
            f"(all models). Lines: the latency SLO threshold ({rules.num(latency_slo)} s) and the "
            f"HighLatency alert ({rules.num(latency_alert)} s).",
            "s",
            q(rec.LATENCY_QUANTILE5M.where(quantile="0.5").selector, "p50"),
            q(rec.LATENCY_QUANTILE5M.where(quantile="0.95").selector, "p95"),
            q(rec.LATENCY_QUANTILE5M.where(quantile="0.99").selector, "p99"),
            width=16,
            height=9,
            defaults={"thresholds": thresholds("transparent", (latency_slo, YELLOW), (latency_alert, RED))},
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
        bargauge(
            "Errors by type, last hour",
            "Failed LLM calls in the last hour by error type (timeouts, rate limits, model errors, "
            "budget...).",
            "short",
            now(
                "sort_desc(sum by (error_type) (increase(llmopt_llm_request_errors_total[1h])))",
                "{{error_type}}",
            ),
            height=9,
            options={"displayMode": "basic", "orientation": "horizontal", "valueMode": "color"},
            defaults={"decimals": 0, "min": 0, "color": {"mode": "fixed", "fixedColor": ORANGE}},
        ),
    )
    trend_row = (
        timeseries(
            "Request rate, now and a day ago",
            "LLM calls per second over 5 minutes, with the same curve 24 hours earlier for comparison.",
            "reqps",
            q(rec.LLM_REQUESTS_RATE5M.selector, "now"),
            q(f"{rec.LLM_REQUESTS_RATE5M.selector} offset 1d", "a day ago"),
            width=8,
            overrides=(override("a day ago", custom__lineStyle={"fill": "dash", "dash": [10, 10]}),),
        ),
        timeseries(
            "Errors per second by type",
            "Failed LLM calls per second over 5 minutes, stacked by error type.",
            "reqps",
            q(rec.ERRORS_BY_TYPE_RATE5M.selector, "{{error_type}}"),
            width=8,
            custom=STACKED,
        ),
        timeseries(
            "Error ratio, retries and fallbacks",
            "Share of LLM calls that failed over 5 minutes; the HighErrorRate alert fires above "
            f"{rules.percent(error_alert)} for {alerts.high_error_rate.for_}. Of logical calls (each "
            "with its retries and fallbacks), the share whose last try failed; and the shares of calls "
            "that were a retry, or a fallback to another model (FallbackStorm above "
            f"{rules.percent(alerts.fallback_storm.ratio_above)}).",
            "percentunit",
            q(rec.LLM_REQUEST_ERRORS_RATIO5M.selector, "errors"),
            q(rec.LOGICAL_CALL_ERRORS_RATIO5M.selector, "logical calls failed"),
            q(rec.RETRIES_RATIO5M.selector, "later tries"),
            q(rec.FALLBACKS_RATIO5M.selector, "fallbacks"),
            width=8,
            defaults={"min": 0, "thresholds": thresholds("transparent", (error_alert, RED))},
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
    )
    exporter_row = (
        stat(
            "Exporter targets up",
            f"Exporter instances Prometheus scrapes successfully (job {config.exporter_job}); the "
            "ExporterDown alert fires when none is.",
            "none",
            q(f"sum({up})", "up"),
            width=4,
            height=6,
            defaults={"thresholds": thresholds(RED, (1, GREEN))},
        ),
        timeseries(
            "Events ingested",
            "Events the exporter accepted per second by type, and rejected events per second (all "
            "reasons; 0 while the exporter is scraped and has rejected nothing).",
            "ops",
            q("sum by (type) (rate(llmopt_exporter_events_accepted_total[$__rate_interval]))", "{{type}}"),
            q(
                "sum(rate(llmopt_exporter_events_rejected_total[$__rate_interval]))\n"
                f"or on () 0 * sum({up} == 1)",
                "rejected",
            ),
            width=8,
            height=6,
            overrides=(override("rejected", color={"mode": "fixed", "fixedColor": RED}),),
        ),
        stat(
            "Ingest p99",
            "99th percentile of the time the exporter takes to validate and apply one ingest request.",
            "s",
            q(
                "histogram_quantile(0.99, sum by (le) "
                "(rate(llmopt_exporter_ingest_duration_seconds_bucket[$__rate_interval])))",
                "p99",
            ),
            width=4,
            height=6,
            defaults={"thresholds": thresholds(GREEN, (0.1, YELLOW), (0.5, RED))},
        ),
        stat(
            "Open incidents",
            "Incidents the optimizer reported opened and not yet resolved, all severities.",
            "none",
            q("sum(llmopt_incidents_open)", "open"),
            width=4,
            height=6,
            defaults={"thresholds": thresholds(GREEN, (1, RED))},
        ),
        stat(
            "Incidents (30d)",
            "Incidents opened in the last 30 days.",
            "none",
            q(rec.INCIDENTS30D.selector, "incidents"),
            width=4,
            height=6,
            defaults={"decimals": 0, "thresholds": thresholds(GREEN, (1, YELLOW))},
        ),
    )
    return Board(
        "llmopt-system-health",
        "LLM Optimizer / System Health",
        "Is the optimizer serving well right now? Traffic, success, latency, errors by type, "
        "availability and the exporter itself.",
        (headline, latency_row, trend_row, exporter_row, *_dimension_rows(config, "errors")),
        variables=_dimension_variables(config),
    )


def _dimension_variables(config: RulesConfig) -> tuple[Variable, ...]:
    """One variable per declared dimension (alerts/config.yml, dimensions), over its values."""
    return tuple(
        Variable(
            name,
            name.replace("_", " ").capitalize(),
            rec.DIMENSIONS_REQUESTS_RATE5M.by(*config.dimensions).name,
            name,
            description=f"Values of the declared dimension {name} in LLM calls.",
        )
        for name in config.dimensions
    )


def _dimension_rows(config: RulesConfig, view: str) -> tuple[tuple[Panel, ...], ...]:
    """Panels by the declared dimensions, filtered by their variables: calls and errors for the
    system-health view, cost and the scoped budgets for the business view; none without them."""
    dimensions = tuple(config.dimensions)
    if not dimensions:
        return ()
    matchers = [f'{name}=~"${name}"' for name in dimensions]
    legend = " ".join(f"{{{{{name}}}}}" for name in dimensions)
    named = ", ".join(dimensions)
    if view == "errors":
        window, objective = config.slos.availability.window, config.slos.availability.objective
        return (
            (
                timeseries(
                    f"Calls by {named}",
                    f"LLM calls per second by {named}.",
                    "reqps",
                    q(rec.DIMENSIONS_REQUESTS_RATE5M.by(*dimensions).select(*matchers), legend),
                    width=12,
                ),
                timeseries(
                    f"Error ratio by {named}",
                    f"Share of LLM calls that failed, by {named}.",
                    "percentunit",
                    q(rec.DIMENSIONS_ERRORS_RATIO5M.by(*dimensions).select(*matchers), legend),
                    width=8,
                ),
                bargauge(
                    f"Availability by {named} ({window})",
                    f"Share of logical LLM calls that succeeded over {window}, by {named}; the availability "
                    f"SLO asks for {rules.percent(objective)} of all of them.",
                    "percentunit",
                    now(rec.DIMENSIONS_AVAILABILITY.over(window).by(*dimensions).select(*matchers), legend),
                    width=4,
                    options={"displayMode": "basic", "orientation": "horizontal"},
                    defaults={"decimals": 2, "thresholds": thresholds(RED, (objective, GREEN))},
                ),
            ),
        )
    cost = timeseries(
        f"Cost by {named}",
        f"US dollars per hour spent on LLM calls by {named} (rate of the last hour).",
        "currencyUSD",
        q(f"{rec.DIMENSIONS_COST_RATE1H.by(*dimensions).select(*matchers)} * 3600", legend),
        width=24,
        custom={"axisLabel": "$/h"},
    )
    rows: list[tuple[Panel, ...]] = [(cost,)]
    for name in config.alerts.budget_exceeded.scopes:
        scope = f'{name}=~"${name}"'
        rows.append(
            (
                bargauge(
                    f"Spend of each {name} against its budget (24h)",
                    f"What the LLM calls of each {name} with a daily budget cost in the last 24 hours, "
                    "over that budget (1 = spent; LLMOptBudgetExceeded).",
                    "percentunit",
                    now(
                        f"{rec.SCOPE_SPEND1D.by(name).select(scope)} / on ({name}) "
                        f"{rec.SCOPE_BUDGET.by(name).select(scope)}",
                        f"{{{{{name}}}}}",
                    ),
                    width=12,
                    options={"displayMode": "basic", "orientation": "horizontal"},
                    defaults={"min": 0, "max": 1.2, "thresholds": thresholds(GREEN, (0.8, YELLOW), (1, RED))},
                ),
                bargauge(
                    f"Hours of budget left by {name}",
                    f"How long what is left of each {name}'s daily budget lasts at its spend rate of the "
                    "last hour (empty while it spends nothing).",
                    "h",
                    now(rec.SCOPE_BUDGET_HOURS_LEFT.by(name).select(scope), f"{{{{{name}}}}}"),
                    width=12,
                    options={"displayMode": "basic", "orientation": "horizontal"},
                    defaults={"min": 0, "max": 48, "thresholds": thresholds(RED, (24, YELLOW), (36, GREEN))},
                ),
            )
        )
    return tuple(rows)


def _experiment_table() -> Panel:
    columns = {
        "experiment": "Experiment",
        "variant": "Leader",
        "Value #C": "Lead",
        "Value #D": "Confidence",
        "Value #A": "Progress",
        "Value #E": "Samples",
    }
    return table_panel(
        "Running A/B tests",
        "Every running experiment: the variant in the lead and by how much (relative to the runner-up), "
        f"the confidence that it really is best (green from the {rules.percent(CONFIDENCE_NEEDED)} needed "
        "to conclude), progress towards the planned sample size, and samples so far.",
        "percentunit",
        table("max by (experiment) (llmopt_experiment_progress_ratio)"),
        table("max by (experiment, variant) (llmopt_experiment_leader_info == 1)"),
        table("max by (experiment) (llmopt_experiment_leader_lead_ratio)"),
        table("max by (experiment) (llmopt_experiment_confidence_ratio)"),
        table("max by (experiment) (llmopt_experiment_samples)"),
        width=16,
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "sortBy": [{"displayName": "Progress", "desc": True}],
        },
        defaults={"decimals": 1, "custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
        transformations=merged_columns(columns, "Value #B"),
        overrides=(
            override("Progress", custom__cellOptions={"type": "gauge", "mode": "basic"}, min=0, max=1),
            override(
                "Confidence",
                custom__cellOptions={"type": "color-background", "mode": "basic"},
                thresholds=thresholds(ORANGE, (CONFIDENCE_NEEDED, GREEN)),
            ),
            override("Samples", unit="short", decimals=0),
        ),
    )


def optimization(config: RulesConfig) -> Board:
    stuck = rules.seconds(config.alerts.optimization_stuck.no_improvement_for)
    stable = config.cost_trend_stable_within
    bandit = 'bandit="$bandit"'
    experiment = 'experiment=~"$experiment"'
    headline = (
        stat(
            "Active A/B tests",
            "Experiments started and not yet completed or rolled back.",
            "none",
            q("sum(llmopt_experiments_active)", "active"),
            defaults={"color": {"mode": "fixed", "fixedColor": BLUE}},
            options={"colorMode": "value", "graphMode": "none"},
        ),
        stat(
            "Win rate (30d)",
            "Share of the experiments completed in the last 30 days that found a winner.",
            "percentunit",
            q(rec.EXPERIMENTS_WON_RATIO30D.selector, "won"),
            defaults={"color": {"mode": "fixed", "fixedColor": BLUE}},
        ),
        stat(
            "Improvement when won (30d)",
            "Average improvement of the winning variant over control, for experiments won in the last "
            "30 days.",
            "percentunit",
            q(rec.WINNER_IMPROVEMENT_MEAN30D.selector, "improvement"),
            defaults={"decimals": 1, "color": {"mode": "fixed", "fixedColor": BLUE}},
        ),
        stat(
            "Saved vs. baseline (24h)",
            "US dollars LLM calls cost less in the last 24 hours than the same calls would have on the "
            "baseline configuration.",
            "currencyUSD",
            q(rec.SAVINGS1D.selector, "saved"),
            defaults={"thresholds": thresholds(RED, (0, GREEN))},
        ),
        stat(
            "Saved vs. baseline (%)",
            "Savings of the last 24 hours as a share of what the baseline configuration would have cost "
            "(0.23 = 23 % cheaper).",
            "percentunit",
            q(rec.SAVINGS_RATIO1D.selector, "saved"),
            defaults={"decimals": 1, "thresholds": thresholds(RED, (0, GREEN))},
        ),
        stat(
            "Optimization halted?",
            "The halt signal the optimizer checks before experimenting: HALT when an SLO has less than "
            f"{rules.percent(config.alerts.error_budget_low.remaining_below)} of its error budget left.",
            "none",
            q(rec.OPTIMIZATION_HALT.selector, "halt"),
            defaults={"mappings": value_text(("0", "running", GREEN), ("1", "HALT", RED))},
            options={"colorMode": "background", "graphMode": "none"},
        ),
    )
    experiments = (
        _experiment_table(),
        bargauge(
            f"Confidence vs. the {rules.percent(CONFIDENCE_NEEDED)} needed",
            "Confidence that each running experiment's leader is really best; an experiment may conclude "
            f"once it reaches {rules.percent(CONFIDENCE_NEEDED)} (green).",
            "percentunit",
            now("max by (experiment) (llmopt_experiment_confidence_ratio)", "{{experiment}}"),
            options={"displayMode": "lcd", "orientation": "horizontal"},
            defaults={"min": 0, "max": 1, "thresholds": thresholds(ORANGE, (CONFIDENCE_NEEDED, GREEN))},
        ),
    )
    bandits = (
        bargauge(
            "Bandit arm selection share",
            "Share of the pulls of bandit $bandit that went to each arm over the time range (for example "
            "'Temperature 0.7: 68 % selection').",
            "percentunit",
            now(
                ratio(
                    f"sum by (arm) (increase(llmopt_bandit_pulls_total{{{bandit}}}[$__range]))",
                    f"scalar(sum(increase(llmopt_bandit_pulls_total{{{bandit}}}[$__range])))",
                ),
                "{{arm}}",
            ),
            width=6,
            options={"displayMode": "gradient", "orientation": "horizontal"},
            defaults={"min": 0, "max": 1, "color": {"mode": "continuous-BlPu"}},
        ),
        timeseries(
            "Arm selection share over time",
            "How the pulls of bandit $bandit split between arms over time; a converging bandit gives one "
            "arm most of them.",
            "percentunit",
            q(
                ratio(
                    f"sum by (arm) (rate(llmopt_bandit_pulls_total{{{bandit}}}[$__rate_interval]))",
                    f"scalar(sum(rate(llmopt_bandit_pulls_total{{{bandit}}}[$__rate_interval])))",
                ),
                "{{arm}}",
            ),
            q(rec.BANDIT_EXPLORE_RATIO1H.select(bandit), "exploring (1h)"),
            width=9,
            custom=STACKED,
            defaults={"min": 0, "max": 1},
            overrides=(
                override(
                    "exploring (1h)",
                    custom__stacking={"mode": "none", "group": "B"},
                    custom__fillOpacity=0,
                    custom__lineStyle={"fill": "dash", "dash": [10, 10]},
                    color={"mode": "fixed", "fixedColor": "text"},
                ),
            ),
        ),
        table_panel(
            "Arm rewards (24h)",
            "Mean reward of each arm of bandit $bandit over the last 24 hours with its 95 % interval "
            "(normal approximation); arms whose intervals do not overlap differ for real.",
            "none",
            # One label (arm) on every query, so the merge puts an arm's three values on one row.
            table(f"max by (arm) ({rec.ARM_REWARD_MEAN1D.select(bandit)})"),
            table(f"max by (arm) ({rec.ARM_REWARD_CI95_1D.where(bound='lower').select(bandit)})"),
            table(f"max by (arm) ({rec.ARM_REWARD_CI95_1D.where(bound='upper').select(bandit)})"),
            width=9,
            options={
                "showHeader": True,
                "cellHeight": "sm",
                "sortBy": [{"displayName": "Mean", "desc": True}],
            },
            defaults={"decimals": 3, "custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            transformations=merged_columns(
                {"arm": "Arm", "Value #B": "95 % low", "Value #A": "Mean", "Value #C": "95 % high"}
            ),
            overrides=(
                override(
                    "Mean",
                    custom__cellOptions={"type": "gauge", "mode": "basic"},
                    min=0,
                    color={"mode": "continuous-BlPu"},
                ),
            ),
        ),
    )
    cost = (
        timeseries(
            "Cost trend, 7 days",
            "US dollars per day: everything spent (tokens, compute, infrastructure), what the LLM calls "
            "cost, and what the same calls would have cost on the baseline configuration. Always the last "
            "7 days, one bar a day.",
            "currencyUSD",
            q("sum(increase(llmopt_spend_usd_total[$__interval]))", "total spend"),
            q("sum(increase(llmopt_llm_cost_usd_total[$__interval]))", "LLM calls"),
            q("sum(increase(llmopt_llm_baseline_cost_usd_total[$__interval]))", "LLM calls on the baseline"),
            width=10,
            custom=BARS,
            extra={"timeFrom": "7d", "interval": "1d"},
            overrides=(
                override(
                    "LLM calls on the baseline",
                    custom__drawStyle="line",
                    custom__lineStyle={"fill": "dash", "dash": [10, 10]},
                    custom__fillOpacity=0,
                ),
            ),
        ),
        timeseries(
            "Savings vs. baseline (24h)",
            "US dollars saved over the last 24 hours against the baseline configuration, and the same as "
            "a share of the baseline cost (right axis).",
            "currencyUSD",
            q(rec.SAVINGS1D.selector, "saved ($)"),
            q(rec.SAVINGS_RATIO1D.selector, "saved (%)"),
            width=10,
            overrides=(override("saved (%)", unit="percentunit", custom__axisPlacement="right"),),
        ),
        stat(
            "Spend, day over day",
            "Spend of the last 24 hours relative to the 24 hours before (all categories). Within "
            f"±{rules.percent(stable)} the cost trend counts as stable; green when falling, red when rising.",
            "percentunit",
            q(rec.SPEND_CHANGE1D.selector, "change"),
            width=4,
            height=8,
            defaults={"decimals": 1, "thresholds": thresholds(GREEN, (-stable, YELLOW), (stable, RED))},
        ),
    )
    variants = (
        timeseries(
            "Calls per variant",
            "LLM calls per second served by each variant of the selected experiments.",
            "reqps",
            q(
                "sum by (experiment, variant) "
                f"(rate(llmopt_experiment_variant_requests_total{{{experiment}}}[$__rate_interval]))",
                "{{experiment}} / {{variant}}",
            ),
            width=6,
        ),
        timeseries(
            "Quality per variant",
            "Average composite quality score (0-100) of the calls each variant served.",
            "none",
            q(
                ratio(
                    "sum by (experiment, variant) "
                    f"(rate(llmopt_experiment_variant_quality_score_sum{{{experiment}}}[$__rate_interval]))",
                    "sum by (experiment, variant) "
                    f"(rate(llmopt_experiment_variant_quality_score_count{{{experiment}}}[$__rate_interval]))",
                ),
                "{{experiment}} / {{variant}}",
            ),
            width=6,
            defaults={"decimals": 1},
        ),
        timeseries(
            "Cost per call per variant",
            "Average US dollars per LLM call served by each variant.",
            "currencyUSD",
            q(
                ratio(
                    "sum by (experiment, variant) "
                    f"(rate(llmopt_experiment_variant_cost_usd_total{{{experiment}}}[$__rate_interval]))",
                    "sum by (experiment, variant) "
                    f"(rate(llmopt_experiment_variant_requests_total{{{experiment}}}[$__rate_interval]))",
                ),
                "{{experiment}} / {{variant}}",
            ),
            width=6,
            defaults={"decimals": 5},
        ),
        bargauge(
            "Thumbs up per variant",
            "Share of the thumbs given to each variant's answers over the time range that were up.",
            "percentunit",
            now(
                ratio(
                    "sum by (experiment, variant) "
                    f'(increase(llmopt_feedback_thumbs_total{{{experiment}, rating="up"}}[$__range]))',
                    "sum by (experiment, variant) "
                    f"(increase(llmopt_feedback_thumbs_total{{{experiment}}}[$__range]))",
                ),
                "{{experiment}} / {{variant}}",
            ),
            width=6,
            options={"displayMode": "gradient", "orientation": "horizontal"},
            defaults={"min": 0, "max": 1, "thresholds": thresholds(RED, (0.5, YELLOW), (0.8, GREEN))},
        ),
    )
    per_variant = (
        timeseries(
            "Time to first token per variant (p95)",
            "95th percentile time to the first chunk of the streamed calls each variant served.",
            "s",
            q(
                "histogram_quantile(0.95, sum by (experiment, variant, le) "
                f"(rate({m.VARIANT_TIME_TO_FIRST_TOKEN.name}_bucket{{{experiment}}}[$__rate_interval])))",
                "{{experiment}} / {{variant}}",
            ),
        ),
        timeseries(
            "Time per output token per variant (p50)",
            "Median time per output token after the first, of the streamed calls each variant served.",
            "s",
            q(
                "histogram_quantile(0.5, sum by (experiment, variant, le) "
                f"(rate({m.VARIANT_TIME_PER_OUTPUT_TOKEN.name}_bucket{{{experiment}}}[$__rate_interval])))",
                "{{experiment}} / {{variant}}",
            ),
        ),
    )
    parameters = (
        timeseries(
            "Parameter values",
            "Current value of each parameter the optimizer tunes (e.g. temperature).",
            "none",
            q("max by (parameter) (llmopt_parameter_value)", "{{parameter}}"),
            width=8,
            height=6,
            custom={"lineInterpolation": "stepAfter"},
        ),
        gauge(
            "Parameter stability",
            "Stability score of each tuned parameter (0-1, higher is more stable).",
            "percentunit",
            q("max by (parameter) (llmopt_parameter_stability_ratio)", "{{parameter}}"),
            height=6,
            defaults={"min": 0, "max": 1, "thresholds": thresholds(RED, (0.5, YELLOW), (0.8, GREEN))},
        ),
        stat(
            "Latest gain",
            "Performance gain of the latest update of each parameter (0.05 = +5 %).",
            "percentunit",
            q("max by (parameter) (llmopt_parameter_performance_gain_ratio)", "{{parameter}}"),
            height=6,
            defaults={"decimals": 1, "thresholds": thresholds(RED, (0, GREEN))},
        ),
        stat(
            "Parameter updates (1h)",
            "Parameter updates the optimizer applied in the last hour.",
            "short",
            q(rec.PARAMETER_UPDATES1H.selector, "updates"),
            height=6,
            defaults={"decimals": 0, "color": {"mode": "fixed", "fixedColor": BLUE}},
        ),
        stat(
            "Since last improvement",
            "Time since the optimizer last improved something (an improving parameter update or an "
            "experiment won); no data before the first. The OptimizationStuck alert fires after "
            f"{config.alerts.optimization_stuck.no_improvement_for}.",
            "s",
            q(f"time() - max({m.LAST_IMPROVEMENT.name})", "since"),
            height=6,
            defaults={"thresholds": thresholds(GREEN, (stuck / 2, YELLOW), (stuck, RED))},
            options={"graphMode": "none"},
        ),
    )
    return Board(
        "llmopt-optimization",
        "LLM Optimizer / Optimization Performance",
        "Is the optimizer getting better and cheaper? Running A/B tests and their leaders, variants "
        "compared, the bandit's choices and rewards, the cost trend, savings and parameter tuning.",
        (headline, experiments, bandits, cost, variants, per_variant, parameters),
        variables=(
            Variable(
                "experiment",
                "Experiment",
                "llmopt_experiment_variant_requests_total",
                "experiment",
                description="Experiments whose variants served LLM calls.",
            ),
            Variable(
                "bandit",
                "Bandit",
                "llmopt_bandit_pulls_total",
                "bandit",
                is_multi=False,
                description="The bandit whose arms the bandit panels show.",
            ),
        ),
    )


def experiment_checks(config: RulesConfig) -> Board:
    checks = config.experiments
    level = rules.percent(checks.confidence)
    running = 'experiment="$running"'
    primary = checks.primary_metric
    metric_names = ", ".join(get_args(rules.ExperimentMetric))
    split = (
        stat(
            "Sample ratio",
            "Whether the calls each variant served follow the planned traffic_split: a chi-squared test "
            f"at p < {rules.num(checks.sample_ratio_mismatch.p_value_below)}, once every variant has "
            f"{checks.sample_ratio_mismatch.min_calls_per_variant} calls. A mismatch means the "
            "assignment is broken and nothing of the experiment can be trusted.",
            "none",
            q(rec.SRM.select(running), "sample ratio"),
            defaults={"mappings": value_text(("0", "as planned", GREEN), ("1", "MISMATCH", RED))},
            options={"graphMode": "none"},
        ),
        stat(
            "Chi-squared and critical value",
            "The chi-squared statistic of the calls per variant against the plan, and the value above "
            "which it is a mismatch for the experiment's degrees of freedom.",
            "none",
            q(rec.SRM_CHI_SQUARED.select(running), "chi-squared"),
            q(rec.SRM_CRITICAL_VALUE.select(running), "critical"),
            defaults={"decimals": 2},
            options={"graphMode": "none"},
        ),
        timeseries(
            "Planned and observed calls",
            "Calls each variant served (over all replicas), and the calls its planned share of the "
            "experiment's calls would be.",
            "short",
            q(rec.VARIANT_CALLS.select(running), "{{variant}} observed"),
            q(rec.VARIANT_EXPECTED_CALLS.select(running), "{{variant}} planned"),
            width=16,
        ),
    )
    columns = {
        "variant": "Variant",
        "metric": "Metric",
        "Value #A": "Difference",
        "Value #B": "Lower",
        "Value #C": "Upper",
        "Value #D": "Verdict",
        "Value #E": "Samples",
    }
    effects = (
        table_panel(
            "Effects against control",
            f"Each variant against control on {metric_names}: the difference (variant minus control), "
            f"its always-valid {level} interval, and the verdict (better, worse, or not known while the "
            f"interval contains zero). Shown once both have {checks.min_samples_per_variant} samples.",
            "none",
            # One row per variant and metric: the merge joins on the labels left without bound
            # (and without the series names, which an aggregation drops).
            *(
                table(f"max without (bound) ({series.select(running)})")
                for series in (
                    rec.EFFECT_DIFFERENCE,
                    rec.EFFECT_INTERVAL.where(bound="lower"),
                    rec.EFFECT_INTERVAL.where(bound="upper"),
                    rec.EFFECT_VERDICT,
                    rec.EFFECT_SAMPLES,
                )
            ),
            width=14,
            options={"showHeader": True, "cellHeight": "sm"},
            defaults={"decimals": 4, "custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            transformations=merged_columns(columns, "experiment"),
            overrides=(
                override(
                    "Verdict",
                    custom__cellOptions={"type": "color-background", "mode": "basic"},
                    mappings=value_text(
                        ("-1", "worse", RED), ("0", "not known", BLUE), ("1", "better", GREEN)
                    ),
                ),
                override("Samples", unit="short", decimals=0),
            ),
        ),
        timeseries(
            f"Always-valid interval: {primary}",
            f"The difference in {primary} (the primary metric) from control, with its always-valid {level} "
            "interval. The experiment can be decided for a variant once the band leaves zero.",
            "none",
            q(rec.EFFECT_DIFFERENCE.where(metric=primary).select(running), "{{variant}}"),
            q(rec.EFFECT_INTERVAL.where(bound="lower", metric=primary).select(running), "{{variant}} lower"),
            q(rec.EFFECT_INTERVAL.where(bound="upper", metric=primary).select(running), "{{variant}} upper"),
            width=10,
        ),
    )
    verdicts = (
        stat(
            "Decide signal",
            f"Per variant: 1 when the always-valid interval of {primary} excludes zero and no guardrail is "
            "breached. The Python client's experiment_decision() reads it.",
            "none",
            q(rec.DECISION.select(running), "{{variant}}"),
            width=8,
            defaults={"mappings": value_text(("0", "keep running", BLUE), ("1", "DECIDE", GREEN))},
            options={"graphMode": "none"},
        ),
        stat(
            "Guardrails",
            f"Per variant and guardrail metric ({', '.join(checks.guardrail.metrics)}): breached when the "
            "variant is worse than control beyond its interval.",
            "none",
            q(rec.GUARDRAIL.select(running), "{{variant}} {{metric}}"),
            width=8,
            defaults={"mappings": value_text(("0", "ok", GREEN), ("1", "BREACHED", RED))},
            options={"graphMode": "none"},
        ),
        timeseries(
            "p95 latency per variant",
            "95th percentile latency of each variant's calls since they were first counted.",
            "s",
            q(rec.VARIANT_LATENCY_P95.select(running), "{{variant}}"),
            width=8,
        ),
    )
    return Board(
        "llmopt-experiments",
        "LLM Optimizer / Experiment Checks",
        "Can the running experiment be trusted and decided? Planned against observed split (sample "
        "ratio mismatch), each variant's effect with its always-valid interval, guardrails, and the "
        "decide signal.",
        (split, effects, verdicts),
        variables=(
            Variable(
                "running",
                "Experiment",
                m.EXPERIMENT_CONTROL.name,
                "experiment",
                is_multi=False,
                description="Running experiments with a control variant: the ones the rules check.",
            ),
        ),
    )


def slos(config: RulesConfig) -> Board:
    s, alerts, sli = config.slos, config.alerts, rules.slis(config)
    low = alerts.error_budget_low.remaining_below
    slis = (
        stat(
            f"Availability SLI ({s.availability.window})",
            f"Share of LLM calls that succeeded over {s.availability.window}; the objective is "
            f"{rules.percent(s.availability.objective)}.",
            "percentunit",
            q(sli.availability.name, "availability"),
            width=6,
            defaults={"decimals": 3, "thresholds": thresholds(RED, (s.availability.objective, GREEN))},
        ),
        stat(
            f"Latency SLI ({s.latency.window})",
            f"Share of LLM calls answered within {rules.num(s.latency.threshold_seconds)} s over "
            f"{s.latency.window}; the objective is {rules.percent(s.latency.objective)}.",
            "percentunit",
            q(sli.latency.name, "latency"),
            width=6,
            defaults={"decimals": 2, "thresholds": thresholds(RED, (s.latency.objective, GREEN))},
        ),
        stat(
            f"Quality SLI ({s.quality.window})",
            f"Average quality score (0-100) of LLM responses over {s.quality.window}; the objective is "
            f"at least {rules.num(s.quality.min_average_score)}.",
            "none",
            q(sli.quality.name, "quality"),
            width=6,
            defaults={"decimals": 1, "thresholds": thresholds(RED, (s.quality.min_average_score, GREEN))},
        ),
        stat(
            f"Cost SLI ({s.cost.window})",
            f"US dollars of LLM calls per successful call over {s.cost.window}; the objective is at most "
            f"{rules.usd(s.cost.max_usd_per_successful_request)}.",
            "currencyUSD",
            q(sli.cost.name, "cost"),
            width=6,
            defaults={
                "decimals": 4,
                "thresholds": thresholds(GREEN, (s.cost.max_usd_per_successful_request, RED)),
            },
        ),
    )
    budget = (
        bargauge(
            "Error budget left",
            "Share of each error budget left over its SLO window: 1 untouched, 0 spent, below 0 "
            f"overspent (shown empty). Under {rules.percent(low)} the ErrorBudgetLow alert fires and the "
            "optimizer should halt.",
            "percentunit",
            now(rec.SLO_BUDGET_REMAINING.selector, "{{slo}}"),
            width=8,
            height=6,
            options={"displayMode": "gradient", "orientation": "horizontal"},
            defaults={
                "decimals": 1,
                "min": 0,
                "max": 1,
                "thresholds": thresholds(RED, (low, YELLOW), (0.5, GREEN)),
            },
        ),
        stat(
            "Optimization halt signal",
            f"{rec.OPTIMIZATION_HALT.name}, which the optimizer checks before experimenting: HALT when an "
            f"SLO has less than {rules.percent(low)} of its error budget left.",
            "none",
            q(rec.OPTIMIZATION_HALT.selector, "halt"),
            width=5,
            height=6,
            defaults={"mappings": value_text(("0", "running", GREEN), ("1", "HALT", RED))},
            options={"colorMode": "background", "graphMode": "area"},
        ),
        stat(
            "Objectives",
            "The objective of each SLO with an error budget (alerts/config.yml); the budget is 1 minus "
            "the objective.",
            "percentunit",
            now(rec.SLO_OBJECTIVE.selector, "{{slo}}"),
            width=6,
            height=6,
            defaults={"decimals": 2, "color": {"mode": "fixed", "fixedColor": BLUE}},
            options={"graphMode": "none", "textMode": "value_and_name"},
        ),
        stat(
            f"Time-to-first-token SLI ({s.ttft.window})",
            "Share of streamed LLM calls whose first token came within "
            f"{rules.num(s.ttft.threshold_seconds)} s over {s.ttft.window}; the objective is "
            f"{rules.percent(s.ttft.objective)}.",
            "percentunit",
            q(sli.ttft.name, "ttft"),
            width=5,
            height=6,
            defaults={"decimals": 2, "thresholds": thresholds(RED, (s.ttft.objective, GREEN))},
        ),
    )
    budget_slos = rules.budget_slos(config)
    burn_rates = tuple(
        timeseries(
            f"Burn rate: {slo.name}",
            f"How fast the {slo.name} error budget burns over each alerting window (1 = it lasts exactly "
            f"the {slo.window} SLO window). LLMOptErrorBudgetBurn fires when a long and its short window "
            f"both exceed a line: {', '.join(rules.num(f) for f in factors)}.",
            "none",
            *(
                q(rec.SLO_BURN_RATE.over(window).where(slo=slo.name).selector, window)
                for window in _burn_windows(config, slo)
            ),
            width=GRID_COLUMNS // len(budget_slos),
            defaults={"decimals": 1, "min": 0, "thresholds": lines},
            custom={"thresholdsStyle": {"mode": "line"}, "scaleDistribution": {"type": "log", "log": 10}},
        )
        for slo in budget_slos
        for factors, lines in (_burn_lines(config, slo),)
    )
    history = (
        timeseries(
            "Error budget left over time",
            "Share of each error budget left; the line is the ErrorBudgetLow threshold "
            f"({rules.percent(low)}).",
            "percentunit",
            q(rec.SLO_BUDGET_REMAINING.selector, "{{slo}}"),
            defaults={"thresholds": thresholds("transparent", (low, RED))},
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
        table_panel(
            "SLO alerts firing",
            "Alerts about SLOs, error rate and latency that are firing now, with their severity.",
            "none",
            table(
                'sum by (alertname, slo, severity) (ALERTS{alertstate="firing", alertname=~'
                '"LLMOptErrorBudgetBurn|LLMOptErrorBudgetLow|LLMOptSLOMissed|LLMOptHighErrorRate|LLMOptHighLatency"})'
            ),
            options={"showHeader": True, "cellHeight": "sm"},
            defaults={
                "custom": {"align": "auto", "cellOptions": {"type": "auto"}},
                "noValue": "nothing firing",
            },
            transformations=(
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "Value": True},
                        "indexByName": {"alertname": 0, "slo": 1, "severity": 2},
                        "renameByName": {"alertname": "Alert", "slo": "SLO", "severity": "Severity"},
                    },
                },
            ),
        ),
    )
    return Board(
        "llmopt-slos",
        "LLM Optimizer / SLOs & error budgets",
        "Are we keeping our promises? Each SLO's SLI, the error budget left, burn rates over the "
        "alerting windows and the signal that halts optimization.",
        (slis, budget, burn_rates, history),
    )


def models(config: RulesConfig) -> Board:
    s, alerts = config.slos, config.alerts
    model = 'model=~"$model"'
    quality_lines = thresholds(
        "transparent", (alerts.quality_degradation.score_below, RED), (s.quality.min_average_score, YELLOW)
    )
    traffic = (
        timeseries(
            "Calls per model",
            "LLM calls per second by model.",
            "reqps",
            q(f"sum by (model) (rate(llmopt_llm_requests_total{{{model}}}[$__rate_interval]))", "{{model}}"),
            width=8,
        ),
        timeseries(
            "Error ratio per model",
            "Share of each model's LLM calls that failed (0 for a model without failures).",
            "percentunit",
            q(
                ratio(
                    "(\n"
                    f"  sum by (model) (rate(llmopt_llm_request_errors_total{{{model}}}[$__rate_interval]))\n"
                    "  or\n"
                    f"  0 * sum by (model) (rate(llmopt_llm_requests_total{{{model}}}[$__rate_interval]))\n"
                    ")",
                    f"sum by (model) (rate(llmopt_llm_requests_total{{{model}}}[$__rate_interval]))",
                ),
                "{{model}}",
            ),
            width=8,
            defaults={"min": 0},
        ),
        timeseries(
            "p95 latency per model",
            "95th percentile of LLM call latency by model, interpolated within histogram buckets.",
            "s",
            Query(
                "histogram_quantile(0.95, sum by (model, le) "
                f"(rate(llmopt_llm_request_duration_seconds_bucket{{{model}}}[$__rate_interval])))",
                "{{model}}",
                exemplar=True,
            ),
            width=8,
            defaults={"thresholds": thresholds("transparent", (s.latency.threshold_seconds, YELLOW))},
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
    )
    usage = (
        timeseries(
            "Tokens per second",
            "Tokens processed per second by model and direction (input = prompt, output = completion).",
            "short",
            q(
                f"sum by (model, direction) (rate(llmopt_llm_tokens_total{{{model}}}[$__rate_interval]))",
                "{{model}} {{direction}}",
            ),
            width=8,
            custom={**STACKED, "axisLabel": "tokens/s"},
        ),
        timeseries(
            "Spend rate per model",
            "What each model's LLM calls cost, in US dollars per hour.",
            "currencyUSD",
            Query(
                f"sum by (model) (rate(llmopt_llm_cost_usd_total{{{model}}}[$__rate_interval])) * 3600",
                "{{model}}",
                exemplar=True,
            ),
            width=8,
            custom={**STACKED, "axisLabel": "$/h"},
        ),
        timeseries(
            "Prompt cache hit ratio",
            "Share of input tokens read from the provider's prompt cache, by model, and for all models "
            "over the last hour; and the share written to the cache, by model.",
            "percentunit",
            q(
                ratio(
                    f"sum by (model) (rate(llmopt_llm_cached_tokens_total{{{model}}}[$__rate_interval]))",
                    "sum by (model) "
                    f'(rate(llmopt_llm_tokens_total{{{model}, direction="input"}}[$__rate_interval]))',
                ),
                "{{model}}",
            ),
            q(rec.CACHED_TOKENS_RATIO1H.selector, "all models (1h)"),
            q(
                ratio(
                    f"sum by (model) (rate({m.LLM_CACHE_WRITE_TOKENS.name}{{{model}}}[$__rate_interval]))",
                    "sum by (model) "
                    f'(rate(llmopt_llm_tokens_total{{{model}, direction="input"}}[$__rate_interval]))',
                ),
                "{{model}} written to the cache",
            ),
            width=8,
            defaults={"min": 0, "max": 1},
        ),
    )
    ttft_line = thresholds("transparent", (s.ttft.threshold_seconds, YELLOW))
    streaming = (
        timeseries(
            "Time to first token per model (p95)",
            "95th percentile time to the first chunk of streamed answers, by model (the line: the "
            f"time-to-first-token SLO threshold, {rules.num(s.ttft.threshold_seconds)} s). Dots: exemplars.",
            "s",
            Query(
                "histogram_quantile(0.95, sum by (model, le) "
                f"(rate({m.LLM_TIME_TO_FIRST_TOKEN.name}_bucket{{{model}}}[$__rate_interval])))",
                "{{model}}",
                exemplar=True,
            ),
            q(rec.TTFT_QUANTILE5M.where(quantile="0.5").selector, "all models p50"),
            width=8,
            defaults={"thresholds": ttft_line},
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
        timeseries(
            "Time per output token per model (p50)",
            "Median time per output token after the first, of streamed answers, by model.",
            "s",
            q(
                "histogram_quantile(0.5, sum by (model, le) "
                f"(rate({m.LLM_TIME_PER_OUTPUT_TOKEN.name}_bucket{{{model}}}[$__rate_interval])))",
                "{{model}}",
            ),
            width=8,
        ),
        timeseries(
            "Truncated answers and reasoning share",
            "Share of calls cut at the token limit (finish_reason length) of those reporting a finish "
            "reason, by model; and the share of output tokens spent on reasoning, all models over 1h.",
            "percentunit",
            q(
                ratio(
                    "(\n"
                    f'  sum by (model) (rate({m.LLM_FINISH_REASONS.name}{{{model}, finish_reason="length"}}'
                    "[$__rate_interval]))\n"
                    "  or\n"
                    f"  0 * sum by (model) (rate({m.LLM_FINISH_REASONS.name}{{{model}}}[$__rate_interval]))\n"
                    ")",
                    f"sum by (model) (rate({m.LLM_FINISH_REASONS.name}{{{model}}}[$__rate_interval]))",
                ),
                "{{model}} truncated",
            ),
            q(rec.REASONING_TOKENS_RATIO1H.selector, "reasoning (1h)"),
            width=8,
            defaults={"min": 0, "max": 1},
        ),
    )
    priced = (
        timeseries(
            "Spend: reported and by the price table",
            "US dollars per hour by model: what the calls cost (as reported, or priced from the table "
            "when they report nothing), and what the price table (prices_file) says they cost. Apart "
            "lines mean the prices or the reported costs are off. Empty without a price table.",
            "currencyUSD",
            q(
                f"sum by (model) (rate(llmopt_llm_cost_usd_total{{{model}}}[$__rate_interval])) * 3600",
                "{{model}}",
            ),
            q(
                f"sum by (model) (rate({m.LLM_PRICED_COST.name}{{{model}}}[$__rate_interval])) * 3600",
                "{{model}} by the table",
            ),
            width=12,
            custom={"axisLabel": "$/h"},
        ),
        timeseries(
            "Cost mismatches and unpriced calls",
            "Calls per second whose reported cost differs from the price table by more than its "
            "tolerance, and calls of models the table has no price for, by model.",
            "reqps",
            q(
                f"sum by (model) (rate({m.COST_MISMATCHES.name}{{{model}}}[$__rate_interval]))",
                "{{model}} mismatch",
            ),
            q(
                f"sum by (model) (rate({m.UNPRICED_CALLS.name}{{{model}}}[$__rate_interval]))",
                "{{model}} unpriced",
            ),
            width=12,
        ),
    )
    quality = (
        timeseries(
            "Quality per model (1h)",
            "Average composite quality score (0-100) by model over the last hour. Lines: the quality SLO "
            f"({rules.num(s.quality.min_average_score)}) and the QualityDegradation alert "
            f"({rules.num(alerts.quality_degradation.score_below)}).",
            "none",
            q(rec.MODEL_QUALITY_MEAN1H.select(model), "{{model}}"),
            defaults={"decimals": 1, "thresholds": quality_lines},
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
        bargauge(
            "Quality dimensions (1h)",
            "Average score (0-100) per model and quality dimension (accuracy, relevance, coherence, "
            "completeness) over the last hour.",
            "none",
            now(
                rec.MODEL_DIMENSION_QUALITY_MEAN1H.select(model),
                "{{model}} {{dimension}}",
            ),
            width=12,
            options={"displayMode": "gradient", "orientation": "horizontal"},
            defaults={
                "decimals": 1,
                "min": 0,
                "max": 100,
                "thresholds": thresholds(
                    RED,
                    (alerts.quality_degradation.score_below, YELLOW),
                    (s.quality.min_average_score, GREEN),
                ),
            },
        ),
    )
    health_columns = {
        "model": "Model",
        "provider": "Provider",
        "Value #A": "Available",
        "Value #B": "Probe latency",
        "Value #C": "Error ratio",
        "Value #D": "Last check",
    }
    health = (
        table_panel(
            "Model health",
            "The latest health check of each model: available or not, probe latency, reported error "
            "ratio, and how long ago it was checked.",
            "none",
            table(f"max by (model, provider) (llmopt_model_available{{{model}}})"),
            table(f"max by (model, provider) (llmopt_model_probe_latency_seconds{{{model}}})"),
            table(f"max by (model, provider) (llmopt_model_error_ratio{{{model}}})"),
            table(
                f"time() - max by (model, provider) (llmopt_model_last_check_timestamp_seconds{{{model}}})"
            ),
            options={"showHeader": True, "cellHeight": "sm"},
            defaults={"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            transformations=merged_columns(health_columns),
            overrides=(
                override(
                    "Available",
                    mappings=value_text(("0", "down", RED), ("1", "up", GREEN)),
                    custom__cellOptions={"type": "color-background", "mode": "basic"},
                ),
                override("Probe latency", unit="s"),
                override(
                    "Error ratio",
                    unit="percentunit",
                    thresholds=thresholds(GREEN, (0.05, RED)),
                    custom__cellOptions={"type": "color-text"},
                ),
                override("Last check", unit="s", decimals=0),
            ),
        ),
        timeseries(
            "Model availability",
            "1 while a model's latest health check found it available, 0 while it did not (flaps show "
            "as dips).",
            "none",
            q(f"max by (model) (llmopt_model_available{{{model}}})", "{{model}}"),
            defaults={"min": 0, "max": 1, "mappings": value_text(("0", "down", RED), ("1", "up", GREEN))},
            custom={"lineInterpolation": "stepAfter"},
        ),
    )
    totals = (
        bargauge(
            "Calls over the time range",
            "LLM calls per model over the dashboard's time range.",
            "short",
            now(
                f"sort_desc(sum by (model) (increase(llmopt_llm_requests_total{{{model}}}[$__range])))",
                "{{model}}",
            ),
            width=6,
            height=6,
            options={"displayMode": "basic", "orientation": "horizontal"},
            defaults={"decimals": 0, "color": {"mode": "palette-classic"}},
        ),
        bargauge(
            "Mean latency per model (1h)",
            "Mean LLM call latency by model over the last hour.",
            "s",
            now(rec.MODEL_LATENCY_MEAN1H.select(model), "{{model}}"),
            width=6,
            height=6,
            options={"displayMode": "basic", "orientation": "horizontal"},
            defaults={
                "thresholds": thresholds(
                    GREEN, (s.latency.threshold_seconds, YELLOW), (alerts.high_latency.p95_seconds_above, RED)
                )
            },
        ),
        stat(
            "Tokens per call (1h)",
            "Average tokens (input + output) per LLM call that reported tokens, all models, last hour.",
            "short",
            q(rec.TOKENS_PER_REQUEST_MEAN1H.selector, "tokens/call"),
            width=6,
            height=6,
            defaults={"decimals": 0, "color": {"mode": "fixed", "fixedColor": BLUE}},
        ),
        stat(
            "Cost per call (1h)",
            "Average US dollars per LLM call, all models, last hour.",
            "currencyUSD",
            q(rec.COST_PER_REQUEST1H.selector, "$/call"),
            width=6,
            height=6,
            defaults={"decimals": 5, "color": {"mode": "fixed", "fixedColor": BLUE}},
        ),
    )
    return Board(
        "llmopt-models",
        "LLM Optimizer / Models & tokens",
        "How is each model doing? Calls, errors, latency, tokens, cost, prompt cache hits, quality and "
        "its dimensions, and health checks, per model.",
        (traffic, usage, streaming, priced, quality, health, totals),
        variables=(
            Variable(
                "model",
                "Model",
                "llmopt_llm_requests_total",
                "model",
                description="Models that served LLM calls.",
            ),
        ),
    )


def business(config: RulesConfig) -> Board:
    daily_budget = config.alerts.budget_exceeded.daily_budget_usd
    spend = (
        stat(
            "Spend (24h)",
            "Everything spent in the last 24 hours (tokens, compute, infrastructure); red from the daily "
            f"budget ({rules.usd(daily_budget)}, the BudgetExceeded alert).",
            "currencyUSD",
            q(rec.SPEND1D.selector, "spend"),
            defaults={"thresholds": thresholds(GREEN, (0.8 * daily_budget, YELLOW), (daily_budget, RED))},
        ),
        gauge(
            "Daily budget used",
            f"Spend of the last 24 hours over the daily budget ({rules.usd(daily_budget)}); 100 % = spent.",
            "percentunit",
            q(rec.BUDGET_UTILIZATION1D.selector, "used"),
            defaults={"min": 0, "max": 1.2, "thresholds": thresholds(GREEN, (0.8, YELLOW), (1, RED))},
        ),
        stat(
            "Saved vs. baseline (24h)",
            "US dollars the LLM calls of the last 24 hours cost less than on the baseline configuration.",
            "currencyUSD",
            q(rec.SAVINGS1D.selector, "saved"),
            defaults={"thresholds": thresholds(RED, (0, GREEN))},
        ),
        stat(
            "ROI (30d)",
            "Value derived per dollar the optimization itself cost, over 30 days (3 = three dollars of "
            "value per dollar).",
            "none",
            q(rec.ROI_MULTIPLE30D.selector, "ROI"),
            defaults={"decimals": 1, "thresholds": thresholds(RED, (1, GREEN))},
        ),
        stat(
            "Payback period",
            "Time the value derived takes to repay 30 days of optimization cost, at the value rate of "
            "those 30 days.",
            "s",
            q(rec.ROI_PAYBACK30D.selector, "payback"),
            defaults={"color": {"mode": "fixed", "fixedColor": BLUE}},
        ),
        stat(
            "Quality vs. baseline (1h)",
            "Average quality score of the last hour relative to the quality before optimization "
            "(0.05 = 5 % better).",
            "percentunit",
            q(rec.QUALITY_IMPROVEMENT1H.selector, "quality"),
            defaults={"decimals": 1, "thresholds": thresholds(RED, (0, GREEN))},
        ),
    )
    breakdown = (
        bargauge(
            "Spend by category (24h)",
            "What the last 24 hours cost by category: tokens (LLM calls), compute and infrastructure.",
            "currencyUSD",
            now(rec.SPEND_BY_CATEGORY1D.selector, "{{category}}"),
            options={"displayMode": "basic", "orientation": "horizontal"},
            defaults={"color": {"mode": "palette-classic"}},
        ),
        timeseries(
            "Spend rate by category",
            "US dollars per hour by spend category, stacked.",
            "currencyUSD",
            q("sum by (category) (rate(llmopt_spend_usd_total[$__rate_interval])) * 3600", "{{category}}"),
            width=16,
            custom={**STACKED, "axisLabel": "$/h"},
        ),
    )
    satisfaction = (
        stat(
            "NPS (7d)",
            "Net Promoter Score of the last 7 days, -100 to 100: % promoters (9-10) minus % detractors "
            "(0-6).",
            "none",
            q(rec.NPS7D.selector, "NPS"),
            width=6,
            defaults={
                "decimals": 0,
                "min": -100,
                "max": 100,
                "thresholds": thresholds(RED, (0, YELLOW), (30, GREEN)),
            },
        ),
        stat(
            "CSAT (7d)",
            "Share of satisfaction answers of 4 or 5 on the 1-5 scale, last 7 days.",
            "percentunit",
            q(rec.CSAT7D.selector, "CSAT"),
            width=6,
            defaults={"decimals": 1, "thresholds": thresholds(RED, (0.7, YELLOW), (0.85, GREEN))},
        ),
        stat(
            "Thumbs up (24h)",
            "Share of the thumbs given in the last 24 hours that were up.",
            "percentunit",
            q(rec.THUMBS_UP_RATIO1D.selector, "up"),
            width=6,
            defaults={"decimals": 1, "thresholds": thresholds(RED, (0.6, YELLOW), (0.8, GREEN))},
        ),
        stat(
            "Thumbs down (24h)",
            "Share of the thumbs given in the last 24 hours that were down.",
            "percentunit",
            q(rec.THUMBS_DOWN_RATIO1D.selector, "down"),
            width=6,
            defaults={"decimals": 1, "thresholds": thresholds(GREEN, (0.2, YELLOW), (0.4, RED))},
        ),
    )
    value = (
        timeseries(
            "Value derived vs. optimization cost",
            "US dollars per hour of business value attributed to the optimization, and what running the "
            "optimization cost.",
            "currencyUSD",
            q("sum(rate(llmopt_value_derived_usd_total[$__rate_interval])) * 3600", "value derived"),
            q("sum(rate(llmopt_optimization_cost_usd_total[$__rate_interval])) * 3600", "optimization cost"),
            width=10,
            custom={"axisLabel": "$/h"},
        ),
        timeseries(
            "Feedback per hour",
            "User feedback answers per hour: thumbs up and down, NPS answers by category, CSAT answers.",
            "short",
            q(
                "sum by (rating) (rate(llmopt_feedback_thumbs_total[$__rate_interval])) * 3600",
                "thumbs {{rating}}",
            ),
            q(
                "sum by (category) (rate(llmopt_feedback_nps_responses_total[$__rate_interval])) * 3600",
                "NPS {{category}}",
            ),
            q("sum(rate(llmopt_feedback_csat_responses_total[$__rate_interval])) * 3600", "CSAT"),
            width=8,
            custom={"axisLabel": "answers/h"},
        ),
        bargauge(
            "Confidence in the results",
            "Statistical confidence the optimizer reports in its cost savings and its quality improvement.",
            "percentunit",
            now("max(llmopt_cost_savings_confidence_ratio)", "cost savings"),
            now("max(llmopt_quality_improvement_confidence_ratio)", "quality improvement"),
            width=6,
            options={"displayMode": "lcd", "orientation": "horizontal"},
            defaults={"min": 0, "max": 1, "thresholds": thresholds(ORANGE, (CONFIDENCE_NEEDED, GREEN))},
        ),
    )
    budget = (
        stat(
            "Budgets",
            "The spend budget for each period, as the optimizer reported it.",
            "currencyUSD",
            now("max by (period) (llmopt_budget_limit_usd)", "{{period}}"),
            width=8,
            defaults={"color": {"mode": "fixed", "fixedColor": BLUE}},
            options={"graphMode": "none", "textMode": "value_and_name"},
        ),
        stat(
            "Budget violations (24h)",
            "Budget violations the optimizer reported in the last 24 hours, by budget period.",
            "short",
            now("sum by (period) (increase(llmopt_budget_violations_total[1d]))", "{{period}}"),
            width=8,
            defaults={"decimals": 0, "thresholds": thresholds(GREEN, (1, RED))},
            options={"graphMode": "none", "textMode": "value_and_name"},
        ),
        stat(
            "Cost per successful call (1h)",
            "US dollars of LLM calls per successful call over the last hour (failed calls cost too); the "
            f"cost SLO allows {rules.usd(config.slos.cost.max_usd_per_successful_request)}.",
            "currencyUSD",
            q(rec.COST_PER_SUCCESS1H.selector, "$/success"),
            width=8,
            defaults={
                "decimals": 4,
                "thresholds": thresholds(GREEN, (config.slos.cost.max_usd_per_successful_request, RED)),
            },
        ),
    )
    return Board(
        "llmopt-business",
        "LLM Optimizer / Business",
        "Is the optimization worth it? Spend by category against the budget, savings against the "
        "baseline, ROI and payback, and what users say (NPS, CSAT, thumbs).",
        (spend, breakdown, satisfaction, value, budget, *_dimension_rows(config, "cost")),
        variables=_dimension_variables(config),
        time_from="now-7d",
    )


def boards(config: RulesConfig) -> tuple[Board, ...]:
    return (
        system_health(config),
        optimization(config),
        experiment_checks(config),
        slos(config),
        models(config),
        business(config),
    )


# --- Rendering -----------------------------------------------------------------------------------

# Firing alerts of ours, except the Watchdog, which always fires.
ALERTS_EXPR = 'ALERTS{alertstate="firing", alertname=~"LLMOpt.+", alertname!="LLMOptWatchdog"}'
# A deployment or rollback: the counter changed, or its series appeared (the first deployment of a
# component after the exporter started has no earlier sample to change from).
DEPLOYMENTS_EXPR = (
    "sum by (component, action) (\n"
    "  changes(llmopt_deployments_total[$__rate_interval]) > 0\n"
    "  or\n"
    "  (llmopt_deployments_total unless llmopt_deployments_total offset $__rate_interval)\n"
    ") > 0"
)


def alert_and_deployment_annotations() -> Json:
    def prometheus(name: str, colour: str, expr: str, title: str, text: str, tags: str) -> Json:
        return {
            "name": name,
            "datasource": DATASOURCE,
            "enable": True,
            "hide": False,
            "iconColor": colour,
            "target": {"refId": "Anno", "expr": expr, "interval": ""},
            "titleFormat": title,
            "textFormat": text,
            "tagKeys": tags,
            "useValueForTime": False,
        }

    return {
        "list": [
            prometheus("Alerts", RED, ALERTS_EXPR, "{{alertname}}", "{{severity}} {{slo}}", "severity,slo"),
            prometheus(
                "Deployments",
                BLUE,
                DEPLOYMENTS_EXPR,
                "{{component}} {{action}}",
                "{{component}}",
                "component",
            ),
        ]
    }


def _variables(board: Board) -> list[JsonValue]:
    found: list[JsonValue] = [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "description": "The Prometheus that scrapes the exporter and loads the rules of alerts/.",
            "query": "prometheus",
            "regex": "",
            "refresh": 1,
            "hide": 0,
            "includeAll": False,
            "multi": False,
            "options": [],
        }
    ]
    for variable in board.variables:
        every: Json = {"selected": True, "text": ["All"], "value": ["$__all"]}
        found.append(
            {
                "type": "query",
                "name": variable.name,
                "label": variable.label,
                "description": variable.description,
                "datasource": DATASOURCE,
                "query": {"query": variable.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "regex": "",
                "refresh": 2,
                "sort": 1,
                "hide": 0,
                "multi": variable.is_multi,
                "includeAll": variable.is_multi,
                **({"allValue": ".*", "current": every} if variable.is_multi else {}),
                "options": [],
            }
        )
    return found


def _links(board: Board, every: Sequence[Board]) -> list[JsonValue]:
    return [
        {
            "type": "link",
            "title": other.title.removeprefix("LLM Optimizer / "),
            "tooltip": other.description,
            "url": f"/d/{other.uid}",
            "icon": "dashboard",
            "tags": [],
            "asDropdown": False,
            "includeVars": True,
            "keepTime": True,
            "targetBlank": False,
        }
        for other in every
        if other.uid != board.uid
    ]


def _target(query: Query, ref_id: str) -> Json:
    target: Json = {
        "refId": ref_id,
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": not query.instant,
        "instant": query.instant,
    }
    if query.table:
        target["format"] = "table"
    if query.exemplar:
        target["exemplar"] = True
    return target


_OPTIONS: dict[PanelType, Json] = {
    "timeseries": {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    },
    "stat": {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "area",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "auto",
        "wideLayout": True,
        "showPercentChange": False,
    },
    "gauge": {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "auto",
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
    },
    "bargauge": {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "displayMode": "gradient",
        "orientation": "horizontal",
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
    },
    "table": {"showHeader": True, "cellHeight": "sm"},
}
_CUSTOM: dict[PanelType, Json] = {
    "timeseries": {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "axisSoftMin": 0,
    },
}


def render_panel(panel: Panel, panel_id: int, x: int, y: int) -> Json:
    defaults: Json = {
        "unit": panel.unit,
        "color": {"mode": "palette-classic" if panel.type == "timeseries" else "thresholds"},
        "thresholds": thresholds(GREEN),
        **panel.defaults,
    }
    custom = {**_CUSTOM.get(panel.type, {}), **panel.custom}
    if custom:
        defaults["custom"] = {**custom, **_as_object(defaults.get("custom"))}
    rendered: Json = {
        "id": panel_id,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": list(panel.overrides)},
        "options": {**_OPTIONS[panel.type], **panel.options},
        "targets": [_target(query, chr(ord("A") + index)) for index, query in enumerate(panel.queries)],
    }
    if panel.transformations:
        rendered["transformations"] = list(panel.transformations)
    rendered.update(panel.extra)
    return rendered


def _as_object(value: JsonValue) -> Json:
    return value if isinstance(value, dict) else {}


def render_board(board: Board, every: Sequence[Board]) -> Json:
    panels: list[JsonValue] = []
    y = 0
    for row in board.rows:
        x = 0
        for panel in row:
            if x + panel.width > GRID_COLUMNS:
                raise ValueError(f"{board.uid}: row at y={y} is wider than {GRID_COLUMNS} columns")
            panels.append(render_panel(panel, len(panels) + 1, x, y))
            x += panel.width
        y += max(panel.height for panel in row)
    return {
        "uid": board.uid,
        "title": board.title,
        "description": board.description,
        "tags": [TAG],
        "editable": False,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": board.time_from, "to": "now"},
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "links": _links(board, every),
        "annotations": alert_and_deployment_annotations(),
        "templating": {"list": _variables(board)},
        "panels": panels,
    }


def render(config: RulesConfig) -> dict[str, str]:
    """Repository path -> JSON text of every dashboard, and the README of their directory (JSON has
    no comments to say the files are generated)."""
    every = boards(config)
    files = {
        f"{DASHBOARDS_DIR}/{board.uid}.json": json.dumps(
            render_board(board, every), indent=2, ensure_ascii=False
        )
        + "\n"
        for board in every
    }
    files[f"{DASHBOARDS_DIR}/README.md"] = (
        "# Dashboards\n\n"
        "Grafana loads every JSON file of this directory (`grafana/provisioning/dashboards/llmopt.yml`).\n"
        "They are rendered from `mixin/dashboards.py` with the thresholds of `alerts/config.yml`: edit\n"
        "those and run `make generate`; changes made here or in Grafana's UI are lost.\n"
    )
    return files
