"""The topic catalogue: every topic of the system, its partitions, configs and payload contract.

Names here are base names; at run time a deployment prefix (``STREAMML_TOPIC_PREFIX``) is put in
front of each, so several pipelines can share one cluster. ``features`` and ``labels`` are both
keyed by ``event_id`` and have the same partition count, so a model learner that owns a partition
of one owns the same partition of the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from schemas.alerts import DriftAlert
from schemas.base import Contract
from schemas.events import Event, Label
from schemas.features import FeatureVector
from schemas.predictions import Outcome, Prediction
from schemas.snapshots import ModelSnapshot

TopicName = Literal[
    "events",
    "labels",
    "features",
    "predictions",
    "outcomes",
    "drift-alerts",
    "dead-letters",
    "model-snapshots",
]

PIPELINE_PARTITIONS = 4
WEEK_MS = str(7 * 24 * 3600 * 1000)


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
    TopicSpec("features", PIPELINE_PARTITIONS, FeatureVector, "event_id",
              {"retention.ms": WEEK_MS}),
    TopicSpec("predictions", PIPELINE_PARTITIONS, Prediction, "event_id",
              {"retention.ms": WEEK_MS}),
    TopicSpec("outcomes", PIPELINE_PARTITIONS, Outcome, "event_id", {"retention.ms": WEEK_MS}),
    TopicSpec("drift-alerts", 1, DriftAlert, "target", {"retention.ms": WEEK_MS}),
    # Values are the original, possibly invalid, bytes; the reason travels in the headers.
    TopicSpec("dead-letters", 1, None, "original key", {"retention.ms": WEEK_MS}),
    TopicSpec("model-snapshots", 1, ModelSnapshot, "model name",
              {"cleanup.policy": "compact", "max.message.bytes": str(64 * 1024 * 1024),
               "min.compaction.lag.ms": "0"}),
)


def topic_spec(name: TopicName) -> TopicSpec:
    """The catalogue entry for ``name``."""
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(name)
