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
    else:
        store.inc(m.LLM_REQUESTS, labels)
        store.observe(m.LLM_REQUEST_DURATION, labels, 0.2, {"trace_id": "0af7651916cd43dd8448eb211c80319c"})


def _run(through_label_set: bool) -> dict[object, float]:
    store = MetricStore(guard=LabelGuard(limit=2))
    for round_ in range(3):
        for model in ("a", "b", "c", "d"):  # c and d overflow: every update counts an overflow
            _apply(store, (model, "p", "t"), through_label_set)
        if round_ == 1:
            assert store.remove_matching("model", "a") == 2  # a's series go, and come back
    return _values(store)


def test_label_set_updates_as_the_store_does() -> None:
    through_store = _run(through_label_set=False)
    assert (
        through_store[
            key("llmopt_exporter_label_overflow_total", metric="llmopt_llm_requests_total", label="model")
        ]
        == 6
    )
    assert _run(through_label_set=True) == through_store


def test_label_set_drops_series_once_removed() -> None:
    store = MetricStore()
    labels = ("a", "p", "t")
    store.label_set(labels)[m.LLM_REQUESTS].inc(1.0, None)
    store.remove(m.LLM_REQUESTS, labels)
    store.label_set(labels)[m.LLM_REQUESTS].inc(1.0, None)
    assert _values(store)[key("llmopt_llm_requests_total", model="a", provider="p", task_type="t")] == 1
