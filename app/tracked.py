"""State named by clients (experiments, incidents, models, arms), bounded in size and in age."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Tracked(Generic[K, V]):
    """Entries by key with when each was last seen, least recently seen first; at most ``limit``.

    Seeing a key again makes it the most recent; a new key past the limit pushes out the least
    recently seen one, which is handed to ``evicted``. Every operation costs O(1), and
    :meth:`expire` costs what it removes: the entries stay in the order they were seen.
    """

    def __init__(self, limit: int, evicted: Callable[[K, V], None]) -> None:
        self.limit = limit
        self._evicted = evicted
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, seen: float) -> None:
        """Keep ``value`` for ``key``, seen at ``seen`` (the latest time seen so far)."""
        entries = self._entries
        if key in entries:
            entries.move_to_end(key)
        entries[key] = (seen, value)
        while len(entries) > self.limit:
            oldest, (_, old_value) = entries.popitem(last=False)
            self._evicted(oldest, old_value)

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        return None if entry is None else entry[1]

    def expire(self, horizon: float) -> list[tuple[K, V]]:
        """Remove and return the entries last seen before ``horizon``."""
        entries = self._entries
        expired = []
        while entries:
            key, (seen, value) = next(iter(entries.items()))
            if seen >= horizon:
                break
            del entries[key]
            expired.append((key, value))
        return expired

    def copy(self) -> tuple[list[K], list[tuple[float, V]]]:
        """The keys, and their ``(seen, value)``, least recently seen first: copied in one step
        each, making no new object per entry."""
        return list(self._entries), list(self._entries.values())
