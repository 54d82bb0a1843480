"""``llmopt-exporter``: parse flags, load settings, configure logs, serve."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__
from app.config import ENV_PREFIX, ConfigError, Settings, load_settings

log = logging.getLogger("llmopt_exporter")


def _settings_help() -> str:
    lines = ["settings (YAML key = environment variable; flags beat the environment, which beats the file):"]
    for name, field in Settings.model_fields.items():
        default = field.default
        lines.append(f"  {name:<18} {ENV_PREFIX + name.upper():<26} default {default!r}")
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


def build_simulate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmopt-exporter simulate",
        description="Post realistic LLM auto-optimizer traffic to a running exporter: an A/B test "
        "in which a winner emerges, a bandit converging on one temperature, cost falling over time, "
        "errors of several types, feedback, model health flaps, a deployment.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter (default %(default)s)")
    parser.add_argument(
        "--duration", type=float, default=300.0, help="seconds of story (default %(default)s)"
    )
    parser.add_argument(
        "--rate", type=float, default=20.0, help="events per second, about (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=7, help="same seed, same events (default %(default)s)")
    parser.add_argument(
        "--token",
        default=os.environ.get(f"{ENV_PREFIX}SIMULATE_TOKEN"),
        help=f"ingest bearer token (or {ENV_PREFIX}SIMULATE_TOKEN)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="do not wait for each tick: post as fast as possible"
    )
    return parser


def simulate(argv: Sequence[str]) -> int:
    from app.simulate import run

    args = build_simulate_parser().parse_args(argv)
    if args.duration <= 0 or args.rate <= 0:
        print("llmopt-exporter simulate: --duration and --rate must be positive", file=sys.stderr)
        return 2
    try:
        accepted = run(args.url, args.duration, args.rate, args.seed, args.token, is_realtime=not args.fast)
    except (OSError, ValueError) as err:
        print(f"llmopt-exporter simulate: cannot post to {args.url}: {err}", file=sys.stderr)
        return 1
    print(f"posted {accepted} events to {args.url}")
    return 0


def incident_context(argv: Sequence[str]) -> int:
    from app.incident import main as report

    return report(argv)


COMMANDS = {"simulate": simulate, "incident-context": incident_context}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
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
