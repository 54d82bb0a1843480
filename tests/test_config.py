"""Settings: file < environment < flags; a bad value stops start-up naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import build_parser
from app.config import ConfigError, Settings, load_settings


def test_defaults_work() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 9477, "info")


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("port: 9100\nlog_level: debug\nenvironment: staging\nmax-batch-events: 10\n")
    assert load_settings(config).port == 9100
    assert load_settings(config).max_batch_events == 10
    monkeypatch.setenv("LLMOPT_PORT", "9200")
    settings = load_settings(config)
    assert (settings.port, settings.log_level, settings.environment) == (9200, "debug", "staging")
    assert load_settings(config, port=9300).port == 9300


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("port: 70000\n", "port", id="port-out-of-range"),
        pytest.param("log_level: loud\n", "log_level", id="unknown-level"),
        pytest.param("prot: 1\n", "'prot'", id="misspelt-key"),
        pytest.param("- a\n- b\n", "mapping", id="not-a-mapping"),
        pytest.param("port: [\n", "not valid YAML", id="broken-yaml"),
        pytest.param("max_body_bytes: 10\n", "max_body_bytes", id="body-limit-too-small"),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "bad.yml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_bad_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPT_PORT", "many")
    with pytest.raises(ConfigError, match="LLMOPT_PORT"):
        load_settings()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yml")


def test_help_documents_every_setting() -> None:
    text = build_parser().format_help()
    for name in Settings.model_fields:
        assert f"LLMOPT_{name.upper()}" in text
    for flag in ("--config", "--host", "--port", "--log-level", "--version"):
        assert flag in text


@pytest.mark.parametrize(
    ("name", "default"),
    [
        pytest.param("port", "9477", id="number"),
        pytest.param("host", "127.0.0.1", id="text"),
        pytest.param("access_log", "true", id="boolean"),
        pytest.param("ingest_tokens", "none", id="empty-list"),
        pytest.param("label_value_limits", "none", id="empty-mapping"),
        pytest.param("tls_cert_file", "none", id="unset"),
    ],
)
def test_help_shows_each_default_as_written_in_the_file(name: str, default: str) -> None:
    lines = build_parser().format_help().splitlines()
    (line,) = [line for line in lines if line.split()[:2] == [name, f"LLMOPT_{name.upper()}"]]
    assert line.split()[2:] == ["default", default]


def test_cli_exits_2_naming_the_bad_setting(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("port: -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "app", "--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "invalid setting port" in result.stderr
