"""Topic layout without a broker: replication from the broker count, settings overrides, what an
existing topic lacks, and which configs may be set on it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from confluent_kafka.cimpl import NewTopic

from schemas.topics import SNAPSHOT_CONFIG, TOPICS, topic_spec
from services.common.settings import Settings, TopicSettings
from services.common.topic_layout import (
    ExistingTopic,
    Replication,
    TopicLayoutError,
    catalogue_topics,
    describe,
    replicated,
    replication_for,
    safe_alterations,
    shortfalls,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("STREAMML_"):
            monkeypatch.delenv(name)
    yield


@pytest.mark.parametrize(("brokers", "factor", "min_insync"), [
    (1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2), (9, 3, 2),
])
def test_defaults_follow_the_broker_count(brokers: int, factor: int, min_insync: int) -> None:
    assert replication_for(brokers) == Replication(factor, min_insync)


def test_settings_override_the_defaults() -> None:
    assert replication_for(5, TopicSettings(replication_factor=5)) == Replication(5, 4)
    assert replication_for(5, TopicSettings(min_insync_replicas=1)) == Replication(3, 1)
    assert replication_for(3, TopicSettings(replication_factor=2, min_insync_replicas=2)) == (
        Replication(2, 2))


def test_impossible_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(TopicLayoutError, match="needs at least 3 brokers; the cluster lists 1"):
        replication_for(1, TopicSettings(replication_factor=3))
    with pytest.raises(TopicLayoutError, match="exceeds the replication factor 3"):
        replication_for(3, TopicSettings(min_insync_replicas=4))
    with pytest.raises(TopicLayoutError, match="no broker"):
        replication_for(0)


def test_topic_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMML_TOPICS__REPLICATION_FACTOR", "2")
    monkeypatch.setenv("STREAMML_TOPICS__MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv("STREAMML_TOPICS__PARTITIONS", "12")
    assert Settings().topics == TopicSettings(replication_factor=2, min_insync_replicas=2,
                                              partitions=12)
    assert Settings().topics != TopicSettings()


def test_catalogue_topics_carry_replication_and_the_partition_override() -> None:
    topics = {topic.topic: topic for topic in catalogue_topics(
        "p.", Replication(3, 2), TopicSettings(partitions=12))}
    assert set(topics) == {f"p.{spec.name}" for spec in TOPICS}
    assert all(topic.replication_factor == 3 for topic in topics.values())
    assert all((topic.config or {})["min.insync.replicas"] == "2" for topic in topics.values())
    assert topics["p.events"].num_partitions == 12
    assert topics["p.model-snapshots"].num_partitions == 1, "single-partition topics stay so"
    snapshots = topics["p.model-snapshots"].config or {}
    assert snapshots["segment.ms"] == SNAPSHOT_CONFIG["segment.ms"]
    assert describe(topics["p.model-snapshots"]) == (
        "p.model-snapshots: 1 partition(s), replication factor 3, min.insync.replicas 2, "
        "compacted")


def test_internal_topics_get_the_replication_and_keep_their_configs() -> None:
    [topic] = replicated([NewTopic("g-changelog", num_partitions=4, replication_factor=1,
                                   config={"cleanup.policy": "compact"})], Replication(2, 1))
    assert (topic.num_partitions, topic.replication_factor) == (4, 2)
    assert topic.config == {"cleanup.policy": "compact", "min.insync.replicas": "1"}


def test_snapshot_segments_hold_the_largest_checkpoint_allowed() -> None:
    config = topic_spec("model-snapshots").config
    assert int(config["segment.bytes"]) >= int(config["max.message.bytes"])
    assert int(config["segment.ms"]) <= int(config["max.compaction.lag.ms"])


def _wanted() -> NewTopic:
    return catalogue_topics("", Replication(3, 2), specs=[topic_spec("model-snapshots")])[0]


def _found(**config: str) -> ExistingTopic:
    defaults = {"cleanup.policy": "compact", "min.insync.replicas": "2",
                "max.message.bytes": str(64 * 1024 * 1024), "min.compaction.lag.ms": "0",
                "segment.ms": "604800000", "segment.bytes": str(1024 ** 3),
                "min.cleanable.dirty.ratio": "0.5", "delete.retention.ms": "86400000",
                "max.compaction.lag.ms": str(2 ** 63 - 1)}
    return ExistingTopic("model-snapshots", 1, 3, {**defaults, **config},
                         explicit=frozenset({"cleanup.policy", "max.message.bytes"}))


def test_a_topic_as_strong_as_wanted_lacks_nothing() -> None:
    assert shortfalls(_wanted(), _found(**{k: v for k, v in SNAPSHOT_CONFIG.items()})) == []
    stronger = _found(**SNAPSHOT_CONFIG, **{"min.insync.replicas": "3"})
    assert shortfalls(_wanted(), stronger) == []


def test_weaker_replication_partitions_and_policy_are_reported() -> None:
    weak = ExistingTopic("model-snapshots", 1, 1, {**_found().config, "cleanup.policy": "delete",
                                                   "min.insync.replicas": "1"})
    wanted = NewTopic("model-snapshots", num_partitions=4, replication_factor=3,
                      config=_wanted().config)
    problems = shortfalls(wanted, weak)
    assert problems[:2] == ["1 partition(s), not 4", "replication factor 1, not 3"]
    assert "cleanup.policy=delete, not compact" in problems
    assert "min.insync.replicas=1, not 2" in problems
    assert "segment.ms=604800000, not 600000" in problems, "not compacted: not altered either"
    assert safe_alterations(wanted, weak) == {}


def test_compaction_tuning_is_set_only_where_the_topic_leaves_it_to_the_broker() -> None:
    found = _found()
    assert safe_alterations(_wanted(), found) == {
        key: SNAPSHOT_CONFIG[key] for key in ("segment.ms", "segment.bytes",
                                              "min.cleanable.dirty.ratio",
                                              "delete.retention.ms", "max.compaction.lag.ms")}
    assert shortfalls(_wanted(), found) == [], "what will be set is not reported as lacking"
    own = ExistingTopic(found.name, 1, 3, {**found.config, "segment.ms": "1000"},
                        explicit=found.explicit | {"segment.ms"})
    assert "segment.ms" not in safe_alterations(_wanted(), own)
    assert shortfalls(_wanted(), own) == ["segment.ms=1000, not 600000"]
