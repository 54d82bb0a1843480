"""/metrics: formats, compression, exemplars, lint by the real promtool, and the golden exposition."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path

from tests.conftest import EXAMPLES, Exporter
from tests.exposition import key, openmetrics_samples, samples
from tests.processes import PROMTOOL

GOLDEN = Path(__file__).parent / "golden" / "exposition.txt"
GOLDEN_OPENMETRICS = Path(__file__).parent / "golden" / "exposition.openmetrics.txt"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def post_all_examples(exporter: Exporter) -> None:
    for path in sorted(EXAMPLES.glob("*.json")):
        assert exporter.post(path.read_bytes()).status_code == 200, path.name


def test_promtool_finds_nothing_to_lint(exporter: Exporter) -> None:
    post_all_examples(exporter)
    text = exporter.client.get("/metrics").text
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")


def test_text_format_by_default(exporter: Exporter) -> None:
    response = exporter.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_openmetrics_when_asked_with_the_trace_exemplar(exporter: Exporter) -> None:
    exporter.post_example("llm_request")
    response = exporter.client.get("/metrics", headers={"accept": OPENMETRICS})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    found = {
        (sample.name, sample.labels.get("le")): sample.exemplar
        for sample in openmetrics_samples(response.text)
        if sample.exemplar is not None
    }
    trace = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}
    # One exemplar per histogram (in the bucket the value fell in) and on the cost counter.
    assert {name_le: exemplar.labels for name_le, exemplar in found.items()} == {
        ("llmopt_llm_request_duration_seconds_bucket", "1.0"): trace,
        ("llmopt_llm_quality_score_bucket", "90.0"): trace,
        # A streamed call: its first token after 310 ms, then 1.5 ms per token.
        ("llmopt_llm_time_to_first_token_seconds_bucket", "0.32"): trace,
        ("llmopt_llm_time_per_output_token_seconds_bucket", "0.0025"): trace,
        ("llmopt_llm_cost_usd_total", None): trace,
    }
    assert found[("llmopt_llm_request_duration_seconds_bucket", "1.0")].value == 0.8425


def test_gzip_when_accepted(exporter: Exporter) -> None:
    exporter.post_example("feedback")
    response = exporter.client.get("/metrics", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    # httpx decodes gzip transparently: the decoded body must be the same exposition.
    assert (
        samples(response.text)[
            key(
                "llmopt_feedback_csat_responses_total",
                model="gpt-4o-mini",
                experiment="prompt-optimization-v5",
                variant="variant-b",
            )
        ]
        == 1
    )


def test_raw_gzip_body_is_valid(exporter: Exporter) -> None:
    with exporter.client.stream("GET", "/metrics", headers={"accept-encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert b"llmopt_exporter_build_info" in gzip.decompress(raw)


def test_name_filter_restricts_the_scrape(exporter: Exporter) -> None:
    response = exporter.client.get("/metrics", params={"name[]": "llmopt_experiments_active"})
    assert set(samples(response.text)) == {key("llmopt_experiments_active")}


_VARYING = (
    "llmopt_exporter_ingest_duration_seconds",
    "llmopt_exporter_build_info",
    "llmopt_exporter_start_timestamp_seconds",
)
# An exemplar's timestamp is the wall-clock time of the update that set it.
_EXEMPLAR_TIMESTAMP = re.compile(r"( # \{[^}]*\} \S+) \d+\.\d+$")


def _golden_text(exporter: Exporter, accept: str = "") -> str:
    """The exposition of our own families, without what varies between runs and machines."""
    headers = {"accept": accept} if accept else {}
    lines = [
        _EXEMPLAR_TIMESTAMP.sub(r"\1 <timestamp>", line)
        for line in exporter.client.get("/metrics", headers=headers).text.splitlines()
        if re.match(r"^(# (HELP|TYPE|UNIT) )?llmopt_", line) and not any(name in line for name in _VARYING)
    ]
    return "\n".join(lines) + "\n"


def test_golden_exposition(exporter: Exporter) -> None:
    """The whole exposition after every example, pinned. Regenerate on purpose only:
    ``UPDATE_GOLDEN=1 make test``."""
    post_all_examples(exporter)
    text = _golden_text(exporter)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_golden_openmetrics_exposition(exporter: Exporter) -> None:
    """The same in OpenMetrics, exemplars included (their timestamps masked). Regenerate on
    purpose only: ``UPDATE_GOLDEN=1 make test``."""
    post_all_examples(exporter)
    text = _golden_text(exporter, OPENMETRICS)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN_OPENMETRICS.write_text(text)
    assert text == GOLDEN_OPENMETRICS.read_text()
