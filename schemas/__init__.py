"""The contracts of streamml: every topic's payload and the topic catalogue.

This package is the ground floor: it imports nothing else of the project. Every model is closed to
unknown fields (``extra="forbid"``), immutable and versioned by ``schema_version``.
"""

from schemas.alerts import DriftAlert, DriftKind
from schemas.base import Contract
from schemas.codec import ContractError, decode, encode
from schemas.dead_letters import DeadLetterHeaders
from schemas.events import Event, FieldValue, Label, LabelValue
from schemas.features import FeatureVector
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction
from schemas.snapshots import ModelSnapshot
from schemas.topics import TOPICS, TopicName, TopicSpec, topic_spec

__all__ = [
    "TOPICS",
    "Contract",
    "ContractError",
    "DeadLetterHeaders",
    "DriftAlert",
    "DriftKind",
    "Event",
    "FeatureVector",
    "FieldValue",
    "Label",
    "LabelValue",
    "ModelEvent",
    "ModelSnapshot",
    "Outcome",
    "Prediction",
    "TopicName",
    "TopicSpec",
    "decode",
    "encode",
    "topic_spec",
]
