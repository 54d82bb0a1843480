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
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import yaml

EXPORTER = Path(sys.executable).parent / "llmopt-exporter"
T = TypeVar("T")
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


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while (result := check()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout} s")
        time.sleep(0.1)
    return result


@contextlib.contextmanager
def exporter_and_prometheus(
    tmp: Path, rule_files: Mapping[str, str], job: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """A real exporter (with ``env`` added to its environment) and a real Prometheus that scrapes it
    and evaluates ``rule_files`` (name -> text) every second; yields their base URLs."""
    for name, text in rule_files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    exporter, prometheus = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": list(rule_files),
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [exporter]}]}],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    host, port = exporter.split(":")
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            running(
                [str(EXPORTER), "--host", host, "--port", port],
                f"http://{exporter}/readyz",
                tmp / "exporter.log",
                # Scrapes every second would bury everything else in the log.
                env={"LLMOPT_ACCESS_LOG": "false", **(env or {})},
            )
        )
        stack.enter_context(
            running(
                [
                    PROMETHEUS,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'data'}",
                    f"--web.listen-address={prometheus}",
                ],
                f"http://{prometheus}/-/ready",
                tmp / "prometheus.log",
            )
        )
        yield f"http://{exporter}", f"http://{prometheus}"
