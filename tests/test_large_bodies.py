"""A refused body against the real server: clients that send the whole body before reading get
the answer (not a connection reset), and a client that goes away mid-body is a disconnect, not a
failure. Both change nothing."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from llmopt_client import Client, LogEvent
from llmopt_client.transport import encode_batch

from tests.exposition import SampleKey, key, samples
from tests.processes import exporter_process

ONE_MIB = 1 << 20


def scrape(url: str) -> dict[SampleKey, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        return samples(response.read().decode())


def post(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{url}/v1/events", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_urllib_gets_413_for_a_body_over_the_limit(tmp_path: Path) -> None:
    """Several MiB over max_body_bytes (1 MiB here): without the drain, urllib sees ECONNRESET."""
    body = json.dumps({"events": [{"type": "feedback", "note": "x" * (6 * ONE_MIB)}]}).encode()
    with exporter_process(tmp_path, env={"LLMOPT_MAX_BODY_BYTES": str(ONE_MIB)}) as url:
        for _ in range(2):  # and the connection after it works as well
            status, answer = post(url, body)
            assert (status, answer["error"]) == (413, "too_large")
        rejected = scrape(url)[
            key("llmopt_exporter_events_rejected_total", type="unknown", reason="too_large")
        ]
        assert rejected == 2


def test_a_client_gone_mid_body_is_logged_as_a_disconnect(tmp_path: Path) -> None:
    with exporter_process(tmp_path) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 10000\r\n\r\n" + b'{"events": ['
            )
            time.sleep(0.3)
        gone = key("llmopt_exporter_events_rejected_total", type="unknown", reason="client_disconnect")
        deadline = time.monotonic() + 5
        while (metrics := scrape(url)).get(gone, 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metrics[gone] == 1
        assert (
            sum(
                value
                for (name, _), value in metrics.items()
                if name == "llmopt_exporter_events_accepted_total"
            )
            == 0
        )
    log = [
        json.loads(line) for path in tmp_path.glob("exporter-*.log") for line in path.read_text().splitlines()
    ]
    ingest = [line for line in log if line.get("context", {}).get("path") == "/v1/events"]
    assert [line["context"]["status"] for line in ingest] == [499]
    assert not [line for line in log if line["level"] in ("error", "critical")]


def test_the_client_delivers_a_batch_larger_than_the_server_takes_in_parts(tmp_path: Path) -> None:
    """100 log events with 16 KiB non-ASCII stacks: about 9 MB as one body, nine times the
    server's limit. The client sends them in bodies within max_batch_bytes, so none is refused,
    none is retried, and every one is counted once."""
    stack = ("ü" * 15 + "\n") * 1000  # 16 000 characters, 6 bytes each as JSON escapes
    events = [LogEvent(level="error", message=f"failure {index}", error_stack=stack) for index in range(100)]
    assert len(encode_batch([json.dumps(event.to_wire()).encode() for event in events])) > 8 * ONE_MIB
    with exporter_process(tmp_path) as url:
        with Client(url, batch_size=100, flush_interval=60, retry_initial=0.05, retry_max=0.2) as client:
            for event in events:
                client.emit(event)
            assert client.flush(timeout=60)
            stats = client.stats
        assert (stats.sent, stats.retried, stats.dropped, stats.failed) == (100, 0, 0, 0)
        metrics = scrape(url)
        assert metrics[key("llmopt_exporter_events_accepted_total", type="log")] == 100
        refused = {
            labels: value
            for (name, labels), value in metrics.items()
            if name == "llmopt_exporter_events_rejected_total"
        }
        assert sum(refused.values()) == 0
