"""Settings of the predictor service (``STREAMML_PREDICTOR__*`` for its own options)."""

from __future__ import annotations

import os
import socket

from pydantic import BaseModel, ConfigDict, Field

from services.common.settings import Settings


def _default_replica() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class PredictorOptions(BaseModel):
    """Identity of the replica, the staleness bound and how often to commit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    replica: str = Field(default_factory=_default_replica, pattern=r"^[A-Za-z0-9._-]+$",
                         max_length=100)
    """Names this replica's transactional producer (``<group>-<replica>``): unique among the
    running replicas; a restarted replica that keeps its name aborts its predecessor's open
    transaction at once instead of after ``transaction_timeout_ms``."""
    max_staleness_seconds: float = Field(default=30.0, gt=0)
    """A replica whose newest release is older than this (the learner publishes one at least
    every ``release_heartbeat_seconds``) says it is stale: metric, ``/health`` and a log line."""
    release_check_seconds: float = Field(default=0.05, gt=0)
    """How often the replica looks for a newer release (a poll of its local fetch queue)."""
    commit_interval_seconds: float = Field(default=0.05, gt=0)
    """Transactions commit (predictions become visible to ``read_committed`` readers, and the
    learner, which learns a label only once it has read the prediction) this often."""
    transaction_timeout_ms: int = Field(default=10_000, ge=1_000)
    """How long the broker keeps a dead replica's transaction open; until then readers of
    ``predictions`` wait at its first record (and its partitions' next owner at its offsets)."""
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    """How long the group waits for a silent replica before handing its partitions over."""
    remembered_ids: int = Field(default=100_000, gt=0)
    """Event ids remembered to recognise a redelivered feature vector."""


class PredictorSettings(Settings):
    """Everything a predictor replica reads at start."""

    metrics_port: int = Field(default=9106, ge=0, le=65535)
    predictor: PredictorOptions = Field(default_factory=PredictorOptions)
