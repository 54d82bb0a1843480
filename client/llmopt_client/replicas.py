"""Events spread over several exporter replicas, each to the replica its key picks.

Every event has a routing key, and the replicas are ranked for that key by rendezvous (highest
random weight) hashing: a stable hash of replica URL and key, so every client process with the same
URLs ranks them the same way, and adding or removing a replica moves only the keys it wins or held.

- Events that only add to counters (LLM calls, feedback, bandit pulls and rewards, spend, model
  switches, deployments) are keyed by their ``event_id``: the load spreads evenly, and a retried
  event keeps its id, so it goes back to the replica that may have applied it, whose
  deduplication by ``event_id`` then drops it.
- Events that set state (experiments, parameter updates, budget limits and violations, model
  health, business figures, incidents, bandit convergence) share one key, :data:`STATE_KEY`: one
  replica, the state owner, holds all the state gauges, in the order the events were emitted. The
  other replicas report none of it (or 0), so ``max`` over the replicas reads the owner's value.

A replica that cannot be reached (the connection is refused or cut before the body was sent, so it
applied nothing) is skipped for a cooldown that doubles while it stays down, and the events queued
for it go to the next replica in their own ranking. An event whose earlier attempt got no answer
may have been applied, so it stays with its replica and is retried there: failing over never
counts an event twice. See docs/scaling.md.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TypedDict, Unpack

from llmopt_client.client import Client, ClientStats, EmitterBase
from llmopt_client.events import ALL_EVENTS, Event

log = logging.getLogger("llmopt_client")


# The routing key of every event that sets state: they all go to one replica, the state owner.
STATE_KEY = "state"

# The events that set state (as the exporter's contract declares them).
STATE_EVENTS: tuple[type[Event], ...] = tuple(cls for cls in ALL_EVENTS if cls.SETS_STATE)
# The same events by wire type and action, to route an encoded event again on failover.
_STATE_WIRE = frozenset((cls.EVENT_TYPE, cls.ACTION) for cls in STATE_EVENTS)


class ClientOptions(TypedDict, total=False):
    """The options of :class:`llmopt_client.Client`, applied to the client of every replica."""

    flush_interval: float
    batch_size: int
    max_buffer: int
    timeout: float
    retry_initial: float
    retry_max: float
    close_timeout: float
    headers: Mapping[str, str]


def routing_key(event: Event) -> str:
    """The key that picks an event's replica: :data:`STATE_KEY` for events that set state, the
    ``event_id`` for the others (which must be set; :meth:`ReplicaClient.emit` sets it)."""
    if isinstance(event, STATE_EVENTS):
        return STATE_KEY
    if event.event_id is None:
        raise ValueError(f"a {event.EVENT_TYPE} event is routed by its event_id, which is not set")
    return event.event_id


def replica_order(key: str, urls: Sequence[str]) -> list[str]:
    """The replicas ranked for ``key``, preferred first: the same in every process and for every
    order of ``urls``."""

    def weight(url: str) -> bytes:
        return hashlib.blake2b(f"{url}\n{key}".encode(), digest_size=8).digest()

    return sorted(urls, key=weight, reverse=True)


def replica_urls(host: str, port: int, *, scheme: str = "http") -> list[str]:
    """A URL for every address ``host`` resolves to, sorted: the ready replicas behind a headless
    Kubernetes Service, for instance. Raises OSError when the name does not resolve."""
    addresses = sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    return [f"{scheme}://[{a}]:{port}" if ":" in a else f"{scheme}://{a}:{port}" for a in addresses]


def _normalized(urls: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(url.rstrip("/") for url in urls))


def _wire_key(payload: bytes) -> str:
    wire = json.loads(payload)
    if (wire["type"], wire.get("action")) in _STATE_WIRE:
        return STATE_KEY
    return str(wire["event_id"])


class ReplicaClient(EmitterBase):
    """Sends events to several replicas of the exporter, each event to the replica its key picks.

    ``urls`` are the base URLs of the replicas; every client of a deployment must be given the
    same set (in any order). It may also be a function returning them, e.g.
    ``lambda: replica_urls("llmopt-exporter.monitoring.svc", 9477)``, which is called again every
    ``refresh_interval`` seconds in the background: a replica that appears gets its share of the
    keys, one that disappears gets no new events and its queued ones move on.

    Each replica gets its own :class:`llmopt_client.Client`, with the ``options`` given here, so
    batching, retries and backoff work per replica as they do for one. A replica found
    unreachable is skipped for ``retry_initial`` seconds, doubling up to ``retry_max`` while it
    stays unreachable.
    """

    def __init__(
        self,
        urls: Sequence[str] | Callable[[], Sequence[str]],
        *,
        refresh_interval: float = 30.0,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._resolve = urls if callable(urls) else None
        self.urls = _normalized(urls() if callable(urls) else urls)
        if not self.urls:
            raise ValueError("at least one replica URL is needed")
        self._options = options
        self._cooldown_initial = options.get("retry_initial", 0.5)
        self._cooldown_max = options.get("retry_max", 30.0)
        self._close_timeout = options.get("close_timeout", 5.0)
        self._lock = threading.Lock()
        # Every replica's client, also of replicas no longer listed until their events are out.
        self._clients: dict[str, Client] = {}
        # Per replica: skipped until this time.monotonic(), the unreachable streak, and how many
        # events it had delivered when it was last found unreachable.
        self._down_until: dict[str, float] = {}
        self._streak: dict[str, int] = {}
        self._sent_at_failure: dict[str, int] = {}
        self._failed_over = 0
        # What the clients of replicas no longer listed had done when they were closed.
        self._retired = ClientStats(sent=0, retried=0, dropped=0, failed=0, pending=0)
        for url in self.urls:
            self._add(url)
        self._stopping = threading.Event()
        if self._resolve is not None:
            threading.Thread(
                target=self._refresh_every, args=(refresh_interval,), name="llmopt-replicas", daemon=True
            ).start()
        atexit.register(self.close)

    def _add(self, url: str) -> None:
        client = Client(url, **self._options)
        client._handoff = lambda payloads: self._take_from(url, payloads)
        self._clients[url] = client
        self._down_until[url], self._streak[url], self._sent_at_failure[url] = 0.0, 0, 0

    # --- the caller's side -----------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Queue an event for the replica its key picks; like :meth:`llmopt_client.Client.emit`,
        never blocks on the network and never raises. Sets ``event_id`` when it is unset."""
        if event.event_id is None:
            event = replace(event, event_id=str(uuid.uuid4()))
        key = routing_key(event)
        with self._lock:
            url = self._pick(key, time.monotonic()) or replica_order(key, self.urls)[0]
            self._clients[url].emit(event)

    def replica_for(self, event: Event) -> str:
        """The URL of the replica an event with this key would go to now."""
        with self._lock:
            key = routing_key(event)
            return self._pick(key, time.monotonic()) or replica_order(key, self.urls)[0]

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything emitted so far to every replica and wait, as :meth:`Client.flush` does;
        True once all of it is settled, also the events that moved to another replica."""
        deadline = time.monotonic() + (self._close_timeout if timeout is None else timeout)
        while True:
            with self._lock:
                clients = list(self._clients.values())
            for client in clients:
                if not client.flush(max(0.0, deadline - time.monotonic())):
                    return False
            # Events that failed over may have landed on a replica flushed before.
            if self.stats.pending == 0:
                return True
            if time.monotonic() >= deadline:
                return False

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop every replica's client; what is still unsent after ``timeout``
        seconds (default ``close_timeout``) is dropped. Idempotent; also runs at exit."""
        atexit.unregister(self.close)
        self._stopping.set()
        deadline = time.monotonic() + (self._close_timeout if timeout is None else timeout)
        self.flush(max(0.0, deadline - time.monotonic()))
        with self._lock:
            clients = list(self._clients.values())
        for client in clients:
            client.close(max(0.0, deadline - time.monotonic()))

    @property
    def stats(self) -> ClientStats:
        """The counters of all replicas' clients added up; ``failed_over`` counts events moved to
        another replica (each then counts as sent, failed or dropped there)."""
        with self._lock:
            parts = [self._retired, *(client.stats for client in self._clients.values())]
            return ClientStats(
                sent=sum(part.sent for part in parts),
                retried=sum(part.retried for part in parts),
                dropped=sum(part.dropped for part in parts),
                failed=sum(part.failed for part in parts),
                pending=sum(part.pending for part in parts),
                failed_over=self._failed_over,
                auth_rejections=sum(part.auth_rejections for part in parts),
            )

    def replica_stats(self) -> dict[str, ClientStats]:
        """The counters of each replica's client, by URL."""
        with self._lock:
            return {url: client.stats for url, client in self._clients.items()}

    def refresh(self) -> None:
        """Take the replica list from the ``urls`` function now (it is also done periodically)."""
        if self._resolve is None:
            return
        try:
            urls = _normalized(self._resolve())
        except Exception as err:  # whatever the lookup raises, the refresh goes on
            log.warning("cannot list the replicas, keeping %d: %s", len(self.urls), err)
            return
        if not urls:
            log.warning("the replica list came back empty, keeping %d", len(self.urls))
            return
        retired: list[Client] = []
        with self._lock:
            if urls != self.urls:
                log.info("replicas now %s", ", ".join(urls))
            for url in urls:
                if url not in self._clients:
                    self._add(url)
            self.urls = urls
            for url, client in list(self._clients.items()):
                if url not in urls and client.stats.pending == 0:
                    retired.append(self._clients.pop(url))
        for client in retired:
            client.close(0)
        with self._lock:
            for client in retired:
                done = client.stats
                self._retired = ClientStats(
                    sent=self._retired.sent + done.sent,
                    retried=self._retired.retried + done.retried,
                    dropped=self._retired.dropped + done.dropped,
                    failed=self._retired.failed + done.failed,
                    pending=0,
                )

    def _refresh_every(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            self.refresh()

    # --- failover ----------------------------------------------------------------------------------
    def _pick(self, key: str, now: float, *, avoid: str | None = None) -> str | None:
        """The first replica in the key's ranking that is not skipped (lock held)."""
        for url in replica_order(key, self.urls):
            if url != avoid and self._down_until[url] <= now:
                return url
        return None

    def _take_from(self, source: str, payloads: list[bytes]) -> bool:
        """Called by ``source``'s client with events that never reached it: mark it unreachable and
        queue each event on the next replica of its ranking. False when no other replica is up."""
        now = time.monotonic()
        with self._lock:
            is_new_outage = self._mark_unreachable(source, now)
            moved: dict[str, list[bytes]] = {}
            for payload in payloads:
                target = self._pick(_wire_key(payload), now, avoid=source)
                if target is None:
                    return False
                moved.setdefault(target, []).append(payload)
            for target, batch in moved.items():
                self._clients[target]._enqueue(batch, is_urgent=True)
            self._failed_over += len(payloads)
        if is_new_outage:
            log.warning("replica %s is unreachable; its events go to the other replicas", source)
        return True

    def _mark_unreachable(self, url: str, now: float) -> bool:
        """Skip ``url`` for a while (lock held); True when it delivered since it last failed."""
        sent = self._clients[url].stats.sent
        is_new_outage = self._streak[url] == 0 or sent > self._sent_at_failure[url]
        self._streak[url] = 1 if is_new_outage else self._streak[url] + 1
        self._sent_at_failure[url] = sent
        cooldown = min(self._cooldown_max, self._cooldown_initial * 2.0 ** min(self._streak[url] - 1, 32))
        self._down_until[url] = now + cooldown
        return is_new_outage
