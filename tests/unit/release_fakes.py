"""In-memory helpers for the scaled serving layout: tiny learners, releases, and a fake
``model-releases`` consumer for :class:`services.predictor.follower.ReleaseFollower`."""

from __future__ import annotations

from datetime import datetime

from confluent_kafka import Message, TopicPartition

from schemas.codec import encode
from schemas.serving import ModelRelease
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec
from services.model.learner import Learner
from services.model.releases import release_of

RELEASES = "model-releases"
LEARNER = "learner-a"


def tiny_learner(p_champion: float = 0.75, p_challenger: float = 0.25) -> Learner:
    """A binary learner: a recording champion and one recording challenger."""
    label = LabelSpec.model_validate({
        "type": "binary", "feedback_window_seconds": 30.0, "on_timeout": "negative",
        "negative_value": 0,
    })
    champion = ModelSpec(name="champ", estimator="tests.unit.fakes:recording_classifier",
                         params={"p_true": p_champion})
    rival = ModelSpec(name="rival", estimator="tests.unit.fakes:recording_classifier",
                      params={"p_true": p_challenger})
    return Learner(ModelsSpec(champion=champion, challengers=(rival,)), label)


def release(labels: int, created_at: datetime, p_champion: float = 0.9,
            learner_id: str = LEARNER) -> ModelRelease:
    """A release of a tiny learner whose champion predicts True with ``p_champion``."""
    made = release_of(tiny_learner(p_champion), learner_id, labels)
    return made.model_copy(update={"created_at": created_at})


def release_message(value: bytes | None, key: bytes | None = LEARNER.encode(),
                    offset: int = 0) -> Message:
    return Message(topic=RELEASES, partition=0, offset=offset, key=key, value=value)


def encoded(made: ModelRelease, offset: int = 0) -> Message:
    return release_message(encode(made), offset=offset)


class FakeReleaseConsumer:
    """Serves queued batches of ``model-releases`` records, one batch per ``consume`` call."""

    def __init__(self, low: int = 0, high: int = 0) -> None:
        self.watermarks = (low, high)
        self.assigned: list[TopicPartition] = []
        self.batches: list[list[Message]] = []
        self.consumes: list[tuple[int, float]] = []

    def queue(self, *messages: Message) -> None:
        self.batches.append(list(messages))

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    def consume(self, num_messages: int = 1, timeout: float = -1.0) -> list[Message]:
        self.consumes.append((num_messages, timeout))
        return self.batches.pop(0) if self.batches else []

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = -1.0,
                              cached: bool = False) -> tuple[int, int]:
        return self.watermarks
