"""Reading a request body within limits: declared size, streamed size, gzip-decoded size."""

from __future__ import annotations

import zlib

from fastapi import Request


class BodyRefused(ValueError):
    """The body cannot be read: ``status`` and ``reason`` say why (413/415)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


async def read_body(request: Request, max_bytes: int, max_decompressed_bytes: int) -> bytes:
    """The body as sent (``max_bytes``), gzip-decoded when so encoded (``max_decompressed_bytes``)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise BodyRefused(
            415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported; use gzip"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyRefused(413, "too_large", f"body exceeds max_body_bytes ({max_bytes})")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BodyRefused(413, "too_large", f"body exceeds max_body_bytes ({max_bytes})")
    if encoding == "gzip":
        return gunzip(bytes(body), max_decompressed_bytes)
    return bytes(body)


def gunzip(data: bytes, limit: int) -> bytes:
    """Decode gzip, refusing as soon as the output would pass ``limit`` (a zip bomb costs nothing)."""
    decoder = zlib.decompressobj(wbits=31)
    try:
        output = decoder.decompress(data, limit + 1)
    except zlib.error as err:
        raise BodyRefused(400, "malformed_body", f"body is not valid gzip: {err}") from err
    if len(output) > limit or decoder.unconsumed_tail:
        raise BodyRefused(413, "too_large", f"decompressed body exceeds max_decompressed_bytes ({limit})")
    if not decoder.eof:
        raise BodyRefused(400, "malformed_body", "gzip body is truncated")
    if decoder.unused_data:
        raise BodyRefused(400, "malformed_body", "data after the end of the gzip stream")
    return output
