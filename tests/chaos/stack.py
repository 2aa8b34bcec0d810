"""The four consuming services under the supervisor, on a fresh topic prefix, for a chaos test."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Message

from services.cli import stack
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings, TopicSettings
from tests.integration.conftest import read_topic, topic_size


@dataclass(frozen=True)
class RunningStack:
    """Where the services run: their topic prefix, the supervisor's home, their settings."""

    prefix: str
    home: Path
    env: dict[str, str]


@contextmanager
def consumers_running(
    kafka: KafkaSettings, home: Path, spec: str, port_offset: int, tag: str,
    settings: dict[str, str] | None = None, timeout: float = 120,
    topics: TopicSettings | None = None,
) -> Iterator[RunningStack]:
    """features, model, drift and metrics-sink on ``spec``, healthy, until the block ends.

    Topics get the prefix ``<tag><random>-``; metrics ports are the defaults + ``port_offset``
    (distinct per test, so tests never collide); ``settings`` are extra ``STREAMML_*`` variables;
    ``topics`` how the topics are created (their partitions).
    """
    prefix = f"{tag}{uuid.uuid4().hex[:10]}-"
    ensure_topics(kafka, prefix, topics=topics)
    env = {
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_SPEC": spec,
        **(settings or {}),
    }
    stack.up(stack.plan_stack(home, env, with_producer=False, port_offset=port_offset),
             timeout=timeout)
    try:
        yield RunningStack(prefix, home, env)
    finally:
        stack.down(home)


def ids_in(
    kafka: KafkaSettings, topic: str, event_id_of: Callable[[bytes | None], str], rows: int,
    timeout: float = 150, on_complete: Callable[[], object] = lambda: None,
) -> tuple[Counter[str], int]:
    """How often each event id occurs in ``topic`` (read until ``rows`` distinct ids, calling
    ``on_complete`` then, or until ``timeout``) and how many committed records it holds."""
    seen: Counter[str] = Counter()
    decoded = 0

    def complete(messages: list[Message]) -> bool:
        nonlocal decoded
        for message in messages[decoded:]:
            seen[event_id_of(message.value())] += 1
        decoded = len(messages)
        if len(seen) >= rows:
            on_complete()
            return True
        return False

    read_topic(kafka, topic, complete, timeout=timeout)
    return seen, topic_size(kafka, topic)
