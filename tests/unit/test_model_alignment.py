"""The model's time-aligned input: a feature vector waits for the labels fetched before it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from confluent_kafka import TopicPartition

from services.model.alignment import AlignedConsumer, peek_time

FEATURES, LABELS, ALERTS = "features", "labels", "drift-alerts"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None


def feature(offset: int, seconds: float) -> FakeMessage:
    return FakeMessage(FEATURES, 0, offset, orjson.dumps(
        {"event_id": f"e{offset}", "event_time": at(seconds)}))


def label(partition: int, offset: int, seconds: float) -> FakeMessage:
    return FakeMessage(LABELS, partition, offset, orjson.dumps(
        {"event_id": f"l{partition}-{offset}", "label_time": at(seconds), "label": 1}))


class FakeConsumer:
    """Hands out queued messages in the order given, like a fetch that brings the features
    partition before the labels partitions; ``high`` are the fetched high watermarks."""

    def __init__(self, messages: list[FakeMessage], high: dict[tuple[str, int], int],
                 labels_partitions: int = 2) -> None:
        self.queue = deque(messages)
        self.high = high
        self.paused: set[tuple[str, int]] = set()
        self.assigned = [TopicPartition(FEATURES, 0), TopicPartition(ALERTS, 0)] + [
            TopicPartition(LABELS, p) for p in range(labels_partitions)]
        self.positions: dict[tuple[str, int], int] = {}
        self.seeks: list[TopicPartition] = []
        self.polls_empty = 0

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        """Up to ``num_messages`` queued messages of partitions not paused, in queue order."""
        batch: list[FakeMessage] = []
        for message in list(self.queue):
            if len(batch) == num_messages:
                break
            if (message.topic(), message.partition()) not in self.paused:
                self.queue.remove(message)
                self.positions[(message.topic(), message.partition())] = message.offset() + 1
                batch.append(message)
        if not batch:
            self.polls_empty += 1
        return batch

    def assignment(self) -> list[TopicPartition]:
        return list(self.assigned)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition,
                               self.positions.get((tp.topic, tp.partition), -1001))
                for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = 1.0,
                              cached: bool = False) -> tuple[int, int]:
        assert cached, "only the fetched watermarks: no request per message"
        return 0, self.high.get((partition.topic, partition.partition), -1001)

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append(partition)

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def aligned(consumer: FakeConsumer, clock: Clock | None = None,
            start: dict[str, int] | None = None) -> AlignedConsumer:
    return AlignedConsumer(cast(Any, consumer), FEATURES, LABELS, start=start or {}, max_wait=10.0,
                           monotonic=clock or Clock())


def drain(reader: AlignedConsumer, limit: int = 50) -> list[str]:
    out = []
    for _ in range(limit):
        message = reader.poll(0.0)
        if message is None:
            break
        out.append(f"{message.topic()}[{message.partition()}]@{message.offset()}")
    return out


def test_peek_time_reads_the_timestamp_the_handler_reads() -> None:
    assert peek_time(feature(0, 1.5).value(), "event_time") == (
        T0 + timedelta(seconds=1.5)).timestamp()
    assert peek_time(b"not json", "event_time") is None
    assert peek_time(b'{"event_time": 3}', "event_time") is None


def test_a_feature_vector_fetched_before_the_labels_that_precede_it_waits_for_them() -> None:
    # One fetch: the features partition first, then both labels partitions (as librdkafka
    # hands out a fetch response, partition by partition).
    consumer = FakeConsumer(
        [feature(0, 1.0), feature(1, 2.0), feature(2, 3.0),
         label(0, 0, 0.5), label(1, 0, 1.5), label(0, 1, 2.5), label(1, 1, 3.5)],
        high={(LABELS, 0): 2, (LABELS, 1): 2, (FEATURES, 0): 3},
    )
    reader = aligned(consumer, start={"labels:0": 0, "labels:1": 0})

    assert drain(reader) == [
        "labels[0]@0",  # feature 0 (t=1.0) waits for labels[1], whose next label may be earlier
        "labels[1]@0",  # t=1.5 >= 1.0 on labels[1]; labels[0] newest 0.5 and more to read
        "labels[0]@1",  # newest 2.5: both partitions now past t=1.0
        "features[0]@0",
        "labels[1]@1",  # t=3.5: labels[1] past t=2.0
        "features[0]@1",
        "features[0]@2",  # t=3.0: labels[0] is read to its end, labels[1] is past it
    ]
    assert reader.held_total == 2
    assert consumer.paused == set(), "the features partitions are resumed once nothing is held"


def test_labels_partitions_read_to_their_end_hold_nothing_back() -> None:
    consumer = FakeConsumer([label(0, 0, 0.5), feature(0, 1.0), feature(1, 2.0)],
                            high={(LABELS, 0): 1, (LABELS, 1): 4})
    reader = aligned(consumer, start={"labels:0": 0, "labels:1": 4})

    assert drain(reader) == ["labels[0]@0", "features[0]@0", "features[0]@1"]
    assert reader.held_total == 0


def test_a_labels_partition_not_fetched_yet_is_waited_for() -> None:
    consumer = FakeConsumer([feature(0, 1.0)], high={(LABELS, 0): 0})
    reader = aligned(consumer, start={"labels:0": 0, "labels:1": 0})

    assert drain(reader) == []  # labels[1] has no fetched high watermark yet
    consumer.high[(LABELS, 1)] = 0  # its first fetch: empty
    assert drain(reader) == ["features[0]@0"]


def test_held_messages_are_not_covered_by_the_positions_a_checkpoint_records() -> None:
    consumer = FakeConsumer([feature(5, 1.0), feature(6, 2.0)],
                            high={(LABELS, 0): 3, (LABELS, 1): 0})
    reader = aligned(consumer, start={"labels:0": 0, "labels:1": 0})

    assert drain(reader) == []
    features = TopicPartition(FEATURES, 0)
    assert consumer.position([features])[0].offset == 6
    assert reader.position([features])[0].offset == 5
    assert consumer.paused == {(FEATURES, 0)}

    reader.seek(TopicPartition(FEATURES, 0, 5))  # a rewind forgets what was held from there
    assert consumer.paused == set()
    assert consumer.seeks == [TopicPartition(FEATURES, 0, 5)]


def test_a_revoked_partition_loses_what_was_held_after_the_commit_saw_it_excluded() -> None:
    consumer = FakeConsumer([feature(5, 1.0)], high={(LABELS, 0): 3, (LABELS, 1): 0})
    reader = aligned(consumer, start={"labels:0": 0, "labels:1": 0})
    seen: list[int] = []
    reader.subscribe([FEATURES, LABELS], on_revoke=lambda _, partitions: seen.extend(
        tp.offset for tp in reader.position(partitions)))

    assert drain(reader) == []
    consumer.callbacks["on_revoke"](consumer, [TopicPartition(FEATURES, 0)])

    assert seen == [5]
    assert reader.position([TopicPartition(FEATURES, 0)])[0].offset == 6


def test_a_labels_partition_that_makes_no_progress_is_waited_for_at_most_max_wait() -> None:
    clock = Clock()
    forced: list[int] = []
    consumer = FakeConsumer([feature(0, 1.0), label(0, 0, 0.2)],
                            high={(LABELS, 0): 2, (LABELS, 1): 0})
    reader = AlignedConsumer(cast(Any, consumer), FEATURES, LABELS,
                             start={"labels:0": 0, "labels:1": 0}, max_wait=10.0,
                             monotonic=clock, on_forced=lambda: forced.append(1))

    assert drain(reader) == ["labels[0]@0"]  # labels[0]@1 (a marker, say) never comes
    clock.now = 9.9
    assert reader.poll(0.0) is None
    clock.now = 10.0
    message = reader.poll(0.0)
    assert message is not None and message.offset() == 0 and message.topic() == FEATURES
    assert forced == [1] and reader.forced == 1


def test_other_topics_and_undecodable_features_go_straight_through() -> None:
    alert = FakeMessage(ALERTS, 0, 0, b"{}")
    broken = FakeMessage(FEATURES, 0, 0, b"not json")
    consumer = FakeConsumer([broken, alert], high={(LABELS, 0): 9, (LABELS, 1): 9})
    reader = aligned(consumer, start={"labels:0": 0, "labels:1": 0})

    assert drain(reader) == ["features[0]@0", "drift-alerts[0]@0"]


def test_the_assignment_is_read_again_after_a_rebalance_only() -> None:
    consumer = FakeConsumer([feature(0, 1.0)], high={(LABELS, 0): 0}, labels_partitions=1)
    asked: list[int] = []
    assignment = consumer.assignment

    def counted() -> list[TopicPartition]:
        asked.append(1)
        return assignment()

    consumer.assignment = counted  # type: ignore[method-assign]
    reader = aligned(consumer, start={"labels:0": 0, "labels:1": 0})
    reader.subscribe([FEATURES, LABELS])

    assert drain(reader) == ["features[0]@0"]
    assert len(asked) == 1, "assignment() is a round trip to librdkafka: not once per fetch"

    consumer.assigned.append(TopicPartition(LABELS, 1))  # a rebalance brings labels[1] ...
    consumer.callbacks["on_assign"](consumer, [TopicPartition(LABELS, 1)])
    consumer.queue.append(feature(1, 2.0))
    assert drain(reader) == [], "... not fetched yet: the next vector waits for it"
    consumer.high[(LABELS, 1)] = 0
    assert drain(reader) == ["features[0]@1"]
    assert len(asked) == 2
