"""``GET /metrics``: Prometheus text by default, OpenMetrics when asked, gzip when accepted."""

from __future__ import annotations

import gzip

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from app import metrics as m
from app.state import exporter_of

router = APIRouter()


@router.get(
    "/metrics",
    summary="Scrape the metrics",
    response_class=Response,
    responses={401: {"description": "A credential is required (metrics_bearer_token or basic auth)."}},
)
def get_metrics(request: Request) -> Response:
    # A plain `def`: rendering runs in the threadpool, so a scrape never holds up the event loop.
    exporter = exporter_of(request)
    if not exporter.auth.allows_metrics(request.headers.get("authorization")):
        exporter.store.inc(m.AUTH_FAILURES, ("metrics",))
        return Response(
            "a valid credential is required\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": exporter.auth.metrics_challenge()},
        )
    registry = exporter.store.registry
    names = request.query_params.getlist("name[]")
    if names:
        registry = registry.restricted_registry(names)  # type: ignore[assignment]
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    output = encoder(registry)
    headers = {"Vary": "Accept, Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        output = gzip.compress(output, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return Response(output, media_type=content_type, headers=headers)
