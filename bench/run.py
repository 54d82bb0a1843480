"""``make bench``: every benchmark, end to end, then the results table in docs/benchmarks.md.

    python -m bench.run [--reps 3] [--quick] [--only floor,throughput,...] [--no-doc]

Starts the exporter as users run it (``llmopt-exporter``, default settings, one process) and
Prometheus Pushgateway on loopback ports, loads them with wrk and bench/loadgen.py, stops each by
its PID. Every load is bounded in requests and time. Each measurement is repeated ``--reps``
times (variants interleaved) and the median is reported. Raw results go to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry

from app.recorder import Recorder
from app.render import Exposition
from app.store import LabelGuard, MetricStore
from bench import procs, workload

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
STEPS = (
    "floor",
    "decoders",
    "throughput",
    "latency",
    "scrape",
    "openloop",
    "pushgateway",
    "scaling",
    "before",
)
# The last revision before the purpose-built store and exposition: the "before" step measures it.
BEFORE_REVISION = "bbc8ddc"
BATCHES = (1, 100, 1000)
SCRAPE_SERIES = (1_000, 10_000, 100_000)
OPENLOOP_SERIES = (10_000, 100_000)
OPENLOOP_RATE = 500


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def python_json(module: str, *args: str, timeout: float = 600) -> Any:
    output = subprocess.run(
        [sys.executable, "-m", module, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


class Bench:
    def __init__(self, work: Path, reps: int, quick: bool) -> None:
        self.work = work
        self.reps = reps
        self.quick = quick
        self.seconds = 3.0 if quick else 5.0
        self.runs = 0

    def tag(self) -> str:
        self.runs += 1
        return f"r{self.runs}"

    # --- bodies -----------------------------------------------------------------------------------
    def write_bodies(self) -> None:
        for batch in BATCHES:
            for index in range(16):
                events = workload.events(batch, seed=batch * 100 + index)
                for event in events:
                    event["event_id"] = "@ID@"
                (self.work / f"b{batch}_{index}.json").write_bytes(workload.body(events))
        for index in range(16):
            lines = ["# TYPE llmopt_bench_push_total counter"]
            lines += [f'llmopt_bench_push_total{{series="{index}-{i}"}} {i}' for i in range(1000)]
            (self.work / f"pg1000_{index}.json").write_text("\n".join(lines) + "\n")

    def wrk_batches(
        self, server: procs.Server, batch: int, connections: int, seconds: float
    ) -> dict[str, Any]:
        cpu_before = server.cpu_seconds()
        result = procs.wrk(
            f"{server.url}/v1/events",
            self.work / f"b{batch}_",
            16,
            connections=connections,
            seconds=seconds,
            max_requests=2_000_000 // batch,
            run_tag=self.tag(),
        )
        events = result["requests"] * batch
        result["events_per_s"] = events / result["seconds"]
        result["cpu_us_per_event"] = (server.cpu_seconds() - cpu_before) / max(1, events) * 1e6
        return result

    # --- steps ------------------------------------------------------------------------------------
    def floor(self) -> dict[str, Any]:
        log("in-process floor (decode + validate + record, no HTTP)")
        events = "4000" if self.quick else "10000"
        return python_json("bench.floor", "--events", events, "--repeats", str(self.reps))  # type: ignore[no-any-return]

    def decoders(self) -> dict[str, Any]:
        log("body decoders: pydantic as the contract validates, msgspec as ingest decodes")
        return python_json("bench.decoders")  # type: ignore[no-any-return]

    def throughput(self) -> dict[str, Any]:
        log(f"ingest throughput, batches of {BATCHES}, wrk -c8 -d{self.seconds:g}s, beside the floor")
        runs: dict[str, list[dict[str, Any]]] = {f"b{batch}": [] for batch in BATCHES}
        floor_args = ["--events", "8000", "--repeats", "1", "--stores", "exporter", "--batches", "100,1000"]
        for rep in range(self.reps):
            # The floor again, seconds apart from these runs: on a shared machine, only ratios
            # taken close together mean much.
            floor = python_json("bench.floor", *floor_args)
            with procs.exporter(self.work) as server:
                for batch in BATCHES:
                    run = self.wrk_batches(server, batch, 8, self.seconds)
                    base = floor.get(f"exporter/b{batch}")
                    if base:
                        run["floor_events_per_s"] = base["events_per_s"]
                        run["floor_share"] = run["events_per_s"] / base["events_per_s"]
                        run["floor_cpu_share"] = base["ingest_us_per_event"] / run["cpu_us_per_event"]
                    runs[f"b{batch}"].append(run)
            log(
                f"  rep {rep + 1}: "
                + ", ".join(f"{k} {v[-1]['events_per_s']:.0f} ev/s" for k, v in runs.items())
            )
        result: dict[str, Any] = {}
        for key, values in runs.items():
            result[key] = {
                "events_per_s": median(r["events_per_s"] for r in values),
                "req_per_s": median(r["req_per_s"] for r in values),
                "cpu_us_per_event": median(r["cpu_us_per_event"] for r in values),
                "errors": sum(r["errors"] for r in values),
                "runs": values,
            }
            if "floor_share" in values[0]:
                for name in ("floor_events_per_s", "floor_share", "floor_cpu_share"):
                    result[key][name] = median(r[name] for r in values)
        return result

    def latency(self) -> dict[str, Any]:
        seconds = self.seconds + 1
        log(f"single events at 32 connections, wrk -c32 -d{seconds:g}s (default; access log off)")
        variants: dict[str, tuple[dict[str, str], str | None]] = {
            "default": ({}, None),
            "access_log_off": ({"LLMOPT_ACCESS_LOG": "false"}, None),
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
        for _ in range(self.reps):
            for name, (env, module) in variants.items():
                with procs.exporter(self.work, env, module) as server:
                    runs[name].append(self.wrk_batches(server, 1, 32, seconds))
            log(
                "  "
                + ", ".join(
                    f"{k} {v[-1]['req_per_s']:.0f} req/s p99 {v[-1]['p99_us'] / 1000:.1f} ms"
                    for k, v in runs.items()
                )
            )
        return {
            name: {
                "req_per_s": median(r["req_per_s"] for r in values),
                "p50_ms": median(r["p50_us"] for r in values) / 1000,
                "p99_ms": median(r["p99_us"] for r in values) / 1000,
                "cpu_us_per_req": median(r["cpu_us_per_event"] for r in values),
                "errors": sum(r["errors"] for r in values),
                "runs": values,
            }
            for name, values in runs.items()
        }

    def preload(self, server: procs.Server, series: int) -> None:
        for body in workload.preload_bodies(workload.preload_triples(series)):
            procs.post(f"{server.url}/v1/events", body)

    def scrape(self) -> dict[str, Any]:
        log(f"scrape time and size at {SCRAPE_SERIES} series; memory per series")
        result: dict[str, Any] = {}
        for series in SCRAPE_SERIES:
            rows = []
            for _ in range(self.reps):
                with procs.exporter(self.work) as server:
                    procs.scrape(f"{server.url}/metrics", False)
                    rss_empty = server.rss_bytes()
                    self.preload(server, series)
                    cold_s, _, _ = procs.scrape(f"{server.url}/metrics", False)
                    rss_rendered = server.rss_bytes()
                    plain = [procs.scrape(f"{server.url}/metrics", False) for _ in range(5)]
                    gzipped = [procs.scrape(f"{server.url}/metrics", True) for _ in range(5)]
                    body = plain[-1][2]
                    rows.append(
                        {
                            "series": sum(
                                1 for line in body.splitlines() if line and not line.startswith(b"#")
                            ),
                            "cold_ms": cold_s * 1000,
                            "plain_ms": median(t for t, _, _ in plain) * 1000,
                            "gzip_ms": median(t for t, _, _ in gzipped) * 1000,
                            "plain_bytes": plain[-1][1],
                            "gzip_bytes": gzipped[-1][1],
                            "rss_empty": rss_empty,
                            "rss_rendered": rss_rendered,
                            "rss": server.rss_bytes(),
                        }
                    )
            result[str(series)] = {key: median(row[key] for row in rows) for key in rows[0]}
            result[str(series)]["runs"] = rows
            log(
                f"  {series}: {median(r['plain_ms'] for r in rows):.1f} ms plain, "
                f"{median(r['gzip_ms'] for r in rows):.1f} ms gzip"
            )
        low, high = result[str(SCRAPE_SERIES[0])], result[str(SCRAPE_SERIES[-1])]
        # After the first scrape: every series with its lines rendered, and one output buffer.
        result["bytes_per_series"] = (high["rss_rendered"] - low["rss_rendered"]) / (
            high["series"] - low["series"]
        )
        log("  in-process render cost, ours against prometheus_client's generate_latest")
        result["render"] = {
            str(series): python_json("bench.render_cost", "--series", str(series))
            for series in (10_000, 100_000)
        }
        return result

    def openloop(self) -> dict[str, Any]:
        seconds = 6 if self.quick else 8
        log(
            f"open-loop ingest, {OPENLOOP_RATE} single events/s for {seconds} s, "
            "with and without a 1 s scraper"
        )
        result: dict[str, Any] = {}
        for series in OPENLOOP_SERIES:
            runs: dict[str, list[dict[str, Any]]] = {"no_scraper": [], "scraper_1s": []}
            with procs.exporter(self.work) as server:
                self.preload(server, series)
                procs.scrape(f"{server.url}/metrics", False)
                # A short run first, not counted: connections, caches and the collector settle.
                python_json(
                    "bench.loadgen", "--url", server.url, "--rate", str(OPENLOOP_RATE), "--seconds", "2"
                )
                for _ in range(self.reps):
                    for name, every in (("no_scraper", 0), ("scraper_1s", 1)):
                        args = ["--url", server.url, "--rate", str(OPENLOOP_RATE), "--seconds", str(seconds)]
                        runs[name].append(python_json("bench.loadgen", *args, "--scrape-every", str(every)))
            result[str(series)] = {
                name: {
                    "p50_ms": median(r["p50_ms"] for r in values),
                    "p99_ms": median(r["p99_ms"] for r in values),
                    "max_ms": median(r["max_ms"] for r in values),
                    "achieved_per_s": median(r["achieved_per_s"] for r in values),
                    "non_2xx": sum(r["non_2xx"] for r in values),
                    "scrape_ms": median(s["ms"] for r in values for s in r["scrapes"])
                    if name != "no_scraper"
                    else None,
                    "runs": values,
                }
                for name, values in runs.items()
            }
            log(
                f"  {series}: p99 {result[str(series)]['no_scraper']['p99_ms']:.1f} ms without, "
                f"{result[str(series)]['scraper_1s']['p99_ms']:.1f} ms with a scraper"
            )
        return result

    def pushgateway(self) -> dict[str, Any]:
        log("Pushgateway: the same series pushed; its scrape time and push throughput")
        result: dict[str, Any] = {}
        for series in (10_000, 100_000):
            groups = _exposition_groups(series, 10)
            scrapes, pushes, rss = [], [], []
            with procs.pushgateway(self.work) as gateway:
                for index, group in enumerate(groups):
                    procs.post(
                        f"{gateway.url}/metrics/job/bench/instance/g{index}", group, "text/plain", "PUT"
                    )
                _, _, body = procs.scrape(f"{gateway.url}/metrics", False)
                held = sum(1 for line in body.splitlines() if line.startswith(b"llmopt_"))
                for _ in range(self.reps):
                    plain = [procs.scrape(f"{gateway.url}/metrics", False) for _ in range(3)]
                    gzipped = [procs.scrape(f"{gateway.url}/metrics", True) for _ in range(3)]
                    scrapes.append(
                        {
                            "plain_ms": median(t for t, _, _ in plain) * 1000,
                            "gzip_ms": median(t for t, _, _ in gzipped) * 1000,
                            "plain_bytes": plain[-1][1],
                            "gzip_bytes": gzipped[-1][1],
                        }
                    )
                    push = procs.wrk(
                        f"{gateway.url}/metrics/job/push/instance/x",
                        self.work / "pg1000_",
                        16,
                        connections=8,
                        seconds=self.seconds,
                        max_requests=100_000,
                        content_type="text/plain; version=0.0.4",
                        run_tag=self.tag(),
                    )
                    push["updates_per_s"] = push["req_per_s"] * 1000
                    pushes.append(push)
                    rss.append(gateway.rss_bytes())
            result[str(series)] = {
                "series": held,
                **{key: median(s[key] for s in scrapes) for key in scrapes[0]},
                "push_updates_per_s": median(p["updates_per_s"] for p in pushes),
                "push_p99_ms": median(p["p99_us"] for p in pushes) / 1000,
                "push_errors": sum(p["errors"] for p in pushes),
                "rss": median(rss),
                "runs": {"scrapes": scrapes, "pushes": pushes},
            }
            log(
                f"  {held} series: {median(s['plain_ms'] for s in scrapes):.1f} ms plain scrape, "
                f"{median(p['updates_per_s'] for p in pushes):.0f} updates/s pushed"
            )
        return result

    def scaling(self) -> dict[str, Any]:
        log("scaling: one process against two replicas on their own ports (load split evenly)")
        result: dict[str, Any] = {}
        for batch, connections in ((1, 32), (100, 8)):
            single, double = [], []
            for _ in range(self.reps):
                with procs.exporter(self.work) as server:
                    single.append(self.wrk_batches(server, batch, connections, self.seconds)["events_per_s"])
                with procs.exporter(self.work) as first, procs.exporter(self.work) as second:
                    double.append(sum(self._parallel_wrk((first, second), batch, connections // 2)))
            result[f"b{batch}"] = {
                "one_process_events_per_s": median(single),
                "two_replicas_events_per_s": median(double),
                "runs": {"one": single, "two": double},
            }
            log(f"  b={batch}: {median(single):.0f} ev/s one process, {median(double):.0f} ev/s two replicas")
        log("  prometheus_client multiprocess mode (in process)")
        result["multiprocess"] = python_json("bench.multiprocess", "--series", "10000,100000")
        return result

    def before(self) -> dict[str, Any]:
        log(f"before this work (revision {BEFORE_REVISION}), same harness: ingest, scrapes, latency scraped")
        source = self.work / "before"
        source.mkdir()
        archive = subprocess.run(
            ["git", "archive", BEFORE_REVISION, "app"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        throughput, single = [], []
        for _ in range(self.reps):
            # A fresh server for each, as in the throughput and latency steps.
            with procs.exporter(self.work, module="app", cwd=source) as server:
                throughput.append(self.wrk_batches(server, 1000, 8, self.seconds))
            with procs.exporter(self.work, module="app", cwd=source) as server:
                single.append(self.wrk_batches(server, 1, 32, self.seconds + 1))
        result: dict[str, Any] = {
            "revision": BEFORE_REVISION,
            "b1000_events_per_s": median(run["events_per_s"] for run in throughput),
            "b1000_cpu_us_per_event": median(r["cpu_us_per_event"] for r in throughput),
            "single_req_per_s": median(r["req_per_s"] for r in single),
            "single_p99_ms": median(r["p99_us"] for r in single) / 1000,
        }
        for series in OPENLOOP_SERIES:
            with procs.exporter(self.work, module="app", cwd=source) as server:
                self.preload(server, series)
                _, size, _ = procs.scrape(f"{server.url}/metrics", False)
                plain = [procs.scrape(f"{server.url}/metrics", False)[0] for _ in range(3)]
                gzipped = [procs.scrape(f"{server.url}/metrics", True)[0] for _ in range(3)]
                load = ["--url", server.url, "--rate", str(OPENLOOP_RATE)]
                python_json("bench.loadgen", *load, "--seconds", "2")
                quiet = python_json("bench.loadgen", *load, "--seconds", "8")
                scraped = python_json("bench.loadgen", *load, "--seconds", "8", "--scrape-every", "1")
                scrapes = [scrape["ms"] for scrape in scraped["scrapes"]]
                result[str(series)] = {
                    "plain_ms": median(plain) * 1000,
                    "gzip_ms": median(gzipped) * 1000,
                    "plain_bytes": size,
                    "rss": server.rss_bytes(),
                    "p99_ms_no_scraper": quiet["p99_ms"],
                    "p99_ms_scraper": scraped["p99_ms"],
                    "achieved_per_s_scraper": scraped["achieved_per_s"],
                    "scrape_ms_under_load": median(scrapes) if scrapes else None,
                }
            row = result[str(series)]
            log(f"  {series}: {row['plain_ms']:.0f} ms a scrape, {row['p99_ms_scraper']:.0f} ms p99 scraped")
        return result

    def _parallel_wrk(self, servers: Sequence[procs.Server], batch: int, connections: int) -> list[float]:
        """One wrk per server, all at once; events/s each."""
        tags = [self.tag() for _ in servers]
        with ThreadPoolExecutor(len(servers)) as pool:
            runs = pool.map(
                lambda server, tag: procs.wrk(
                    f"{server.url}/v1/events",
                    self.work / f"b{batch}_",
                    16,
                    connections=connections,
                    seconds=self.seconds,
                    max_requests=2_000_000 // batch,
                    run_tag=tag,
                ),
                servers,
                tags,
            )
            return [run["req_per_s"] * batch for run in runs]


def _exposition_groups(series: int, groups: int) -> list[bytes]:
    """Our own text exposition at ``series`` series, split into ``groups`` push bodies."""
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    store = MetricStore(CollectorRegistry(), LabelGuard(500))
    recorder = Recorder(store)
    for body in workload.preload_bodies(workload.preload_triples(series)):
        for event in workload.decode(body):
            recorder.apply(event)
    text = Exposition(store).render_now(False).decode()
    # Pushgateway keeps its own build_info and push timestamps; ours would clash with it.
    families: list[tuple[list[str], list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# HELP"):
            families.append(([line], []))
        elif line.startswith("# TYPE"):
            families[-1][0].append(line)
        else:
            families[-1][1].append(line)
    samples = sum(len(lines) for _, lines in families)
    per_group = -(-samples // groups)
    bodies: list[list[str]] = [[]]
    count = 0
    for header, lines in families:
        for start in range(0, len(lines), per_group):
            chunk = lines[start : start + per_group]
            if count + len(chunk) > per_group and bodies[-1]:
                bodies.append([])
                count = 0
            bodies[-1] += header + chunk
            count += len(chunk)
    return [("\n".join(body) + "\n").encode() for body in bodies if body]


# --- the document ---------------------------------------------------------------------------------
def _ms(value: float | None) -> str:
    return "—" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _met(is_met: bool) -> str:
    return "**met**" if is_met else "**not met**"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(header: Sequence[str], align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table; ``align`` has one letter per column: l(eft) or r(ight)."""
    rule = ["---:" if side == "r" else "---" for side in align]
    return [_row(*header), _row(*rule), *(_row(*row) for row in rows), ""]


def markdown(results: dict[str, Any]) -> str:
    info = results["info"]
    box = info["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    out = [
        f"Run {info['date']} with `{info['command']}` (repetitions: {info['reps']}, medians; "
        f"took {info['seconds']:.0f} s).",
        f"Machine: {box['nproc']} cores ({box['cpu']}), {box['ram_gib']} GiB RAM, Python {box['python']}; "
        f"load average {info['load_before']} before, {info['load_after']} after.",
        f"{versions}; wrk {info['wrk']}; Pushgateway {info['pushgateway']}.",
        "",
    ]
    floor = results.get("floor", {})
    throughput = results.get("throughput", {})
    latency = results.get("latency", {})
    scrape = results.get("scrape", {})
    openloop = results.get("openloop", {})
    gateway = results.get("pushgateway", {})
    scaling = results.get("scaling", {})
    decoders = results.get("decoders")
    out += _targets(floor, throughput, latency, scrape, openloop, gateway)
    if throughput:
        out += [
            "### Ingest throughput (HTTP, `wrk -t1 -c8`, mixed events)",
            "",
            "The floor is the in-process floor measured in the same repetition, seconds before. "
            "HTTP/floor compares events/s; CPU share compares the floor's µs per event with the "
            "server's CPU µs per event, which other load on the machine disturbs less.",
            "",
        ]
        rows: list[Sequence[object]] = []
        for batch in BATCHES:
            row = throughput[f"b{batch}"]
            has_floor = "floor_share" in row
            rows.append(
                (
                    batch,
                    _n(row["events_per_s"]),
                    _n(row["req_per_s"]),
                    f"{row['cpu_us_per_event']:.1f}",
                    _n(row["floor_events_per_s"]) if has_floor else "—",
                    f"{row['floor_share']:.0%}" if has_floor else "—",
                    f"{row['floor_cpu_share']:.0%}" if has_floor else "—",
                    row["errors"],
                )
            )
        header = (
            "batch",
            "events/s",
            "requests/s",
            "server CPU µs/event",
            "floor events/s",
            "HTTP/floor",
            "CPU share",
            "errors",
        )
        out += _table(header, "rrrrrrrr", rows)
    if floor:
        out += [
            f"### In-process floor (no HTTP; {floor['updates_per_event']:.1f} metric updates per event)",
            "",
            "`Ingestor.ingest(body)`: decode + validate + dedup + record, what `POST /v1/events` runs, "
            "with the duplicate window full as in a running server; decode "
            "and apply are its two big parts, timed alone. `stock` is the code before this work: "
            "prometheus_client metric objects with cached children (bench/baseline_store.py).",
            "",
        ]
        rows = [
            (
                *key.split("/b"),
                f"{row['ingest_us_per_event']:.1f}",
                f"{row['parse_us_per_event']:.1f}",
                f"{row['apply_us_per_event']:.1f}",
                _n(row["events_per_s"]),
            )
            for key, row in floor.items()
            if "/" in key
        ]
        header = ("code", "batch", "ingest µs/event", "decode µs/event", "apply µs/event", "events/s")
        out += _table(header, "lrrrrr", rows)
    if decoders:
        out += [
            "### Body decoders (µs per event, batches of 1000 mixed events, best of 5)",
            "",
            "Ingest decodes a body with `app.decode.EventDecoder`: the msgspec structs of the event "
            "contract, in one pass, then the checks types cannot express; JSON parsing alone for scale.",
            "",
        ]
        header = ("`json.loads` only", "msgspec untyped", "`EventDecoder.decode` (ingest)")
        keys = ("json_loads_us", "msgspec_untyped_us", "decoder_us")
        out += _table(header, "rrr", [[f"{decoders[key]:.2f}" for key in keys]])
    if latency:
        out += ["### Single events (`wrk -t1 -c32`)", ""]
        rows = [
            (
                name.replace("_", " "),
                _n(row["req_per_s"]),
                _ms(row["p50_ms"]),
                _ms(row["p99_ms"]),
                f"{row['cpu_us_per_req']:.0f}",
                row["errors"],
            )
            for name, row in latency.items()
        ]
        header = ("settings", "requests/s", "p50 ms", "p99 ms", "server CPU µs/request", "errors")
        out += _table(header, "lrrrrr", rows)
    if scrape:
        out += _scrape_tables(scrape)
    if openloop:
        out += [
            f"### Ingest latency while scraped (open loop, {OPENLOOP_RATE} single events/s)",
            "",
            "Latency counts from each request's intended send time. The scraper asks for gzip every second.",
            "",
        ]
        rows = [
            (
                _n(series),
                name.replace("_", " "),
                _ms(row["p50_ms"]),
                _ms(row["p99_ms"]),
                _ms(row["max_ms"]),
                _n(row["achieved_per_s"]),
                _ms(row["scrape_ms"]),
                row["non_2xx"],
            )
            for series in OPENLOOP_SERIES
            for name, row in openloop[str(series)].items()
        ]
        header = (
            "series",
            "scraper",
            "p50 ms",
            "p99 ms",
            "max ms",
            "req/s",
            "scrape ms under load",
            "non-2xx",
        )
        out += _table(header, "rlrrrrrr", rows)
    if gateway:
        out += _gateway_table(gateway, scrape, throughput, floor)
    if scaling:
        out += _scaling_tables(scaling, floor)
    before = results.get("before")
    if before:
        out += _before_table(before, throughput, latency, scrape, openloop)
    return "\n".join(out)


def _targets(
    floor: dict[str, Any],
    throughput: dict[str, Any],
    latency: dict[str, Any],
    scrape: dict[str, Any],
    openloop: dict[str, Any],
    gateway: dict[str, Any],
) -> list[str]:
    rows = []
    if throughput:
        row = throughput["b1000"]
        http, share, cpu_share = row["events_per_s"], row["floor_share"], row["floor_cpu_share"]
        measured = (
            f"{share:.0%} of the floor's events/s ({_n(http)} of {_n(row['floor_events_per_s'])}); "
            f"per CPU second {cpu_share:.0%} of its events"
        )
        rows.append(("batch-1000 ingest ≥ 80 % of the in-process floor", measured, _met(share >= 0.8)))
        per_core = 1e6 / row["cpu_us_per_event"]
        measured = f"{_n(http)} ev/s ({_n(per_core)} per CPU second of the server)"
        rows.append(("batch-1000 ingest ≥ 100k events/s", measured, _met(http >= 100_000)))
    if latency:
        row = latency["default"]
        measured = f"{_n(row['req_per_s'])} req/s, p99 {_ms(row['p99_ms'])} ms"
        is_met = row["req_per_s"] >= 8000 and row["p99_ms"] <= 10
        rows.append(("single events ≥ 8k req/s, p99 ≤ 10 ms at 32 connections", measured, _met(is_met)))
    if openloop:
        without = openloop["100000"]["no_scraper"]["p99_ms"]
        scraped = openloop["100000"]["scraper_1s"]["p99_ms"]
        measured = f"{_ms(scraped)} ms against {_ms(without)} ms ({scraped / without:.1f}x)"
        rows.append(
            ("ingest p99 at 100k series, 1 s scraper ≤ 2x none", measured, _met(scraped <= 2 * without))
        )
    if scrape:
        ours = scrape["100000"]
        pg = gateway.get("100000")
        measured = f"{_ms(ours['plain_ms'])} ms plain, {_ms(ours['gzip_ms'])} ms gzip"
        if pg:
            measured += f"; Pushgateway {_ms(pg['plain_ms'])} / {_ms(pg['gzip_ms'])} ms"
        is_met = ours["plain_ms"] <= 150 and (pg is None or ours["plain_ms"] <= pg["plain_ms"])
        rows.append(("scrape of 100k series ≤ 150 ms, no slower than Pushgateway", measured, _met(is_met)))
        per_series = scrape["bytes_per_series"]
        rows.append(("memory ≤ 1 KB per series", f"{per_series:.0f} B/series", _met(per_series <= 1024)))
    if not rows:
        return []
    return ["### Targets", "", *_table(("target", "measured", ""), "lll", rows)]


def _scrape_tables(scrape: dict[str, Any]) -> list[str]:
    out = ["### Scrapes (idle server, loopback, time to the last byte)", ""]
    rows = []
    for series in SCRAPE_SERIES:
        row = scrape[str(series)]
        rows.append(
            (
                _n(row["series"]),
                _ms(row["cold_ms"]),
                _ms(row["plain_ms"]),
                _ms(row["gzip_ms"]),
                f"{row['plain_bytes'] / 1024:,.0f}",
                f"{row['gzip_bytes'] / 1024:,.0f}",
                f"{row['rss'] / 2**20:.0f}",
            )
        )
    header = ("series", "first scrape ms", "plain ms", "gzip ms", "plain KB", "gzip KB", "RSS MB")
    out += _table(header, "rrrrrrr", rows)
    low, high = scrape[str(SCRAPE_SERIES[0])], scrape[str(SCRAPE_SERIES[-1])]
    out += [
        f"The first scrape renders every series; later ones reuse the lines of series no update touched. "
        f"Memory: {scrape['bytes_per_series']:.0f} B per series: RSS growth from {_n(low['series'])} to "
        f"{_n(high['series'])} series, after the first scrape (rendered lines included). The RSS column "
        "is after all ten scrapes; it includes what the allocator keeps of their output buffers.",
        "",
        "In-process render, ms (median of 5): prometheus_client's `generate_latest` over the stock store, "
        "and ours with every series stale, 10 % stale and none stale; then gzip of the output (KB).",
        "",
    ]
    rows = [
        (
            _n(row["series"]),
            _ms(row["stock_generate_latest_ms"]),
            _ms(row["ours_cold_ms"]),
            _ms(row["ours_10pct_stale_ms"]),
            _ms(row["ours_cached_ms"]),
            f"{_ms(row['gzip1_ms'])} ({row['gzip1_bytes'] / 1024:,.0f})",
            f"{_ms(row['gzip9_ms'])} ({row['gzip9_bytes'] / 1024:,.0f})",
        )
        for row in scrape["render"].values()
    ]
    header = ("series", "stock", "ours, all stale", "10 % stale", "none stale", "gzip-1", "gzip-9")
    return out + _table(header, "rrrrrrr", rows)


def _gateway_table(
    gateway: dict[str, Any], scrape: dict[str, Any], throughput: dict[str, Any], floor: dict[str, Any]
) -> list[str]:
    updates = floor.get("updates_per_event", 10.0)
    ours_updates = throughput["b1000"]["events_per_s"] * updates if throughput else None
    out = [
        "### Beside Prometheus Pushgateway (same run, same machine)",
        "",
        "Pushgateway holds our own exposition at that size, pushed in 10 groups. Pushes are wrk POSTs of "
        "1000 "
        "counter samples into another group; a push replaces values, so this is updates carried over HTTP. "
        f"Ours: batch-1000 ingest x {updates:.1f} updates per event. Ratios: Pushgateway's time over ours "
        "(scrapes), our rate over Pushgateway's (updates).",
        "",
    ]
    rows = []
    for series in ("10000", "100000"):
        pg, mine = gateway[series], scrape.get(series, {})
        plain, gz = mine.get("plain_ms"), mine.get("gzip_ms")
        rows.append(
            (
                _n(pg["series"]),
                _ms(pg["plain_ms"]),
                _ms(plain),
                f"{pg['plain_ms'] / plain:.1f}x" if plain else "—",
                _ms(pg["gzip_ms"]),
                _ms(gz),
                f"{pg['gzip_ms'] / gz:.1f}x" if gz else "—",
                _n(pg["push_updates_per_s"]),
                _n(ours_updates) if ours_updates else "—",
                f"{ours_updates / pg['push_updates_per_s']:.1f}x" if ours_updates else "—",
                f"{pg['rss'] / 2**20:.0f}",
            )
        )
    header = (
        "series",
        "PG plain ms",
        "ours",
        "ratio",
        "PG gzip ms",
        "ours",
        "ratio",
        "PG updates/s",
        "ours",
        "ratio",
        "PG RSS MB",
    )
    return out + _table(header, "rrrrrrrrrrr", rows)


def _before_table(
    before: dict[str, Any],
    throughput: dict[str, Any],
    latency: dict[str, Any],
    scrape: dict[str, Any],
    openloop: dict[str, Any],
) -> list[str]:
    out = [
        f"### Before and after (revision {before['revision']}: prometheus_client metric objects, "
        "`generate_latest` in the threadpool, the pydantic contract)",
        "",
        "The same harness against the code before this work, in the same run (before: one run of each "
        "open-loop case).",
        "",
    ]
    rows: list[Sequence[object]] = []

    def add(
        what: str, old: float | None, new: float | None, unit: str, is_lower_better: bool = False
    ) -> None:
        if old is None or new is None:
            return
        show = _ms if unit == "ms" else _n
        gain = old / new if is_lower_better else new / old
        rows.append((what, f"{show(old)} {unit}", f"{show(new)} {unit}", f"{gain:.1f}x"))

    add(
        "batch-1000 ingest",
        before["b1000_events_per_s"],
        throughput.get("b1000", {}).get("events_per_s"),
        "ev/s",
    )
    default = latency.get("default", {})
    add("single events, 32 connections", before["single_req_per_s"], default.get("req_per_s"), "req/s")
    add("single events, p99", before["single_p99_ms"], default.get("p99_ms"), "ms", True)
    for series in OPENLOOP_SERIES:
        old, mine = before[str(series)], scrape.get(str(series), {})
        scraped = openloop.get(str(series), {}).get("scraper_1s", {})
        add(f"scrape, {_n(series)} series, plain", old["plain_ms"], mine.get("plain_ms"), "ms", True)
        add(f"scrape, {_n(series)} series, gzip", old["gzip_ms"], mine.get("gzip_ms"), "ms", True)
        add(
            f"ingest p99 at {_n(series)} series, scraped each second",
            old["p99_ms_scraper"],
            scraped.get("p99_ms"),
            "ms",
            True,
        )
    return out + _table(("", "before", "after", "gain"), "lrrr", rows)


def _scaling_tables(scaling: dict[str, Any], floor: dict[str, Any]) -> list[str]:
    out = ["### Scaling across the two cores", ""]
    rows = [
        (
            f"batch {key[1:]}",
            _n(scaling[key]["one_process_events_per_s"]),
            _n(scaling[key]["two_replicas_events_per_s"]),
            f"{scaling[key]['two_replicas_events_per_s'] / scaling[key]['one_process_events_per_s']:.2f}x",
        )
        for key in ("b1", "b100")
    ]
    header = ("load", "one process ev/s", "two replicas ev/s (own ports, load split)", "ratio")
    out += _table(header, "lrrr", rows)
    mp = scaling["multiprocess"]
    ours = floor.get("exporter/b1000", {}).get("apply_us_per_event")
    versus = f" (ours: {ours:.1f})" if ours else ""
    out += [
        f"prometheus_client multiprocess mode, in process: {mp['apply_us_per_event']:.1f} µs per event to "
        f"apply{versus}; a merged scrape takes {_ms(mp['scrape_ms_10000'])} ms at {_n(mp['series_10000'])} "
        f"series and {_ms(mp['scrape_ms_100000'])} ms at {_n(mp['series_100000'])} "
        f"({mp['mmap_dir_bytes'] / 2**20:.0f} MB of mmap files); exemplars are lost.",
        "",
    ]
    return out


def write_doc(results: dict[str, Any]) -> None:
    block = f"{BEGIN}\n{markdown(results)}\n{END}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n## Performance\n\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="shorter runs, for trying the harness")
    parser.add_argument("--only", default=",".join(STEPS), help=f"steps to run, of {','.join(STEPS)}")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    procs.ensure_tools()
    started = time.monotonic()
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench"
        if not argv and len(sys.argv) == 1
        else "python -m bench.run " + " ".join(argv or sys.argv[1:]),
        "reps": args.reps,
        "machine": procs.machine(),
        "load_before": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "versions": procs.versions(["fastapi", "starlette", "uvicorn", "pydantic", "prometheus-client"]),
        "wrk": subprocess.run([procs.WRK, "-v"], capture_output=True, text=True).stdout.split()[1],
        "pushgateway": subprocess.run(
            [str(procs.PUSHGATEWAY), "--version"], capture_output=True, text=True
        ).stderr.split()[2],
    }
    results: dict[str, Any] = {"info": info}
    with tempfile.TemporaryDirectory(prefix="llmopt-bench-") as directory:
        bench = Bench(Path(directory), args.reps, args.quick)
        bench.write_bodies()
        steps: dict[str, Callable[[], dict[str, Any]]] = {name: getattr(bench, name) for name in STEPS}
        for name in args.only.split(","):
            results[name] = steps[name]()
    info["load_after"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    info["seconds"] = time.monotonic() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_doc:
        write_doc(results)
    print(markdown(results))
    log(f"done in {info['seconds']:.0f} s")


if __name__ == "__main__":
    main()
