"""A small OpenAI-compatible server on loopback, for the official ``openai`` SDK in tests.

``POST /v1/chat/completions`` answers plainly or as a stream of chunks (``"stream": true``, with
the usage chunk when ``stream_options.include_usage`` asks for it); the model ``rate-limited``
gets OpenAI's 429. Usage is made from the request (a prompt token per word, as many answer tokens
as the request's ``max_tokens``, default 5), and every answer given is kept, so a test knows
exactly what each call did.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RATE_LIMITED = "rate-limited"
# The model the server says answered: a dated snapshot of the one asked for, as OpenAI does.
SNAPSHOT = "{model}-2024-07-18"


@dataclass
class Answered:
    model: str
    input_tokens: int
    output_tokens: int
    stream: bool


@dataclass
class OpenAIStub:
    url: str = ""
    answered: list[Answered] = field(default_factory=list)


def _usage(request: dict[str, Any]) -> tuple[int, int]:
    words = sum(len(str(message.get("content", "")).split()) for message in request.get("messages", []))
    return words, int(request.get("max_tokens") or 5)


@contextmanager
def openai_stub(chunk_delay: float = 0.02) -> Iterator[OpenAIStub]:
    """The server, running; yields its state (``url`` is the SDK's ``base_url``)."""
    stub = OpenAIStub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            model = request["model"]
            if model == RATE_LIMITED:
                error = {
                    "message": "Rate limit reached",
                    "type": "rate_limit_error",
                    "code": "rate_limit_exceeded",
                }
                self._send(429, {"error": error})
                return
            input_tokens, output_tokens = _usage(request)
            usage = {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            }
            served = SNAPSHOT.format(model=model)
            head = {"id": "chatcmpl-1", "created": int(time.time()), "model": served}
            stream = bool(request.get("stream"))
            stub.answered.append(Answered(served, input_tokens, output_tokens, stream))
            if not stream:
                message = {"role": "assistant", "content": "word " * output_tokens}
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                self._send(200, {**head, "object": "chat.completion", "choices": [choice], "usage": usage})
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            chunk = {**head, "object": "chat.completion.chunk"}
            for index in range(output_tokens):
                delta = {"content": "word "} if index else {"role": "assistant", "content": "word "}
                self._event({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                time.sleep(chunk_delay)
            self._event({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (request.get("stream_options") or {}).get("include_usage"):
                self._event({**chunk, "choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")

        def _event(self, document: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(document)}\n\n".encode())
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
