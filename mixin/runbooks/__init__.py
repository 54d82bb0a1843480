"""The runbooks of ``docs/runbooks/``, one per alert, rendered from the templates beside this file.

A template is the runbook's Markdown with each recording rule written as a placeholder, so a
renamed rule or a changed SLO window cannot leave a stale name behind:

``{{ LATENCY_QUANTILE5M }}``
    a series declared in :mod:`mixin.recorded`, written as its selector;
``{{ SLO_BURN_RATE 1h }}``
    a family of :mod:`mixin.recorded` whose window the config sets, over one window;
``{{ SLO_BURN_RATE * }}``
    the same family over every window, as one selector (for windows each SLO sets on its own);
``{{ SLO_BURN_RATE }}``
    the same family for prose: ``llmopt:slo_burn_rate:ratio_rate<window>``;
``{{ SCOPE_SPEND1D team }}``
    a family of :mod:`mixin.recorded` kept by declared dimensions, by the dimensions named
    (``team:llmopt_llm_cost_usd:increase1d``), or without them for prose
    (``<dimensions>:llmopt_llm_cost_usd:increase1d``);
``{{ SLI_QUALITY }}``
    an SLI over the window of ``alerts/config.yml`` (``SLI_AVAILABILITY``, ``SLI_LATENCY``,
    ``SLI_QUALITY``, ``SLI_COST``).

Rendering fails on an unknown placeholder, and on a name that no rule writes with the config (a
window the config no longer has). ``make generate`` writes ``docs/runbooks/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from mixin import recorded as rec
from mixin import rules
from mixin.recorded import ByDimensions, Recorded, Windowed
from mixin.rules import Recording, RulesConfig

TEMPLATES = Path(__file__).resolve().parent
OUTPUT_DIR = "docs/runbooks"
# A placeholder's regular expression: a name of mixin.recorded or an SLI, and maybe a window.
_PLACEHOLDER = re.compile(r"\{\{ *([A-Z][A-Z0-9_]*)(?: +([0-9]+[smhdw]|\*|[a-z_]+))? *\}\}")


class TemplateError(ValueError):
    """A runbook template names something that does not exist; the message says which and where."""


def _recorded_names(config: RulesConfig) -> set[str]:
    return {
        rule.series.name
        for _, groups in rules.rule_groups(config).values()
        for group in groups
        for rule in group.rules
        if isinstance(rule, Recording)
    }


def _resolve(name: str, window: str | None, config: RulesConfig) -> tuple[str, str]:
    """(text, the series name it writes) for one placeholder; ValueError says what is wrong."""
    slis = rules.slis(config)
    sli = {
        "SLI_AVAILABILITY": slis.availability,
        "SLI_LATENCY": slis.latency,
        "SLI_QUALITY": slis.quality,
        "SLI_COST": slis.cost,
    }
    declared = sli.get(name) or getattr(rec, name, None)
    if isinstance(declared, ByDimensions):
        # By the dimensions named (an example where the config declares none), or for prose.
        if window is None:
            return declared.pattern, ""
        return declared.by(*window.split("_")).selector, ""
    if isinstance(declared, Windowed):
        if window is None:
            return declared.pattern, ""
        if window == "*":
            return declared.every, ""
        declared = declared.over(window)
    elif window is not None:
        raise ValueError(f"{name} takes no window")
    if not isinstance(declared, Recorded):
        raise ValueError(f"{name} is neither a series of mixin.recorded nor an SLI ({', '.join(sli)})")
    return (declared.name if name in sli else declared.selector), declared.name


def render_runbook(template: str, config: RulesConfig, where: str = "a runbook") -> str:
    """The Markdown of one runbook template with every placeholder replaced."""
    recorded = _recorded_names(config)

    def replace(match: re.Match[str]) -> str:
        name, window = match.group(1), match.group(2)
        try:
            text, series = _resolve(name, window, config)
        except ValueError as err:
            raise TemplateError(f"{where}: {match.group()}: {err}") from err
        if series and series not in recorded:
            raise TemplateError(f"{where}: {match.group()}: no rule writes {series} with this config")
        return text

    rendered = _PLACEHOLDER.sub(replace, template)
    if "{{" in rendered:
        line = rendered[: rendered.index("{{")].count("\n") + 1
        forms = "{{ NAME }}, {{ NAME 1h }} or {{ NAME * }}"
        raise TemplateError(f"{where}, line {line}: a placeholder that is not {forms}")
    return rendered


def render(config: RulesConfig) -> dict[str, str]:
    """Repository path -> Markdown of every runbook."""
    return {
        f"{OUTPUT_DIR}/{path.name}": render_runbook(path.read_text(encoding="utf-8"), config, str(path.name))
        for path in sorted(TEMPLATES.glob("*.md"))
    }
