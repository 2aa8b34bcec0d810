"""Kafka client factories and topic administration (confluent-kafka).

Producers are idempotent with ``acks=all``. Consumers never auto-commit and never auto-store:
a loop stores an offset only after the message's work is done and commits only after the
producer has flushed what that work produced (see :mod:`services.common.consumer_loop`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from schemas.topics import TOPICS, TopicSpec
from services.common.settings import KafkaSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The cluster did not answer in time, or refused our credentials."""


def make_producer(kafka: KafkaSettings, **overrides: Any) -> Producer:
    """An idempotent producer (``acks=all``) that retries without reordering or duplicating."""
    config: dict[str, Any] = {
        **kafka.client_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "compression.type": "lz4",
    }
    config.update(overrides)
    return Producer(config)


def make_consumer(
    kafka: KafkaSettings, group_id: str, **overrides: Any
) -> Consumer:
    """A consumer in ``group_id`` whose offsets move only when the caller stores and commits."""
    config: dict[str, Any] = {
        **kafka.client_config(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    config.update(overrides)
    return Consumer(config)


def make_admin(kafka: KafkaSettings) -> AdminClient:
    """An admin client for the cluster."""
    config: dict[str, Any] = dict(kafka.client_config())
    return AdminClient(config)


def wait_for_broker(kafka: KafkaSettings, timeout: float = 30.0) -> str:
    """Block until the cluster describes itself; return its cluster id.

    Raises :class:`BrokerUnavailable` with the client's last error (for example an authentication
    failure) when the deadline passes.
    """
    admin = make_admin(kafka)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            cluster = admin.describe_cluster(request_timeout=min(5.0, timeout)).result()
            return str(cluster.cluster_id)
        except KafkaException as error:
            last_error = error
            kafka_error = error.args[0] if error.args else None
            if isinstance(kafka_error, KafkaError) and kafka_error.code() in (
                KafkaError._AUTHENTICATION,
                KafkaError.SASL_AUTHENTICATION_FAILED,
            ):
                break
            time.sleep(0.5)
    raise BrokerUnavailable(
        f"Kafka at {kafka.bootstrap_servers} did not answer within {timeout:.0f}s: {last_error}"
    )


def ensure_topics(
    kafka: KafkaSettings,
    prefix: str = "",
    specs: Iterable[TopicSpec] = TOPICS,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create the catalogue's topics under ``prefix`` unless they exist; return those created.

    Idempotent: topics that already exist are left as they are.
    """
    wanted = [
        NewTopic(
            spec.full_name(prefix),
            num_partitions=spec.partitions,
            replication_factor=replication_factor,
            config=dict(spec.config),
        )
        for spec in specs
    ]
    return create_missing_topics(kafka, wanted, timeout)


def create_missing_topics(
    kafka: KafkaSettings, wanted: list[NewTopic], timeout: float = 30.0
) -> list[str]:
    """Create those of ``wanted`` that do not exist yet and wait until the broker lists them."""
    admin = make_admin(kafka)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [topic for topic in wanted if topic.topic not in existing]
    if not missing:
        return []
    created: list[str] = []
    for name, future in admin.create_topics(missing, request_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = admin.list_topics(timeout=timeout).topics
        if all(name in listed and listed[name].partitions for name in created):
            break
        time.sleep(0.1)
    log.info("created topics %s", created)
    return created
