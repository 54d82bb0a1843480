"""``docs/metrics.md``: every metric of ``app/metrics.py``, and where each field of the taxonomy is
served (``mixin/taxonomy.py``), with the recording rule that precomputes it (the rules' own
:func:`mixin.rules.taxonomy_map`). ``make generate`` writes it.
"""

from __future__ import annotations

from app.custom import CUSTOM_PREFIX
from app.dimensions import DIMENSIONED
from app.metrics import ALL_METRICS, OTEL_LABELS, MetricSpec
from app.providers import WELL_KNOWN
from mixin.rules import RulesConfig, taxonomy_map
from mixin.taxonomy import ROWS

PATH = "docs/metrics.md"

_CATEGORY_ORDER = ("System", "Model", "Optimization", "Business", "Exporter")


def _code(text: str) -> str:
    return text if "`" in text else f"`{text}`"


def _labels(spec: MetricSpec) -> str:
    return ", ".join(f"`{label}`" for label in spec.labels) or "—"


def _metric_rows() -> list[str]:
    lines: list[str] = []
    for category in _CATEGORY_ORDER:
        specs = [spec for spec in ALL_METRICS if spec.category == category]
        lines += [
            f"### {category}",
            "",
            "| metric | type | unit | labels | help | OpenTelemetry GenAI |",
            "|---|---|---|---|---|---|",
        ]
        for spec in specs:
            help_text = spec.help
            if spec.buckets:
                help_text += " Buckets: " + ", ".join(f"{bound:g}" for bound in spec.buckets) + "."
            lines.append(
                f"| `{spec.name}` | {spec.kind} | {spec.unit or '—'} | {_labels(spec)} | {help_text} "
                f"| {spec.otel or '—'} |"
            )
        lines.append("")
    return lines


def render(config: RulesConfig) -> dict[str, str]:
    """``{"docs/metrics.md": text}``."""
    rules = taxonomy_map(config)
    lines = [
        "# Metrics catalog",
        "",
        "Conventions: every name starts with `llmopt_`; base units (seconds, ratios 0-1, money in `_usd`);",
        "counters end in `_total` (rate() them); gauges hold state; histograms and summaries expose",
        "`_bucket`/`_sum`/`_count`. Labels come only from bounded sets: ids of users, requests and traces",
        "never become labels. Trace ids travel as exemplars on `llmopt_llm_request_duration_seconds`,",
        "`llmopt_llm_time_to_first_token_seconds`, `llmopt_llm_time_per_output_token_seconds`,",
        "`llmopt_llm_cost_usd_total`, `llmopt_llm_quality_score`, `llmopt_llm_request_errors_total` and",
        "`llmopt_log_events_total` (OpenMetrics scrapes only).",
        "Quality scores keep their 0-100 scale.",
        "",
        "## Metrics",
        "",
        *_metric_rows(),
        "The exporter also serves the standard `process_*` and `python_*` metrics of its own process.",
        "",
        "### Declared dimensions",
        "",
        'With dimensions declared in `alerts/config.yml` (README, "Teams and applications"), these',
        "metrics carry each dimension as a label too: "
        + ", ".join(f"`{spec.name}`" for spec in DIMENSIONED)
        + ".",
        "",
        "### Custom",
        "",
        f"Metrics declared in the setting `custom_metrics` are served as `{CUSTOM_PREFIX}<name>`",
        "(counters with `_total`), with the kind, help, labels and buckets declared there, and updated by",
        '`metric` events (README, "Custom metrics"). Their labels are the client\'s: each keeps at most',
        "`label_value_limit` values for that metric, and their series count in the series budget.",
        "",
        "### Labels in OpenTelemetry's words",
        "",
        "The last column above names the OpenTelemetry GenAI metric (or span attribute) each metric",
        "matches; these labels match these attributes. Providers are labelled with the conventions'",
        "well-known names, whatever spelling an event uses:",
        "",
        "| label | OpenTelemetry GenAI attribute |",
        "|---|---|",
        *(f"| `{label}` | {attribute} |" for label, attribute in OTEL_LABELS.items()),
        "",
        "| provider label | also accepted as |",
        "|---|---|",
        *(
            f"| `{name}` | {', '.join(f'`{spelling}`' for spelling in spellings) or '—'} |"
            for name, spellings in WELL_KNOWN.items()
        ),
        "",
        "Spellings compare lower-case, with `-`, ` ` and `_` alike; other provider names are kept as sent.",
        "",
        "## The taxonomy, field by field",
        "",
        "Every leaf field of the metrics taxonomy (`docs/taxonomy-fields.txt`) and where it is served.",
        "PromQL is written for one Prometheus; the recording rule (when there is one) is the",
        "replica-safe, precomputed form used by alerts and dashboards.",
        "",
        "| taxonomy ID | served by | recording rule | note |",
        "|---|---|---|---|",
    ]
    for row in ROWS:
        rule = f"`{rules[row.id]}`" if row.id in rules else "—"
        lines.append(f"| {row.id} | {_code(row.served_by)} | {rule} | {row.note} |")
    lines.append("")
    return {PATH: "\n".join(lines)}
