"""``/``: what this is, its version, and links to everything it serves."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app import __version__
from app.events import EVENT_TYPES

router = APIRouter()

_LINKS = (
    ("/metrics", "Metrics", "what Prometheus scrapes"),
    ("/healthz", "Health", "liveness"),
    ("/readyz", "Readiness", "ready to ingest"),
)
_API_DOCS = (
    ("/docs", "API docs", "the event API (OpenAPI)"),
    ("/openapi.json", "OpenAPI", "machine-readable schema"),
)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def landing(request: Request) -> str:
    served = _LINKS + (_API_DOCS if request.app.openapi_url else ())
    links = "".join(
        f'<li><a href="{href}">{escape(name)}</a> — {escape(what)}</li>' for href, name, what in served
    )
    types = ", ".join(f"<code>{escape(name)}</code>" for name in EVENT_TYPES)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>llmopt-exporter</title></head>"
        "<body><h1>llmopt-exporter</h1>"
        f"<p>Prometheus exporter for LLM auto-optimizer systems, version {escape(__version__)}.</p>"
        f"<ul>{links}</ul>"
        f"<p>Report events with <code>POST /v1/events</code>; types: {types}.</p>"
        "</body></html>"
    )
