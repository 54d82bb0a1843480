"""The HTTP/1.1 connection: uvicorn's httptools protocol with limits on what a client may send
before the exporter sees a request.

uvicorn leaves the request head unbounded in size and in time: a client may send an endless
header, or one byte of it every few seconds, and hold memory and a connection for as long as it
likes. :func:`protocol_class` returns the protocol with four limits from the settings:

- ``max_header_bytes``: the request line and headers together; past it, 431 and the connection closes;
- ``max_header_count``: headers in one request; past it, 431;
- ``header_timeout_seconds``: from the first byte of a request (or from the connection) to the end
  of its head; past it, the connection closes;
- ``body_timeout_seconds``: from the end of the head to the end of the body; past it, the
  connection closes (the request is logged as 499, a client that went away).
"""

from __future__ import annotations

import asyncio
from asyncio import TimerHandle

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings

_HEAD_END = b"\r\n\r\n"


def _refusal(status: bytes, message: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(message)).encode() + b"\r\nconnection: close\r\n\r\n" + message
    )


_HEAD_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large", b"request head exceeds max_header_bytes")
_TOO_MANY_HEADERS = _refusal(
    b"431 Request Header Fields Too Large", b"request has more than max_header_count headers"
)


class _TooManyHeaders(Exception):
    """Raised from the parser's header callback to stop parsing the request."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of the module docstring (class attributes, set by
    :func:`protocol_class`)."""

    max_header_bytes = 32_768
    max_header_count = 100
    header_timeout_seconds = 10.0
    body_timeout_seconds = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._is_reading_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._is_refused_for_headers = False
        self._deadline: TimerHandle | None = None
        super().connection_made(transport)
        self._arm(self.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._is_reading_head:
            end = data.find(_HEAD_END)
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.max_header_bytes:
                self._refuse(_HEAD_TOO_LARGE)
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if self._is_refused_for_headers:
            self._refuse(_TOO_MANY_HEADERS)
            return
        super().send_400_response(msg)

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._is_reading_head = True
        self._header_count = 0
        if self._deadline is None:
            self._arm(self.header_timeout_seconds)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_header_count:
            self._is_refused_for_headers = True
            raise _TooManyHeaders
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._is_reading_head = False
        self._head_bytes = 0
        self._arm(self.body_timeout_seconds)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._is_reading_head = True  # what follows on this connection is the next request's head
        super().on_message_complete()

    # Deadlines
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._on_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()


def protocol_class(settings: Settings) -> type[LimitedHttpToolsProtocol]:
    """The protocol with the limits of ``settings``."""
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {
            "max_header_bytes": settings.max_header_bytes,
            "max_header_count": settings.max_header_count,
            "header_timeout_seconds": settings.header_timeout_seconds,
            "body_timeout_seconds": settings.body_timeout_seconds,
        },
    )
