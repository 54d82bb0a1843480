"""A bench-only prototype: ``POST /v1/events`` as a bare ASGI handler in front of the real app.

    python -m bench.lean_route --port 9477

What would single-event ingest cost without FastAPI's routing, Starlette's request objects and
the two ASGI middlewares? This serves the exporter built by ``create_app`` (same settings, same
ingest code: ``Ingestor.ingest``), but answers valid JSON ingest requests itself and hands
everything else, errors included, to the real app. It skips the access log, the concurrency
limit, auth and the Content-Type check, so it is a lower bound for the framework's share, not a
candidate to ship as is.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn

from app.config import Settings
from app.events import InvalidBody, InvalidEvents
from app.ingest import TooManyEvents
from app.main import create_app


def lean_app() -> Any:
    app = create_app(Settings(access_log=False))
    ingestor = app.state.exporter.ingestor

    async def lean(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/events" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            result = ingestor.ingest(b"".join(chunks))
        except (InvalidBody, InvalidEvents, TooManyEvents):
            status, body = 400, b'{"error":"refused"}'
        else:
            status = 200
            body = json.dumps(
                {"accepted": result.accepted, "by_type": result.by_type, "duplicates": result.duplicates}
            ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return lean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(lean_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
