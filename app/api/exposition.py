"""``GET /metrics``: Prometheus text by default, OpenMetrics when asked, gzip when accepted."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app import metrics as m
from app.logs import refusal_var
from app.render import Exposition
from app.state import exporter_of

router = APIRouter()


@router.get(
    "/metrics",
    summary="Scrape the metrics",
    response_class=Response,
    responses={401: {"description": "A credential is required (metrics_bearer_token or basic auth)."}},
)
async def get_metrics(request: Request) -> Response:
    # Rendering pauses every few milliseconds and compresses in a thread (see app.render), so a
    # scrape never holds up ingest for long, however many series there are.
    exporter = exporter_of(request)
    if not exporter.auth.allows_metrics(request.headers.get("authorization")):
        exporter.store.inc(m.AUTH_FAILURES, ("metrics",))
        refusal_var.set({"error": "unauthorized"})
        return Response(
            "a valid credential is required\n",
            status_code=401,
            media_type="text/plain",
            headers={"WWW-Authenticate": exporter.auth.metrics_challenge()},
        )
    exposition: Exposition = request.app.state.exposition
    scrape = await exposition.scrape(
        request.headers.get("accept", ""),
        request.query_params.getlist("name[]"),
        is_gzip_accepted="gzip" in request.headers.get("accept-encoding", ""),
    )
    headers = {"Vary": "Accept, Accept-Encoding"}
    if scrape.is_gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(scrape.body, media_type=scrape.content_type, headers=headers)
