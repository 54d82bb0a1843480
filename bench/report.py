"""docs/benchmarks.md from the raw results of `make bench` and the targets of bench/targets.toml.

    python -m bench.report     # rewrite the results section from bench/results/latest.json

bench/run.py measures and writes bench/results/latest.json (kept in the repository: the numbers
behind the published tables), then calls :func:`write_doc`. Nothing here measures anything.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.plan import BATCHES, OPENLOOP_RATE, OPENLOOP_SERIES, SCRAPE_SERIES

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results" / "latest.json"
TARGETS = ROOT / "bench" / "targets.toml"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def targets() -> dict[str, dict[str, float]]:
    with TARGETS.open("rb") as file:
        return tomllib.load(file)


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
    otlp = results.get("otlp", {})
    out += targets_table(throughput, latency, scrape, openloop, gateway, otlp)
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
    if otlp:
        spans = otlp["spans_per_body"]
        out += [
            f"### OTLP ingest (HTTP, `wrk -t1 -c8`, batches of {spans} GenAI spans, protobuf)",
            "",
            "`POST /v1/traces` with the SDK's default batch of spans as OpenTelemetry's openai-v2 "
            "instrumentation makes them (bench/otlp.py), each request with trace ids of its own; beside "
            "it, JSON event ingest (batches of 1000, above) and the in-process floor of `app.otlp.receive` "
            "(parse, map, check, dedup, record) measured in the same repetition. Every span sent is new: "
            "duplicates (spans the exporter took for re-exports) must be 0.",
            "",
        ]
        json_row = throughput.get("b1000")
        rows = [
            (
                f"OTLP spans, batch {spans}",
                _n(otlp["spans_per_s"]),
                f"{otlp['cpu_us_per_span']:.1f}",
                _n(otlp["floor_spans_per_s"]),
                f"{otlp['floor_share']:.0%}",
                otlp["errors"],
                int(otlp["duplicates"]),
            )
        ]
        if json_row:
            rows.append(
                (
                    "JSON events, batch 1000",
                    _n(json_row["events_per_s"]),
                    f"{json_row['cpu_us_per_event']:.1f}",
                    _n(json_row["floor_events_per_s"]),
                    f"{json_row['floor_share']:.0%}",
                    json_row["errors"],
                    "—",
                )
            )
        header = (
            "body",
            "calls/s",
            "server CPU µs/call",
            "floor calls/s",
            "HTTP/floor",
            "errors",
            "duplicates",
        )
        out += _table(header, "lrrrrrr", rows)
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


def targets_table(
    throughput: dict[str, Any],
    latency: dict[str, Any],
    scrape: dict[str, Any],
    openloop: dict[str, Any],
    gateway: dict[str, Any],
    otlp: dict[str, Any] | None = None,
) -> list[str]:
    """The Targets table: each line names its numbers from bench/targets.toml and says whether the
    results meet them."""
    goal = targets()
    rows = []
    if throughput:
        row = throughput["b1000"]
        http, share, cpu_share = row["events_per_s"], row["floor_share"], row["floor_cpu_share"]
        measured = (
            f"{share:.0%} of the floor's events/s ({_n(http)} of {_n(row['floor_events_per_s'])}); "
            f"per CPU second {cpu_share:.0%} of its events"
        )
        least = goal["ingest_floor_share"]["min_share"]
        rows.append(
            (f"batch-1000 ingest ≥ {least:.0%} of the in-process floor", measured, _met(share >= least))
        )
        per_core = 1e6 / row["cpu_us_per_event"]
        measured = f"{_n(http)} ev/s ({_n(per_core)} per CPU second of the server)"
        least = goal["ingest_events_per_s"]["min_events_per_s"]
        rows.append((f"batch-1000 ingest ≥ {_n(least)} events/s", measured, _met(http >= least)))
    if otlp:
        least = goal["otlp_spans_per_s"]["min_spans_per_s"]
        measured = (
            f"{_n(otlp['spans_per_s'])} spans/s ({_n(1e6 / otlp['cpu_us_per_span'])} per CPU second of the "
            f"server; in-process floor {_n(otlp['floor_spans_per_s'])})"
        )
        rows.append(
            (
                f"OTLP ingest, batches of {otlp['spans_per_body']} spans ≥ {_n(least)} spans/s",
                measured,
                _met(otlp["spans_per_s"] >= least),
            )
        )
    if latency:
        row = latency["default"]
        single = goal["single_events"]
        measured = f"{_n(row['req_per_s'])} req/s, p99 {_ms(row['p99_ms'])} ms"
        is_met = row["req_per_s"] >= single["min_req_per_s"] and row["p99_ms"] <= single["max_p99_ms"]
        target = f"single events ≥ {_n(single['min_req_per_s'])} req/s, p99 ≤ {_ms(single['max_p99_ms'])} ms"
        rows.append((f"{target} at 32 connections", measured, _met(is_met)))
    if openloop:
        without = openloop["100000"]["no_scraper"]["p99_ms"]
        scraped = openloop["100000"]["scraper_1s"]["p99_ms"]
        most = goal["ingest_while_scraped"]["max_ratio"]
        measured = f"{_ms(scraped)} ms against {_ms(without)} ms ({scraped / without:.1f}x)"
        target = f"ingest p99 at 100k series, 1 s scraper ≤ {most:g}x none"
        rows.append((target, measured, _met(scraped <= most * without)))
    if scrape:
        ours = scrape["100000"]
        pg = gateway.get("100000")
        most = goal["scrape"]["max_plain_ms"]
        measured = f"{_ms(ours['plain_ms'])} ms plain, {_ms(ours['gzip_ms'])} ms gzip"
        if pg:
            measured += f"; Pushgateway {_ms(pg['plain_ms'])} / {_ms(pg['gzip_ms'])} ms"
        is_met = ours["plain_ms"] <= most and (pg is None or ours["plain_ms"] <= pg["plain_ms"])
        target = f"scrape of 100k series ≤ {_ms(most)} ms, no slower than Pushgateway"
        rows.append((target, measured, _met(is_met)))
        per_series = scrape["bytes_per_series"]
        most = goal["memory"]["max_bytes_per_series"]
        rows.append(
            (f"memory ≤ {most:g} B per series", f"{per_series:.0f} B/series", _met(per_series <= most))
        )
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


def section(text: str) -> str:
    """The results section of a docs/benchmarks.md text, between its markers."""
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n")


def main() -> None:
    write_doc(json.loads(RESULTS.read_text(encoding="utf-8")))


if __name__ == "__main__":
    main()
