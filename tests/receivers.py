"""Local stand-ins for the services Alertmanager notifies: one HTTP receiver for PagerDuty, Slack and
webhooks, and an SMTP sink. Both record what arrives and let a test wait for it with a deadline."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.processes import free_port

T = TypeVar("T")


class Inbox(Generic[T]):
    """A thread-safe list of arrivals that a test can wait on."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._changed = threading.Condition()

    def add(self, item: T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def items(self) -> list[T]:
        with self._changed:
            return list(self._items)

    def wait_for(self, is_wanted: Callable[[T], bool], what: str, timeout: float = 30.0) -> T:
        """The first arrival for which ``is_wanted`` is true, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for item in self._items:
                    if is_wanted(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {what} within {timeout} s; {len(self._items)} other arrivals: {self._items!r}"
                    )
                self._changed.wait(remaining)


@dataclass(frozen=True)
class Delivery:
    """One POST as received: the path, the headers (names in lower case) and the JSON body."""

    path: str
    headers: dict[str, str]
    body: Any
    received_at: float


class HttpReceiver:
    """Records every JSON POST on a free loopback port. PagerDuty's Events API answers 202 Accepted;
    Slack and webhooks answer 200."""

    def __init__(self) -> None:
        self.inbox: Inbox[Delivery] = Inbox()
        inbox = self.inbox

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                headers = {name.lower(): value for name, value in self.headers.items()}
                inbox.add(Delivery(self.path, headers, body, time.monotonic()))
                status = 202 if self.path.startswith("/pagerduty") else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "success"}')

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the inbox is the record."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def on(self, path: str) -> Iterator[Delivery]:
        return (delivery for delivery in self.inbox.items() if delivery.path == path)


@dataclass(frozen=True)
class Mail:
    """One message as received, with the credentials the client authenticated with."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    login: str | None
    password: str | None
    received_at: float


class SmtpSink:
    """An SMTP server on a free loopback port that accepts every message and offers AUTH PLAIN
    without TLS, recording the credentials it was given."""

    def __init__(self) -> None:
        self.inbox: Inbox[Mail] = Inbox()
        self.port = free_port()
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
            # aiosmtpd prompts "User Name" for LOGIN, which Alertmanager does not recognise.
            auth_exclude_mechanism=["LOGIN"],
        )

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @staticmethod
    def _authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # Every credential is accepted and kept on the session: the test checks what was sent.
        return AuthResult(success=True, auth_data=auth_data)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data if isinstance(session.auth_data, LoginPassword) else None
        self.inbox.add(
            Mail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
                login=login.login.decode() if login else None,
                password=login.password.decode() if login else None,
                received_at=time.monotonic(),
            )
        )
        return "250 Message accepted for delivery"
