"""The Python API for publishing your own events and labels.

>>> from services.common.settings import Settings
>>> client = EventClient.connect(Settings(), entity_key="user")  # doctest: +SKIP
>>> client.publish_event(event)                                  # doctest: +SKIP
>>> client.publish_label(label)                                  # doctest: +SKIP
>>> client.flush()                                               # doctest: +SKIP

Events are keyed by their primary entity value and labels by ``event_id``. Both are validated
against the contracts before they are sent: an invalid record raises ``ValueError`` and nothing
is published. Every send is followed to its acknowledgement: :meth:`EventClient.flush` raises if
any record was not delivered (after the producer's own retries, for ``delivery.timeout.ms``).
The client sets each record's delivery callback, which takes the place of one configured on the
producer: to see every delivery report yourself, pass ``on_delivery`` to the client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message

from schemas.codec import encode
from schemas.events import Event, Label
from services.common.kafka import make_producer
from services.common.settings import Settings


class _Producer(Protocol):
    def produce(self, topic: str, value: bytes | None = ..., key: bytes | None = ..., *,
                on_delivery: Callable[[KafkaError | None, Message], None] | None = ...,
                ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...


class EventClient:
    """Publishes events and labels of one deployment (topic prefix) to its topics."""

    def __init__(self, producer: _Producer, settings: Settings, entity_key: str,
                 on_delivery: Callable[[KafkaError | None, Message], None] | None = None) -> None:
        self._producer = producer
        self._on_delivery = on_delivery
        self._events_topic = settings.topic("events")
        self._labels_topic = settings.topic("labels")
        self._entity_key = entity_key
        self.events_published = 0
        self.labels_published = 0
        self.undelivered = 0
        """Records the broker never acknowledged (their producer gave up on them)."""
        self._first_failure: str | None = None

    @classmethod
    def connect(cls, settings: Settings, entity_key: str) -> EventClient:
        """A client with its own idempotent producer."""
        return cls(make_producer(settings.kafka), settings, entity_key)

    def publish_event(self, event: Event | dict[str, Any]) -> Event:
        """Validate and send one event; return it as sent."""
        record = event if isinstance(event, Event) else Event.model_validate(event)
        if self._entity_key not in record.entity:
            raise ValueError(f"event {record.event_id} has no entity key '{self._entity_key}'")
        self._send(self._events_topic, record.entity[self._entity_key], encode(record))
        self.events_published += 1
        return record

    def publish_label(self, label: Label | dict[str, Any]) -> Label:
        """Validate and send one label; return it as sent."""
        record = label if isinstance(label, Label) else Label.model_validate(label)
        self._send(self._labels_topic, record.event_id, encode(record))
        self.labels_published += 1
        return record

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until everything sent is acknowledged; raise if some could not be, or failed."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise RuntimeError(f"{remaining} messages were not acknowledged within {timeout}s")
        if self.undelivered:
            raise RuntimeError(f"{self.undelivered} messages could not be delivered; the first: "
                               f"{self._first_failure}")

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if self._on_delivery is not None:
            self._on_delivery(error, message)
        if error is not None:
            self.undelivered += 1
            if self._first_failure is None:
                self._first_failure = f"{message.topic()}: {error.str()}"

    def _send(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key.encode(),
                                       on_delivery=self._delivered)
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)
