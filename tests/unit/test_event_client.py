"""The event client follows every send to its acknowledgement."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError

from schemas.events import Event
from services.common.settings import Settings
from services.producer.client import EventClient


class _Sent:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic


class _Producer:
    """Acknowledges every record at flush, except those of events listed in ``lost``."""

    def __init__(self, lost: set[bytes]) -> None:
        self.lost = lost
        self.waiting: list[tuple[str, bytes, Callable[..., None]]] = []

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None, *,
                on_delivery: Callable[..., None] | None = None) -> None:
        assert key is not None and on_delivery is not None
        self.waiting.append((topic, key, on_delivery))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        for topic, key, on_delivery in self.waiting:
            error = KafkaError(KafkaError._MSG_TIMED_OUT) if key in self.lost else None
            on_delivery(error, _Sent(topic))
        self.waiting.clear()
        return 0


def event(user: str) -> dict[str, Any]:
    return {"event_id": f"e-{user}", "event_time": datetime(2026, 1, 1, tzinfo=UTC),
            "entity": {"user": user}, "fields": {"price": 1.0}}


def test_flush_returns_when_every_record_was_acknowledged() -> None:
    client = EventClient(_Producer(lost=set()), Settings(topic_prefix="t-"), "user")
    for user in ("a", "b"):
        client.publish_event(Event.model_validate(event(user)))
    client.flush()
    assert (client.events_published, client.undelivered) == (2, 0)


def test_flush_raises_when_the_producer_gave_up_on_a_record() -> None:
    client = EventClient(_Producer(lost={b"b", b"c"}), Settings(topic_prefix="t-"), "user")
    for user in ("a", "b", "c"):
        client.publish_event(event(user))
    with pytest.raises(RuntimeError, match=r"2 messages could not be delivered.*t-events"):
        client.flush()
    assert client.undelivered == 2


def test_a_callback_given_to_the_client_sees_every_delivery_report() -> None:
    reports: list[tuple[str | None, bool]] = []
    client = EventClient(_Producer(lost={b"b"}), Settings(topic_prefix="t-"), "user",
                         on_delivery=lambda error, message: reports.append(
                             (message.topic(), error is None)))
    for user in ("a", "b"):
        client.publish_event(event(user))
    with pytest.raises(RuntimeError):
        client.flush()
    assert reports == [("t-events", True), ("t-events", False)]
