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
    "model-events",
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
    TopicSpec("features", PIPELINE_PARTITIONS, FeatureVector, "primary entity value",
              {"retention.ms": WEEK_MS}),
    TopicSpec("predictions", PIPELINE_PARTITIONS, Prediction, "event_id",
              {"retention.ms": WEEK_MS}),
    TopicSpec("outcomes", PIPELINE_PARTITIONS, Outcome, "event_id", {"retention.ms": WEEK_MS}),
    TopicSpec("drift-alerts", 1, DriftAlert, "target", {"retention.ms": WEEK_MS}),
    # Values are the original, possibly invalid, bytes; the reason travels in the headers.
    TopicSpec("dead-letters", 1, None, "original key", {"retention.ms": WEEK_MS}),
    TopicSpec("model-events", 1, ModelEvent, "model name", {"retention.ms": WEEK_MS}),
    TopicSpec("model-snapshots", 1, ModelSnapshot, "learner id",
              {"cleanup.policy": "compact", "max.message.bytes": str(64 * 1024 * 1024),
               "min.compaction.lag.ms": "0"}),
)


def topic_spec(name: TopicName) -> TopicSpec:
    """The catalogue entry for ``name``."""
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(name)
