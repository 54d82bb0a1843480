"""Starting real processes for tests: free loopback ports, readiness waits, stop by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

EXPORTER = Path(sys.executable).parent / "llmopt-exporter"
ROOT = Path(__file__).resolve().parents[1]


def _tools_bin() -> Path:
    """The bin/ of the project's tools directory, which scripts/tools.env names."""
    settings = dict(
        line.split("=", 1)
        for line in (ROOT / "scripts" / "tools.env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    return ROOT / settings["TOOLS_DIR"] / "bin"


# The real programs the tests run, put there by scripts/ensure-tools.sh (make tools).
TOOLS_BIN = _tools_bin()
PROMETHEUS = str(TOOLS_BIN / "prometheus")
PROMTOOL = str(TOOLS_BIN / "promtool")
ALERTMANAGER = str(TOOLS_BIN / "alertmanager")
AMTOOL = str(TOOLS_BIN / "amtool")
DOCKER_COMPOSE = str(TOOLS_BIN / "docker-compose")
NODE = str(TOOLS_BIN / "node")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(
    url: str,
    timeout: float = 20.0,
    process: subprocess.Popen[bytes] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1, context=ssl_context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM by PID, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout)


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    ready_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` with output to ``log_path`` until the block ends; print the log on failure."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        wait_http_ok(ready_url, timeout, process, ssl_context)
        yield process
    except BaseException:
        print(f"--- {argv[0]} log ({log_path}) ---\n{log_path.read_text(errors='replace')}")
        raise
    finally:
        stop(process)


@contextlib.contextmanager
def exporter_process(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real ``llmopt-exporter`` on a free loopback port; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(EXPORTER), "--host", "127.0.0.1", "--port", str(port), *args]
    with running(argv, f"{url}/readyz", tmp_path / f"exporter-{port}.log", env=env):
        yield url
