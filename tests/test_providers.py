"""Providers are labelled with OpenTelemetry's well-known names, whatever spelling events use."""

from __future__ import annotations

import pytest

from app.providers import WELL_KNOWN, normalise_provider
from tests.conftest import Exporter
from tests.exposition import key


@pytest.mark.parametrize(
    ("sent", "labelled"),
    [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("bedrock", "aws.bedrock"),
        ("AWS-Bedrock", "aws.bedrock"),
        ("azure_openai", "azure.ai.openai"),
        ("Vertex AI", "gcp.vertex_ai"),
        ("gemini", "gcp.gemini"),
        ("mistral", "mistral_ai"),
        ("xai", "x_ai"),
        ("my-gateway", "my-gateway"),
    ],
)
def test_spellings_become_the_well_known_name(sent: str, labelled: str) -> None:
    assert normalise_provider(sent) == labelled


def test_every_well_known_name_is_its_own_name() -> None:
    assert all(normalise_provider(name) == name for name in WELL_KNOWN)


def test_calls_and_health_checks_are_labelled_with_the_well_known_name(exporter: Exporter) -> None:
    call = {"type": "llm_request", "model": "claude-3-5-haiku", "task_type": "chat", "latency_ms": 100}
    answer = exporter.post(
        {
            "events": [
                {**call, "provider": "Bedrock"},
                {**call, "provider": "aws.bedrock"},
                {
                    "type": "model_health",
                    "model": "claude-3-5-haiku",
                    "provider": "BEDROCK",
                    "available": True,
                },
            ]
        }
    )
    assert answer.status_code == 200
    scrape = exporter.scrape()
    labels = {"model": "claude-3-5-haiku", "provider": "aws.bedrock", "task_type": "chat"}
    assert scrape[key("llmopt_llm_requests_total", **labels)] == 2
    assert scrape[key("llmopt_model_available", model="claude-3-5-haiku", provider="aws.bedrock")] == 1
    assert not any(dict(labels).get("provider") in ("Bedrock", "BEDROCK") for _, labels in scrape)
