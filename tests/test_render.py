"""The fast exposition writes exactly what prometheus_client writes for the same updates."""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from app import metrics as m
from app import render
from app.metrics import ALL_METRICS, MetricSpec, build_metrics
from app.render import Exposition
from app.store import MetricStore
from tests.exposition import key, samples

# Label values a client could never send but a snapshot or a future label could hold.
ODD_VALUES = ("plain", 'quo"te', "back\\slash", "new\nline", "ünï", "a,b", "le", "")
NUMBERS = (0, 1, 0.1, 2.5, 1e-9, 5.0, 1234567.0, 1e22, 0.00039, 81.92, 100)
_EXEMPLAR_TIMESTAMP = re.compile(r"( # \{[^}]*\} \S+) \d+\.\d+$", re.MULTILINE)
# The store counts its own series; prometheus_client's twin below does not.
_OWN_BOOKKEEPING = re.compile(r"^llmopt_exporter_series\{.*\n", re.MULTILINE)


class Twin:
    """The same updates on the store and on prometheus_client's own metric objects."""

    def __init__(self) -> None:
        # As create_app does: the exporter never writes `_created` series.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.store = MetricStore(CollectorRegistry())
        self.registry = CollectorRegistry()
        self.metrics: dict[MetricSpec, MetricWrapperBase] = build_metrics(self.registry)

    def child(self, spec: MetricSpec, labels: tuple[str, ...]) -> MetricWrapperBase:
        metric = self.metrics[spec]
        return metric.labels(*labels) if labels else metric

    def update(
        self, spec: MetricSpec, labels: tuple[str, ...], value: float, exemplar: dict[str, str] | None
    ) -> None:
        if spec.kind == "counter":
            self.store.inc(spec, labels, value, exemplar)
            self.child(spec, labels).inc(value, exemplar)  # type: ignore[attr-defined]
        elif spec.kind == "gauge":
            self.store.set(spec, labels, value)
            self.child(spec, labels).set(value)  # type: ignore[attr-defined]
        elif spec.kind == "histogram":
            self.store.observe(spec, labels, value, exemplar)
            self.child(spec, labels).observe(value, exemplar)  # type: ignore[attr-defined]
        else:
            self.store.observe(spec, labels, value)
            self.child(spec, labels).observe(value)  # type: ignore[attr-defined]

    def remove(self, spec: MetricSpec, labels: tuple[str, ...]) -> None:
        if (spec, labels) in self.store._bound:
            self.store.remove(spec, labels)
            self.metrics[spec].remove(*labels)


def _ours(exposition: Exposition, is_openmetrics: bool) -> str:
    text = exposition.render_now(is_openmetrics).decode()
    text = text[text.index("# HELP llmopt_") :]
    return _EXEMPLAR_TIMESTAMP.sub(r"\1 <t>", _OWN_BOOKKEEPING.sub("", text))


def _theirs(registry: CollectorRegistry, is_openmetrics: bool) -> str:
    encode = generate_openmetrics if is_openmetrics else generate_latest
    return _EXEMPLAR_TIMESTAMP.sub(r"\1 <t>", _OWN_BOOKKEEPING.sub("", encode(registry).decode()))


def _random_updates(twin: Twin, rng: random.Random, count: int) -> None:
    for _ in range(count):
        spec = rng.choice(ALL_METRICS)
        labels = tuple(rng.choice(ODD_VALUES[:4] if rng.random() < 0.8 else ODD_VALUES) for _ in spec.labels)
        if spec.labels and rng.random() < 0.05:
            twin.remove(spec, labels)
            continue
        value = rng.choice(NUMBERS) * (1 if spec.kind != "gauge" or rng.random() < 0.8 else -1)
        exemplar = {"trace_id": f"{rng.getrandbits(128):032x}"} if rng.random() < 0.3 else None
        if exemplar is not None and rng.random() < 0.5:
            exemplar["span_id"] = 'sp"an\\'
        twin.update(spec, labels, value, exemplar)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("is_openmetrics", [False, True], ids=["text", "openmetrics"])
def test_same_bytes_as_prometheus_client(seed: int, is_openmetrics: bool) -> None:
    """Random updates, removals and re-renders (so cached lines are reused and invalidated)."""
    twin = Twin()
    exposition = Exposition(twin.store)
    rng = random.Random(seed)
    for _ in range(3):
        _random_updates(twin, rng, 400)
        assert _ours(exposition, is_openmetrics) == _theirs(twin.registry, is_openmetrics)


@pytest.mark.parametrize("is_openmetrics", [False, True], ids=["text", "openmetrics"])
def test_the_store_as_a_collector_is_the_same_too(is_openmetrics: bool) -> None:
    """The slow path (prometheus_client's encoders over the store) writes what the twin writes."""
    twin = Twin()
    _random_updates(twin, random.Random(42), 600)
    assert twin.store.registry is not None
    assert _theirs(twin.store.registry, is_openmetrics) == _theirs(twin.registry, is_openmetrics)


def test_a_paused_render_is_whole_and_sees_later_updates_next_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "SLICE_SECONDS", 0.0)
    store = MetricStore(CollectorRegistry())
    exposition = Exposition(store)
    for index in range(2000):
        store.inc(m.LLM_REQUESTS, (f"model-{index}", "p", "t"))
    pauses = 0

    async def pause_and_update() -> None:
        nonlocal pauses
        pauses += 1
        store.inc(m.LLM_REQUESTS, ("model-0", "p", "t"))

    paused = samples(b"".join(asyncio.run(exposition.render(False, pause_and_update))).decode())
    assert pauses >= 2000 // render._CHUNK
    # Updates made during the render's pauses may or may not show, but the output is whole...
    assert len([name for name, _ in paused if name == "llmopt_llm_requests_total"]) == 2000
    # ...and the next render shows every one of them.
    after = samples(exposition.render_now(False).decode())
    assert after[key("llmopt_llm_requests_total", model="model-0", provider="p", task_type="t")] == 1 + pauses


def test_scrapes_arriving_during_a_render_share_it(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MetricStore(CollectorRegistry())
    exposition = Exposition(store)
    expected = exposition.render_now(False)
    renders = 0
    render = exposition.render

    async def counted_render(is_openmetrics: bool) -> list[bytes]:
        nonlocal renders
        renders += 1
        await asyncio.sleep(0.01)
        return await render(is_openmetrics)

    monkeypatch.setattr(exposition, "render", counted_render)

    async def three_scrapes() -> list[Any]:
        return list(await asyncio.gather(*(exposition.scrape("") for _ in range(3))))

    scrapes = asyncio.run(three_scrapes())
    assert renders == 1
    assert {scrape.body for scrape in scrapes} == {expected}
