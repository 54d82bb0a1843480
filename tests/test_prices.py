"""The price table: calls without cost_usd are priced from their tokens exactly, reported costs
that differ from the table are counted by model, calls of unpriced models are counted, and a table
that cannot be used stops the start naming the file and the entry."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from app.config import ConfigError, load_settings
from app.prices import load_prices
from tests.conftest import Exporter, make_exporter
from tests.exposition import key

ROOT = Path(__file__).resolve().parents[1]
TABLE = """\
tolerance: 0.02
prices:
  - model: gpt-4o-mini
    input: 0.15
    output: 0.60
    cache_read: 0.075
  - model: claude-3-5-haiku
    provider: anthropic
    input: 0.80
    output: 4.00
    cache_read: 0.08
    cache_write: 1.00
  - model: claude-3-5-haiku
    input: 1.00
    output: 5.00
"""
LLM = {"model": "gpt-4o-mini", "provider": "openai", "task_type": "chat"}


def call(**fields: Any) -> dict[str, Any]:
    return {"type": "llm_request", **LLM, "latency_ms": 500, **fields}


def exporter_with(tmp_path: Path, table: str = TABLE) -> Any:
    path = tmp_path / "prices.yml"
    path.write_text(table, encoding="utf-8")
    return make_exporter(prices_file=path)


def _cost(exporter: Exporter, **labels: str) -> float:
    return exporter.scrape()[key("llmopt_llm_cost_usd_total", **{**LLM, **labels})]


def test_a_call_without_cost_is_priced_from_its_tokens(tmp_path: Path) -> None:
    for exporter in exporter_with(tmp_path):
        tokens = {"input_tokens": 1200, "cached_tokens": 800, "output_tokens": 350}
        assert exporter.post(call(**tokens)).status_code == 200
        # 400 uncached prompt tokens at $0.15, 800 cached at $0.075, 350 output at $0.60, per million.
        expected = Fraction(400 * 15 + 800 * 75 // 10 + 350 * 60, 100) / 1_000_000
        scrape = exporter.scrape()
        assert scrape[key("llmopt_llm_cost_usd_total", **LLM)] == pytest.approx(float(expected), rel=1e-12)
        assert scrape[key("llmopt_spend_usd_total", category="token")] == pytest.approx(
            float(expected), rel=1e-12
        )
        assert scrape[key("llmopt_llm_priced_cost_usd_total", **LLM)] == pytest.approx(
            float(expected), rel=1e-12
        )
        # No reported cost, so no baseline claims a saving either.
        assert scrape[key("llmopt_llm_baseline_cost_usd_total", **LLM)] == pytest.approx(
            float(expected), rel=1e-12
        )


def test_the_provider_price_comes_before_the_price_for_any_provider(tmp_path: Path) -> None:
    haiku = {"model": "claude-3-5-haiku", "task_type": "chat"}
    tokens = {"input_tokens": 1000, "cache_write_tokens": 600, "cached_tokens": 100, "output_tokens": 10}
    for exporter in exporter_with(tmp_path):
        exporter.post(call(**haiku, provider="anthropic", **tokens))
        exporter.post(call(**haiku, provider="aws.bedrock", **tokens))
        scrape = exporter.scrape()
        anthropic = (300 * 0.80 + 100 * 0.08 + 600 * 1.00 + 10 * 4.00) / 1e6
        elsewhere = (300 * 1.00 + 100 * 1.00 + 600 * 1.00 + 10 * 5.00) / 1e6
        cost = "llmopt_llm_cost_usd_total"
        assert scrape[key(cost, **haiku, provider="anthropic")] == pytest.approx(anthropic, rel=1e-12)
        assert scrape[key(cost, **haiku, provider="aws.bedrock")] == pytest.approx(elsewhere, rel=1e-12)


def test_reported_costs_are_kept_and_mismatches_counted_by_model(tmp_path: Path) -> None:
    tokens = {"input_tokens": 1_000_000, "output_tokens": 0}  # $0.15 by the table
    for exporter in exporter_with(tmp_path):
        mismatches = key("llmopt_llm_cost_mismatches_total", model="gpt-4o-mini")
        exporter.post(call(**tokens, cost_usd=0.1530))  # 2 % off: within the tolerance
        assert mismatches not in exporter.scrape()
        exporter.post(call(**tokens, cost_usd=0.1600))  # 6.25 % off
        scrape = exporter.scrape()
        assert scrape[mismatches] == 1
        assert _cost(exporter) == pytest.approx(0.1530 + 0.1600, rel=1e-12)  # as reported
        assert scrape[key("llmopt_llm_priced_cost_usd_total", **LLM)] == pytest.approx(0.30, rel=1e-12)


def test_calls_of_a_model_without_a_price_are_counted(tmp_path: Path) -> None:
    for exporter in exporter_with(tmp_path):
        exporter.post(call(model="gpt-5-preview", input_tokens=10, output_tokens=10))
        scrape = exporter.scrape()
        assert scrape[key("llmopt_exporter_unpriced_calls_total", model="gpt-5-preview")] == 1
        assert scrape[key("llmopt_llm_cost_usd_total", **{**LLM, "model": "gpt-5-preview"})] == 0


def test_without_a_table_a_call_without_cost_costs_nothing() -> None:
    for exporter in make_exporter():
        exporter.post(call(input_tokens=1000, output_tokens=100))
        scrape = exporter.scrape()
        assert _cost(exporter) == 0
        assert not any(name == "llmopt_llm_priced_cost_usd_total" for name, _ in scrape)
        assert not any(name == "llmopt_exporter_unpriced_calls_total" for name, _ in scrape)


@pytest.mark.parametrize(
    ("table", "named"),
    [
        pytest.param("prices: [{model: m, input: -1, output: 1}]", "prices.0.input", id="negative-price"),
        pytest.param("prices: [{model: m, input: 1}]", "prices.0.output", id="missing-output"),
        pytest.param(
            "prices: [{model: m, input: 1, output: 1, per: token}]", "prices.0.per", id="unknown-key"
        ),
        pytest.param(
            "prices: [{model: m, input: 1, output: 1}, {model: m, input: 2, output: 2}]",
            "a second price for m",
            id="duplicate",
        ),
        pytest.param("prices: [{model: m, input: 1, output: 1}]\ntolerance: 2", "tolerance", id="tolerance"),
        pytest.param("prices: [", "prices.yml", id="not-yaml"),
    ],
)
def test_a_table_that_cannot_be_used_stops_the_start_naming_the_entry(
    tmp_path: Path, table: str, named: str
) -> None:
    path = tmp_path / "prices.yml"
    path.write_text(table, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(None, prices_file=path)
    assert "prices_file" in str(raised.value)
    assert named in str(raised.value)


def test_a_missing_table_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prices_file"):
        load_settings(None, prices_file=tmp_path / "absent.yml")


def test_the_example_table_loads_and_prices_its_models() -> None:
    table = load_prices(ROOT / "deploy" / "prices.example.yml")
    price = table.price("gpt-4o-mini", "openai")
    assert price is not None
    assert price.cost(1_000_000, 1_000_000, 0, 0) == pytest.approx(0.75)
    assert table.price("no-such-model", "openai") is None
