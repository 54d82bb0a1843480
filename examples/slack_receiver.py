"""A Slack-compatible incoming webhook on this machine that prints every message it receives, to
see alerts arrive without a Slack workspace (docs/quickstart.md).

    python3 examples/slack_receiver.py            # listens on http://127.0.0.1:5001/slack

Point a Slack receiver's ``api_url`` at it (deploy/quickstart/alertmanager.yml does). It answers
``ok`` as Slack does, and prints the title and text of each attachment, or the message's text.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def message_lines(payload: dict[str, Any]) -> list[str]:
    """What a person would read of a Slack webhook message: its text, each attachment's title and text."""
    parts = [payload.get("text")]
    for attachment in payload.get("attachments", []):
        parts += [attachment.get("title"), attachment.get("text")]
    return [part.rstrip() for part in parts if part and part.strip()]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            payload = json.loads(body)
        except ValueError:
            self.send_error(400, "not JSON")
            return
        channel = payload.get("channel", "")
        print(f"--- {self.path} {channel}".rstrip(), *message_lines(payload), sep="\n", flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the messages are the output."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=5001, help="port to listen on (default %(default)s)")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"waiting for Slack messages on http://{args.host}:{server.server_address[1]}/slack", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
