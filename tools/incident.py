"""``llmopt-exporter incident-context``: the context a responder gathers first, as Markdown.

``llmopt-exporter incident-context --prometheus URL [--since 1h] [--match 'cluster="prod"']`` reads a
Prometheus that scrapes the exporter with the llmopt rules loaded and prints a report to paste into
the incident: firing and pending alerts with their runbooks, the SLIs and error budgets now and at
the start of the window, errors by type, error and critical log entries by component, the trace
ids of the slowest and of the failed LLM calls (exemplars: Prometheus needs
``--enable-feature=exemplar-storage``), the active experiments with their state, and the
deployments, rollbacks and rolled-back experiments of the window.

Only Prometheus' HTTP API is used (``/api/v1/query``, ``/api/v1/alerts``, ``/api/v1/query_exemplars``).
A section whose query fails says so; the report goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The names of the recorded series, declared once with the rules (mixin/recorded.py: standard library only).
from mixin import recorded as rec

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^([0-9]+)([smhdw])$")
_MATCHER = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"$')
# Alerts that say nothing about an incident.
_ALWAYS_FIRING = {"LLMOptWatchdog"}

Series = tuple[dict[str, str], float]


class PrometheusError(Exception):
    """Prometheus could not be reached or refused a request; the message says which and why."""


@dataclass(frozen=True)
class Exemplar:
    series: dict[str, str]
    labels: dict[str, str]
    value: float
    timestamp: float


class Prometheus:
    """The few calls of Prometheus' HTTP API the report needs."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=self.timeout) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:300]
            raise PrometheusError(f"{path}: HTTP {err.code}: {detail}") from err
        except (OSError, ValueError) as err:
            raise PrometheusError(f"{self.url}{path}: {err}") from err
        if not isinstance(document, dict) or document.get("status") != "success":
            raise PrometheusError(f"{path}: {str(document)[:300]}")
        return document["data"]

    def query(self, expr: str, at: float) -> list[Series]:
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def exemplars(self, selector: str, start: float, end: float) -> list[Exemplar]:
        data = self._get(
            "/api/v1/query_exemplars", {"query": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        )
        return [
            Exemplar(
                dict(series["seriesLabels"]),
                dict(item["labels"]),
                float(item["value"]),
                float(item["timestamp"]),
            )
            for series in data or []
            for item in series.get("exemplars") or []
        ]


def parse_duration(text: str) -> int:
    """Seconds in a one-unit Prometheus duration such as ``1h`` (raises ValueError otherwise)."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h or 1d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_matchers(texts: Sequence[str]) -> dict[str, str]:
    """``label="value"`` matchers (each text may hold several, comma-separated)."""
    matchers: dict[str, str] = {}
    for text in texts:
        for part in (piece.strip() for piece in re.split(r',(?=\s*[A-Za-z_][A-Za-z0-9_]*=")', text)):
            match = _MATCHER.match(part)
            if match is None:
                raise ValueError(f'{part!r} is not a matcher such as cluster="prod"')
            matchers[match.group(1)] = match.group(2)
    return matchers


@dataclass(frozen=True)
class Scope:
    """What the report looks at: the time, the window and the label matchers."""

    now: float
    window: str
    window_seconds: int
    matchers: Mapping[str, str]

    @property
    def start(self) -> float:
        return self.now - self.window_seconds

    def select(self, name: str, *matchers: str) -> str:
        """A selector of ``name`` with the scope's matchers and ``matchers``."""
        parts = [*matchers, *(f'{label}="{value}"' for label, value in self.matchers.items())]
        return f"{name}{{{', '.join(parts)}}}" if parts else name

    def increase(self, name: str, by: str, *matchers: str) -> str:
        """How much a counter grew in the window, by ``by``, counting series born in the window.

        ``increase()`` alone misses a series' first value (an error type that appeared during the
        incident); the plain difference misses nothing but a restart. Each covers the other.
        """
        series = self.select(name, *matchers)
        window = self.window
        return (
            f"sum by ({by}) (\n  ({series} - ({series} offset {window} or {series} * 0)) > 0\n"
            f"  or\n  increase({series}[{window}])\n)"
        )

    def keeps(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert belongs to the scope (alerts without a matcher's label do)."""
        return all(labels.get(label, value) == value for label, value in self.matchers.items())


# --- Formatting ----------------------------------------------------------------------------------


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _rfc3339(text: str) -> str:
    try:
        return when(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return text


def percent(value: float) -> str:
    return "—" if math.isnan(value) else f"{value * 100:.2f} %"


def duration(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def score(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1f}"


def usd(value: float) -> str:
    return "—" if math.isnan(value) else f"${value:.4f}"


def count(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def per_second(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}/s"


def yes_no(value: float) -> str:
    return "—" if math.isnan(value) else ("yes" if value >= 1 else "no")


def cell(text: object) -> str:
    """A Markdown table cell: pipes escaped, one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join(cell(value) for value in row)} |" for row in rows]
    return lines


def labels_text(labels: Mapping[str, str], leave_out: Sequence[str] = ()) -> str:
    shown = [f'{key}="{value}"' for key, value in sorted(labels.items()) if key not in leave_out]
    return f"`{', '.join(shown)}`" if shown else ""


# --- Sections ------------------------------------------------------------------------------------


_BUDGET = rec.SLO_BUDGET_REMAINING.name


def _equals(label: str, value: str) -> str:
    return f'{label}="{value}"'


def _first(series: list[Series]) -> float:
    return series[0][1] if series else math.nan


def alerts_section(prometheus: Prometheus, scope: Scope) -> list[str]:
    alerts = [alert for alert in prometheus.alerts() if scope.keeps(alert.get("labels", {}))]
    lines = ["## Alerts", ""]
    shown = 0
    for state in ("firing", "pending"):
        chosen = [
            alert
            for alert in alerts
            if alert.get("state") == state and alert["labels"].get("alertname") not in _ALWAYS_FIRING
        ]
        chosen.sort(
            key=lambda alert: (alert["labels"].get("severity") != "critical", alert.get("activeAt", ""))
        )
        for alert in chosen:
            labels, annotations = alert["labels"], alert.get("annotations", {})
            runbook = annotations.get("runbook_url")
            extra = labels_text(labels, ("alertname", "severity"))
            lines.append(
                f"- **{labels.get('alertname')}** ({labels.get('severity', 'no severity')}, {state} since "
                f"{_rfc3339(alert.get('activeAt', '?'))}){' ' + extra if extra else ''}: "
                f"{annotations.get('summary', '')} {annotations.get('description', '')}".rstrip()
                + (f" [Runbook]({runbook})" if runbook else "")
            )
            shown += 1
    if not shown:
        lines.append("No alert is firing or pending (the Watchdog, which always fires, is left out).")
    return lines


def slis_section(prometheus: Prometheus, scope: Scope) -> list[str]:
    s = scope.select
    rows: list[tuple[str, str, Callable[[float], str]]] = [
        ("LLM calls", f"sum({s(rec.LLM_REQUESTS_RATE5M.name)})", per_second),
        (
            "Error ratio (5m)",
            f"sum({s(rec.LLM_REQUEST_ERRORS_RATE5M.name)}) / sum({s(rec.LLM_REQUESTS_RATE5M.name)})",
            percent,
        ),
        (
            "Latency p95 (5m)",
            f"max({s(rec.LATENCY_QUANTILE5M.name, _equals('quantile', '0.95'))})",
            duration,
        ),
        ("Average quality score (5m)", f"avg({s(rec.QUALITY_MEAN5M.name)})", score),
        ("Cost per LLM call (1h)", f"avg({s(rec.COST_PER_REQUEST1H.name)})", usd),
    ]
    budgets = {
        labels.get("slo", "?") for labels, _ in prometheus.query(f"min by (slo) ({s(_BUDGET)})", scope.now)
    }
    for slo in sorted(budgets):
        rows.append(
            (
                f"Error budget left: {slo}",
                f"min({s(_BUDGET, _equals('slo', slo))})",
                percent,
            )
        )
    rows.append(
        ("Optimization halted (budget under threshold)", f"max({s(rec.OPTIMIZATION_HALT.name)})", yes_no)
    )
    body = [
        (
            name,
            show(_first(prometheus.query(expr, scope.now))),
            show(_first(prometheus.query(expr, scope.start))),
        )
        for name, expr, show in rows
    ]
    return [
        f"## SLIs and error budgets, now and {scope.window} ago",
        "",
        *table(("", "now", f"{scope.window} ago"), body),
    ]


def _sorted_counts(series: list[Series]) -> list[Series]:
    return sorted((item for item in series if item[1] >= 0.5), key=lambda item: -item[1])


def errors_section(prometheus: Prometheus, scope: Scope) -> list[str]:
    series = _sorted_counts(
        prometheus.query(scope.increase("llmopt_llm_request_errors_total", "error_type, model"), scope.now)
    )
    lines = [f"## Errors by type, last {scope.window}", ""]
    if not series:
        return [*lines, "No failed LLM call."]
    rows = [
        (labels.get("error_type", "?"), labels.get("model", "?"), count(value)) for labels, value in series
    ]
    return [*lines, *table(("error type", "model", "failed calls"), rows)]


def logs_section(prometheus: Prometheus, scope: Scope) -> list[str]:
    series = _sorted_counts(
        prometheus.query(scope.increase("llmopt_log_events_total", "level, component"), scope.now)
    )
    lines = [f"## Error and critical log entries, last {scope.window}", ""]
    if not series:
        return [*lines, "None reported."]
    rows = [
        (labels.get("level", "?"), labels.get("component", "?"), count(value)) for labels, value in series
    ]
    lines += table(("level", "component", "entries"), rows)
    critical = sorted(
        prometheus.exemplars(
            scope.select("llmopt_log_events_total", 'level="critical"'), scope.start, scope.now
        ),
        key=lambda exemplar: -exemplar.timestamp,
    )
    if critical:
        lines += ["", "Traces of the latest critical entries:", ""]
        lines += table(
            ("trace id", "component", "at"),
            [
                (f"`{e.labels.get('trace_id', '?')}`", e.series.get("component", "?"), when(e.timestamp))
                for e in _unique_traces(critical)[:5]
            ],
        )
    lines += [
        "",
        "The messages are in the exporter's log (logger `llmopt_exporter.optimizer`) and in the "
        "services' own logs.",
    ]
    return lines


def _unique_traces(exemplars: list[Exemplar]) -> list[Exemplar]:
    seen: set[str] = set()
    unique: list[Exemplar] = []
    for exemplar in exemplars:
        trace_id = exemplar.labels.get("trace_id")
        if trace_id and trace_id not in seen:
            seen.add(trace_id)
            unique.append(exemplar)
    return unique


_NO_EXEMPLARS = (
    "No exemplars in the window: Prometheus keeps them only with `--enable-feature=exemplar-storage`, "
    "and only for events that carry a trace id."
)


def traces_section(prometheus: Prometheus, scope: Scope, top: int) -> list[str]:
    lines = [f"## Traces of the slowest and the failed LLM calls, last {scope.window}", ""]
    slow = prometheus.exemplars(
        scope.select("llmopt_llm_request_duration_seconds_bucket"), scope.start, scope.now
    )
    slowest = _unique_traces(sorted(slow, key=lambda e: -e.value))[:top]
    lines += ["Slowest:", ""]
    if slowest:
        lines += table(
            ("trace id", "latency", "model", "provider", "task", "at"),
            [
                (
                    f"`{e.labels.get('trace_id')}`",
                    duration(e.value),
                    e.series.get("model", "?"),
                    e.series.get("provider", "?"),
                    e.series.get("task_type", "?"),
                    when(e.timestamp),
                )
                for e in slowest
            ],
        )
    else:
        lines.append(_NO_EXEMPLARS)
    failed = prometheus.exemplars(scope.select("llmopt_llm_request_errors_total"), scope.start, scope.now)
    latest = _unique_traces(sorted(failed, key=lambda e: -e.timestamp))[:top]
    lines += ["", "Latest failed:", ""]
    if latest:
        lines += table(
            ("trace id", "error type", "model", "provider", "at"),
            [
                (
                    f"`{e.labels.get('trace_id')}`",
                    e.series.get("error_type", "?"),
                    e.series.get("model", "?"),
                    e.series.get("provider", "?"),
                    when(e.timestamp),
                )
                for e in latest
            ],
        )
    else:
        lines.append("No failed call with a trace id in the window.")
    return lines


def _by_experiment(prometheus: Prometheus, expr: str, now: float) -> dict[str, float]:
    return {labels.get("experiment", "?"): value for labels, value in prometheus.query(expr, now)}


def experiments_section(prometheus: Prometheus, scope: Scope) -> list[str]:
    s = scope.select
    now = scope.now
    progress = _by_experiment(
        prometheus, f"max by (experiment) ({s('llmopt_experiment_progress_ratio')})", now
    )
    confidence = _by_experiment(
        prometheus, f"max by (experiment) ({s('llmopt_experiment_confidence_ratio')})", now
    )
    lead = _by_experiment(
        prometheus, f"max by (experiment) ({s('llmopt_experiment_leader_lead_ratio')})", now
    )
    samples = _by_experiment(prometheus, f"max by (experiment) ({s('llmopt_experiment_samples')})", now)
    started = _by_experiment(
        prometheus, f"max by (experiment) ({s('llmopt_experiment_start_timestamp_seconds')})", now
    )
    leaders = {
        labels.get("experiment", "?"): labels.get("variant", "?")
        for labels, _ in prometheus.query(
            f"max by (experiment, variant) ({s('llmopt_experiment_leader_info')}) == 1", now
        )
    }
    names = sorted({*progress, *samples, *started, *leaders})
    lines = ["## Active experiments", ""]
    if names:
        rows = [
            (
                name,
                leaders.get(name, "—"),
                percent(lead.get(name, math.nan)),
                percent(progress.get(name, math.nan)),
                percent(confidence.get(name, math.nan)),
                count(samples[name]) if name in samples else "—",
                when(started[name]) if name in started else "—",
            )
            for name in names
        ]
        lines += table(("experiment", "leader", "lead", "progress", "confidence", "samples", "started"), rows)
    else:
        lines.append("No experiment is running.")
    rolled_back = _first(prometheus.query(scope.increase("llmopt_experiments_rolled_back_total", ""), now))
    if not math.isnan(rolled_back) and rolled_back >= 0.5:
        lines += ["", f"Experiments rolled back in the last {scope.window}: {count(rolled_back)}."]
    return lines


def deployments_section(prometheus: Prometheus, scope: Scope) -> list[str]:
    counts = prometheus.query(scope.increase("llmopt_deployments_total", "component, action"), scope.now)
    last = {
        labels.get("component", "?"): value
        for labels, value in prometheus.query(
            f"max by (component) ({scope.select('llmopt_deployment_timestamp_seconds')})", scope.now
        )
    }
    by_component: dict[str, dict[str, float]] = {}
    for labels, value in counts:
        if value >= 0.5:
            by_component.setdefault(labels.get("component", "?"), {})[labels.get("action", "?")] = value
    for component, at in last.items():
        if at >= scope.start:
            by_component.setdefault(component, {})
    lines = [f"## Deployments and rollbacks, last {scope.window}", ""]
    if not by_component:
        return [*lines, "None."]
    rows = [
        (
            component,
            count(actions.get("deployed", 0)),
            count(actions.get("rolled_back", 0)),
            when(last[component]) if component in last else "—",
        )
        for component, actions in sorted(by_component.items())
    ]
    return [*lines, *table(("component", "deployed", "rolled back", "last deployment or rollback"), rows)]


def report(prometheus: Prometheus, scope: Scope, top: int = 5) -> str:
    """The whole Markdown report."""
    scope_text = labels_text(scope.matchers) or "every series"
    lines = [
        "# Incident context",
        "",
        f"Prometheus {prometheus.url} at {when(scope.now)}; window: the last {scope.window} "
        f"(since {when(scope.start)}); scope: {scope_text}.",
    ]
    sections: list[Callable[[], list[str]]] = [
        lambda: alerts_section(prometheus, scope),
        lambda: slis_section(prometheus, scope),
        lambda: errors_section(prometheus, scope),
        lambda: logs_section(prometheus, scope),
        lambda: traces_section(prometheus, scope, top),
        lambda: experiments_section(prometheus, scope),
        lambda: deployments_section(prometheus, scope),
    ]
    for section in sections:
        try:
            body = section()
        except PrometheusError as err:
            body = [f"_This section is missing: {err}_"]
        lines += ["", *body]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmopt-exporter incident-context",
        description="Print, as Markdown, the context a responder gathers first: alerts with runbooks, "
        "SLIs and error budgets, errors by type, traces of slow and failed calls, active experiments, "
        "deployments. Works against any Prometheus with the llmopt rules loaded.",
    )
    parser.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    parser.add_argument(
        "--since", default="1h", help="the window, a duration such as 30m or 2h (default %(default)s)"
    )
    parser.add_argument(
        "--match",
        action="append",
        default=[],
        metavar='LABEL="VALUE"',
        help="limit to one deployment, e.g. --match 'cluster=\"prod\"' (repeatable)",
    )
    parser.add_argument("--top", type=int, default=5, help="traces listed per table (default %(default)s)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per request (default %(default)s)"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        window_seconds = parse_duration(args.since)
        matchers = parse_matchers(args.match)
    except ValueError as err:
        parser.error(str(err))
    prometheus = Prometheus(args.prometheus, args.timeout)
    try:
        prometheus.query("vector(1)", time.time())
    except PrometheusError as err:
        print(f"llmopt-exporter incident-context: cannot query Prometheus: {err}", file=sys.stderr)
        return 1
    scope = Scope(time.time(), args.since, window_seconds, matchers)
    sys.stdout.write(report(prometheus, scope, max(1, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
