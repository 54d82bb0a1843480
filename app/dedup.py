"""Remembers recently applied ``event_id``s so a retried event is acknowledged but not re-applied."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class RecentIds:
    """A window of event ids bounded in size and age; the oldest are forgotten first."""

    def __init__(
        self, max_size: int, max_age_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_size = max_size
        self._max_age = max_age_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, event_id: object) -> bool:
        self._forget_old()
        return event_id in self._seen

    def remember(self, event_ids: Iterable[str]) -> None:
        now = self._clock()
        for event_id in event_ids:
            self._seen[event_id] = now
            self._seen.move_to_end(event_id)
        while len(self._seen) > self._max_size:
            self._seen.popitem(last=False)

    def _forget_old(self) -> None:
        horizon = self._clock() - self._max_age
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if seen_at >= horizon:
                break
            del self._seen[oldest]
