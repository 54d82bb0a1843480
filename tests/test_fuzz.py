"""Fuzzing: the HTTP API against its OpenAPI schema, and properties of ingest over generated events.

schemathesis drives every route from the schema the app serves (no 5xx; statuses, content types,
headers and bodies as documented; schema-violating events refused). hypothesis generates event
sequences: whatever the batching and whichever batches are sent again, the counters equal the sums
of the distinct events; and a batch with one invalid event changes no series but the self-metrics.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Settings
from app.errors import normalise_error_type
from app.main import create_app
from tests.conftest import Exporter, make_exporter
from tests.exposition import SampleKey, changed, key

Json = dict[str, Any]
Samples = dict[SampleKey, float]

# --- schemathesis --------------------------------------------------------------------------------

INGEST_TOKEN = "fuzz-ingest-token"
METRICS_TOKEN = "fuzz-metrics-token"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    # Every event the body schema forbids (unknown field, wrong type, out of range...) is refused.
    # Not checked the other way: rules across fields (cached_tokens <= input_tokens, ...) have no
    # JSON Schema, so a schema-valid event may still be refused.
    schemathesis.checks.negative_data_rejection,
]


# How this API refuses what it cannot accept: 400 not JSON, 413 too large, 415 wrong media type or
# encoding, 422 invalid event.
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": ["400", "413", "415", "422"]}}}
)


@schemathesis.serializer("application/x-protobuf")
def _protobuf(context: Any, value: Any) -> bytes:
    """A generated protobuf body (a binary string) as it is: the bytes POST /v1/traces parses."""
    return value if isinstance(value, bytes) else str(value).encode()


def fuzzed_schema() -> Any:
    """The schema a secured, tightly limited exporter serves, with the ingest body described."""
    app = create_app(
        Settings(
            ingest_tokens=[INGEST_TOKEN],
            metrics_bearer_token=METRICS_TOKEN,
            # Small limits, so generated bodies also reach the documented 413 answers.
            max_body_bytes=1024,
            max_batch_events=3,
            api_docs=True,  # closed with ingest auth unless opened
        )
    )
    served = TestClient(app).get("/openapi.json").json()
    # The app documents the event contract as the request body of the ingest route.
    assert served["paths"]["/v1/events"]["post"]["requestBody"]["required"] is True
    schema = schemathesis.openapi.from_dict(served, config=CONFIG)
    schema.app = app
    return schema


# Loaded at collection: schemathesis' lazy `from_fixture` needs pytest's private `_nodeid`, which
# pytest 9.2 no longer has.
fuzzed = fuzzed_schema()


@fuzzed.parametrize()  # type: ignore[untyped-decorator]
@settings(max_examples=50, deadline=None)
def test_api_answers_as_documented(case: schemathesis.Case[Any]) -> None:
    token = METRICS_TOKEN if case.path == "/metrics" else INGEST_TOKEN
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


# --- hypothesis: generated events -----------------------------------------------------------------

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku")
PROVIDERS = ("openai", "anthropic")
TASK_TYPES = ("summarization", "classification", "chat")
VARIANTS = (("prompt-v5", "control"), ("prompt-v5", "variant-b"), ("style-v2", "concise"))
ARMS = (("temperature", "t0.3"), ("temperature", "t0.7"), ("top_p", "p0.9"))

money = st.floats(min_value=0, max_value=50, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=200_000)


@st.composite
def llm_requests(draw: st.DrawFn) -> Json:
    input_tokens = draw(tokens)
    event: Json = {
        "type": "llm_request",
        "model": draw(st.sampled_from(MODELS)),
        "provider": draw(st.sampled_from(PROVIDERS)),
        "task_type": draw(st.sampled_from(TASK_TYPES)),
        "latency_ms": draw(st.floats(min_value=0, max_value=120_000, allow_nan=False)),
        "input_tokens": input_tokens,
        "output_tokens": draw(tokens),
        "cached_tokens": draw(st.integers(min_value=0, max_value=input_tokens)),
        "cost_usd": draw(money),
    }
    if draw(st.booleans()):
        event["status"] = "error"
        event["error_type"] = draw(st.sampled_from(("RateLimitError", "Timeout")))
    if draw(st.booleans()):
        event["baseline_cost_usd"] = draw(money)
    if draw(st.booleans()):
        event["experiment_id"], event["variant_id"] = draw(st.sampled_from(VARIANTS))
    return event


@st.composite
def feedback(draw: st.DrawFn) -> Json:
    event: Json = {"type": "feedback", "model": draw(st.sampled_from(MODELS))}
    if draw(st.booleans()):
        event["experiment_id"], event["variant_id"] = draw(st.sampled_from(VARIANTS))
    answers = {
        "thumbs": st.sampled_from(("up", "down")),
        "nps": st.integers(min_value=0, max_value=10),
        "csat": st.integers(min_value=1, max_value=5),
    }
    given_answers = draw(st.sets(st.sampled_from(sorted(answers)), min_size=1))
    for name in sorted(given_answers):
        event[name] = draw(answers[name])
    return event


@st.composite
def bandit_rewards(draw: st.DrawFn) -> Json:
    bandit, arm = draw(st.sampled_from(ARMS))
    event: Json = {
        "type": "bandit",
        "action": "reward",
        "bandit_id": bandit,
        "arm_id": arm,
        "reward": draw(st.floats(min_value=0, max_value=1, allow_nan=False)),
    }
    if draw(st.booleans()):
        event["regret"] = draw(st.floats(min_value=0, max_value=1, allow_nan=False))
    return event


budget_spends = st.builds(
    lambda category, amount: {
        "type": "budget",
        "action": "spend",
        "category": category,
        "amount_usd": amount,
    },
    st.sampled_from(("compute", "infrastructure")),
    money,
)
valid_events = st.one_of(llm_requests(), feedback(), bandit_rewards(), budget_spends)


def expected_counters(events: list[Json]) -> Samples:
    """What the exporter must count for ``events`` applied once each, in order (a reference model
    written from the metrics catalog, independent of the recorder)."""
    total: defaultdict[SampleKey, float] = defaultdict(float)
    for event in events:
        total[key("llmopt_exporter_events_accepted_total", type=event["type"])] += 1
        if event["type"] == "llm_request":
            _count_llm_request(total, event)
        elif event["type"] == "feedback":
            _count_feedback(total, event)
        elif event["type"] == "bandit":
            arm = {"bandit": event["bandit_id"], "arm": event["arm_id"]}
            total[key("llmopt_bandit_reward_count", **arm)] += 1
            total[key("llmopt_bandit_reward_sum", **arm)] += event["reward"]
            total[key("llmopt_bandit_reward_squares_total", **arm)] += event["reward"] * event["reward"]
            if "regret" in event:
                total[key("llmopt_bandit_regret_total", bandit=event["bandit_id"])] += event["regret"]
        else:
            total[key("llmopt_spend_usd_total", category=event["category"])] += event["amount_usd"]
    return dict(total)


def _count_llm_request(total: defaultdict[SampleKey, float], event: Json) -> None:
    llm = {name: event[name] for name in ("model", "provider", "task_type")}
    is_error = event.get("status") == "error"
    total[key("llmopt_llm_requests_total", **llm)] += 1
    if is_error:
        total[
            key(
                "llmopt_llm_request_errors_total", **llm, error_type=normalise_error_type(event["error_type"])
            )
        ] += 1
    total[key("llmopt_llm_request_duration_seconds_count", **llm)] += 1
    total[key("llmopt_llm_request_duration_seconds_sum", **llm)] += event["latency_ms"] / 1000.0
    total[key("llmopt_llm_tokens_total", **llm, direction="input")] += event["input_tokens"]
    total[key("llmopt_llm_tokens_total", **llm, direction="output")] += event["output_tokens"]
    total[key("llmopt_llm_cached_tokens_total", **llm)] += event["cached_tokens"]
    total[key("llmopt_llm_cost_usd_total", **llm)] += event["cost_usd"]
    # No baseline figure means the call cost what the baseline would have.
    baseline: float = event["baseline_cost_usd"] if "baseline_cost_usd" in event else event["cost_usd"]
    total[key("llmopt_llm_baseline_cost_usd_total", **llm)] += baseline
    total[key("llmopt_spend_usd_total", category="token")] += event["cost_usd"]
    if "experiment_id" in event:
        variant = {"experiment": event["experiment_id"], "variant": event["variant_id"]}
        total[key("llmopt_experiment_variant_requests_total", **variant)] += 1
        total[key("llmopt_experiment_variant_errors_total", **variant)] += 1 if is_error else 0
        total[key("llmopt_experiment_variant_cost_usd_total", **variant)] += event["cost_usd"]


def _count_feedback(total: defaultdict[SampleKey, float], event: Json) -> None:
    labels = {
        "model": event["model"],
        "experiment": event.get("experiment_id", ""),
        "variant": event.get("variant_id", ""),
    }
    if "thumbs" in event:
        total[key("llmopt_feedback_thumbs_total", **labels, rating=event["thumbs"])] += 1
    if "nps" in event:
        category = "promoter" if event["nps"] >= 9 else "passive" if event["nps"] >= 7 else "detractor"
        total[key("llmopt_feedback_nps_responses_total", **labels, category=category)] += 1
    if "csat" in event:
        total[key("llmopt_feedback_csat_responses_total", **labels)] += 1
        total[key("llmopt_feedback_csat_satisfied_total", **labels)] += 1 if event["csat"] >= 4 else 0


COUNTED = frozenset(
    {
        "llmopt_exporter_events_accepted_total",
        "llmopt_llm_requests_total",
        "llmopt_llm_request_errors_total",
        "llmopt_llm_request_duration_seconds_count",
        "llmopt_llm_request_duration_seconds_sum",
        "llmopt_llm_tokens_total",
        "llmopt_llm_cached_tokens_total",
        "llmopt_llm_cost_usd_total",
        "llmopt_llm_baseline_cost_usd_total",
        "llmopt_spend_usd_total",
        "llmopt_experiment_variant_requests_total",
        "llmopt_experiment_variant_errors_total",
        "llmopt_experiment_variant_cost_usd_total",
        "llmopt_feedback_thumbs_total",
        "llmopt_feedback_nps_responses_total",
        "llmopt_feedback_csat_responses_total",
        "llmopt_feedback_csat_satisfied_total",
        "llmopt_bandit_reward_count",
        "llmopt_bandit_reward_sum",
        "llmopt_bandit_reward_squares_total",
        "llmopt_bandit_regret_total",
    }
)


def non_zero(samples: Samples, names: frozenset[str]) -> Samples:
    # Series touched at zero (so rate() sees them start) carry no information about the sums.
    return {sample: value for sample, value in samples.items() if sample[0] in names and value != 0}


def assert_close(actual: Samples, expected: Samples) -> None:
    assert sorted(actual) == sorted(expected)
    wrong = {
        sample: (actual[sample], value)
        for sample, value in expected.items()
        if not math.isclose(actual[sample], value, rel_tol=1e-9, abs_tol=1e-9)
    }
    assert wrong == {}, "(exposed, expected) differ"


@contextlib.contextmanager
def fresh_exporter() -> Iterator[Exporter]:
    # One exporter per generated example: no example sees another's counters.
    yield from make_exporter()


def post(exporter: Exporter, events: list[Json], *, is_bare: bool, is_gzipped: bool) -> Json:
    document: Any = events[0] if is_bare and len(events) == 1 else {"events": events}
    body = json.dumps(document).encode()
    headers = {"content-encoding": "gzip"} if is_gzipped else {}
    response = exporter.post(gzip.compress(body) if is_gzipped else body, **headers)
    assert response.status_code == 200, response.text
    result: Json = response.json()
    return result


@given(data=st.data(), events=st.lists(valid_events, min_size=1, max_size=30))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_counters_are_the_sums_of_distinct_events_whatever_the_batching_and_retries(
    data: st.DataObject, events: list[Json]
) -> None:
    for index, event in enumerate(events):
        event["event_id"] = f"event-{index}"
    cuts = data.draw(st.sets(st.integers(min_value=0, max_value=len(events))))
    bounds = sorted({0, len(events)} | cuts)
    batches = [events[start:end] for start, end in itertools.pairwise(bounds)]
    encodings = st.fixed_dictionaries({"is_bare": st.booleans(), "is_gzipped": st.booleans()})
    duplicates_sent: Counter[str] = Counter()
    with fresh_exporter() as exporter:
        for sent, batch in enumerate(batches, start=1):
            result = post(exporter, batch, **data.draw(encodings))
            assert (result["accepted"], result["duplicates"]) == (len(batch), 0)
            # A client that missed the answer sends an earlier batch again, event ids and all.
            for again in data.draw(st.lists(st.integers(min_value=0, max_value=sent - 1), max_size=2)):
                result = post(exporter, batches[again], **data.draw(encodings))
                assert (result["accepted"], result["duplicates"]) == (0, len(batches[again]))
                duplicates_sent.update(event["type"] for event in batches[again])
        exposed = exporter.scrape()
    assert_close(non_zero(exposed, COUNTED), non_zero(expected_counters(events), COUNTED))
    duplicates = {
        key("llmopt_exporter_events_duplicate_total", type=event_type): float(count)
        for event_type, count in duplicates_sent.items()
    }
    assert non_zero(exposed, frozenset({"llmopt_exporter_events_duplicate_total"})) == duplicates


def _spoil(event: Json, field: str, value: Any) -> Json:
    return {**event, field: value}


def _without(event: Json, field: str) -> Json:
    return {name: value for name, value in event.items() if name != field}


# Each yields an event the contract refuses, and the type the refusal is counted under.
invalid_events = st.one_of(
    llm_requests().map(lambda e: (_spoil(e, "cost_usd", -0.01), "llm_request")),
    llm_requests().map(lambda e: (_spoil(e, "cached_tokens", e["input_tokens"] + 1), "llm_request")),
    llm_requests().map(
        lambda e: (_spoil(_spoil(e, "status", "success"), "error_type", "Timeout"), "llm_request")
    ),
    llm_requests().map(lambda e: (_spoil(e, "model", "bad model!"), "llm_request")),
    llm_requests().map(lambda e: (_without(e, "latency_ms"), "llm_request")),
    feedback().map(lambda e: (_spoil(e, "csat", 6), "feedback")),
    feedback().map(lambda e: (_spoil(e, "nps", -1), "feedback")),
    bandit_rewards().map(lambda e: (_spoil(e, "reward", -0.5), "bandit")),
    bandit_rewards().map(lambda e: (_without(e, "arm_id"), "bandit")),
    budget_spends.map(lambda e: (_spoil(e, "category", "token"), "budget")),
    valid_events.map(lambda e: (_spoil(e, "surprise", 1), e["type"])),
    valid_events.map(lambda e: (_spoil(e, "type", "llm_reqest"), "unknown")),
)


@given(
    history=st.lists(valid_events, max_size=8),
    batch=st.lists(valid_events, max_size=8),
    invalid=invalid_events,
    data=st.data(),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_batch_with_one_invalid_event_changes_nothing_but_self_metrics(
    history: list[Json], batch: list[Json], invalid: tuple[Json, str], data: st.DataObject
) -> None:
    for index, event in enumerate(history):
        event["event_id"] = f"history-{index}"
    for index, event in enumerate(batch):
        event["event_id"] = f"batch-{index}"
    bad_event, bad_type = invalid
    position = data.draw(st.integers(min_value=0, max_value=len(batch)))
    refused = [*batch[:position], bad_event, *batch[position:]]
    with fresh_exporter() as exporter:
        if history:
            post(exporter, history, is_bare=False, is_gzipped=False)
        before = exporter.scrape()
        response = exporter.post({"events": refused})
        after = exporter.scrape()
        # The valid events of the refused batch were not remembered: sent again alone, they count.
        retried = post(exporter, batch, is_bare=False, is_gzipped=False) if batch else None
    assert response.status_code == 422, response.text
    assert {problem["index"] for problem in response.json()["problems"]} == {position}
    assert changed(before, after) == {}
    rejections = Counter({("invalid_event", bad_type): 1})
    rejections.update(("batch_rejected", event["type"]) for event in batch)
    rejected = {
        key("llmopt_exporter_events_rejected_total", reason=reason, type=event_type): float(count)
        for (reason, event_type), count in rejections.items()
    }
    assert non_zero(after, frozenset({"llmopt_exporter_events_rejected_total"})) == rejected
    if retried is not None:
        assert (retried["accepted"], retried["duplicates"]) == (len(batch), 0)
