"""In-memory stand-ins for Kafka clients, clocks and estimators, for broker-free unit tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Message

from schemas.dead_letters import DeadLetterHeaders

WireHeaders = list[tuple[str, str | bytes | None]]
"""Kafka headers as confluent-kafka takes them."""


@dataclass(frozen=True)
class Produced:
    """One ``produce()`` call as a fake producer saw it."""

    topic: str
    value: bytes | None
    key: bytes | None
    headers: WireHeaders | None

    def dead_letter_headers(self) -> DeadLetterHeaders:
        """The dead-letter headers of this record, parsed as a consumer would."""
        assert self.headers is not None, "no headers"
        return DeadLetterHeaders.from_kafka_headers([
            (name, value.encode() if isinstance(value, str) else value)
            for name, value in self.headers
        ])


@dataclass
class FakeProducer:
    """Records every ``produce()`` call, in order; nothing is sent anywhere."""

    records: list[Produced] = field(default_factory=list)

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: WireHeaders | None = None,
        on_delivery: Callable[..., None] | None = None,
    ) -> None:
        self.records.append(Produced(topic, value, key, headers))

    def on(self, topic: str) -> list[Produced]:
        """The records produced to ``topic``, in order."""
        return [record for record in self.records if record.topic == topic]


def message(
    topic: str,
    value: bytes | None,
    key: bytes | None = None,
    partition: int = 0,
    offset: int = 0,
    headers: Sequence[tuple[str, str | bytes | None]] | None = None,
) -> Message:
    """A consumed message, built in memory (confluent-kafka's ``Message`` needs no broker)."""
    return Message(
        topic=topic, partition=partition, offset=offset, key=key, value=value,
        headers=None if headers is None else list(headers),
    )


class ManualClock:
    """A wall clock that moves only when told to."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ManualMonotonic:
    """A monotonic clock (seconds) that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingClassifier:
    """A binary classifier that logs each call; predicts ``True`` with probability ``p_true``.

    Built by the model spec ``estimator = "tests.unit.fakes:recording_classifier"``.
    """

    def __init__(self, p_true: float = 0.75) -> None:
        self.p_true = p_true
        self.calls: list[tuple[str, dict[str, float], Any]] = []

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        self.calls.append(("predict", dict(x), None))
        return {True: self.p_true, False: 1.0 - self.p_true}

    def learn_one(self, x: dict[str, float], y: Any) -> None:
        self.calls.append(("learn", dict(x), y))

    def learned(self) -> list[tuple[dict[str, float], Any]]:
        """The (x, y) pairs learned, in order."""
        return [(x, y) for kind, x, y in self.calls if kind == "learn"]

    def predicted(self) -> list[dict[str, float]]:
        """The inputs predicted on, in order."""
        return [x for kind, x, _ in self.calls if kind == "predict"]


def recording_classifier(p_true: float = 0.75) -> RecordingClassifier:
    """Factory named in model specs (``module:function``)."""
    return RecordingClassifier(p_true)
