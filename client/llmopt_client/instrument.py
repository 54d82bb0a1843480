"""Instrumentation of LLM calls: time one, record what it used, report it as an ``llm_request``.

``with client.llm_call("gpt-4o-mini", provider="openai") as call:`` times the block, runs it inside
the current trace (or a new one), and emits an ``llm_request`` at the end: ``status="success"``, or
``status="error"`` with the exception's class name as ``error_type`` when the block raises (the
exception is never swallowed). ``client.instrument(...)`` does the same for every call of a function.

For a streamed answer, ``call.first_token()`` when the first chunk arrives (or iterate
``call.stream(chunks)``, which does it) reports the call as streamed with its time to first token;
``call.record(finish_reason="length", ...)`` says why the model stopped.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Literal, Protocol, TypedDict, TypeVar, Unpack, cast

from llmopt_client.events import LlmRequest
from llmopt_client.tracing import TraceContext, trace_context

F = TypeVar("F", bound=Callable[..., object])
C = TypeVar("C")


class Emitter(Protocol):
    """What reports a timed call: a :class:`llmopt_client.Client` or a ``ReplicaClient``."""

    def emit(self, event: LlmRequest) -> None: ...


class CallLabels(TypedDict, total=False):
    """What an LLM call is, known before it runs (see :class:`llmopt_client.LlmRequest`)."""

    provider: str
    task_type: str
    experiment_id: str
    variant_id: str
    bandit_id: str
    arm_id: str
    parameter: str
    parameter_value: float
    operation: Literal["chat", "text_completion", "embeddings", "generate_content", "other"]
    # A retry or fallback of a logical call: which try this is, and the model it replaces.
    attempt: int
    fallback_from: str
    # Values of the dimensions the exporter declares (team, application...).
    labels: dict[str, str]


class Outcome(TypedDict, total=False):
    """What an LLM call used and how good its answer was, known once it returns."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    finish_reason: Literal["stop", "length", "content_filter", "tool_calls", "error", "other"]
    cost_usd: float
    baseline_cost_usd: float
    quality: float
    accuracy: float
    relevance: float
    coherence: float
    completeness: float


_current_call: ContextVar[LlmCall | None] = ContextVar("llmopt_current_call", default=None)


def current_call() -> LlmCall | None:
    """The LLM call being timed in this thread or task, if any (e.g. inside an instrumented function)."""
    return _current_call.get()


class LlmCall:
    """One timed LLM call; use it once, with ``with`` or ``async with``."""

    def __init__(self, client: Emitter, model: str, labels: CallLabels) -> None:
        self._client = client
        self._model = model
        self._labels = labels
        self._outcome: Outcome = {}
        self._trace_scope: AbstractContextManager[TraceContext] | None = None
        self._call_token: Token[LlmCall | None] | None = None
        self._started = 0.0
        self._first_token_ms: float | None = None
        self.trace: TraceContext | None = None

    def record(self, **outcome: Unpack[Outcome]) -> None:
        """Record tokens, cost and quality scores of the call (may be called more than once)."""
        self._outcome.update(outcome)

    def first_token(self) -> None:
        """The first chunk of a streamed answer arrived now (later calls change nothing)."""
        if self._first_token_ms is None:
            self._first_token_ms = (time.perf_counter() - self._started) * 1000.0

    def stream(self, chunks: Iterable[C]) -> Iterator[C]:
        """``chunks`` as they come, noting the first as the first token."""
        for chunk in chunks:
            self.first_token()
            yield chunk

    async def astream(self, chunks: AsyncIterable[C]) -> AsyncIterator[C]:
        """``chunks`` of an async stream as they come, noting the first as the first token."""
        async for chunk in chunks:
            self.first_token()
            yield chunk

    def __enter__(self) -> LlmCall:
        if self._trace_scope is not None:
            raise RuntimeError("an LlmCall times one call; create a new one with client.llm_call()")
        self._trace_scope = trace_context()
        self.trace = self._trace_scope.__enter__()
        self._call_token = _current_call.set(self)
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        latency_ms = (time.perf_counter() - self._started) * 1000.0
        if self._call_token is not None:
            _current_call.reset(self._call_token)
        if self._trace_scope is not None:
            self._trace_scope.__exit__(None, None, None)
        trace = self.trace
        first_token_ms = None if self._first_token_ms is None else min(self._first_token_ms, latency_ms)
        self._client.emit(
            LlmRequest(
                model=self._model,
                **self._labels,
                **self._outcome,
                stream=first_token_ms is not None,
                time_to_first_token_ms=first_token_ms,
                latency_ms=latency_ms,
                status="success" if exc_type is None else "error",
                error_type=None if exc_type is None else exc_type.__name__,
                trace_id=trace.trace_id if trace else None,
                span_id=trace.span_id if trace else None,
            )
        )

    async def __aenter__(self) -> LlmCall:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def instrument(client: Emitter, model: str, labels: CallLabels) -> Callable[[F], F]:
    """Decorate a sync or async function so that each call is an :class:`LlmCall`."""

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):
            run_async = cast(Callable[..., Awaitable[object]], func)

            @functools.wraps(func)
            async def timed_async(*args: object, **kwargs: object) -> object:
                async with LlmCall(client, model, labels):
                    return await run_async(*args, **kwargs)

            return cast(F, timed_async)

        @functools.wraps(func)
        def timed(*args: object, **kwargs: object) -> object:
            with LlmCall(client, model, labels):
                return func(*args, **kwargs)

        return cast(F, timed)

    return decorate
