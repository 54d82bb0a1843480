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
from bench import otlp as otlp_bench
from bench import procs, report, workload
from bench.plan import (
    BATCHES,
    BEFORE_REVISION,
    MANY_SERIES_ENV,
    OPENLOOP_RATE,
    OPENLOOP_SERIES,
    SCRAPE_SERIES,
    STEPS,
)

ROOT = Path(__file__).resolve().parents[1]
# OTLP bodies wrk rotates through (each a batch of the SDK's 512 spans).
OTLP_BODIES = 8


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
        for index in range(OTLP_BODIES):
            (self.work / f"otlp_{index}.pb").write_bytes(otlp_bench.wrk_body(seed=index))
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

    def otlp(self) -> dict[str, Any]:
        spans = otlp_bench.SPANS_PER_BODY
        log(
            f"OTLP ingest, batches of {spans} spans (protobuf), wrk -c8 -d{self.seconds:g}s, beside its floor"
        )
        runs = []
        for rep in range(self.reps):
            floor = python_json("bench.otlp", "--spans", str(20 * spans), "--repeats", "1")
            with procs.exporter(self.work) as server:
                cpu_before = server.cpu_seconds()
                run = procs.wrk(
                    f"{server.url}/v1/traces",
                    self.work / "otlp_",
                    OTLP_BODIES,
                    connections=8,
                    seconds=self.seconds,
                    max_requests=2_000_000 // spans,
                    content_type="application/x-protobuf",
                    run_tag=self.tag(),
                    suffix=".pb",
                )
                received = run["requests"] * spans
                run["cpu_us_per_span"] = (server.cpu_seconds() - cpu_before) / max(1, received) * 1e6
                exposition = procs.scrape(f"{server.url}/metrics", is_gzip=False)[2].decode()
            # Every span sent was new (wrk gives each request trace ids of its own): none a duplicate.
            run["duplicates"] = next(
                float(line.rsplit(" ", 1)[1])
                for line in exposition.splitlines()
                if line.startswith('llmopt_exporter_otlp_spans_total{outcome="duplicate"}')
            )
            run["spans_per_s"] = received / run["seconds"]
            run["floor_spans_per_s"] = floor["spans_per_s"]
            run["floor_share"] = run["spans_per_s"] / floor["spans_per_s"]
            runs.append(run)
            log(f"  rep {rep + 1}: {run['spans_per_s']:.0f} spans/s, floor {floor['spans_per_s']:.0f}")
        keys = (
            "spans_per_s",
            "req_per_s",
            "cpu_us_per_span",
            "floor_spans_per_s",
            "floor_share",
        )
        return {
            "spans_per_body": spans,
            **{name: median(run[name] for run in runs) for name in keys},
            "errors": sum(run["errors"] for run in runs),
            "duplicates": sum(run["duplicates"] for run in runs),
            "runs": runs,
        }

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
                with procs.exporter(self.work, MANY_SERIES_ENV) as server:
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
            with procs.exporter(self.work, MANY_SERIES_ENV) as server:
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="shorter runs, for trying the harness")
    parser.add_argument("--only", default=",".join(STEPS), help=f"steps to run, of {','.join(STEPS)}")
    parser.add_argument(
        "--no-doc",
        action="store_true",
        help="print the results only: do not rewrite docs/benchmarks.md or bench/results/latest.json",
    )
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
    if not args.no_doc:
        # The results and the doc rendered from them are written together, or neither is: the
        # committed pair must stay one (tests/test_bench_report.py).
        report.RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        report.write_doc(results)
    print(report.markdown(results))
    log(f"done in {info['seconds']:.0f} s")


if __name__ == "__main__":
    main()
