"""What `make bench` measures: its steps and the sizes each step runs at (bench/run.py measures,
bench/report.py names the same sizes in docs/benchmarks.md)."""

STEPS = (
    "floor",
    "decoders",
    "throughput",
    "otlp",
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
# The steps that preload up to 100k series raise the series budget past them (the defaults keep
# 20k series, 5k a metric); every other step runs the exporter with its default settings.
MANY_SERIES_ENV = {"LLMOPT_MAX_SERIES": "1000000", "LLMOPT_MAX_SERIES_PER_METRIC": "1000000"}
