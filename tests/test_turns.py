"""Ingest's share of the event loop: after a slice of ingest work, what else is due runs first,
and ingest that waits past its bound is refused."""

from __future__ import annotations

import asyncio
import time

from app.turns import SLICE, Turns


def test_after_a_slice_of_ingest_what_else_is_due_runs_first() -> None:
    async def scenario() -> list[str]:
        turns = Turns()
        order: list[str] = []
        assert await turns.wait(1.0)
        time.sleep(SLICE * 2)  # the work of a large batch
        asyncio.get_running_loop().call_soon(order.append, "health check")
        assert await turns.wait(1.0)
        order.append("next batch")
        return order

    assert asyncio.run(scenario()) == ["health check", "next batch"]


def test_within_a_slice_ingest_goes_on_in_the_same_turn() -> None:
    async def scenario() -> list[str]:
        turns = Turns()
        order: list[str] = []
        assert await turns.wait(1.0)
        asyncio.get_running_loop().call_soon(order.append, "health check")
        assert await turns.wait(1.0)
        order.append("next batch")
        await asyncio.sleep(0)
        return order

    assert asyncio.run(scenario()) == ["next batch", "health check"]


def test_batches_past_their_wait_are_refused_in_order() -> None:
    batches, max_wait = 10, SLICE * 3

    async def scenario() -> list[bool]:
        turns = Turns()

        async def batch() -> bool:
            if not await turns.wait(max_wait):
                return False
            time.sleep(SLICE * 1.5)  # each batch spends its turn's slice
            return True

        return list(await asyncio.gather(*(batch() for _ in range(batches))))

    applied = asyncio.run(scenario())
    # One batch a turn, first come first served: the first ones are applied, the last refused.
    assert applied[0] and not applied[-1]
    assert applied == sorted(applied, reverse=True)
