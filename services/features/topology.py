"""Names and partitioning of the features worker's internal topics and tables.

The primary entity (the spec's first entity key, which keys ``events``) keeps its state in a
table partitioned like ``events``: an event read from its primary entity's *home partition* is
processed where it was read, with no repartition hop. The home partition of a key is the one
librdkafka's default partitioner (``consistent_random``) gives it, CRC-32 of the key modulo the
partition count, which is what the project's producers, kcat and every librdkafka-based client
use. An event found elsewhere (another key, or another partitioner such as the Java client's
murmur2) is not lost or mis-counted: it takes one hop through ``<group>-by-<entity>-home``,
sent to the home partition, and is processed there.

Each other entity key with aggregates has a topic ``<group>-by-<entity>`` keyed by that entity
and a table fed from it. Every table has a compacted changelog topic
``<group>-<table>-changelog`` with as many partitions as ``events``.
"""

from __future__ import annotations

import zlib

from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from services.common.runtime import StartupError
from services.features.pipeline import Stage


def home_partition(key: bytes, partitions: int) -> int:
    """The partition of ``events`` that librdkafka's default partitioner gives ``key``.

    >>> home_partition(b"u-7", 4)
    1
    """
    return zlib.crc32(key) % partitions


def stage_topic(group: str, stage: Stage, primary: bool) -> str:
    """The internal topic that feeds ``stage``: re-homed events for the primary entity."""
    return f"{group}-by-{stage.entity}-home" if primary else f"{group}-by-{stage.entity}"


def table_name(stage: Stage, primary: bool) -> str:
    """The name of ``stage``'s table (its changelog is ``<group>-<name>-changelog``)."""
    return f"entity-{stage.entity}-home" if primary else f"entity-{stage.entity}"


def internal_topics(
    group: str, stages: list[Stage], primary: Stage | None, partitions: int
) -> list[NewTopic]:
    """The stage topics and table changelogs, each with ``partitions`` partitions."""
    topics = []
    for stage in stages:
        is_primary = stage is primary
        topics.append(NewTopic(stage_topic(group, stage, is_primary), num_partitions=partitions,
                               replication_factor=1))
        topics.append(NewTopic(
            f"{group}-{table_name(stage, is_primary)}-changelog", num_partitions=partitions,
            replication_factor=1, config={"cleanup.policy": "compact"},
        ))
    return topics


def partition_count(admin: AdminClient, topic: str, timeout: float = 30.0) -> int | None:
    """How many partitions ``topic`` has, or None when it does not exist."""
    listed = admin.list_topics(topic, timeout=timeout).topics.get(topic)
    if listed is None or listed.error is not None or not listed.partitions:
        return None
    return len(listed.partitions)


def check_partitions(admin: AdminClient, topics: list[NewTopic], timeout: float = 30.0) -> None:
    """Raise :class:`StartupError` when an existing topic of ``topics`` has another partition
    count than wanted: tables and their source topics must be partitioned alike."""
    for topic in topics:
        found = partition_count(admin, topic.topic, timeout)
        if found is not None and found != topic.num_partitions:
            raise StartupError(
                f"topic {topic.topic} has {found} partitions but the features worker needs "
                f"{topic.num_partitions}, as many as the events topic; delete it (it is "
                "internal) or give events the same count"
            )
