"""Processes for the benchmarks: the exporter as users run it, Pushgateway, wrk; loopback only,
each started and stopped by its PID, each load bounded in requests and time."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.processes import TOOLS_BIN, free_port, stop, wait_http_ok

EXPORTER = Path(sys.executable).parent / "llmopt-exporter"
# Put into the project's tools directory by `scripts/ensure-tools.sh bench`, as the tests' programs are.
PUSHGATEWAY = TOOLS_BIN / "pushgateway"
WRK = str(TOOLS_BIN / "wrk")
POST_LUA = Path(__file__).with_name("post.lua")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ENSURE_TOOLS = Path(__file__).resolve().parents[1] / "scripts" / "ensure-tools.sh"


def ensure_tools() -> None:
    """Unpack wrk and Pushgateway into the tools directory when missing (no root, no service)."""
    if subprocess.run([str(ENSURE_TOOLS), "bench"], check=False).returncode != 0:
        sys.exit("bench: scripts/ensure-tools.sh bench could not provide wrk and Pushgateway (see above)")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextlib.contextmanager
def exporter(
    log_dir: Path, env: Mapping[str, str] | None = None, module: str | None = None, cwd: Path | None = None
) -> Iterator[Server]:
    """``llmopt-exporter`` with its default settings (unless ``env`` says) on a loopback port; or,
    with ``module``, ``python -m module --port PORT`` run in ``cwd`` (a variant, another revision)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(EXPORTER), "--host", "127.0.0.1", "--port", str(port)]
    if module is not None:
        argv = [sys.executable, "-m", module, "--port", str(port)]
    with (log_dir / f"exporter-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd or Path(__file__).resolve().parents[1],
        )
    try:
        wait_http_ok(f"{url}/readyz", 30.0, process)
        yield Server(url, process)
    finally:
        stop(process)


@contextlib.contextmanager
def pushgateway(log_dir: Path) -> Iterator[Server]:
    """Prometheus Pushgateway on a loopback port, persistence off."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (log_dir / f"pushgateway-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(PUSHGATEWAY),
                f"--web.listen-address=127.0.0.1:{port}",
                "--persistence.file=",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http_ok(f"{url}/-/ready", 30.0, process)
        yield Server(url, process)
    finally:
        stop(process)


def wrk(
    url: str,
    body_prefix: Path,
    body_count: int,
    *,
    connections: int,
    seconds: float,
    max_requests: int,
    content_type: str = "application/json",
    run_tag: str = "run",
    suffix: str = ".json",
) -> dict[str, Any]:
    """One wrk run (one thread) POSTing the bodies; its summary as a dict."""
    argv = [
        "timeout",
        str(int(seconds) + 30),
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(POST_LUA),
        url,
        "--",
        str(body_prefix),
        str(body_count),
        content_type,
        str(max_requests),
        run_tag,
        suffix,
    ]
    output = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    summary: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    summary["seconds"] = summary["duration_us"] / 1e6
    summary["req_per_s"] = summary["requests"] / summary["seconds"]
    summary["errors"] = sum(summary[key] for key in summary if key.startswith("errors_"))
    return summary


def post(url: str, body: bytes, content_type: str = "application/json", method: str = "POST") -> bytes:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=120) as response:
        return bytes(response.read())


def scrape(url: str, is_gzip: bool) -> tuple[float, int, bytes]:
    """One scrape: seconds to the last byte, bytes on the wire, the body as sent."""
    headers = {"Accept-Encoding": "gzip"} if is_gzip else {}
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as response:
        body = response.read()
    return time.perf_counter() - started, len(body), body


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "loadavg": os.getloadavg(),
    }


def versions(packages: Sequence[str]) -> dict[str, str]:
    from importlib.metadata import version

    return {package: version(package) for package in packages}
