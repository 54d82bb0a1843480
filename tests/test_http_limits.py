"""Limits on what a client sends before a request exists, against the real server: an endless
header, too many headers, a head sent a byte at a time, a body that never ends. Each costs the
exporter a bounded amount of memory and time, and a normal client is served meanwhile."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.exposition import key, samples
from tests.processes import exporter_process

TIMEOUT = 1.0  # header and body timeouts of the exporter under test, in seconds
SLOTS = 4  # max_concurrent_requests
LIMITS = {
    "LLMOPT_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
    "LLMOPT_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
    "LLMOPT_MAX_CONCURRENT_REQUESTS": str(SLOTS),
}
FEEDBACK = json.dumps({"type": "feedback", "thumbs": "up"}).encode()


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("http-limits")
    with exporter_process(directory, env=LIMITS) as url:
        yield url, directory


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def resident_bytes(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return samples(response.read().decode())[key("process_resident_memory_bytes")]


def post_feedback(url: str) -> int:
    request = urllib.request.Request(
        f"{url}/v1/events", data=FEEDBACK, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def test_an_endless_header_gets_431_and_costs_no_memory(exporter: tuple[str, Path]) -> None:
    url, _ = exporter
    before = resident_bytes(url)
    answers = []
    for _ in range(6):
        with connect(url) as sock:
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Long: ")
            try:
                for _ in range(50 * 16):  # up to 50 MiB, 64 KiB at a time, unless cut off first
                    sock.sendall(b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                answers.append(answer_of(sock).split(b"\r\n", 1)[0])
            except ConnectionResetError:
                answers.append(b"reset")
    assert all(answer in (b"HTTP/1.1 431 Request Header Fields Too Large", b"reset") for answer in answers)
    assert b"HTTP/1.1 431 Request Header Fields Too Large" in answers
    assert resident_bytes(url) - before < 20 * 2**20
    assert post_feedback(url) == 200


def test_too_many_headers_get_431(exporter: tuple[str, Path]) -> None:
    url, _ = exporter
    with connect(url) as sock:
        headers = b"".join(b"X-H%d: v\r\n" % number for number in range(101))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert answer_of(sock).split(b"\r\n", 1)[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    with connect(url) as sock:  # a hundred are fine
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + headers[: headers.index(b"X-H98")]  # with Host and Connection: 100
            + b"\r\n"
        )
        assert answer_of(sock).split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"


def test_a_head_sent_a_byte_at_a_time_is_cut_off(exporter: tuple[str, Path]) -> None:
    """Slowloris: 50 connections each sending a header byte every 0.2 s are closed after the
    header timeout, and a normal client is served while they hang."""
    url, _ = exporter
    socks = [connect(url) for _ in range(50)]
    started = time.monotonic()
    closed_after: dict[int, float] = {}
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert post_feedback(url) == 200
        while len(closed_after) < len(socks) and time.monotonic() - started < 10 * TIMEOUT:
            for index, sock in enumerate(socks):
                if index in closed_after:
                    continue
                try:
                    sock.sendall(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    closed_after[index] = time.monotonic() - started
            time.sleep(0.2)
    finally:
        for sock in socks:
            sock.close()
    assert len(closed_after) == len(socks)
    assert max(closed_after.values()) < 5 * TIMEOUT


def test_a_body_that_never_ends_is_cut_off_and_logged_as_a_disconnect(exporter: tuple[str, Path]) -> None:
    url, directory = exporter
    with connect(url) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        started = time.monotonic()
        assert answer_of(sock) == b""  # closed without an answer
        assert time.monotonic() - started < 5 * TIMEOUT
    time.sleep(0.2)
    lines = [
        json.loads(line)
        for path in directory.glob("exporter-*.log")
        for line in path.read_text().splitlines()
    ]
    posts = [
        line["context"]["status"] for line in lines if line.get("context", {}).get("path") == "/v1/events"
    ]
    assert 499 in posts
    assert not [line for line in lines if line["level"] in ("error", "critical")]


def test_slow_bodies_lock_no_one_out(exporter: tuple[str, Path]) -> None:
    """Ten times max_concurrent_requests connections that send their head and a byte of body, then
    stall: normal clients are served meanwhile, without a 503."""
    url, _ = exporter
    socks = [connect(url) for _ in range(10 * SLOTS)]
    try:
        for sock in socks:
            sock.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
        time.sleep(0.1)
        assert [post_feedback(url) for _ in range(SLOTS * 2)] == [200] * (SLOTS * 2)
    finally:
        for sock in socks:
            sock.close()
