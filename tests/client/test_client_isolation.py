"""The client stands alone: it runs on the standard library, without the exporter's dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

from client_support import REPO, Exporter

# Run in a bare interpreter (-I -S: no site-packages) that sees only client/ and refuses to import
# the server's stack or OpenTelemetry, whatever else is installed.
PRELUDE = f"""
import sys
sys.path.insert(0, {str(REPO / "client")!r})
BLOCKED = {{"fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings", "prometheus_client",
           "yaml", "httpx", "opentelemetry", "app"}}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not available here")
        return None

sys.meta_path.insert(0, Blocker())
"""


def run_bare(code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PRELUDE + code, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_client_imports_with_the_standard_library_alone() -> None:
    output = run_bare(
        "import llmopt_client, llmopt_client.tracing\n"
        "print(llmopt_client.tracing.HAS_OPENTELEMETRY, llmopt_client.__file__)\n"
    )
    has_opentelemetry, location = output.split()
    assert has_opentelemetry == "False"
    assert location == str(REPO / "client" / "llmopt_client" / "__init__.py")


def test_without_opentelemetry_a_call_starts_its_own_trace(exporter: Exporter) -> None:
    output = run_bare(
        "import json, llmopt_client\n"
        "with llmopt_client.Client(sys.argv[1]) as client:\n"
        "    with client.llm_call('isolation-bare', provider='stdlib') as call:\n"
        "        call.record(cost_usd=0.125)\n"
        "    assert client.flush(5)\n"
        "print(json.dumps({'trace_id': call.trace.trace_id, 'span_id': call.trace.span_id}))\n",
        exporter.url,
    )
    ids = json.loads(output)
    assert len(ids["trace_id"]) == 32 and len(ids["span_id"]) == 16

    assert exporter.exemplars("isolation-bare") == [
        ("llmopt_llm_cost_usd_total", ids),
        ("llmopt_llm_request_duration_seconds_bucket", ids),
    ]


SPANS_SCRIPT = """
import json, llmopt_client
from llmopt_client import OptimizerTracer, TraceContext
assert not llmopt_client.spans.HAS_OPENTELEMETRY
tracer = OptimizerTracer("optimizer-api")
incoming = TraceContext.from_traceparent(sys.argv[2])
spans = {}
with llmopt_client.Client(sys.argv[1]) as client:
    with tracer.process_request(user_id="u", parent=incoming) as root:
        spans["process_request"] = root
        for helper in (tracer.ab_test_selection, tracer.bandit_selection, tracer.quality_evaluation):
            with helper() as span:
                spans[span.name] = span
        with tracer.llm_call(model_id="isolation-spans") as span:
            spans[span.name] = span
            with client.llm_call("isolation-spans", provider="stdlib") as call:
                pass
    assert client.flush(5)
print(json.dumps({name: [s.trace_id, s.span_id, s.parent_span_id, s.tags] for name, s in spans.items()}))
"""


def test_without_opentelemetry_the_request_spans_still_carry_one_trace(exporter: Exporter) -> None:
    output = run_bare(SPANS_SCRIPT, exporter.url, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    spans = json.loads(output)
    incoming_trace, incoming_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    root_span = spans["process_request"][1]
    assert spans["process_request"][2:] == [incoming_span, {"user_id": "u", "success": True}]
    assert {name: (trace, parent) for name, (trace, _, parent, _) in spans.items()} == {
        "process_request": (incoming_trace, incoming_span),
        "ab_test_selection": (incoming_trace, root_span),
        "bandit_selection": (incoming_trace, root_span),
        "llm_call": (incoming_trace, root_span),
        "quality_evaluation": (incoming_trace, root_span),
    }
    assert len({span_id for _, span_id, _, _ in spans.values()}) == 5
    ids = {"trace_id": incoming_trace, "span_id": spans["llm_call"][1]}
    assert exporter.exemplars("isolation-spans") == [
        ("llmopt_llm_cost_usd_total", ids),
        ("llmopt_llm_request_duration_seconds_bucket", ids),
    ]
