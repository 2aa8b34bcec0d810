"""Where the model service resumes: its restored checkpoint's offsets against the group's.

Equal: go on. The checkpoint behind: the group is rewound to it, so nothing is skipped. Anything
else: a clean stop with one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from confluent_kafka import TopicPartition

from services.common.failures import BrokenInvariant
from services.common.resume import Decision, ResumeRefused, decide, start_offsets
from services.common.runtime import StartupError


def test_equal_offsets_resume_where_both_stand() -> None:
    offsets = {"features:0": 120, "labels:0": 80}
    assert decide(offsets, dict(offsets)) == Decision("resume", start=offsets)


def test_no_checkpoint_and_no_committed_offsets_is_a_fresh_start() -> None:
    assert decide(None, {}) == Decision("resume")


def test_a_checkpoint_behind_the_group_rewinds_to_the_checkpoint() -> None:
    decision = decide({"features:0": 100, "labels:0": 80, "labels:1": 7},
                      {"features:0": 120, "labels:0": 80, "labels:1": 9})
    assert decision.action == "rewind"
    assert decision.start == {"features:0": 100, "labels:0": 80, "labels:1": 7}
    assert decision.behind == {"features:0": (100, 120), "labels:1": (7, 9)}


def test_a_checkpoint_ahead_of_the_group_anywhere_stops() -> None:
    decision = decide({"features:0": 100, "labels:0": 90}, {"features:0": 120, "labels:0": 80})
    assert decision.action == "stop"
    assert "ahead of the consumer group at labels:0 (checkpoint 90, group 80)" in decision.reason


def test_a_partition_the_group_has_no_offset_for_stops() -> None:
    decision = decide({"features:0": 100, "labels:0": 5}, {"features:0": 100})
    assert decision.action == "stop"
    assert "labels:0 up to offset 5" in decision.reason
    assert "no offset there" in decision.reason


def test_committed_offsets_without_a_checkpoint_stop() -> None:
    decision = decide(None, {"features:0": 100})
    assert decision.action == "stop"
    assert "no checkpoint" in decision.reason and "features:0 at 100" in decision.reason


def test_a_partition_the_checkpoint_does_not_record_is_read_on_from_the_group() -> None:
    decision = decide({"features:0": 100}, {"features:0": 100, "drift-alerts:0": 3})
    assert decision == Decision("resume", start={"features:0": 100, "drift-alerts:0": 3},
                                unrecorded=("drift-alerts:0",))


# -- start_offsets: the decision applied to the clients -------------------------------------


@dataclass
class _Cluster:
    """The consumer and transactional producer calls a start makes, on an in-memory group."""

    partitions: dict[str, int]
    committed_offsets: dict[str, int]
    low: int = 0
    calls: list[str] = field(default_factory=list)
    sent: list[TopicPartition] = field(default_factory=list)

    def list_topics(self, topic: str, timeout: float) -> SimpleNamespace:
        count = self.partitions.get(topic)
        topics = {} if count is None else {
            topic: SimpleNamespace(error=None, partitions={p: None for p in range(count)})}
        return SimpleNamespace(topics=topics)

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition,
                               self.committed_offsets.get(f"{tp.topic}:{tp.partition}", -1001))
                for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        return self.low, self.low + 50

    def consumer_group_metadata(self) -> object:
        return "group"

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, positions: list[TopicPartition], metadata: object,
                                    timeout: float) -> None:
        self.calls.append("send_offsets")
        self.sent += positions

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")
        for tp in self.sent:
            self.committed_offsets[f"{tp.topic}:{tp.partition}"] = tp.offset


TOPICS = ["features", "labels", "drift-alerts"]


def test_a_start_behind_rewinds_the_group_in_a_transaction_before_reading() -> None:
    cluster = _Cluster({"features": 1, "labels": 2, "drift-alerts": 1},
                       {"features:0": 120, "labels:0": 80, "labels:1": 70})
    start = start_offsets(cluster, cluster, TOPICS,  # type: ignore[arg-type]
                          {"features:0": 100, "labels:0": 80, "labels:1": 60})
    assert cluster.calls == ["begin", "send_offsets", "commit"]
    assert cluster.committed_offsets == {"features:0": 100, "labels:0": 80, "labels:1": 60}
    # Every input partition, the one never read at its low watermark: what checkpoints record.
    assert start == {"features:0": 100, "labels:0": 80, "labels:1": 60, "drift-alerts:0": 0}


def test_a_start_in_step_with_the_group_commits_nothing() -> None:
    cluster = _Cluster({"features": 1, "labels": 1}, {"features:0": 120, "labels:0": 80}, low=7)
    start = start_offsets(cluster, cluster, TOPICS,  # type: ignore[arg-type]
                          {"features:0": 120, "labels:0": 80})
    assert cluster.calls == []
    assert start == {"features:0": 120, "labels:0": 80}


def test_a_fresh_start_records_every_partition_at_its_low_watermark() -> None:
    cluster = _Cluster({"features": 2, "labels": 1}, {}, low=3)
    start = start_offsets(cluster, cluster, TOPICS, None)  # type: ignore[arg-type]
    assert cluster.calls == []
    assert start == {"features:0": 3, "features:1": 3, "labels:0": 3}


def test_a_contradicting_start_stops_with_one_line_and_touches_nothing() -> None:
    cluster = _Cluster({"features": 1}, {"features:0": 80})
    with pytest.raises(ResumeRefused) as refused:
        start_offsets(cluster, cluster, TOPICS, {"features:0": 100})  # type: ignore[arg-type]
    assert isinstance(refused.value, BrokenInvariant)
    assert isinstance(refused.value, StartupError)  # printed as one line, not a traceback
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith("refusing to resume: the checkpoint is ahead")
    assert cluster.calls == []
    assert cluster.committed_offsets == {"features:0": 80}
