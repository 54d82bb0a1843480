"""What one running exporter holds: settings, metric store, recorder, ingestor, credentials."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from app.api.body import BodyBudget
from app.auth import Authenticator
from app.config import Settings
from app.dedup import RecentIds
from app.ingest import Ingestor
from app.recorder import Recorder
from app.snapshot import SnapshotWriter
from app.store import MetricStore
from app.turns import Turns


@dataclass
class Exporter:
    settings: Settings
    store: MetricStore
    recorder: Recorder
    ingestor: Ingestor
    auth: Authenticator
    recent_ids: RecentIds
    body_budget: BodyBudget
    is_ready: bool = field(default=False)
    snapshots: SnapshotWriter = field(default_factory=SnapshotWriter)
    # Ingest requests past their body and not yet answered (see max_concurrent_requests).
    requests_applying: int = 0
    turns: Turns = field(default_factory=Turns)


def exporter_of(request: Request) -> Exporter:
    exporter: Exporter = request.app.state.exporter
    return exporter
