"""Soak: the real exporter under mixed traffic at a fixed rate, on loopback, for minutes.

Starts ``llmopt-exporter`` with its default settings on a free loopback port and sends, open-loop at
``--rate`` requests per second, a realistic mix: batches and single events of every common type,
some gzip-encoded, some retries of earlier batches (same event ids), some batches with one invalid
event and some bodies that are not JSON. /metrics is scraped every second and the exporter's
resident memory is read from /proc every few seconds.

It passes when no answer is a 5xx, the exporter applied exactly the events it acknowledged, and
memory is flat: after the warm-up (in which the retry window fills up) it grows by less than
``--rss-growth-limit``. The results go to docs/benchmarks.md, section "Soak".

    make soak                     # 3 minutes
    make soak ARGS="--duration 600 --rate 200"
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
EXPORTER = Path(sys.executable).parent / "llmopt-exporter"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
MIB = 1024 * 1024

MODELS = (
    ("gpt-4o-mini", "openai"),
    ("gpt-4o", "openai"),
    ("claude-3-5-haiku", "anthropic"),
    ("claude-3-5-sonnet", "anthropic"),
    ("llama-3.1-70b", "together"),
    ("mistral-large", "mistral"),
)
TASK_TYPES = ("summarization", "classification", "extraction", "chat", "code")
VARIANTS = tuple(
    (experiment, variant)
    for experiment in ("prompt-v5", "style-v2", "system-prompt-v3")
    for variant in ("control", "variant-b", "variant-c")
)
ARMS = tuple((bandit, arm) for bandit in ("temperature", "top_p") for arm in ("a1", "a2", "a3", "a4"))
# Share of each kind of request and of each kind of event, in percent.
REQUEST_MIX = {"batch": 55, "single": 25, "gzip": 5, "retry": 8, "invalid": 5, "malformed": 2}
EVENT_MIX = {"llm": 70, "feedback": 10, "bandit": 8, "budget": 4, "progress": 4, "health": 4}
BATCH_EVENTS = (5, 60)
MAX_IN_FLIGHT = 64  # ingest requests awaiting an answer at once, as a fleet of optimizers might


class Traffic:
    """Realistic request bodies; every valid event has a fresh id, so each is applied once."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.next_id = 0
        # Recent bodies the exporter acknowledged, to send again as a client retrying would. Only
        # answered ones: a retry that overtook its original would be applied in its place.
        self.acknowledged: deque[tuple[bytes, int]] = deque(maxlen=50)

    def event_id(self) -> str:
        self.next_id += 1
        return f"soak-{self.next_id:012d}"

    def event(self) -> dict[str, Any]:
        r = self.random
        (kind,) = r.choices(tuple(EVENT_MIX), tuple(EVENT_MIX.values()))
        event: dict[str, Any]
        if kind == "llm":
            model, provider = r.choice(MODELS)
            input_tokens = r.randint(50, 8000)
            event = {
                "type": "llm_request",
                "model": model,
                "provider": provider,
                "task_type": r.choice(TASK_TYPES),
                "latency_ms": round(r.lognormvariate(6.5, 0.6), 1),
                "input_tokens": input_tokens,
                "output_tokens": r.randint(10, 2000),
                "cached_tokens": r.randint(0, input_tokens // 2),
                "cost_usd": round(r.uniform(0.0001, 0.05), 6),
                "quality": round(r.uniform(60, 100), 1),
            }
            if r.random() < 0.05:
                event.update(status="error", error_type=r.choice(("RateLimitError", "Timeout")))
            if r.random() < 0.4:
                event["experiment_id"], event["variant_id"] = r.choice(VARIANTS)
        elif kind == "feedback":
            model, _ = r.choice(MODELS)
            event = {"type": "feedback", "model": model, "thumbs": r.choice(("up", "down"))}
            if r.random() < 0.3:
                event["nps"] = r.randint(0, 10)
        elif kind == "bandit":
            bandit, arm = r.choice(ARMS)
            event = {"type": "bandit", "action": "reward", "bandit_id": bandit, "arm_id": arm}
            event.update(reward=round(r.random(), 4), regret=round(r.random() / 10, 4))
        elif kind == "budget":
            event = {"type": "budget", "action": "spend", "category": r.choice(("compute", "infrastructure"))}
            event["amount_usd"] = round(r.uniform(0.01, 5), 4)
        elif kind == "progress":
            experiment, variant = r.choice(VARIANTS)
            event = {"type": "experiment", "action": "progress", "experiment_id": experiment}
            event.update(leader=variant, progress=round(r.random(), 3), confidence=round(r.random(), 3))
        else:
            model, provider = r.choice(MODELS)
            event = {
                "type": "model_health",
                "model": model,
                "provider": provider,
                "available": r.random() > 0.02,
            }
            event["latency_ms"] = r.randint(50, 900)
        event["event_id"] = self.event_id()
        return event

    def request(self) -> Request:
        """The next request: its body, headers, and how many events it should get applied."""
        r = self.random
        (kind,) = r.choices(tuple(REQUEST_MIX), tuple(REQUEST_MIX.values()))
        if kind == "retry" and not self.acknowledged:
            kind = "batch"
        if kind == "retry":
            body, count = r.choice(self.acknowledged)
            return Request(kind, body, {}, 0, count, body)
        if kind == "malformed":
            body = b'{"events": [{"type": "llm_request", '
            return Request(kind, body, {}, 0, 0, body)
        if kind == "single":
            body = json.dumps(self.event()).encode()
            return Request(kind, body, {}, 1, 0, body)
        events = [self.event() for _ in range(r.randint(*BATCH_EVENTS))]
        if kind == "invalid":
            events[r.randrange(len(events))]["cost_usd"] = -1
            body = json.dumps({"events": events}).encode()
            return Request(kind, body, {}, 0, 0, body)
        body = json.dumps({"events": events}).encode()
        if kind == "gzip":
            return Request(kind, gzip.compress(body), {"Content-Encoding": "gzip"}, len(events), 0, body)
        return Request(kind, body, {}, len(events), 0, body)


@dataclass(frozen=True)
class Request:
    kind: str
    body: bytes
    headers: dict[str, str]
    fresh: int  # events it should get applied
    duplicates: int  # events it should get acknowledged as duplicates
    plain: bytes  # the body before any Content-Encoding


@dataclass
class Results:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)  # kind: answers other than expected
    ingest_seconds: list[float] = field(default_factory=list)  # from sending to the answer
    intended_seconds: list[float] = field(default_factory=list)  # from when it was due to the answer
    scrape_seconds: list[float] = field(default_factory=list)
    scrape_failures: int = 0
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, bytes)
    events_applied: int = 0
    events_duplicate: int = 0
    max_lag_seconds: float = 0.0  # how late the generator sent a request, at worst
    load: list[float] = field(default_factory=list)  # the machine's 1-minute load average, sampled


EXPECTED_STATUS = {"batch": 200, "single": 200, "gzip": 200, "retry": 200, "invalid": 422, "malformed": 400}


async def send(
    client: httpx.AsyncClient, traffic: Traffic, request: Request, due: float, results: Results
) -> None:
    headers = {"Content-Type": "application/json", **request.headers}
    started = time.monotonic()
    try:
        response = await client.post("/v1/events", content=request.body, headers=headers)
    except httpx.HTTPError as err:
        results.unexpected[f"{request.kind}: {type(err).__name__}"] += 1
        return
    answered = time.monotonic()
    results.ingest_seconds.append(answered - started)
    results.intended_seconds.append(answered - due)
    results.statuses[response.status_code] += 1
    if response.status_code != EXPECTED_STATUS[request.kind]:
        results.unexpected[f"{request.kind}: {response.status_code}"] += 1
        return
    if response.status_code == 200:
        answer = response.json()
        if (answer["accepted"], answer["duplicates"]) != (request.fresh, request.duplicates):
            results.unexpected[f"{request.kind}: counts"] += 1
        results.events_applied += answer["accepted"]
        results.events_duplicate += answer["duplicates"]
        if request.fresh:
            traffic.acknowledged.append((request.plain, request.fresh))


async def generate(url: str, traffic: Traffic, rate: float, until: float, results: Results) -> None:
    """Request i is due at start + i / rate, answered or not the earlier ones, up to MAX_IN_FLIGHT
    at once; a request sent late is still timed from when it was due."""
    # Idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s) could close
    # one just as a request goes out on it.
    limits = httpx.Limits(
        max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT, keepalive_expiry=2.0
    )
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    in_flight: set[asyncio.Task[None]] = set()

    def finished(task: asyncio.Task[None]) -> None:
        in_flight.discard(task)
        slots.release()

    start = time.monotonic()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        while (due := start + results.requests / rate) < until:
            # Always yield, even when behind: the answers of earlier requests need the loop too.
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await slots.acquire()
            results.max_lag_seconds = max(results.max_lag_seconds, time.monotonic() - due)
            task = asyncio.create_task(send(client, traffic, traffic.request(), due, results))
            task.add_done_callback(finished)
            in_flight.add(task)
            results.requests += 1
        await asyncio.gather(*in_flight)


def scrape_every_second(url: str, stop: threading.Event, results: Results) -> None:
    """Prometheus' part, on its own thread so that it keeps time whatever the generator does."""
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = client.get("/metrics")
                if response.status_code == 200:
                    results.scrape_seconds.append(time.monotonic() - started)
                else:
                    results.scrape_failures += 1
            except httpx.HTTPError:
                results.scrape_failures += 1
            stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no VmRSS in /proc/{pid}/status")
    return int(match.group(1)) * 1024


def sample_memory(pid: int, began: float, period: float, stop: threading.Event, results: Results) -> None:
    """The exporter's RSS and the machine's load average, every ``period`` seconds."""
    while True:
        results.rss.append((time.monotonic() - began, rss_bytes(pid)))
        results.load.append(os.getloadavg()[0])
        if stop.wait(period):
            return


def soak(url: str, pid: int, args: argparse.Namespace) -> Results:
    results = Results(load=[os.getloadavg()[0]])
    began = time.monotonic()
    stop = threading.Event()
    watchers = [
        threading.Thread(target=scrape_every_second, args=(url, stop, results)),
        threading.Thread(target=sample_memory, args=(pid, began, args.rss_period, stop, results)),
    ]
    for watcher in watchers:
        watcher.start()
    try:
        asyncio.run(generate(url, Traffic(args.seed), args.rate, began + args.duration, results))
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join()
    results.rss.append((time.monotonic() - began, rss_bytes(pid)))
    return results


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the exporter exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url}/readyz did not answer 200 within {timeout} s")


def exporter_counts(url: str) -> tuple[float, float]:
    """Events applied and events acknowledged as duplicates, as the exporter counts them."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals["llmopt_exporter_events_accepted_total"], totals["llmopt_exporter_events_duplicate_total"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_at(results: Results, second: float) -> int:
    return min(results.rss, key=lambda sample: abs(sample[0] - second))[1]


@dataclass(frozen=True)
class Verdict:
    server_errors: int
    counts_match: bool
    rss_growth: int
    rss_growth_limit: int

    @property
    def is_flat(self) -> bool:
        return self.rss_growth < self.rss_growth_limit

    @property
    def passed(self) -> bool:
        return self.server_errors == 0 and self.counts_match and self.is_flat


def machine() -> Iterator[str]:
    cpus = len(os.sched_getaffinity(0))
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    yield f"{cpus} CPUs ({model})"
    yield f"{memory_kb / 1024 / 1024:.1f} GiB memory"
    yield f"Python {platform.python_version()}"
    yield f"Linux {platform.release().split('-')[0]}"


def report(
    args: argparse.Namespace, results: Results, verdict: Verdict, exporter: tuple[float, float]
) -> str:
    ms = 1000.0
    ingest, intended, scrapes = results.ingest_seconds, results.intended_seconds, results.scrape_seconds
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(results.statuses.items()))
    unexpected = sum(results.unexpected.values())
    rss_start, rss_end = results.rss[0][1] / MIB, results.rss[-1][1] / MIB
    rss_warm, rss_middle = rss_at(results, args.warmup) / MIB, rss_at(results, args.duration / 2) / MIB
    flat = "flat" if verdict.is_flat else "NOT flat"
    mix, (low, high) = REQUEST_MIX, BATCH_EVENTS
    lines = [
        "## Soak",
        "",
        f"`make soak` (`python bench/soak.py --duration {args.duration:g} --rate {args.rate:g}`), "
        f"{datetime.now(UTC):%Y-%m-%d}, on {', '.join(machine())}; 1-minute load average "
        f"{results.load[0]:.2f} before the traffic and at most {max(results.load):.2f} during it. The "
        "exporter runs with its default settings on loopback; the load generator and the scraper share "
        "the machine with it, so other work on the machine shows in the latencies.",
        "",
        f"Traffic, open-loop at a fixed rate: {mix['batch']} % batches of {low}-{high} events, "
        f"{mix['single']} % single events, {mix['gzip']} % gzip batches, {mix['retry']} % retries of an "
        f"acknowledged request (same event ids), {mix['invalid']} % batches with one invalid event, "
        f"{mix['malformed']} % bodies that are not JSON. Events: LLM calls ({EVENT_MIX['llm']} %), feedback, "
        "bandit rewards, spend, experiment progress, model health, over bounded label sets. /metrics is "
        "scraped every second.",
        "",
        "| Measure | Result |",
        "|---|---|",
        f"| Duration | {args.duration:g} s, warm-up {args.warmup:g} s |",
        f"| Ingest requests | {results.requests} at {args.rate:g}/s "
        f"(sent at most {results.max_lag_seconds * ms:.0f} ms late, at most {MAX_IN_FLIGHT} at once) |",
        f"| Answers | {statuses} |",
        f"| 5xx answers | {verdict.server_errors} |",
        f"| Unexpected answers | {unexpected}{f' {dict(results.unexpected)}' if unexpected else ''} |",
        f"| Events applied | {results.events_applied} acknowledged, {exporter[0]:.0f} counted by the "
        f"exporter ({results.events_applied / args.duration:.0f}/s); {results.events_duplicate} duplicates |",
        f"| Ingest latency | p50 {percentile(ingest, 0.5) * ms:.2f} ms, "
        f"p99 {percentile(ingest, 0.99) * ms:.2f} ms, max {max(ingest) * ms:.1f} ms |",
        f"| Ingest latency from when due | p50 {percentile(intended, 0.5) * ms:.2f} ms, "
        f"p99 {percentile(intended, 0.99) * ms:.2f} ms, max {max(intended) * ms:.1f} ms |",
        f"| Scrapes | {len(scrapes)} ({results.scrape_failures} failed), "
        f"p50 {percentile(scrapes, 0.5) * ms:.1f} ms, p99 {percentile(scrapes, 0.99) * ms:.1f} ms |",
        f"| RSS | start {rss_start:.1f} MiB, after warm-up {rss_warm:.1f} MiB, middle {rss_middle:.1f} MiB, "
        f"end {rss_end:.1f} MiB |",
        f"| RSS growth after warm-up | {verdict.rss_growth / MIB:+.1f} MiB "
        f"(flat: below {verdict.rss_growth_limit / MIB:.0f} MiB): {flat} |",
        f"| Verdict | {'pass' if verdict.passed else 'FAIL'} |",
        "",
    ]
    return "\n".join(lines)


def write_section(section: str, path: Path = BENCHMARKS) -> None:
    """Replace the "## Soak" section of ``path`` (created if missing), keeping everything else."""
    text = (
        path.read_text() if path.exists() else "# Benchmarks\n\nNumbers from the benchmarks under `bench/`.\n"
    )
    pattern = re.compile(r"^## Soak\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of traffic (default 180)")
    parser.add_argument("--rate", type=float, default=100.0, help="ingest requests per second (default 100)")
    parser.add_argument("--warmup", type=float, help="seconds before memory must stay flat (default a third)")
    parser.add_argument(
        "--rss-period", type=float, default=5.0, help="seconds between RSS samples (default 5)"
    )
    parser.add_argument(
        "--rss-growth-limit",
        type=float,
        default=8.0,
        help="MiB of growth after the warm-up still flat (default 8)",
    )
    parser.add_argument("--seed", type=int, default=20261127, help="seed of the traffic mix")
    parser.add_argument(
        "--no-write", action="store_true", help="print the results, leave docs/benchmarks.md alone"
    )
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = args.duration / 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="soak-") as directory:
        log_path = Path(directory) / "exporter.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(EXPORTER), "--host", "127.0.0.1", "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_ready(url, process)
            print(f"soak: {args.duration:g} s at {args.rate:g} requests/s against {url} (pid {process.pid})")
            results = soak(url, process.pid, args)
            exporter = exporter_counts(url)
            if process.poll() is not None:
                raise RuntimeError(f"the exporter exited with {process.returncode} during the soak")
        except BaseException:
            print(log_path.read_text(errors="replace")[-5000:], file=sys.stderr)
            raise
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
    server_errors = sum(count for status, count in results.statuses.items() if status >= 500)
    growth = results.rss[-1][1] - rss_at(results, args.warmup)
    verdict = Verdict(
        server_errors=server_errors,
        counts_match=exporter == (results.events_applied, results.events_duplicate)
        and not results.unexpected,
        rss_growth=growth,
        rss_growth_limit=int(args.rss_growth_limit * MIB),
    )
    section = report(args, results, verdict, exporter)
    print(section)
    print("rss samples (s, MiB):", " ".join(f"{t:.0f}:{b / MIB:.1f}" for t, b in results.rss))
    if not args.no_write:
        write_section(section)
        print(f"written to {BENCHMARKS.relative_to(ROOT)}")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
