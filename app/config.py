"""Settings: defaults < YAML file < environment (``LLMOPT_*``) < command-line flags."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from app.custom import CustomMetrics

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
    max_header_bytes: int = Field(
        32_768,
        ge=1024,
        description="Largest request head (request line and headers) in bytes; larger get 431.",
    )
    max_header_count: int = Field(100, ge=8, description="Most headers in one request; more get 431.")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a client has to send a request's head; then the connection is closed."
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Time a client has to send a request's body once its head is in; then the connection "
        "is closed (logged as 499).",
    )
    max_drain_bytes: int = Field(
        16_777_216,
        ge=0,
        description="Of a refused request's body, up to this many bytes are read and discarded before the "
        "answer, so that clients which send the whole body before reading (Python's urllib, most HTTP "
        "libraries) get the 413 rather than a connection reset; the rest is cut off.",
    )
    max_batch_events: int = Field(
        5000, ge=1, le=100_000, description="Most events accepted in one request; more get 413."
    )
    max_problems: int = Field(
        20, ge=1, le=1000, description="Most problems a 422 answer lists (it also gives their total)."
    )
    event_max_age_seconds: float = Field(
        7 * 86400.0,
        gt=0,
        description="Event times (timestamp, opened_at) further in the past are refused with 422.",
    )
    event_max_future_seconds: float = Field(
        300.0,
        ge=0,
        description="Event times further in the future are refused with 422 (allows for clock skew).",
    )
    max_decompressed_bytes: int = Field(
        8_388_608, ge=1024, description="Largest gzip-decoded request body in bytes; larger bodies get 413."
    )
    max_traces_body_bytes: int = Field(
        16_777_216,
        ge=1024,
        description="Largest accepted body on POST /v1/traces (OTLP), as sent; larger get 413. Spans "
        "carry prompts and answers when an instrumentation records them: an SDK's batch of 512 such "
        "spans fits.",
    )
    max_traces_decompressed_bytes: int = Field(
        33_554_432, ge=1024, description="Largest gzip-decoded body on POST /v1/traces; larger get 413."
    )
    max_concurrent_requests: int = Field(
        256,
        ge=1,
        description="Ingest requests past their body and not yet answered (a client slow to read its "
        "answer holds one); more get 503 with Retry-After.",
    )
    max_pending_body_bytes: int = Field(
        67_108_864,
        ge=1024,
        description="Body bytes held at once by ingest requests not yet applied (arriving, or waiting "
        "their turn); past it, 503 with Retry-After. A client sending slowly holds only what it has sent.",
    )
    max_wait_seconds: float = Field(
        0.5,
        gt=0,
        description="Longest an ingest request whose body has arrived waits for its turn to be applied; "
        "past it, 503 with Retry-After. Ingest gets a share of each turn of the event loop, so health "
        "checks and scrapes keep answering however much ingest waits.",
    )
    # --- authentication ------------------------------------------------------------------------
    ingest_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens accepted on POST /v1/events and the admin API (several, for "
        "rotation). Env: comma-separated.",
    )
    ingest_tokens_file: Path | None = Field(
        None, description="File with more ingest tokens, one per line (e.g. a mounted secret)."
    )
    allow_unauthenticated_ingest: bool = Field(
        False, description="Allow ingest without a token on a non-loopback address (logged as a warning)."
    )
    metrics_bearer_token: SecretStr | None = Field(
        None, description="If set, GET /metrics requires this bearer token."
    )
    metrics_basic_auth_username: str | None = Field(
        None, description="If set, GET /metrics requires basic auth."
    )
    metrics_basic_auth_password: SecretStr | None = Field(
        None, description="Password for metrics_basic_auth_username."
    )
    api_docs: bool | None = Field(
        None,
        description="Serve the API docs (/docs, /redoc, /openapi.json). Unset: served while ingest is "
        "open (no ingest_tokens), not once ingest needs a token, since they describe what it guards.",
    )
    tls_cert_file: Path | None = Field(None, description="Serve HTTPS with this certificate (PEM).")
    tls_key_file: Path | None = Field(None, description="Private key (PEM) for tls_cert_file.")
    # --- deduplication, cardinality, expiry, persistence ---------------------------------------
    dedup_window_size: int = Field(
        100_000, ge=0, description="Most event_ids remembered to drop retried duplicates (0 turns it off)."
    )
    dedup_window_seconds: float = Field(
        3600.0, ge=0, description="How long an event_id is remembered, in seconds."
    )
    label_value_limit: int = Field(
        500,
        ge=1,
        description="Distinct values kept per label (model, experiment, arm...); "
        "later values are counted under __overflow__.",
    )
    label_value_limits: dict[str, int] = Field(
        default_factory=dict, description="Per-label overrides of label_value_limit, e.g. {model: 50}."
    )
    max_series: int = Field(
        20_000,
        ge=1,
        description="Most series (label sets) the exporter keeps; past it, a new label set of a metric "
        "with client-supplied labels is counted under that metric's __overflow__ label set.",
    )
    max_series_per_metric: int = Field(
        5_000,
        ge=1,
        description="Most series (label sets) one metric keeps; past it, a new label set is counted "
        "under the metric's __overflow__ label set.",
    )
    max_state_entries: int = Field(
        10_000,
        ge=1,
        description="Most running experiments, open incidents, models and bandit arms kept, each; "
        "past it, the one with no event for the longest goes, with its gauges.",
    )
    state_ttl_seconds: float = Field(
        7 * 86400.0,
        gt=0,
        description="State of experiments, models, arms and open incidents with no event for this "
        "long expires (their gauges disappear; counters stay).",
    )
    prices_file: Path | None = Field(
        None,
        description="A price table (YAML, USD per million tokens per model): calls without cost_usd are "
        "priced from it, and reported costs that differ from it are counted (unset: no table).",
    )
    dimensions_file: Path | None = Field(
        None,
        description="The rules config (alerts/config.yml) whose dimensions section declares the extra labels "
        "events may carry (team, application...): the exporter adds them to the call, token, cost, error "
        "and feedback metrics, and the rules and dashboards rendered from the same file keep or sum them "
        "(unset: none).",
    )
    custom_metrics: CustomMetrics = Field(
        default_factory=dict,
        description="Metrics of your own, updated by metric events and exposed as llmopt_custom_<name>: "
        "name -> {kind: counter|gauge|histogram, help, labels: [names], buckets: [bounds]} (YAML; "
        "JSON in the environment). Each label keeps at most label_value_limit values; a gauge "
        "with no event for state_ttl_seconds goes.",
    )
    snapshot_file: Path | None = Field(
        None, description="Where state gauges are saved so they survive a restart (unset: not saved)."
    )
    snapshot_interval_seconds: float = Field(
        30.0, gt=0, description="How often the snapshot is written (also on shutdown)."
    )
    max_snapshot_bytes: int = Field(
        50_331_648,
        ge=1024,
        description="Largest snapshot written or read; a larger one is not written, or is set aside.",
    )

    @field_validator("prices_file")
    @classmethod
    def _readable_prices(cls, value: Path | None) -> Path | None:
        # Checked at startup, so that a broken table stops the start with its reason.
        if value is not None:
            from app.prices import PricesError, load_prices

            try:
                load_prices(value)
            except PricesError as err:
                raise ValueError(str(err)) from err
        return value

    @field_validator("dimensions_file")
    @classmethod
    def _readable_dimensions(cls, value: Path | None) -> Path | None:
        if value is not None:
            from app.dimensions import DimensionsError, read_dimensions

            try:
                read_dimensions(value)
            except DimensionsError as err:
                raise ValueError(str(err)) from err
        return value

    def declared_dimensions(self) -> dict[str, int]:
        """The dimensions of dimensions_file (none without one)."""
        from app.dimensions import read_dimensions

        return {} if self.dimensions_file is None else read_dimensions(self.dimensions_file)

    @field_validator("ingest_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @model_validator(mode="after")
    def _secure_and_consistent(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if (self.metrics_basic_auth_username is None) != (self.metrics_basic_auth_password is None):
            raise ValueError("metrics_basic_auth_username and metrics_basic_auth_password go together")
        if not self.is_loopback and not self.ingest_token_values() and not self.allow_unauthenticated_ingest:
            raise ValueError(
                f"refusing to accept unauthenticated events on non-loopback host {self.host!r}: set "
                "ingest_tokens (or ingest_tokens_file), or allow_unauthenticated_ingest: true"
            )
        return self

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def ingest_token_values(self) -> list[str]:
        """Every accepted ingest token: the inline ones and those of ingest_tokens_file."""
        tokens = [token.get_secret_value() for token in self.ingest_tokens]
        if self.ingest_tokens_file is not None:
            try:
                lines = self.ingest_tokens_file.read_text(encoding="utf-8").splitlines()
            except OSError as err:
                raise ValueError(f"cannot read ingest_tokens_file: {err.strerror}") from err
            tokens += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return tokens

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
    except SettingsError as err:
        raise ConfigError(f"invalid environment: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if not key:
            raise ConfigError(f"invalid settings: {first['msg'].removeprefix('Value error, ')}") from err
        raise ConfigError(f"invalid setting {key} (env {_env_name(key)}): {first['msg']}") from err


def _env_name(key: str) -> str:
    return f"{ENV_PREFIX}{key.upper()}"
