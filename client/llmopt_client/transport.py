"""One HTTP request per batch, and what the answer means for the events in it."""

from __future__ import annotations

import enum
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EVENTS_PATH = "/v1/events"

# Answers after which the same batch may succeed later: the server is busy, restarting or away.
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    RETRY = "retry"  # no answer, or an answer that may change: keep the events
    # The request never reached the server whole (refused, unresolvable, cut while sending), so
    # nothing was applied: the events may go to another replica.
    UNAVAILABLE = "unavailable"
    # 401/403: the server wants another token. Nothing was applied; the events wait for the fix.
    UNAUTHORIZED = "unauthorized"
    TOO_LARGE = "too_large"  # 413: a smaller batch may pass
    INVALID = "invalid"  # 422: some events are invalid; the others may pass alone
    REFUSED = "refused"  # any other refusal: sending again would not help


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    detail: str
    # For INVALID: the positions in the batch of the events the server named.
    invalid_indices: frozenset[int] = frozenset()


def encode_batch(payloads: Sequence[bytes]) -> bytes:
    """The request body for already encoded events."""
    return b'{"events":[' + b",".join(payloads) + b"]}"


def post_batch(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    """POST a batch body to ``url`` and judge the answer. Never raises for network trouble."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return Answer(Verdict.ACCEPTED, f"HTTP {response.status}")
    except urllib.error.HTTPError as err:
        with err:
            return judge(err.code, err.read())
    except urllib.error.URLError as err:
        # urllib wraps only the errors of connecting and sending in URLError: the server never had
        # the whole body, so it applied nothing.
        return Answer(Verdict.UNAVAILABLE, f"{type(err).__name__}: {err}")
    except (OSError, http.client.HTTPException) as err:
        # Timeouts and dropped connections while waiting for the answer: the server may have
        # applied the batch, so it may only be sent again to the same server.
        return Answer(Verdict.RETRY, f"{type(err).__name__}: {err}")


def judge(status: int, body: bytes) -> Answer:
    """What a non-2xx answer means for the batch that got it."""
    detail = f"HTTP {status}: {body[:500].decode('utf-8', 'replace')}"
    if status in _RETRYABLE_STATUSES:
        return Answer(Verdict.RETRY, detail)
    if status in (401, 403):
        return Answer(Verdict.UNAUTHORIZED, detail)
    if status == 413:
        return Answer(Verdict.TOO_LARGE, detail)
    if status == 422:
        return Answer(Verdict.INVALID, detail, _invalid_indices(body))
    return Answer(Verdict.REFUSED, detail)


def _invalid_indices(body: bytes) -> frozenset[int]:
    """Indices named by an ``invalid_events`` answer; empty when it names none it can read."""
    try:
        document = json.loads(body)
    except ValueError:
        return frozenset()
    problems = document.get("problems") if isinstance(document, dict) else None
    if not isinstance(problems, list):
        return frozenset()
    return frozenset(
        problem["index"]
        for problem in problems
        if isinstance(problem, dict) and isinstance(problem.get("index"), int)
    )
