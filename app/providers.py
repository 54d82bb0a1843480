"""Provider names as OpenTelemetry's GenAI conventions spell them (``gen_ai.provider.name``).

Events may name a provider the way its SDK or a gateway does ("OpenAI", "bedrock", "vertexai"); the
exporter labels them with the well-known name, so one provider is one label value. Names not listed
here are kept as sent.
"""

from __future__ import annotations

from collections.abc import Mapping

# Well-known name -> the other spellings accepted for it (compared lower-case, with "-", " " and "_"
# alike).
WELL_KNOWN: Mapping[str, tuple[str, ...]] = {
    "openai": ("open_ai",),
    "anthropic": (),
    "aws.bedrock": ("bedrock", "aws_bedrock", "amazon_bedrock"),
    "azure.ai.openai": ("azure", "azure_openai", "azureopenai"),
    "azure.ai.inference": ("azure_ai_inference",),
    "gcp.vertex_ai": ("vertex", "vertex_ai", "vertexai", "google_vertex_ai", "gcp_vertex_ai"),
    "gcp.gemini": ("gemini", "google_gemini", "google_genai", "google_ai_studio"),
    "gcp.gen_ai": ("google",),
    "mistral_ai": ("mistral", "mistralai"),
    "cohere": (),
    "groq": (),
    "deepseek": (),
    "perplexity": (),
    "x_ai": ("xai", "grok"),
    "ibm.watsonx.ai": ("watsonx", "ibm_watsonx", "watsonx_ai"),
}


def _key(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


_CANONICAL: dict[str, str] = {
    _key(spelling): name for name, spellings in WELL_KNOWN.items() for spelling in (name, *spellings)
}


# Names as sent -> their label, found once per name (ingest asks for every LLM call); bounded, as
# names come from clients.
_SEEN: dict[str, str] = {}
_SEEN_LIMIT = 10_000


def normalise_provider(name: str) -> str:
    """The well-known name of a provider, or ``name`` as sent when it is not one of them."""
    found = _SEEN.get(name)
    if found is None:
        found = _CANONICAL.get(_key(name), name)
        if len(_SEEN) < _SEEN_LIMIT:
            _SEEN[name] = found
    return found
