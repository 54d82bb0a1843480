"""The collection pipeline: a bounded buffer that a background thread sends in batches.

``emit`` only encodes the event and appends it under a lock, so it never blocks on the network and
never raises; it is as safe to call from an event loop as from a thread. One worker thread sends
batches when ``batch_size`` events wait, when the oldest has waited ``flush_interval`` seconds, or at
once after a critical event. A batch that cannot be delivered goes back to the front of the buffer
and is tried again after an exponential backoff with jitter; when the buffer is full the oldest
events are dropped and counted. Every event carries an ``event_id`` so that a retried batch can be
recognised by the server.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self, TypeVar, Unpack

from llmopt_client.events import Event, MetricValue
from llmopt_client.instrument import CallLabels, LlmCall, instrument
from llmopt_client.tracing import current_trace
from llmopt_client.transport import EVENTS_PATH, Verdict, encode_batch, post_batch

log = logging.getLogger("llmopt_client")

F = TypeVar("F", bound=Callable[..., object])

DEFAULT_URL = "http://127.0.0.1:9477"


@dataclass(frozen=True)
class ClientStats:
    """What happened to the events emitted so far. Every event ends up sent, failed or dropped."""

    sent: int  # accepted by the server
    retried: int  # put back after a delivery attempt failed (once per event and attempt)
    dropped: int  # discarded unsent: the buffer was full (oldest first) or the client closed
    failed: int  # refused by the server as invalid, or not encodable as JSON; never retried
    pending: int  # waiting in the buffer or being sent
    failed_over: int = 0  # moved to another replica because theirs was unreachable (ReplicaClient)
    # Delivery attempts refused for the client's credentials (401/403); their events were kept.
    auth_rejections: int = 0


@dataclass(frozen=True)
class _Pending:
    seq: int
    payload: bytes
    emitted_at: float  # time.monotonic()
    # An attempt got no answer, so the server may have applied it: it may be sent again only to
    # the same server, whose deduplication by event_id then holds.
    is_pinned: bool = False


class EmitterBase:
    """What every client offers on top of ``emit``, ``flush`` and ``close``: async variants,
    ``with``/``async with``, and LLM call instrumentation."""

    def emit(self, event: Event) -> None:
        raise NotImplementedError

    def flush(self, timeout: float | None = None) -> bool:
        raise NotImplementedError

    def close(self, timeout: float | None = None) -> None:
        raise NotImplementedError

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` without blocking the event loop."""
        return await asyncio.to_thread(self.flush, timeout)

    async def aclose(self, timeout: float | None = None) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- instrumentation ---------------------------------------------------------------------------
    def llm_call(self, model: str, **labels: Unpack[CallLabels]) -> LlmCall:
        """A context manager (``with`` or ``async with``) that times one LLM call and emits its
        ``llm_request``; see :class:`llmopt_client.LlmCall`."""
        return LlmCall(self, model, labels)

    def instrument(self, model: str, **labels: Unpack[CallLabels]) -> Callable[[F], F]:
        """A decorator for a function (sync or async) that makes one LLM call: each call is timed
        and reported like :meth:`llm_call`. Inside, :func:`llmopt_client.current_call` records
        tokens, cost and quality."""
        return instrument(self, model, labels)

    # --- custom metrics (declared in the exporter's custom_metrics setting) ---------------------
    def counter(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add ``value`` (not negative) to the custom counter ``name`` under ``labels``."""
        self.emit(MetricValue(name=name, kind="counter", value=value, labels=labels))

    def gauge(self, name: str, value: float, **labels: str) -> None:
        """Set the custom gauge ``name`` under ``labels`` to ``value``."""
        self.emit(MetricValue(name=name, kind="gauge", value=value, labels=labels))

    def histogram(self, name: str, value: float, **labels: str) -> None:
        """Observe ``value`` in the custom histogram ``name`` under ``labels``."""
        self.emit(MetricValue(name=name, kind="histogram", value=value, labels=labels))


class Client(EmitterBase):
    """Sends events to an llmopt-exporter. Create one per process and close it (or let exit do it).

    ``url`` is the exporter's base URL. Events are sent when ``batch_size`` are waiting, when the
    oldest has waited ``flush_interval`` seconds, or at once after a critical event. At most
    ``max_buffer`` events wait; beyond that the oldest are dropped. A request body stays within
    ``max_batch_bytes`` (keep it at or under the exporter's ``max_body_bytes``, 1 MiB by default);
    a batch the server still finds too large is split in halves. Failed deliveries are retried
    after ``retry_initial`` seconds, doubling up to ``retry_max``, with jitter. ``timeout`` bounds
    one HTTP request; ``close_timeout`` bounds the last flush on close. ``headers`` go on every
    request (e.g. ``Authorization``).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        flush_interval: float = 10.0,
        batch_size: int = 100,
        max_batch_bytes: int = 1_000_000,
        max_buffer: int = 10_000,
        timeout: float = 5.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        close_timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        for name, value in (
            ("flush_interval", flush_interval),
            ("batch_size", batch_size),
            ("max_batch_bytes", max_batch_bytes),
            ("max_buffer", max_buffer),
            ("timeout", timeout),
            ("retry_initial", retry_initial),
            ("retry_max", retry_max),
            ("close_timeout", close_timeout),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.url = url.rstrip("/")
        self._events_url = self.url + EVENTS_PATH
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._max_buffer = max_buffer
        self._timeout = timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._close_timeout = close_timeout
        self._headers = dict(headers or {})

        self._wakeup = threading.Condition(threading.Lock())
        self._buffer: deque[_Pending] = deque()
        self._last_seq = 0
        # The worker sends at once every event up to this sequence number (critical events, flush).
        self._send_upto = 0
        # The batch being sent: its oldest sequence number and how many of its events are unsettled.
        self._in_flight_from: int | None = None
        self._in_flight = 0
        self._retry_at = 0.0
        self._failures = 0
        self._is_closing = False
        self._close_deadline = 0.0
        self._is_dropping = False
        self._sent = self._retried = self._dropped = self._failed = 0
        self._auth_rejections = 0
        self._is_auth_refused = False  # since the last delivery; the error is logged once per streak
        self._last_problem = ""  # the worker's latest delivery failure, for the log
        # Set by ReplicaClient: takes the payloads of events that never reached this server to
        # another replica; False when there is none to take them.
        self._handoff: Callable[[list[bytes]], bool] | None = None

        self._worker = threading.Thread(target=self._run, name="llmopt-client", daemon=True)
        self._worker.start()
        atexit.register(self.close)

    # --- the caller's side -----------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Queue an event. Fills in ``event_id``, ``timestamp`` and the current trace when unset.

        Never blocks on the network and never raises: an event that cannot be encoded is counted
        as failed and logged; an event emitted after :meth:`close` is counted as dropped.
        """
        wire = event.to_wire()
        wire.setdefault("event_id", str(uuid.uuid4()))
        wire.setdefault("timestamp", time.time())
        if "trace_id" not in wire:
            trace = current_trace()
            if trace is not None:
                wire["trace_id"] = trace.trace_id
                wire["span_id"] = trace.span_id
        try:
            payload = json.dumps(wire, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as err:
            log.warning("cannot encode %s event, not sent: %s", event.EVENT_TYPE, err)
            with self._wakeup:
                self._failed += 1
            return
        self._enqueue([payload], is_urgent=event.is_critical)

    def _enqueue(self, payloads: list[bytes], *, is_urgent: bool) -> None:
        """Buffer encoded events; urgent ones go out at once with everything before them."""
        with self._wakeup:
            if self._is_closing:
                self._dropped += len(payloads)
                return
            now = time.monotonic()
            for payload in payloads:
                self._last_seq += 1
                self._buffer.append(_Pending(self._last_seq, payload, now))
            is_overflowing = self._trim_buffer()
            should_wake = len(self._buffer) in (1, self._batch_size)
            if is_urgent:
                self._send_upto = self._last_seq
                should_wake = True
            if should_wake:
                self._wakeup.notify_all()
        if is_overflowing:
            log.warning("event buffer full (%d); dropping the oldest events", self._max_buffer)

    def flush(self, timeout: float | None = None) -> bool:
        """Send every event emitted so far, now (skipping any backoff wait), and wait for them.

        Returns True when all of them are settled (sent, refused or dropped; see :attr:`stats`),
        False when ``timeout`` seconds (default ``close_timeout``) passed first; unsent events stay
        buffered and keep being retried.
        """
        deadline = time.monotonic() + (self._close_timeout if timeout is None else timeout)
        with self._wakeup:
            target = self._last_seq
            self._send_upto = max(self._send_upto, target)
            self._retry_at = 0.0
            self._wakeup.notify_all()
            while not self._is_settled(target):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wakeup.wait(remaining)
            return True

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the worker. Events still unsent after ``timeout`` seconds (default
        ``close_timeout``) are dropped. Idempotent; also runs at interpreter exit."""
        atexit.unregister(self.close)
        wait = self._close_timeout if timeout is None else timeout
        with self._wakeup:
            if not self._is_closing:
                self._is_closing = True
                self._close_deadline = time.monotonic() + wait
                self._retry_at = 0.0
                self._wakeup.notify_all()
        self._worker.join(wait + 0.1)

    @property
    def stats(self) -> ClientStats:
        """The client's counters, read at one instant."""
        with self._wakeup:
            pending = len(self._buffer) + self._in_flight
            return ClientStats(
                self._sent,
                self._retried,
                self._dropped,
                self._failed,
                pending,
                auth_rejections=self._auth_rejections,
            )

    # --- the worker's side -----------------------------------------------------------------------
    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            to_retry = self._deliver(batch)
            self._after_attempt(to_retry)

    def _next_batch(self) -> list[_Pending] | None:
        """Wait until a batch is due and take it; None once the client is closed and done."""
        with self._wakeup:
            while True:
                now = time.monotonic()
                if self._is_closing and (not self._buffer or now >= self._close_deadline):
                    unsent = len(self._buffer)
                    self._dropped += unsent
                    self._buffer.clear()
                    self._wakeup.notify_all()
                    break
                wake_at = math.inf
                if self._buffer and now < self._retry_at:
                    wake_at = self._retry_at
                elif self._buffer:
                    oldest = self._buffer[0]
                    due_at = oldest.emitted_at + self._flush_interval
                    if (
                        self._is_closing
                        or now >= due_at
                        or oldest.seq <= self._send_upto
                        or len(self._buffer) >= self._batch_size
                    ):
                        return self._take_batch()
                    wake_at = due_at
                if self._is_closing:
                    wake_at = min(wake_at, self._close_deadline)
                self._wakeup.wait(None if wake_at == math.inf else wake_at - now)
        if unsent:
            log.warning("dropped %d events still unsent when the client closed", unsent)
        return None

    def _take_batch(self) -> list[_Pending]:
        """The oldest events, up to ``batch_size`` of them and ``max_batch_bytes`` of body (at least
        one event: one too large alone gets its 413 and is dropped, not retried)."""
        batch = [self._buffer.popleft()]
        size = len(encode_batch([batch[0].payload]))
        while self._buffer and len(batch) < self._batch_size:
            size += len(self._buffer[0].payload) + 1  # and its comma
            if size > self._max_batch_bytes:
                break
            batch.append(self._buffer.popleft())
        self._in_flight_from = batch[0].seq
        self._in_flight = len(batch)
        return batch

    def _deliver(self, batch: list[_Pending]) -> list[_Pending]:
        """Send a batch (no lock held); return the events to try again later."""
        answer = post_batch(
            self._events_url, encode_batch([event.payload for event in batch]), self._headers, self._timeout
        )
        if answer.verdict is Verdict.ACCEPTED:
            self._settle(batch, is_sent=True)
            return []
        if answer.verdict is Verdict.UNAUTHORIZED:
            self._refused_credentials(answer.detail)
            return batch
        if answer.verdict is Verdict.RETRY:
            self._last_problem = answer.detail
            return [event if event.is_pinned else replace(event, is_pinned=True) for event in batch]
        if answer.verdict is Verdict.UNAVAILABLE:
            self._last_problem = answer.detail
            return self._hand_off(batch)
        if answer.verdict is Verdict.TOO_LARGE and len(batch) > 1:
            half = len(batch) // 2
            to_retry = self._deliver(batch[:half])
            return to_retry + batch[half:] if to_retry else self._deliver(batch[half:])
        if answer.verdict is Verdict.INVALID and 0 < len(answer.invalid_indices) < len(batch):
            # The server applies a batch all or nothing: send the valid events again without the rest.
            invalid = [event for index, event in enumerate(batch) if index in answer.invalid_indices]
            valid = [event for index, event in enumerate(batch) if index not in answer.invalid_indices]
            self._settle(invalid, is_sent=False, detail=answer.detail)
            return self._deliver(valid)
        self._settle(batch, is_sent=False, detail=answer.detail)
        return []

    def _hand_off(self, batch: list[_Pending]) -> list[_Pending]:
        """The server is unreachable: give every event that never reached it (of this batch and of
        the buffer) to another replica, if there is a taker. Pinned events stay, and all of them
        when there is no taker. Returns the events of the batch to keep."""
        if self._handoff is None:
            return batch
        with self._wakeup:
            waiting = [event for event in self._buffer if not event.is_pinned]
            if waiting:  # counted as in flight while they are offered
                self._buffer = deque(event for event in self._buffer if event.is_pinned)
                self._in_flight += len(waiting)
        movable = [event for event in batch if not event.is_pinned] + waiting
        if movable and self._handoff([event.payload for event in movable]):
            with self._wakeup:
                self._in_flight -= len(movable)
            return [event for event in batch if event.is_pinned]
        if waiting:
            with self._wakeup:
                self._in_flight -= len(waiting)
                self._buffer = deque(sorted([*self._buffer, *waiting], key=lambda event: event.seq))
        return batch

    def _refused_credentials(self, detail: str) -> None:
        """A 401/403: count it, say once what to fix; the events stay and are retried with backoff,
        so they arrive once the token is fixed on either side."""
        self._last_problem = detail
        with self._wakeup:
            self._auth_rejections += 1
            is_first = not self._is_auth_refused
            self._is_auth_refused = True
        if is_first:
            log.error(
                "the exporter at %s refused this client's credentials (%s). Pass "
                "headers={'Authorization': 'Bearer <token>'} with one of the exporter's ingest_tokens "
                "(LLMOPT_INGEST_TOKENS). The events are kept (up to max_buffer) and retried with backoff.",
                self._events_url,
                detail,
            )

    def _settle(self, events: list[_Pending], *, is_sent: bool, detail: str = "") -> None:
        with self._wakeup:
            self._in_flight -= len(events)
            if is_sent:
                self._sent += len(events)
                self._is_dropping = False
                self._is_auth_refused = False
            else:
                self._failed += len(events)
        if not is_sent:
            log.warning("the exporter refused %d events; they are not retried: %s", len(events), detail)

    def _after_attempt(self, to_retry: list[_Pending]) -> None:
        with self._wakeup:
            self._in_flight_from = None
            self._in_flight = 0
            failures_before = self._failures
            is_closed = self._is_closing and time.monotonic() >= self._close_deadline
            is_overflowing = False
            if not to_retry:
                self._failures = 0
                self._retry_at = 0.0
            elif is_closed:
                self._dropped += len(to_retry)
            else:
                self._failures += 1
                self._retried += len(to_retry)
                self._retry_at = time.monotonic() + self._backoff()
                self._buffer.extendleft(reversed(to_retry))
                is_overflowing = self._trim_buffer()
            self._wakeup.notify_all()
        if not to_retry and failures_before:
            log.info("delivering again after %d failed attempts", failures_before)
        elif to_retry and is_closed:
            log.warning("dropped %d events still unsent when the client closed", len(to_retry))
        elif to_retry and not failures_before and not self._is_auth_refused:
            log.warning(
                "cannot deliver events to %s (%s); keeping them and retrying with backoff",
                self._events_url,
                self._last_problem,
            )
        if is_overflowing:
            log.warning("event buffer full (%d); dropping the oldest events", self._max_buffer)

    def _backoff(self) -> float:
        """Exponential backoff with jitter: the ceiling doubles per failure, the wait is 50-100 %
        of it, so clients that failed together do not retry together."""
        ceiling = min(self._retry_max, self._retry_initial * 2.0 ** min(self._failures - 1, 32))
        return ceiling * random.uniform(0.5, 1.0)

    def _trim_buffer(self) -> bool:
        """Drop the oldest events beyond ``max_buffer`` (lock held). True when this starts an
        overflow, which is logged once until events get through again."""
        excess = len(self._buffer) - self._max_buffer
        if excess <= 0:
            return False
        for _ in range(excess):
            self._buffer.popleft()
        self._dropped += excess
        is_new_overflow = not self._is_dropping
        self._is_dropping = True
        return is_new_overflow

    def _is_settled(self, seq: int) -> bool:
        """Whether every event up to ``seq`` is sent, refused or dropped (lock held)."""
        if self._in_flight_from is not None and self._in_flight_from <= seq:
            return False
        return not self._buffer or self._buffer[0].seq > seq
