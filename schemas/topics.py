"""The topic catalogue: every topic of the system, its partitions, configs and payload contract.

Names here are base names; at run time a deployment prefix (``STREAMML_TOPIC_PREFIX``) is put in
front of each, so several pipelines can share one cluster. ``events`` and ``features`` are keyed
by the primary entity, so an entity's events and vectors keep their order; ``labels`` are keyed
by ``event_id``, since whoever reports a label may know nothing else. The model's learner is a
single writer that reads every partition of both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.alerts import DriftAlert
from schemas.base import Contract
from schemas.events import Event, Label
from schemas.features import FeatureVector
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction
from schemas.serving import ModelRelease, ServedPrediction
from schemas.snapshots import DriftSnapshot, ModelSnapshot

TopicName = Literal[
    "events",
    "labels",
    "features",
    "predictions",
    "outcomes",
    "drift-alerts",
    "dead-letters",
    "model-snapshots",
    "model-events",
    "drift-state",
    "prediction-log",
    "model-releases",
]

PIPELINE_PARTITIONS = 4
WEEK_MS = str(7 * 24 * 3600 * 1000)


MIB = 1024 * 1024
MINUTE_MS = 60 * 1000

SNAPSHOT_CONFIG: dict[str, str] = {
    "cleanup.policy": "compact",
    # A full checkpoint with full stores is about 36 MB at 1,000 events/s (see
    # streamml bench checkpoint); this is the largest one the broker takes.
    "max.message.bytes": str(64 * MIB),
    # The cleaner never touches the active segment, so a restore reads all of it. With the
    # broker's default (1 GiB, 7 days) it would hold every checkpoint of days at a low rate.
    # A batch larger than a segment is refused, so a segment holds at least one checkpoint of
    # the largest size allowed: 64 MiB is about 70 s of checkpoints at 1,000 events/s.
    "segment.bytes": str(64 * MIB),
    # At low rates the size never fills: roll every 10 minutes anyway, so superseded
    # checkpoints become cleanable within minutes (a few small segments per hour).
    "segment.ms": str(10 * MINUTE_MS),
    # Clean as soon as a quarter of the log is superseded. What stays live is one full
    # checkpoint and at most as many bytes of deltas after it (the checkpointer's delta
    # budget), about two full checkpoints; the default (0.5) would let one more live set of dead
    # checkpoints pile up before each cleaning. Each cleaning rewrites about that live set.
    "min.cleanable.dirty.ratio": "0.25",
    # Whatever the ratio, records written more than 15 minutes ago are due for cleaning (the
    # active segment is rolled by then too, so the uncleaned tail spans at most 15 minutes).
    "max.compaction.lag.ms": str(15 * MINUTE_MS),
    # Superseded deltas get tombstones; a restore needs one only while it reads (seconds), and
    # an orphaned delta of an older full checkpoint is ignored anyway. Keep them an hour, not
    # the default day (3,600 tombstones an hour at one checkpoint a second).
    "delete.retention.ms": str(60 * MINUTE_MS),
    # A checkpoint is superseded only by a newer one, never by age.
    "min.compaction.lag.ms": "0",
}
"""Broker configs of ``model-snapshots``: compaction keeps a restore's reading bounded (about
the newest full checkpoint, its deltas and at most a segment or two not yet cleaned), on any
broker, whatever its defaults. ``streamml bench snapshot-restore`` measures it."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic: base name, partitions, broker configs, the contract of its values and its key."""

    name: TopicName
    partitions: int
    value_model: type[Contract] | None
    key: str
    config: dict[str, str] = field(default_factory=dict)

    def full_name(self, prefix: str = "") -> str:
        """The topic's name in a deployment with ``prefix``."""
        return f"{prefix}{self.name}"


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("events", PIPELINE_PARTITIONS, Event, "primary entity value",
              {"retention.ms": WEEK_MS}),
    TopicSpec("labels", PIPELINE_PARTITIONS, Label, "event_id", {"retention.ms": WEEK_MS}),
    TopicSpec("features", PIPELINE_PARTITIONS, FeatureVector, "primary entity value",
              {"retention.ms": WEEK_MS}),
    TopicSpec("predictions", PIPELINE_PARTITIONS, Prediction, "event_id",
              {"retention.ms": WEEK_MS}),
    TopicSpec("outcomes", PIPELINE_PARTITIONS, Outcome, "event_id", {"retention.ms": WEEK_MS}),
    TopicSpec("drift-alerts", 1, DriftAlert, "target", {"retention.ms": WEEK_MS}),
    # Values are the original, possibly invalid, bytes; the reason travels in the headers.
    TopicSpec("dead-letters", 1, None, "original key", {"retention.ms": WEEK_MS}),
    TopicSpec("model-events", 1, ModelEvent, "model name", {"retention.ms": WEEK_MS}),
    TopicSpec("model-snapshots", 1, ModelSnapshot, "learner id", SNAPSHOT_CONFIG),
    # A few hundred KB per checkpoint: the same compaction rules keep a restore's reading short.
    TopicSpec("drift-state", 1, DriftSnapshot, "drift consumer group", SNAPSHOT_CONFIG),
    # The scaled layout (``streamml up --predictors N``): what predictors served, for the
    # learner, and the learner's models, for the predictors (the newest is all they need).
    TopicSpec("prediction-log", PIPELINE_PARTITIONS, ServedPrediction, "primary entity value",
              {"retention.ms": WEEK_MS}),
    TopicSpec("model-releases", 1, ModelRelease, "learner id", SNAPSHOT_CONFIG),
)


def topic_spec(name: TopicName) -> TopicSpec:
    """The catalogue entry for ``name``."""
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(name)
