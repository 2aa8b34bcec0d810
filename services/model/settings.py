"""Settings of the model service (``STREAMML_MODEL__*`` for its own options)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.settings import Settings


class ModelOptions(BaseModel):
    """Bounds of the in-memory stores and how often to commit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pending_capacity: int = Field(default=200_000, gt=0)
    early_label_capacity: int = Field(default=100_000, gt=0)
    remembered_ids: int = Field(default=500_000, gt=0)
    commit_interval_seconds: float = Field(default=0.1, gt=0)
    """Checkpoint (and make outputs visible to read_committed readers) at least this often; the
    100 ms of Kafka Streams under exactly-once by default. ``checkpoint_time_share`` spaces
    checkpoints further apart when each takes long."""
    checkpoint_every_labels: int = Field(default=10_000, gt=0)
    checkpoint_time_share: float = Field(default=0.25, gt=0, le=1)
    """At most this share of the time goes to checkpoints: a snapshot that took t seconds is
    followed by one no sooner than t * (1 - share) / share later (and the interval)."""
    checkpoint_max_deltas: int = Field(default=1_000, ge=0)
    """Delta checkpoints (only what changed) between two full ones, at most; 0: all full. Above
    what the delta budget allows at the default interval: with full stores a full checkpoint
    pauses the service for about a second, which the budget spaces to every 80 s at
    1,000 events/s (a cap of 100 made it every 10 s)."""
    checkpoint_delta_budget: float = Field(default=1.0, gt=0)
    """A full checkpoint is due once the deltas since the last one add up to this many times its
    size (a restore reads at most 1 + budget times the state)."""
    label_hold_seconds: float = Field(default=30.0, gt=0)
    """With no feature vector for this long, labels are learned by wall-clock stream time."""
    label_wait_seconds: float = Field(default=10.0, gt=0)
    """A feature vector held back for labels fetched but not yet read before it in time
    (:mod:`services.model.alignment`) goes on after this long without a label read."""
    layout: Literal["single", "learner"] = "single"
    """``single``: this service predicts on ``features`` and learns (the default, exact parity
    with River). ``learner``: predictor replicas (``services.predictor``) serve; this service
    learns from what they logged on ``prediction-log`` and publishes its models to
    ``model-releases``."""
    release_interval_seconds: float = Field(default=0.0, ge=0)
    """The learner publishes a release with its next commit when it learned something since
    the last one, at most this often (0: with every such commit) ..."""
    learner_commit_interval_seconds: float = Field(default=0.05, gt=0)
    """``commit_interval_seconds`` of the learner layout: releases are visible from the commit
    that carries them, so this bounds how long a learned label waits to reach the replicas."""
    release_every_labels: int = Field(default=1000, gt=0)
    """... at once when this many labels were learned since the last one ..."""
    release_heartbeat_seconds: float = Field(default=5.0, gt=0)
    """... and this often when it learned nothing (so a predictor can tell a quiet learner from
    a dead one)."""
    release_time_share: float = Field(default=0.1, gt=0, le=1)
    """At most this share of the learner's time goes to releases: a release that took t seconds
    (pickling a forest) is followed by one no sooner than t * (1 - share) / share later."""


class ModelSettings(Settings):
    """Everything the model service reads at start."""

    metrics_port: int = Field(default=9103, ge=0, le=65535)
    model: ModelOptions = Field(default_factory=ModelOptions)
