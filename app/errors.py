"""Error types as label values: every way a rate limit is reported counts as one type.

Clients name a failed call's error as they see it: an exception class (``RateLimitError``,
``ThrottlingException``), an API's error type (``rate_limit_error``, ``rate_limit_exceeded``), a
gRPC code (``RESOURCE_EXHAUSTED``) or an HTTP status (``429``). Rate limits are the error an
optimizer acts on most (back off, spread keys, fall back), so they are one label value,
:data:`RATE_LIMITED`, whatever the spelling; other error types are kept as sent.
"""

from __future__ import annotations

import re

RATE_LIMITED = "rate_limited"
# Spellings of a rate limit, compared in lower case without punctuation.
RATE_LIMIT_SPELLINGS = frozenset(
    (
        "ratelimit",
        "ratelimited",
        "ratelimiterror",
        "ratelimitexceeded",
        "ratelimitexceedederror",
        "toomanyrequests",
        "toomanyrequestserror",
        "resourceexhausted",
        "throttlingexception",
        "throttled",
        "429",
        "http429",
    )
)
# The same in a sentence (an error's message): the words of a rate limit, apart or joined.
_IN_TEXT = re.compile(r"rate.?limit|too many requests|resource.?exhausted|\b429\b", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[^a-z0-9]")
# Error types as sent -> their label, found once per name; bounded, as names come from clients.
_SEEN: dict[str, str] = {}
_SEEN_LIMIT = 10_000


def is_rate_limit(name: str) -> bool:
    """Whether ``name`` is one of the spellings of a rate limit."""
    return _PUNCTUATION.sub("", name.lower()) in RATE_LIMIT_SPELLINGS


def says_rate_limit(text: str) -> bool:
    """Whether a message (a span's status, an exception's text) says the call was rate limited."""
    return _IN_TEXT.search(text) is not None


def normalise_error_type(name: str) -> str:
    """The label of error type ``name``: RATE_LIMITED for a rate limit, else ``name``."""
    found = _SEEN.get(name)
    if found is None:
        found = RATE_LIMITED if is_rate_limit(name) else name
        if len(_SEEN) < _SEEN_LIMIT:
            _SEEN[name] = found
    return found
