"""Authentication, TLS and secure defaults: every rule, in process and as a real server."""

from __future__ import annotations

import base64
import json
import logging
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from app.config import ConfigError, load_settings
from tests.conftest import Exporter, make_exporter
from tests.exposition import key
from tests.processes import EXPORTER, exporter_process, free_port

EVENT = {"type": "feedback", "thumbs": "up"}
TOKENS = ["old-token-0123456789", "new-token-9876543210"]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def guarded() -> Exporter:
    yield from make_exporter(
        ingest_tokens=TOKENS, metrics_basic_auth_username="prom", metrics_basic_auth_password="scrape-secret"
    )


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        pytest.param(None, 401, id="no-credential"),
        pytest.param("Bearer wrong", 401, id="wrong-token"),
        pytest.param(f"Basic {TOKENS[0]}", 401, id="wrong-scheme"),
        pytest.param("Bearer ", 401, id="empty-token"),
        pytest.param(f"Bearer {TOKENS[0]}", 200, id="old-token-during-rotation"),
        pytest.param(f"bearer {TOKENS[1]}", 200, id="new-token-scheme-case-insensitive"),
    ],
)
def test_ingest_requires_a_configured_token(
    guarded: Exporter, authorization: str | None, status: int
) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = guarded.post(EVENT, **headers)
    assert response.status_code == status
    scrape = guarded.client.get("/metrics", headers={"authorization": basic("prom", "scrape-secret")})
    from tests.exposition import samples

    after = samples(scrape.text)
    assert after[key("llmopt_exporter_events_accepted_total", type="feedback")] == (status == 200)
    assert after[key("llmopt_exporter_auth_failures_total", endpoint="ingest")] == (status == 401)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        pytest.param(None, 401, id="no-credential"),
        pytest.param(basic("prom", "wrong"), 401, id="wrong-password"),
        pytest.param(basic("other", "scrape-secret"), 401, id="wrong-user"),
        pytest.param(f"Bearer {TOKENS[0]}", 401, id="ingest-token-does-not-open-metrics"),
        pytest.param("Basic !!!notbase64", 401, id="garbage"),
        pytest.param(basic("prom", "scrape-secret"), 200, id="right-credential"),
    ],
)
def test_metrics_has_its_own_credential(guarded: Exporter, authorization: str | None, status: int) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = guarded.client.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


def test_metrics_bearer_token() -> None:
    for exporter in make_exporter(metrics_bearer_token="scrape-token"):
        assert exporter.client.get("/metrics").status_code == 401
        ok = exporter.client.get("/metrics", headers={"authorization": "Bearer scrape-token"})
        assert ok.status_code == 200


def test_health_and_landing_stay_open(guarded: Exporter) -> None:
    for path in ("/healthz", "/readyz", "/"):
        assert guarded.client.get(path).status_code == 200


API_DOCS = ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js")


@pytest.mark.parametrize(
    ("settings", "is_served"),
    [
        pytest.param({}, True, id="open-ingest-serves-them"),
        pytest.param({"ingest_tokens": TOKENS}, False, id="token-closes-them"),
        pytest.param({"ingest_tokens": TOKENS, "api_docs": True}, True, id="opened-on-purpose"),
        pytest.param({"api_docs": False}, False, id="closed-on-purpose"),
    ],
)
def test_api_docs_close_with_ingest_auth_unless_opened(settings: dict[str, object], is_served: bool) -> None:
    for exporter in make_exporter(**settings):
        statuses = {path: exporter.client.get(path).status_code for path in API_DOCS}
        assert statuses == dict.fromkeys(API_DOCS, 200 if is_served else 404)
        landing = exporter.client.get("/").text
        assert ('href="/openapi.json"' in landing) is is_served


def test_admin_api_requires_the_ingest_token(guarded: Exporter) -> None:
    assert guarded.client.delete("/v1/experiments/e").status_code == 401
    ok = guarded.client.delete("/v1/experiments/e", headers={"authorization": f"Bearer {TOKENS[1]}"})
    assert ok.status_code == 200


def test_tokens_from_a_file(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# rotated monthly\nfile-token-1\n\nfile-token-2\n")
    for exporter in make_exporter(ingest_tokens_file=tokens):
        assert exporter.post(EVENT, authorization="Bearer file-token-2").status_code == 200
        assert exporter.post(EVENT, authorization="Bearer # rotated monthly").status_code == 401


def test_credentials_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for exporter in make_exporter(ingest_tokens=TOKENS, metrics_bearer_token="scrape-token"):
        exporter.post(EVENT, authorization=f"Bearer {TOKENS[0]}")
        exporter.post(EVENT, authorization="Bearer guess-secret-token")
        exporter.client.get("/metrics", headers={"authorization": "Bearer scrape-token"})
    text = caplog.text + repr(load_settings(ingest_tokens=TOKENS, metrics_bearer_token="scrape-token"))
    for secret in (*TOKENS, "guess-secret-token", "scrape-token"):
        assert secret not in text


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "exporter.example"])
def test_non_loopback_without_token_refuses_to_start(host: str) -> None:
    with pytest.raises(ConfigError, match="ingest_tokens"):
        load_settings(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    assert load_settings(host=host).host == host


def test_explicit_opt_out_starts_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    for exporter in make_exporter(host="0.0.0.0", allow_unauthenticated_ingest=True):
        assert exporter.post(EVENT).status_code == 200
    assert "no ingest token" in caplog.text


def test_console_script_refuses_open_ingest_on_all_interfaces() -> None:
    result = subprocess.run(
        [str(EXPORTER), "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "ingest_tokens" in result.stderr and "0.0.0.0" in result.stderr


def test_tls_serves_https(tmp_path: Path) -> None:
    cert, private_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(private_key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    env = {"LLMOPT_TLS_CERT_FILE": str(cert), "LLMOPT_TLS_KEY_FILE": str(private_key)}
    context = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    from tests.processes import running

    argv = [str(EXPORTER), "--port", str(port)]
    # The readiness probe itself must speak TLS: poll with the trusted context.
    with running(
        argv, f"https://127.0.0.1:{port}/readyz", tmp_path / "tls.log", env=env, ssl_context=context
    ):
        request = urllib.request.Request(
            f"https://127.0.0.1:{port}/v1/events",
            data=json.dumps(EVENT).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            assert json.loads(response.read())["accepted"] == 1


def test_tls_needs_both_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file"):
        load_settings(tls_cert_file=tmp_path / "cert.pem")


def test_token_in_a_real_server_log_is_never_written(tmp_path: Path) -> None:
    with exporter_process(tmp_path, env={"LLMOPT_INGEST_TOKENS": "process-secret-token"}) as url:
        request = urllib.request.Request(
            f"{url}/v1/events",
            data=json.dumps(EVENT).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": "Bearer process-secret-token"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    assert "process-secret-token" not in next(tmp_path.glob("exporter-*.log")).read_text()
