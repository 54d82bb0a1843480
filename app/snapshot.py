"""Atomic state snapshots: write to a temporary file, fsync, rename, fsync the directory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class CorruptSnapshot(ValueError):
    """The snapshot could not be read; it was moved aside to ``set_aside``."""

    def __init__(self, path: Path, set_aside: Path, cause: str) -> None:
        super().__init__(f"snapshot {path} is unreadable ({cause}); moved to {set_aside}")
        self.set_aside = set_aside


def write_snapshot(path: Path, state: dict[str, Any]) -> None:
    """Replace ``path`` with ``state`` as JSON, so a crash leaves the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(state, separators=(",", ":")).encode()
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none. Raises :class:`CorruptSnapshot` (after moving
    the file aside) when it exists but cannot be read."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        state = json.loads(raw)
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:
        raise set_aside(path, str(err)) from err
    return state


def set_aside(path: Path, cause: str) -> CorruptSnapshot:
    """Move an unusable snapshot out of the way (kept for inspection) and describe it."""
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    os.replace(path, aside)
    return CorruptSnapshot(path, aside, cause)
