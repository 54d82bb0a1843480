"""Remembers recently applied ``event_id``s so a retried event is acknowledged but not re-applied."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence


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

    def known(self, event_ids: Iterable[str]) -> set[str]:
        """Those of ``event_ids`` remembered now: ``{i for i in event_ids if i in self}``, with
        one look for expired ids instead of one per id."""
        self._forget_old()
        seen = self._seen
        return {event_id for event_id in event_ids if event_id in seen}

    def remember(self, event_ids: Iterable[str]) -> None:
        now = self._clock()
        seen = self._seen
        for event_id in event_ids:
            if event_id in seen:
                seen.move_to_end(event_id)
            seen[event_id] = now
        while len(seen) > self._max_size:
            seen.popitem(last=False)

    def export(self) -> list[list[object]]:
        """The remembered ids with their ages in seconds, oldest first (for a snapshot)."""
        now, entries = self.saved()
        return [[event_id, now - seen_at] for event_id, seen_at in entries]

    def saved(self) -> tuple[float, list[tuple[str, float]]]:
        """Now, and the remembered ids with when each was remembered, oldest first: copied in one
        step, so the ages can be worked out later, elsewhere (a snapshot is written in a thread)."""
        self._forget_old()
        return self._clock(), list(self._seen.items())

    def restore(self, entries: Iterable[Sequence[object]]) -> None:
        """Remember ids saved by :meth:`export`, keeping their ages (a restart forgets no retry)."""
        now = self._clock()
        for event_id, age in entries:
            if isinstance(event_id, str) and isinstance(age, int | float):
                self._seen[event_id] = now - float(age)
        self._seen = OrderedDict(sorted(self._seen.items(), key=lambda item: item[1]))
        while len(self._seen) > self._max_size:
            self._seen.popitem(last=False)
        self._forget_old()

    def _forget_old(self) -> None:
        horizon = self._clock() - self._max_age
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if seen_at >= horizon:
                break
            del self._seen[oldest]
