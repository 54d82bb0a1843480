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
