"""``/healthz`` (the process answers) and ``/readyz`` (ready to ingest)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from app.state import exporter_of

router = APIRouter()


@router.get("/healthz", response_class=PlainTextResponse, summary="Liveness")
async def healthz() -> str:
    return "ok\n"


@router.get(
    "/readyz",
    response_class=PlainTextResponse,
    summary="Readiness",
    responses={503: {"description": "Starting or stopping."}},
)
async def readyz(request: Request) -> PlainTextResponse:
    if exporter_of(request).is_ready:
        return PlainTextResponse("ready\n")
    return PlainTextResponse("starting\n", status_code=503)
