"""Admin API: forget an experiment or a retired model, counters included (ingest token required)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app import metrics as m
from app.api.ingest import refusal
from app.state import Exporter, exporter_of

router = APIRouter(prefix="/v1", responses={401: {"description": "A valid ingest bearer token is required."}})


def _authorized(request: Request) -> Exporter | None:
    """The exporter when the request carries an ingest token; None (counted) otherwise."""
    exporter = exporter_of(request)
    if exporter.auth.allows_ingest(request.headers.get("authorization")):
        return exporter
    exporter.store.inc(m.AUTH_FAILURES, ("admin",))
    return None


@router.delete("/experiments/{experiment_id}", summary="Forget an experiment")
async def delete_experiment(experiment_id: str, request: Request) -> JSONResponse:
    """Remove every series of the experiment. Its counters disappear: Prometheus sees them end."""
    exporter = _authorized(request)
    if exporter is None:
        return refusal(401, "unauthorized", "a valid bearer token is required")
    removed = exporter.recorder.delete_experiment(experiment_id)
    return JSONResponse({"experiment": experiment_id, "series_removed": removed})


@router.delete("/models/{model}", summary="Forget a retired model")
async def delete_model(model: str, request: Request) -> JSONResponse:
    """Remove every series labelled with the model (health, requests, tokens, cost...)."""
    exporter = _authorized(request)
    if exporter is None:
        return refusal(401, "unauthorized", "a valid bearer token is required")
    removed = exporter.recorder.delete_model(model)
    return JSONResponse({"model": model, "series_removed": removed})
