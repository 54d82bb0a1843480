"""ReplicaClient: every event goes to the replica its key picks, retries go back to it, and only
events that never reached a replica fail over to another."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from client_support import free_port, wait_until
from llmopt_client import (
    STATE_KEY,
    BudgetLimit,
    BudgetSpend,
    Deployment,
    Event,
    ExperimentProgress,
    Feedback,
    LlmRequest,
    ModelHealth,
    ReplicaClient,
    replica_order,
    replica_urls,
    routing_key,
)
from llmopt_client.transport import Verdict, encode_batch, post_batch

HANG = "hang"


class Replica:
    """A stand-in exporter replica on a loopback port. It keeps the events of every request and
    answers 200, or, to its first requests, what ``answers`` says: a status code, or HANG (no
    answer for a second)."""

    def __init__(self, port: int, answers: Sequence[int | str] = ()) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.requests: list[list[dict[str, object]]] = []
        self._answers = list(answers)
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Replica:
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                replica.requests.append(body["events"])
                answer = replica._answers.pop(0) if replica._answers else 200
                if answer == HANG:
                    time.sleep(1.0)
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        """Event ids of every request, in arrival order (a retried event appears again)."""
        return [str(event["event_id"]) for request in self.requests for event in request]


@pytest.fixture
def replicas() -> Iterator[Callable[..., Replica]]:
    """Makes started replicas on given or free ports; stops them all at the end."""
    made: list[Replica] = []

    def make(port: int | None = None, answers: Sequence[int | str] = ()) -> Replica:
        replica = Replica(port or free_port(), answers).start()
        made.append(replica)
        return replica

    yield make
    for replica in made:
        replica.stop()


@pytest.fixture
def new_replica_client() -> Iterator[Callable[..., ReplicaClient]]:
    made: list[ReplicaClient] = []

    def make(
        urls: Sequence[str] | Callable[[], Sequence[str]], timeout: float = 5.0, batch_size: int = 50
    ) -> ReplicaClient:
        client = ReplicaClient(
            urls,
            flush_interval=60,
            batch_size=batch_size,
            timeout=timeout,
            retry_initial=0.05,
            retry_max=0.2,
            close_timeout=2.0,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=0.5)


def ids_preferring(url: str, urls: Sequence[str], count: int) -> list[str]:
    """Event ids whose first replica is ``url``."""
    candidates = (f"event-{n}" for n in itertools.count())
    return list(itertools.islice((id_ for id_ in candidates if replica_order(id_, urls)[0] == url), count))


# --- Ranking and keys ----------------------------------------------------------------------------

URLS = ("http://replica-1.example:9477", "http://replica-2.example:9477", "http://replica-3.example:9477")


def test_the_ranking_is_pinned_and_ignores_the_order_of_the_urls() -> None:
    # Pinned: every client process, whatever its version or hash seed, must rank alike.
    assert replica_order("event-1", URLS) == [URLS[0], URLS[1], URLS[2]]
    assert replica_order("event-2", URLS) == [URLS[1], URLS[2], URLS[0]]
    assert replica_order(STATE_KEY, URLS) == replica_order(STATE_KEY, URLS[::-1])
    for permutation in itertools.permutations(URLS):
        assert replica_order("event-7", permutation) == replica_order("event-7", URLS)


def test_the_ranking_spreads_keys_evenly_and_moves_only_a_removed_replicas_keys() -> None:
    keys = [f"event-{n}" for n in range(3000)]
    first = {key: replica_order(key, URLS)[0] for key in keys}
    assert all(900 <= count <= 1100 for count in Counter(first.values()).values())
    without_third = {key: replica_order(key, URLS[:2])[0] for key in keys}
    assert {key for key in keys if without_third[key] != first[key]} == {
        key for key in keys if first[key] == URLS[2]
    }


@pytest.mark.parametrize(
    ("event", "key"),
    [
        pytest.param(LlmRequest(event_id="e1", model="m", latency_ms=1), "e1", id="llm-request-by-id"),
        pytest.param(Feedback(event_id="e2", thumbs="up"), "e2", id="feedback-by-id"),
        pytest.param(BudgetSpend(event_id="e3", category="compute", amount_usd=1), "e3", id="spend-by-id"),
        pytest.param(
            Deployment(event_id="e4", component="router", action="deployed", version="1.2"),
            "e4",
            id="deployment-by-id",
        ),
        pytest.param(ExperimentProgress(event_id="e5", experiment_id="x"), STATE_KEY, id="experiment-state"),
        pytest.param(ModelHealth(event_id="e6", model="m", available=True), STATE_KEY, id="health-state"),
        pytest.param(BudgetLimit(event_id="e7", period="day", limit_usd=5), STATE_KEY, id="limit-state"),
    ],
)
def test_routing_keys(event: Event, key: str) -> None:
    assert routing_key(event) == key


def test_an_event_without_id_has_no_key() -> None:
    with pytest.raises(ValueError, match="event_id"):
        routing_key(Feedback(thumbs="up"))


# --- Delivery ------------------------------------------------------------------------------------


def test_each_event_goes_once_to_its_replica_and_state_to_the_owner(
    replicas: Callable[..., Replica], new_replica_client: Callable[..., ReplicaClient]
) -> None:
    servers = [replicas() for _ in range(3)]
    urls = [server.url for server in servers]
    client = new_replica_client(urls)
    progress = [ExperimentProgress(experiment_id="x", progress=n / 20) for n in range(20)]
    for n in range(300):
        client.emit(Feedback(thumbs="up"))
        if n % 15 == 0:
            client.emit(progress[n // 15])

    assert client.flush(timeout=5)
    assert client.stats.sent == 320 and client.stats.failed_over == 0
    owner = next(server for server in servers if server.url == replica_order(STATE_KEY, urls)[0])
    states = [event for request in owner.requests for event in request if event["type"] == "experiment"]
    assert [event["progress"] for event in states] == [n / 20 for n in range(20)]
    for server in servers:
        feedback = [event for request in server.requests for event in request if event["type"] == "feedback"]
        assert len(feedback) > 60, "every replica takes a share"
        assert all(replica_order(str(event["event_id"]), urls)[0] == server.url for event in feedback)
    arrived = Counter(id_ for server in servers for id_ in server.ids())
    assert len(arrived) == 320 and set(arrived.values()) == {1}


def test_a_retry_goes_back_to_the_replica_that_may_have_applied_it(
    replicas: Callable[..., Replica], new_replica_client: Callable[..., ReplicaClient]
) -> None:
    servers = [replicas(answers=[500]), replicas(), replicas()]
    urls = [server.url for server in servers]
    client = new_replica_client(urls)
    for event_id in ids_preferring(servers[0].url, urls, 10):
        client.emit(Feedback(event_id=event_id, thumbs="down"))

    assert client.flush(timeout=5)
    first, second = servers[0].requests
    assert [event["event_id"] for event in first] == [event["event_id"] for event in second]
    assert servers[1].requests == servers[2].requests == []
    assert (client.stats.sent, client.stats.retried, client.stats.failed_over) == (10, 10, 0)


def test_events_for_an_unreachable_replica_fail_over_once(
    replicas: Callable[..., Replica], new_replica_client: Callable[..., ReplicaClient]
) -> None:
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    owner = replica_order(STATE_KEY, urls)[0]  # the state owner is the one that is down
    live = [replicas(port) for port, url in zip(ports, urls, strict=True) if url != owner]
    client = new_replica_client(urls)
    for n in range(200):
        client.emit(Feedback(thumbs="up"))
        if n % 20 == 0:
            client.emit(ExperimentProgress(experiment_id="x", progress=n / 200))

    assert client.flush(timeout=5)
    arrived = Counter(id_ for server in live for id_ in server.ids())
    assert len(arrived) == 210 and set(arrived.values()) == {1}, "each event arrives once"
    stats = client.stats
    assert (stats.sent, stats.dropped, stats.pending) == (210, 0, 0)
    assert stats.failed_over >= 1
    for server in live:
        for event in (event for request in server.requests for event in request):
            ranking = replica_order(routing_key_of(event), urls)
            assert server.url == next(url for url in ranking if url != owner)


def routing_key_of(wire: dict[str, object]) -> str:
    return STATE_KEY if wire["type"] == "experiment" else str(wire["event_id"])


@pytest.mark.parametrize(
    "batch_size",
    [
        pytest.param(50, id="in-one-batch"),
        pytest.param(5, id="queued-behind-the-pinned-batch"),
    ],
)
def test_an_event_that_may_have_been_applied_waits_for_its_replica(
    replicas: Callable[..., Replica], new_replica_client: Callable[..., ReplicaClient], batch_size: int
) -> None:
    hanging = replicas(answers=[HANG])
    others = [replicas(), replicas()]
    urls = [hanging.url, *(server.url for server in others)]
    client = new_replica_client(urls, timeout=0.3, batch_size=batch_size)
    pinned = ids_preferring(hanging.url, urls, 5)
    for event_id in pinned:
        client.emit(Feedback(event_id=event_id, thumbs="up"))
    client.flush(timeout=0)
    assert wait_until(lambda: client.stats.retried >= 5, timeout=3), "the first attempt got no answer"
    hanging.stop()  # now refused: the events may not move, the replica may have applied them

    later = ids_preferring(hanging.url, urls, 17)[5:]
    for event_id in later:
        client.emit(Feedback(event_id=event_id, thumbs="up"))
    assert not client.flush(timeout=1.0)
    moved = {id_ for server in others for id_ in server.ids()}
    assert moved == set(later), "only the events that never reached it fail over"
    assert client.stats.pending == 5

    revived = replicas(hanging.port)
    assert client.flush(timeout=5)
    assert revived.ids() == pinned
    assert (client.stats.sent, client.stats.failed_over) == (17, 12)


def test_unreachable_and_unanswered_requests_are_told_apart(replicas: Callable[..., Replica]) -> None:
    body = encode_batch([b'{"type":"feedback","thumbs":"up"}'])
    closed = f"http://127.0.0.1:{free_port()}/v1/events"
    assert post_batch(closed, body, {}, 1.0).verdict is Verdict.UNAVAILABLE
    hanging = replicas(answers=[HANG])
    assert post_batch(f"{hanging.url}/v1/events", body, {}, 0.2).verdict is Verdict.RETRY


def test_llm_calls_are_timed_through_the_replicas(
    replicas: Callable[..., Replica], new_replica_client: Callable[..., ReplicaClient]
) -> None:
    servers = [replicas(), replicas()]
    client = new_replica_client([server.url for server in servers])
    with client.llm_call("replica-llm", provider="acme") as call:
        call.record(input_tokens=3, cost_usd=0.001)

    assert client.flush(timeout=5)
    (event,) = [event for server in servers for request in server.requests for event in request]
    assert (event["type"], event["model"], event["input_tokens"]) == ("llm_request", "replica-llm", 3)


def test_replica_urls_lists_every_address_of_a_name() -> None:
    assert replica_urls("127.0.0.1", 9477) == ["http://127.0.0.1:9477"]
    assert set(replica_urls("localhost", 9477, scheme="https")) <= {
        "https://127.0.0.1:9477",
        "https://[::1]:9477",
    }


def test_the_replica_list_follows_a_function(
    replicas: Callable[..., Replica], new_replica_client: Callable[..., ReplicaClient]
) -> None:
    first, second, third = replicas(), replicas(), replicas()
    listed = [first.url, second.url]
    client = new_replica_client(lambda: listed)
    early = ids_preferring(second.url, listed, 3)
    for event_id in early:
        client.emit(Feedback(event_id=event_id, thumbs="down"))
    assert client.flush(timeout=5)

    listed = [first.url, third.url]  # the second is gone, a third came
    client.refresh()
    assert client.urls == (first.url, third.url)
    ids = [f"event-{n}" for n in range(60)]
    for event_id in ids:
        client.emit(Feedback(event_id=event_id, thumbs="up"))

    assert client.flush(timeout=5)
    assert second.ids() == early, "nothing new went to the replica that left"
    assert client.stats.sent == 63, "its client's counts stay in the stats"
    for server in (first, third):
        assert set(server.ids()) == {id_ for id_ in ids if replica_order(id_, client.urls)[0] == server.url}
    assert set(client.replica_stats()) == {first.url, third.url}, "the idle client of the second is closed"
