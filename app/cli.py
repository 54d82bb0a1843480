"""``llmopt-exporter``: parse flags, load settings, configure logs, serve."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__
from app.config import ENV_PREFIX, ConfigError, Settings, load_settings

log = logging.getLogger("llmopt_exporter")


def _default_text(value: object) -> str:
    """A setting's default as one would write it in the YAML file; "none" when it has none."""
    if value is None or value in ([], {}, ""):
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _settings_help() -> str:
    lines = ["settings (YAML key = environment variable; flags beat the environment, which beats the file):"]
    for name, field in Settings.model_fields.items():
        default = _default_text(field.get_default(call_default_factory=True))
        lines.append(f"  {name:<18} {ENV_PREFIX + name.upper():<26} default {default}")
        lines.append(f"      {field.description}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmopt-exporter",
        description="Prometheus exporter for LLM auto-optimizer systems. Optimizer services POST "
        "events to /v1/events; Prometheus scrapes /metrics.",
        epilog=_settings_help() + "\n\ncommands:\n  simulate           post realistic optimizer traffic "
        "(llmopt-exporter simulate --help)\n  incident-context   print an incident's context from Prometheus "
        "as Markdown (llmopt-exporter incident-context --help)\n\nexample:\n  llmopt-exporter --port 9477\n"
        "  curl -s localhost:9477/metrics | grep llmopt_",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help=f"YAML settings file (also {ENV_PREFIX}CONFIG_FILE)"
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 9477)")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error", "critical"),
        help="lowest level logged (default info)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


# Commands of the tools package (tools/): a source install has them, the container image does not.
COMMANDS = {"simulate": "tools.simulate", "incident-context": "tools.incident"}


def run_tool(name: str, argv: Sequence[str]) -> int:
    """Run the tool ``name`` with ``argv``; 2 when this installation has no tools."""
    try:
        module = importlib.import_module(COMMANDS[name])
    except ModuleNotFoundError as err:
        print(
            f"llmopt-exporter {name}: not in this installation ({err}); the tools come with a source "
            "install (pip install . from a checkout, or make venv)",
            file=sys.stderr,
        )
        return 2
    status: int = module.main(argv)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return run_tool(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    config_file = args.config
    if config_file is None and os.environ.get(f"{ENV_PREFIX}CONFIG_FILE"):
        config_file = Path(os.environ[f"{ENV_PREFIX}CONFIG_FILE"])
    try:
        settings = load_settings(config_file, host=args.host, port=args.port, log_level=args.log_level)
    except ConfigError as err:
        print(f"llmopt-exporter: {err}", file=sys.stderr)
        return 2

    import uvicorn

    from app.logs import configure_logging
    from app.main import create_app
    from app.server import protocol_class

    configure_logging(settings.log_level, settings.service_name, settings.environment)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        log_level=settings.log_level,
        server_header=False,
        http=protocol_class(settings),
        # On SIGTERM, stop accepting and let in-flight requests finish (up to 10 s).
        timeout_graceful_shutdown=10,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    server = uvicorn.Server(config)
    scheme = "https" if settings.tls_cert_file is not None else "http"
    log.info("starting", extra={"context": {"url": f"{scheme}://{settings.host}:{settings.port}/"}})
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
