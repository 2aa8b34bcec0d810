"""How the project lays out its topics on a cluster: replication, partitions, and what an existing
topic lacks. Pure functions, no broker: :mod:`services.common.topic_admin` applies them.

Contract:
- by default a topic gets as many replicas as the cluster can carry, up to 3, and
  ``min.insync.replicas`` one less, at least 1 (1 broker: 1/1; 2: 2/1; 3 or more: 3/2), so one
  broker may die without losing an acknowledged write once there are three;
- :class:`~services.common.settings.TopicSettings` overrides either, and the partition count of
  the keyed pipeline topics; a replication factor above the broker count, or a
  ``min.insync.replicas`` above the replication factor, is refused with the reason;
- an existing topic is never recreated: what it lacks is described (:func:`shortfalls`), and only
  configs that merely tune when compaction runs, which it does not set itself, are changed
  (:func:`safe_alterations`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka.cimpl import NewTopic

from schemas.topics import TOPICS, TopicSpec
from services.common.settings import TopicSettings

MAX_DEFAULT_REPLICAS = 3
MIN_INSYNC = "min.insync.replicas"

ALTERABLE_CONFIGS = frozenset({
    "segment.ms", "segment.bytes", "min.cleanable.dirty.ratio", "delete.retention.ms",
    "max.compaction.lag.ms",
})
"""Configs changed on an existing topic that does not set them itself: they decide when the log
cleaner rolls and cleans segments, never which records a reader may see in the end (tombstones
aside, which the readers of our compacted topics do not need once read). Replication,
``min.insync.replicas``, partitions and the cleanup policy are only reported: changing them can
fail writes, reorder keys or delete data."""


class TopicLayoutError(ValueError):
    """The topic settings cannot be met by the cluster (or contradict each other)."""


@dataclass(frozen=True)
class Replication:
    """Replicas per partition and how many must acknowledge an ``acks=all`` write."""

    factor: int
    min_insync: int

    def __str__(self) -> str:
        return f"replication factor {self.factor}, min.insync.replicas {self.min_insync}"


def replication_for(brokers: int, settings: TopicSettings | None = None) -> Replication:
    """The replication of new topics on a cluster of ``brokers`` live brokers.

    >>> replication_for(5)
    Replication(factor=3, min_insync=2)
    """
    settings = settings or TopicSettings()
    if brokers < 1:
        raise TopicLayoutError("the cluster lists no broker")
    factor = settings.replication_factor or min(MAX_DEFAULT_REPLICAS, brokers)
    if factor > brokers:
        raise TopicLayoutError(
            f"replication factor {factor} (STREAMML_TOPICS__REPLICATION_FACTOR) needs at least "
            f"{factor} brokers; the cluster lists {brokers}")
    min_insync = settings.min_insync_replicas or max(1, factor - 1)
    if min_insync > factor:
        raise TopicLayoutError(
            f"min.insync.replicas {min_insync} (STREAMML_TOPICS__MIN_INSYNC_REPLICAS) exceeds "
            f"the replication factor {factor}: no write could ever be acknowledged")
    return Replication(factor, min_insync)


def partitions_of(spec: TopicSpec, settings: TopicSettings | None = None) -> int:
    """``spec``'s partition count: the setting replaces that of the keyed (multi-partition)
    topics; single-partition topics keep one."""
    override = settings.partitions if settings is not None else None
    return override if override is not None and spec.partitions > 1 else spec.partitions


def catalogue_topics(prefix: str, replication: Replication,
                     settings: TopicSettings | None = None,
                     specs: Iterable[TopicSpec] = TOPICS) -> list[NewTopic]:
    """The catalogue's topics under ``prefix``, as they are to be created."""
    return [
        NewTopic(spec.full_name(prefix), num_partitions=partitions_of(spec, settings),
                 replication_factor=replication.factor,
                 config={**spec.config, MIN_INSYNC: str(replication.min_insync)})
        for spec in specs
    ]


def replicated(topics: Iterable[NewTopic], replication: Replication) -> list[NewTopic]:
    """``topics`` with ``replication`` (their partitions and other configs kept)."""
    return [
        NewTopic(topic.topic, num_partitions=topic.num_partitions,
                 replication_factor=replication.factor,
                 config={**(topic.config or {}), MIN_INSYNC: str(replication.min_insync)})
        for topic in topics
    ]


def describe(topic: NewTopic) -> str:
    """One line saying how ``topic`` is (to be) created."""
    config = topic.config or {}
    line = (f"{topic.topic}: {topic.num_partitions} partition(s), replication factor "
            f"{topic.replication_factor}, min.insync.replicas {config.get(MIN_INSYNC, '(broker)')}")
    if config.get("cleanup.policy") == "compact":
        line += ", compacted"
    return line


@dataclass(frozen=True)
class ExistingTopic:
    """A topic as the cluster has it: partitions, the fewest replicas of any partition, its
    effective configs and the names of those set on the topic itself."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]
    explicit: frozenset[str] = frozenset()


def shortfalls(wanted: NewTopic, found: ExistingTopic) -> list[str]:
    """What ``found`` lacks against ``wanted``: fewer partitions, fewer replicas, a lower
    ``min.insync.replicas``, and every config the project sets that has another value (configs
    :func:`safe_alterations` will change are left out). Empty when it is as strong."""
    problems = []
    if found.partitions < wanted.num_partitions:
        problems.append(f"{found.partitions} partition(s), not {wanted.num_partitions}")
    if found.replication_factor < wanted.replication_factor:
        problems.append(f"replication factor {found.replication_factor}, not "
                        f"{wanted.replication_factor}")
    alterable = safe_alterations(wanted, found)
    for key, value in sorted((wanted.config or {}).items()):
        have = found.config.get(key)
        if key in alterable or have == value:
            continue
        if key == MIN_INSYNC and have is not None and have.isdigit() and int(have) >= int(value):
            continue
        problems.append(f"{key}={have if have is not None else '(unset)'}, not {value}")
    return problems


def safe_alterations(wanted: NewTopic, found: ExistingTopic) -> dict[str, str]:
    """The configs of ``wanted`` that may be set on ``found`` as it is: only
    :data:`ALTERABLE_CONFIGS`, only where the topic has another value and does not set the
    config itself (an operator's own choice is reported, not overwritten), and only on a topic
    that is compacted as wanted."""
    config = wanted.config or {}
    if found.config.get("cleanup.policy") != config.get("cleanup.policy", "delete"):
        return {}
    return {key: value for key, value in config.items()
            if key in ALTERABLE_CONFIGS and key not in found.explicit
            and found.config.get(key) != value}
