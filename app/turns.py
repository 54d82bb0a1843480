"""Sharing the event loop between ingest and everything else.

The exporter applies events on its event loop. Left alone, every request whose body has arrived
would be applied in the same turn of the loop, so a health check or a scrape waits behind all of
them: seconds when many large batches arrive at once, however few requests are in flight. Instead
each turn gives ingest about :data:`SLICE` seconds; a request past that waits for a later turn,
and one that has waited longer than ``max_wait_seconds`` is answered 503 (see ``app.api.ingest``).
Every other request thus waits at most a slice per turn it needs, and when events arrive faster
than they can be applied, the excess is refused at once instead of queueing without end.
"""

from __future__ import annotations

import asyncio
import time

SLICE = 0.02  # seconds of ingest work in one turn of the event loop, before it waits


class Turns:
    """Ingest's share of the event loop's turns."""

    def __init__(self) -> None:
        # When ingest work began in the current turn; None when none has.
        self.started: float | None = None

    async def wait(self, max_wait: float) -> bool:
        """Wait for a turn with ingest time left and take it; False after ``max_wait`` seconds."""
        since = time.monotonic()
        while self.started is not None and time.monotonic() - self.started > SLICE:
            if time.monotonic() - since > max_wait:
                return False
            await asyncio.sleep(0)  # the next turn
        if self.started is None:
            self.started = time.monotonic()
            # Runs at the start of the next turn: what is queued during this one comes after it.
            asyncio.get_running_loop().call_soon(self._next_turn)
        return True

    def _next_turn(self) -> None:
        self.started = None
