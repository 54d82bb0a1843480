"""Reading a request body within limits: declared size, streamed size, gzip-decoded size."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable


class BodyBudget:
    """Body bytes held at once by the ingest requests not yet applied (bodies arriving, or waiting
    their turn), within ``limit``. A client sending slowly holds only what it has sent, so slow
    senders cannot crowd others out; many large bodies at once get 503 rather than the exporter's
    memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def has_room(self, size: int) -> bool:
        """Whether ``size`` more bytes stay within the limit."""
        return self.held + size <= self.limit


class BodyRefused(ValueError):
    """The body cannot be read: ``status`` and ``reason`` say why (413/415)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


async def read_body(
    chunks: AsyncIterable[bytes],
    content_encoding: str | None,
    content_length: str | None,
    max_bytes: int,
    max_decompressed_bytes: int,
    budget: BodyBudget,
) -> bytes:
    """The body as sent (``max_bytes``), gzip-decoded when so encoded (``max_decompressed_bytes``),
    its bytes counted against ``budget`` while it arrives.

    ``content_encoding`` and ``content_length`` are the request's headers (None when absent); the
    body is refused by its declared length before a byte of it is read.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise BodyRefused(
            415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported; use gzip"
        )
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise BodyRefused(413, "too_large", f"body exceeds max_body_bytes ({max_bytes})")
    parts: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            if not budget.has_room(len(chunk)):
                raise BodyRefused(
                    503,
                    "overloaded",
                    "too many request bodies arriving at once (max_pending_body_bytes); retry",
                )
            parts.append(chunk)
            size += len(chunk)
            budget.held += len(chunk)
            if size > max_bytes:
                raise BodyRefused(413, "too_large", f"body exceeds max_body_bytes ({max_bytes})")
    finally:
        budget.held -= size
    body = b"".join(parts)
    if encoding == "gzip":
        return gunzip(body, max_decompressed_bytes)
    return body


# Members of one gzip body (RFC 1952 allows several, one after the other; `cat a.gz b.gz`).
MAX_GZIP_MEMBERS = 100


def gunzip(data: bytes, limit: int) -> bytes:
    """Decode gzip, refusing as soon as the output would pass ``limit`` (a zip bomb costs nothing).
    A body of several gzip members (at most MAX_GZIP_MEMBERS) decodes to their concatenation."""
    output = b""
    for _ in range(MAX_GZIP_MEMBERS):
        decoder = zlib.decompressobj(wbits=31)
        try:
            output += decoder.decompress(data, limit - len(output) + 1)
        except zlib.error as err:
            raise BodyRefused(400, "malformed_body", f"body is not valid gzip: {err}") from err
        if len(output) > limit or decoder.unconsumed_tail:
            raise BodyRefused(413, "too_large", f"decompressed body exceeds max_decompressed_bytes ({limit})")
        if not decoder.eof:
            raise BodyRefused(400, "malformed_body", "gzip body is truncated")
        data = decoder.unused_data
        if not data:
            return output
    raise BodyRefused(400, "malformed_body", f"gzip body has more than {MAX_GZIP_MEMBERS} members")
