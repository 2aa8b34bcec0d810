"""Creating topics on a cluster and checking those that exist (an admin client's side of
:mod:`services.common.topic_layout`).

:func:`provision` creates the wanted topics that are missing, logs how each was created, and for
each that exists logs what it lacks (a warning) and sets the configs that are safe to set on it.
It never deletes, recreates or repartitions a topic.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
)
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from services.common.topic_layout import (
    ExistingTopic,
    describe,
    safe_alterations,
    shortfalls,
)

log = logging.getLogger(__name__)


@dataclass
class TopicReport:
    """What :func:`provision` did: the topics it created, existing topics weaker than wanted
    (name -> what they lack) and configs it set on existing topics (name -> configs)."""

    created: list[NewTopic] = field(default_factory=list)
    weaker: dict[str, list[str]] = field(default_factory=dict)
    altered: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def created_names(self) -> list[str]:
        return [topic.topic for topic in self.created]

    def lines(self) -> list[str]:
        """The report as lines for a terminal."""
        lines = [f"created {describe(topic)}" for topic in self.created]
        lines += [f"set on existing {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(
            config.items())) for name, config in self.altered.items()]
        lines += [f"WEAKER than the project creates it: {name} has " + "; ".join(problems)
                  for name, problems in self.weaker.items()]
        return lines


def broker_count(admin: AdminClient, timeout: float = 30.0) -> int:
    """How many brokers the cluster's metadata lists (those registered and alive)."""
    return len(admin.list_topics(timeout=timeout).brokers)


def existing_topics(admin: AdminClient, names: list[str],
                    timeout: float = 30.0) -> dict[str, ExistingTopic]:
    """Those of ``names`` that exist, with their partitions, replicas and configs."""
    listed = admin.list_topics(timeout=timeout).topics
    present = [name for name in names
               if name in listed and listed[name].error is None and listed[name].partitions]
    if not present:
        return {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in present]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    found = {}
    for resource, future in futures.items():
        entries: dict[str, ConfigEntry] = future.result()
        partitions = listed[resource.name].partitions
        found[resource.name] = ExistingTopic(
            name=resource.name,
            partitions=len(partitions),
            replication_factor=min(len(meta.replicas) for meta in partitions.values()),
            config={key: entry.value for key, entry in entries.items()
                    if entry.value is not None},
            explicit=frozenset(key for key, entry in entries.items()
                               if ConfigSource(entry.source) is ConfigSource.DYNAMIC_TOPIC_CONFIG),
        )
    return found


def provision(admin: AdminClient, wanted: list[NewTopic], timeout: float = 30.0) -> TopicReport:
    """Create what is missing of ``wanted``, check and tune what exists; wait until the broker
    lists the created topics. A topic created meanwhile by someone else counts as existing."""
    report = TopicReport()
    existing = existing_topics(admin, [topic.topic for topic in wanted], timeout)
    missing = [topic for topic in wanted if topic.topic not in existing]
    if missing:
        by_name = {topic.topic: topic for topic in missing}
        for name, future in admin.create_topics(missing, request_timeout=timeout).items():
            try:
                future.result()
                report.created.append(by_name[name])
                log.info("created topic %s", describe(by_name[name]))
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        _wait_listed(admin, report.created_names, timeout)
    for topic in wanted:
        found = existing.get(topic.topic)
        if found is None:
            continue
        if problems := shortfalls(topic, found):
            report.weaker[topic.topic] = problems
            log.warning("topic %s exists with weaker settings than the project creates it "
                        "with: %s", topic.topic, "; ".join(problems))
        if changes := safe_alterations(topic, found):
            _alter(admin, topic.topic, changes, timeout)
            report.altered[topic.topic] = changes
            log.info("set %s on existing topic %s", changes, topic.topic)
    return report


def _alter(admin: AdminClient, name: str, changes: dict[str, str], timeout: float) -> None:
    """Set ``changes`` on topic ``name``, leaving its other configs as they are."""
    resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        for key, value in changes.items()
    ])
    for future in admin.incremental_alter_configs([resource],
                                                  request_timeout=timeout).values():
        future.result()


def _wait_listed(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Wait until the metadata lists every topic of ``names`` with its partitions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = admin.list_topics(timeout=timeout).topics
        if all(name in listed and listed[name].partitions for name in names):
            return
        time.sleep(0.1)
