"""``MetricStore.label_set``: the same updates as through the store, overflow and removal
included."""

from __future__ import annotations

from app import metrics as m
from app.store import LabelGuard, MetricStore
from tests.exposition import key


def _values(store: MetricStore) -> dict[object, float]:
    return {
        key(sample.name, **sample.labels): sample.value
        for family in store.collect()
        for sample in family.samples
        if sample.value
    }


def _apply(store: MetricStore, labels: tuple[str, str, str], through_label_set: bool) -> None:
    if through_label_set:
        by_labels = store.label_set(labels)
        by_labels[m.LLM_REQUESTS].inc(1.0, None)
        by_labels[m.LLM_REQUEST_DURATION].observe(0.2, {"trace_id": "0af7651916cd43dd8448eb211c80319c"})
        by_labels[m.LLM_TOKENS, "input"].inc(7.0, None)
    else:
        store.inc(m.LLM_REQUESTS, labels)
        store.observe(m.LLM_REQUEST_DURATION, labels, 0.2, {"trace_id": "0af7651916cd43dd8448eb211c80319c"})
        store.inc(m.LLM_TOKENS, (*labels, "input"), 7.0)


def _run(through_label_set: bool) -> dict[object, float]:
    store = MetricStore(guard=LabelGuard(limit=2))
    for round_ in range(3):
        for model in ("a", "b", "c", "d"):  # c and d overflow: every update counts an overflow
            _apply(store, (model, "p", "t"), through_label_set)
        if round_ == 1:
            assert store.remove_matching("model", "a") == 3  # a's series go, and come back
    return _values(store)


def test_label_set_updates_as_the_store_does() -> None:
    through_store = _run(through_label_set=False)
    assert (
        through_store[
            key("llmopt_exporter_label_overflow_total", metric="llmopt_llm_requests_total", label="model")
        ]
        == 6
    )
    tokens = key("llmopt_llm_tokens_total", model="b", provider="p", task_type="t", direction="input")
    assert through_store[tokens] == 21
    assert _run(through_label_set=True) == through_store


def test_label_set_drops_series_once_removed() -> None:
    store = MetricStore()
    labels = ("a", "p", "t")
    store.label_set(labels)[m.LLM_REQUESTS].inc(1.0, None)
    store.remove(m.LLM_REQUESTS, labels)
    store.label_set(labels)[m.LLM_REQUESTS].inc(1.0, None)
    assert _values(store)[key("llmopt_llm_requests_total", model="a", provider="p", task_type="t")] == 1


# --- the series budget ---------------------------------------------------------------------------
def _by_model(store: MetricStore, name: str) -> dict[str, float]:
    return {
        sample.labels["model"]: sample.value
        for family in store.collect()
        for sample in family.samples
        if sample.name == name
    }


def _overflows(store: MetricStore) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["metric"], sample.labels["limit"]): sample.value
        for family in store.collect()
        for sample in family.samples
        if sample.name == "llmopt_exporter_series_overflow_total"
    }


def test_a_metric_keeps_at_most_its_label_sets_and_counts_the_rest_under_overflow() -> None:
    store = MetricStore(max_series_per_metric=3)
    for model in ("a", "b", "c", "d", "e", "a"):
        store.inc(m.LLM_REQUESTS, (model, "p", "t"))
    assert _by_model(store, "llmopt_llm_requests_total") == {"a": 2, "b": 1, "c": 1, "__overflow__": 2}
    assert _overflows(store) == {("llmopt_llm_requests_total", "max_series_per_metric"): 2}
    # Other metrics have their own allowance.
    store.inc(m.LLM_COST, ("d", "p", "t"), 0.5)
    assert _by_model(store, "llmopt_llm_cost_usd_total") == {"d": 0.5}


def test_the_exporter_keeps_at_most_max_series_and_fixed_labels_stay_apart() -> None:
    store = MetricStore(max_series=6)
    for model in ("a", "b", "c", "d"):
        store.inc(m.LLM_REQUESTS, (model, "p", "t"))
        store.inc(m.LLM_TOKENS, (model, "p", "t", "input"), 10)
        store.inc(m.LLM_TOKENS, (model, "p", "t", "output"), 1)
    # The first 6 series: a's three, b's requests, and the series gauges of both metrics; then
    # only overflow label sets (always admitted, one per value of the fixed labels).
    assert _by_model(store, "llmopt_llm_requests_total") == {"a": 1, "b": 1, "__overflow__": 2}
    tokens = {
        (sample.labels["model"], sample.labels["direction"]): sample.value
        for family in store.collect()
        for sample in family.samples
        if sample.name == "llmopt_llm_tokens_total"
    }
    # Labels from a fixed set keep their value in the overflow label set.
    assert tokens == {
        ("a", "input"): 10,
        ("a", "output"): 1,
        ("__overflow__", "input"): 30,
        ("__overflow__", "output"): 3,
    }
    assert _overflows(store) == {
        ("llmopt_llm_requests_total", "max_series"): 2,
        ("llmopt_llm_tokens_total", "max_series"): 6,
    }


def test_removed_series_free_their_place_and_their_label_values() -> None:
    store = MetricStore(guard=LabelGuard(limit=2), max_series_per_metric=2)
    arm = m.BANDIT_ARM_PARAMETER
    store.set(arm, ("b", "a1", "t"), 0.1)
    store.set(arm, ("b", "a2", "t"), 0.2)
    store.set(arm, ("b", "a3", "t"), 0.3)  # past both caps: the overflow label set
    assert set(store.families[arm].series) == {
        ("b", "a1", "t"),
        ("b", "a2", "t"),
        ("__overflow__", "__overflow__", "__overflow__"),
    }
    store.remove(arm, ("b", "a1", "t"))
    store.remove(arm, ("__overflow__", "__overflow__", "__overflow__"))
    store.set(arm, ("b", "a3", "t"), 0.3)  # a1's place and its arm value are free again
    assert {labels: series.value for labels, series in store.families[arm].series.items()} == {
        ("b", "a2", "t"): 0.2,
        ("b", "a3", "t"): 0.3,
    }


def test_overflow_gauges_expire_when_no_update_reaches_them() -> None:
    now = [1000.0]
    store = MetricStore(guard=LabelGuard(limit=1), clock=lambda: now[0])
    health = m.MODEL_AVAILABLE
    store.set(health, ("m1", "p"), 1)
    store.set(health, ("m2", "p"), 0)  # m2 is past the model cap
    store.inc(m.LLM_REQUESTS, ("m2", "p", "t"))  # a counter: never expires
    now[0] += 100
    store.set(health, ("m3", "p"), 1)  # the same overflow gauge, updated later
    assert store.expire_overflow(horizon=1050.0) == 0
    now[0] += 100
    assert store.expire_overflow(horizon=1150.0) == 1
    assert list(store.families[health].series) == [("m1", "p")]
    assert _by_model(store, "llmopt_llm_requests_total") == {"__overflow__": 1}
