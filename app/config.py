"""Settings: defaults < YAML file < environment (``LLMOPT_*``) < command-line flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
ENV_PREFIX = "LLMOPT_"
DEFAULT_PORT = 9477


class ConfigError(ValueError):
    """Settings that cannot start the service; the message names the offending key."""


class Settings(BaseSettings):
    """Everything the exporter can be told. Each field is also ``LLMOPT_<NAME>`` and a YAML key."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="TCP port to listen on (0 picks a free one).")
    log_level: LogLevel = Field(
        "info", description="Lowest level logged: debug, info, warning, error, critical."
    )
    access_log: bool = Field(True, description="Log every HTTP request (JSON, one line each).")
    service_name: str = Field(
        "llmopt-exporter", min_length=1, description="`service` field of every log line."
    )
    environment: str = Field("production", min_length=1, description="`environment` field of every log line.")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest accepted request body in bytes; larger bodies get 413."
    )
    max_batch_events: int = Field(
        5000, ge=1, description="Most events accepted in one request; more get 413."
    )

    @field_validator("host")
    @classmethod
    def _host_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("host must not be empty")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (passed as init arguments) beat the environment; the YAML file is passed as
        # init arguments too, below the flags, by load_settings().
        return (init_settings, env_settings)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML settings file: a mapping of setting names (as in ``--help``) to values."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"config file {path} must be a mapping of setting names to values")
    return {str(key).replace("-", "_"): value for key, value in document.items()}


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build settings from the YAML file (if any), the environment and flags, in rising priority.

    Raises :class:`ConfigError` naming the key when a value is invalid.
    """
    file_values = read_config_file(config_file) if config_file is not None else {}
    unknown = sorted(set(file_values) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"config file {config_file}: unknown setting {unknown[0]!r}")
    given_flags = {key: value for key, value in flags.items() if value is not None}
    # Init arguments beat the environment in pydantic-settings, so the file's keys that the
    # environment also sets are dropped here: the environment wins over the file.
    environment = {key.upper() for key in os.environ}
    from_file = {key: value for key, value in file_values.items() if _env_name(key) not in environment}
    try:
        return Settings(**{**from_file, **given_flags})
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {key} (env {_env_name(key)}): {first['msg']}") from err


def _env_name(key: str) -> str:
    return f"{ENV_PREFIX}{key.upper()}"
