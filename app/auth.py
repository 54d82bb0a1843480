"""Credentials: bearer tokens for ingest and admin, a separate bearer or basic credential for
/metrics. Every comparison is constant-time and checks every configured token."""

from __future__ import annotations

import base64
import binascii
import hmac

from app.config import Settings


def _bearer(authorization: str | None) -> bytes | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip().encode()


def _matches_any(candidate: bytes, accepted: list[bytes]) -> bool:
    matched = False
    for token in accepted:
        # No early exit: the time taken does not tell which token (if any) matched.
        matched |= hmac.compare_digest(candidate, token)
    return matched


class Authenticator:
    """Decides whether a request's ``Authorization`` header grants ingest or scrape access."""

    def __init__(self, settings: Settings) -> None:
        self._ingest_tokens = [token.encode() for token in settings.ingest_token_values()]
        bearer = settings.metrics_bearer_token
        self._metrics_token = bearer.get_secret_value().encode() if bearer is not None else None
        self._metrics_basic: tuple[bytes, bytes] | None = None
        if (
            settings.metrics_basic_auth_username is not None
            and settings.metrics_basic_auth_password is not None
        ):
            self._metrics_basic = (
                settings.metrics_basic_auth_username.encode(),
                settings.metrics_basic_auth_password.get_secret_value().encode(),
            )

    @property
    def is_ingest_open(self) -> bool:
        return not self._ingest_tokens

    @property
    def is_metrics_open(self) -> bool:
        return self._metrics_token is None and self._metrics_basic is None

    def allows_ingest(self, authorization: str | None) -> bool:
        if self.is_ingest_open:
            return True
        token = _bearer(authorization)
        return token is not None and _matches_any(token, self._ingest_tokens)

    def allows_metrics(self, authorization: str | None) -> bool:
        if self.is_metrics_open:
            return True
        if self._metrics_token is not None:
            token = _bearer(authorization)
            if token is not None and hmac.compare_digest(token, self._metrics_token):
                return True
        if self._metrics_basic is not None:
            credentials = _basic(authorization)
            if credentials is not None:
                user_ok = hmac.compare_digest(credentials[0], self._metrics_basic[0])
                password_ok = hmac.compare_digest(credentials[1], self._metrics_basic[1])
                return user_ok and password_ok
        return False

    def metrics_challenge(self) -> str:
        return 'Basic realm="metrics"' if self._metrics_basic is not None else 'Bearer realm="metrics"'


def _basic(authorization: str | None) -> tuple[bytes, bytes] | None:
    if authorization is None:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, separator, password = decoded.partition(b":")
    return (user, password) if separator else None
