"""State snapshots: what they hold, how they are checked, and how they are written.

A snapshot is read whole and checked whole (:class:`Snapshot`) before anything of it is applied, so
an unusable one changes nothing: it is set aside and the exporter starts empty. It is written
atomically (temporary file, fsync, rename, fsync of the directory) and never larger than a limit;
a write that fails removes its temporary file.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from app import metrics as m
from app.events import Severity

# Gauges of state that a restart restores. Derived gauges (active experiments, open incidents,
# last improvement) are recomputed from the recorder's own state; self-metrics start afresh.
SNAPSHOT_GAUGES: frozenset[m.MetricSpec] = frozenset(
    spec
    for spec in m.ALL_METRICS
    if spec.kind == "gauge"
    and spec.category != m.SELF
    and spec not in (m.EXPERIMENTS_ACTIVE, m.INCIDENTS_OPEN, m.LAST_IMPROVEMENT)
)
SNAPSHOT_GAUGES_BY_NAME: Mapping[str, m.MetricSpec] = {spec.name: spec for spec in SNAPSHOT_GAUGES}
# Items of a Streamed part made and encoded at a time.
_PIECE = 1000


class Snapshot(BaseModel):
    """A snapshot as written by ``Recorder.export_state`` (and the recent event ids), checked
    whole: every field present with its type, every gauge a restorable gauge with its labels."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: Literal[1]
    # [name, [label values], value]
    gauges: list[tuple[str, list[str], float]]
    # experiment id -> start time (None when unknown), last seen, leader
    experiments: dict[str, float | None]
    experiments_seen: dict[str, float]
    leaders: dict[str, str]
    # incident id -> severity, when it was opened (missing in older snapshots: the restart time)
    open_incidents: dict[str, Severity]
    incidents_seen: dict[str, float] = Field(default_factory=dict)
    # [model, provider, last seen], [bandit, arm, parameter, last seen]
    models_seen: list[tuple[str, str, float]]
    arms_seen: list[tuple[str, str, str, float]]
    # None before the first improvement (older versions wrote their start time instead)
    last_improvement: float | None = None
    # [event id, age in seconds]
    recent_event_ids: list[tuple[str, float]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _restorable_gauges(self, info: ValidationInfo) -> Self:
        # The gauges as this exporter keeps them: some carry the declared dimensions.
        as_kept: Callable[[m.MetricSpec], m.MetricSpec] = (info.context or {}).get(
            "as_kept", lambda spec: spec
        )
        for index, (name, labels, _) in enumerate(self.gauges):
            spec = SNAPSHOT_GAUGES_BY_NAME.get(name)
            if spec is None:
                raise ValueError(f"gauges[{index}]: {name!r} is not a gauge a snapshot restores")
            spec = as_kept(spec)
            if len(labels) != len(spec.labels):
                raise ValueError(f"gauges[{index}]: {name} takes labels {spec.labels}, got {labels!r}")
        return self


class CorruptSnapshot(ValueError):
    """The snapshot cannot be used; it was moved to ``set_aside`` (None when it could not be)."""

    def __init__(self, path: Path, set_aside: Path | None, cause: str) -> None:
        where = f"moved to {set_aside}" if set_aside is not None else "left in place: it could not be moved"
        super().__init__(f"snapshot {path} is unusable ({cause}); {where}")
        self.set_aside = set_aside


class SnapshotTooLarge(ValueError):
    """A snapshot to write is over the size limit; nothing was written."""


def read_snapshot(
    path: Path, max_bytes: int, as_kept: Callable[[m.MetricSpec], m.MetricSpec] | None = None
) -> Snapshot | None:
    """The saved state, checked whole, or None when there is none. ``as_kept`` gives a gauge as the
    exporter keeps it (with the declared dimensions among its labels, ``Dimensions.spec``).

    Raises :class:`CorruptSnapshot`, after moving the file aside when it can, when the file cannot
    be read, is larger than ``max_bytes``, or is not a snapshot.
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a directory, or a FIFO that would block
            raise set_aside(path, "not a regular file")
        with path.open("rb") as file:
            raw = file.read(max_bytes + 1)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise set_aside(path, f"cannot be read: {err.strerror or err}") from err
    if len(raw) > max_bytes:
        raise set_aside(path, f"larger than max_snapshot_bytes ({max_bytes})")
    try:
        return Snapshot.model_validate_json(raw, context={"as_kept": as_kept} if as_kept else None)
    except ValidationError as err:
        raise set_aside(path, _first_problem(err)) from err


def _first_problem(err: ValidationError) -> str:
    problem = err.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in problem["loc"])
    message = str(problem["msg"]).removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where + ': ' if where else ''}{message}{more}"


def set_aside(path: Path, cause: str) -> CorruptSnapshot:
    """Move an unusable snapshot to ``<name>.corrupt`` (kept for inspection; only the latest, so
    the disk holds at most one) and describe it."""
    aside = path.with_name(f"{path.name}.corrupt")
    try:
        os.replace(path, aside)
    except OSError:
        return CorruptSnapshot(path, None, cause)
    return CorruptSnapshot(path, aside, cause)


class SnapshotWriter:
    """Writes one exporter's snapshots from worker threads: one at a time, and never one taken
    earlier over one taken later (a write cancelled at shutdown may still be running)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = 0
        self._written = 0

    def take(self) -> int:
        """The number of a snapshot taken now (on the event loop)."""
        self._taken += 1
        return self._taken

    def write(
        self, number: int, path: Path, document: Callable[[], Mapping[str, object]], max_bytes: int
    ) -> int | None:
        """:func:`write_snapshot` of snapshot ``number``; None when a later one is written already."""
        with self._lock:
            if number < self._written:
                return None
            size = write_snapshot(path, document(), max_bytes)
            self._written = number
            return size


def write_snapshot(path: Path, document: Mapping[str, object], max_bytes: int) -> int:
    """Replace ``path`` with ``document`` as JSON, so a crash leaves the old or the new file, whole;
    return its size. Raises :class:`SnapshotTooLarge` past ``max_bytes`` and OSError when the
    file cannot be written; either way the temporary file is gone and ``path`` is as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    size = 0
    try:
        with temporary.open("wb") as file:
            for piece in encode(document):
                size += len(piece)
                if size > max_bytes:
                    raise SnapshotTooLarge(f"snapshot over max_snapshot_bytes ({max_bytes}); not written")
                file.write(piece)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return size


@dataclass(frozen=True)
class Streamed:
    """A long part of a snapshot document, made while it is written: the items of an array, or
    with ``is_object`` the (key, value) pairs of an object.

    It is made and encoded a thousand items at a time, so nothing of it outlives its piece: a
    snapshot written in a thread then leaves the garbage collector little to do, whose full
    collections would hold up the event loop for as long as they take.
    """

    items: Iterable[Any]
    is_object: bool = False


def encode(document: Mapping[str, object]) -> Iterator[bytes]:
    """``document`` as compact JSON, in pieces (its :class:`Streamed` parts a thousand items at
    a time: json's C encoder holds the GIL while it runs)."""
    yield b"{"
    for position, (key, value) in enumerate(document.items()):
        yield (b"," if position else b"") + _dumps(key) + b":"
        if isinstance(value, Streamed):
            yield from _encode_streamed(value)
        else:
            yield _dumps(value)
    yield b"}"


def _encode_streamed(part: Streamed) -> Iterator[bytes]:
    yield b"{" if part.is_object else b"["
    items = iter(part.items)
    separator = b""
    while piece := list(islice(items, _PIECE)):
        yield separator + _dumps(dict(piece) if part.is_object else piece)[1:-1]
        separator = b","
    yield b"}" if part.is_object else b"]"


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
