"""Topic creation on the real broker: the replication a one-broker cluster carries, the report of
a topic that exists with weaker settings, and compaction tuning set on an old snapshot topic."""

from __future__ import annotations

import pytest
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from schemas.topics import TOPICS
from services.common.kafka import create_missing_topics, make_admin, provision_topics
from services.common.settings import KafkaSettings, TopicSettings
from services.common.topic_admin import existing_topics
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_one_broker_cluster_gets_one_replica_and_a_second_run_creates_nothing(
    kafka: KafkaSettings, prefix: str
) -> None:
    two = TopicSettings(partitions=2)
    report = provision_topics(kafka, prefix, topics=two)
    assert len(report.created) == len(TOPICS)
    assert all(line.startswith("created ") for line in report.lines())
    found = existing_topics(make_admin(kafka), report.created_names)
    assert found[f"{prefix}events"].partitions == 2
    assert {(topic.replication_factor, topic.config["min.insync.replicas"])
            for topic in found.values()} == {(1, "1")}
    snapshots = found[f"{prefix}model-snapshots"]
    assert snapshots.config["segment.ms"] == "600000"
    assert "segment.ms" in snapshots.explicit
    again = provision_topics(kafka, prefix, topics=two)
    assert (again.created, again.weaker, again.altered) == ([], {}, {})
    assert provision_topics(kafka, prefix).weaker[f"{prefix}events"] == [
        "2 partition(s), not 4"]


def test_an_old_snapshot_topic_is_reported_and_given_the_compaction_configs(
    kafka: KafkaSettings, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = f"{prefix}model-snapshots"
    create_missing_topics(kafka, [NewTopic(old, num_partitions=1, replication_factor=1, config={
        "cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "604800000"})])
    report = provision_topics(kafka, prefix)
    assert old not in report.created_names
    assert report.weaker == {old: ["max.message.bytes=1048588, not 67108864",
                                   "segment.ms=604800000, not 600000"]}
    assert report.altered[old] == {"min.cleanable.dirty.ratio": "0.25",
                                   "max.compaction.lag.ms": "900000",
                                   "delete.retention.ms": "3600000"}
    assert f"topic {old} exists with weaker settings" in caplog.text
    admin = make_admin(kafka)

    def configs() -> dict[str, str]:
        [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, old)]).values()
        return {key: entry.value for key, entry in future.result().items()}

    # The broker answers from metadata that follows the change a moment later.
    wait_for(lambda: configs()["min.cleanable.dirty.ratio"] == "0.25", 30,
             "the altered config to be described")
    assert configs()["segment.ms"] == "604800000", "the topic's own choice is kept"
