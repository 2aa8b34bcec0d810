"""Where a checkpointing service resumes reading: its restored checkpoint against the group's
offsets.

The model service (:mod:`services.model.checkpoint`) and the drift service
(:mod:`services.drift.checkpoint`) commit a checkpoint and the input offsets its state covers in
one transaction, so on start the restored snapshot's offsets equal the
offsets the consumer group has committed. When they differ, resuming from the group's offsets
would go wrong without a word: older state read on from newer offsets skips every label in
between. That happens when the chain restored is cut short (a delta missing: the restore stops
at the gap; a read of ``model-snapshots`` that ran out of time) or when the group's offsets were
moved by hand.

:func:`decide` compares the two, partition by partition (``"topic:partition"`` -> next offset):

- equal, or neither a checkpoint nor a committed offset (a fresh start): resume;
- the snapshot behind (no partition ahead of the group's offset, one or more behind): *rewind*.
  The group's offsets are moved back to the snapshot's in a transaction before the consumer joins
  (:func:`rewind_group`), so the messages in between are processed again from the restored
  state: nothing is skipped and nothing learned twice. Their predictions and outcomes are
  published a second time (read_committed readers see both copies).
- anything else: stop with :class:`ResumeRefused`, one line naming the partition. The snapshot
  is ahead of the group somewhere, or records a partition the group has no offset for, or the
  group has offsets and there is no checkpoint at all (a service whose state may be rebuilt,
  such as drift monitors, starts fresh from the group's offsets instead: :func:`group_offsets`).

A partition the group has an offset for but the snapshot does not mention is read on from the
group's offset, and the start log says so: checkpoints written before every transaction carried
every input partition left out those nothing had been read from since the process started. A
checkpoint written now records every input partition (:func:`start_offsets` seeds them all), so
its offsets always equal those committed with it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from confluent_kafka import TopicPartition
from confluent_kafka.admin._metadata import ClusterMetadata

from services.common.failures import BrokenInvariant
from services.common.runtime import StartupError

log = logging.getLogger(__name__)

Offsets = Mapping[str, int]
"""``"topic:partition"`` -> the next offset to read, as in a snapshot's ``offsets``."""


class ResumeRefused(BrokenInvariant, StartupError):
    """The restored checkpoint and the group's committed offsets contradict each other: the
    service stops rather than skip or relearn anything (a broken invariant, found at start)."""


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` concluded."""

    action: Literal["resume", "rewind", "stop"]
    start: dict[str, int] = field(default_factory=dict)
    """Where reading starts for each partition either side knows: the offsets the restored state
    covers (the group's, for a partition the snapshot does not mention)."""
    behind: dict[str, tuple[int, int]] = field(default_factory=dict)
    """For a rewind: partition -> (the snapshot's offset, the group's)."""
    unrecorded: tuple[str, ...] = ()
    """Partitions the group has an offset for and the snapshot does not mention."""
    reason: str = ""
    """For a stop: the one line saying why."""


def decide(snapshot: Offsets | None, committed: Offsets) -> Decision:
    """Compare the restored snapshot's offsets (None: no checkpoint) with the group's committed
    offsets (only partitions that have one). Pure; see the module's rules."""
    if snapshot is None:
        if not committed:
            return Decision("resume")
        return Decision("stop", reason=(
            f"the consumer group has committed offsets ({_listed(committed)}) but there is no "
            "checkpoint: a state started empty and read on from there would skip everything before "
            "them"
        ))
    behind: dict[str, tuple[int, int]] = {}
    for partition in sorted(snapshot):
        ours, theirs = snapshot[partition], committed.get(partition)
        if theirs is None:
            return Decision("stop", reason=(
                f"the checkpoint has read {partition} up to offset {ours} but the consumer group "
                "has no offset there (its offsets were deleted or expired, or the checkpoint "
                "belongs to other topics)"
            ))
        if ours > theirs:
            return Decision("stop", reason=(
                f"the checkpoint is ahead of the consumer group at {partition} (checkpoint "
                f"{ours}, group {theirs}): the group's offsets were moved back, or the checkpoint "
                "belongs to another stream"
            ))
        if ours < theirs:
            behind[partition] = (ours, theirs)
    unrecorded = tuple(sorted(set(committed) - set(snapshot)))
    start = {**{p: committed[p] for p in unrecorded}, **snapshot}
    return Decision("rewind" if behind else "resume", start, behind, unrecorded)


def _listed(offsets: Offsets, most: int = 4) -> str:
    shown = [f"{partition} at {offsets[partition]}" for partition in sorted(offsets)[:most]]
    more = len(offsets) - most
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def partition_key(topic: str, partition: int) -> str:
    """The ``"topic:partition"`` key of snapshots' offsets."""
    return f"{topic}:{partition}"


def topic_partition(key: str, offset: int) -> TopicPartition:
    """The TopicPartition at ``offset`` of a ``"topic:partition"`` key."""
    topic, _, partition = key.rpartition(":")
    return TopicPartition(topic, int(partition), offset)


class _Consumer(Protocol):
    def list_topics(self, topic: str, timeout: float) -> ClusterMetadata: ...

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        ...

    def get_watermark_offsets(self, partition: TopicPartition,
                              timeout: float) -> tuple[int, int]: ...

    def consumer_group_metadata(self) -> object: ...


class _Producer(Protocol):
    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(self, positions: list[TopicPartition], metadata: object,
                                    timeout: float) -> None: ...

    def commit_transaction(self, timeout: float) -> None: ...


def input_partitions(consumer: _Consumer, topics: Sequence[str]) -> list[str]:
    """Every partition of ``topics`` as ``"topic:partition"`` keys (a missing topic has none)."""
    keys = []
    for topic in topics:
        metadata = consumer.list_topics(topic, timeout=10)
        found = metadata.topics.get(topic)
        if found is not None and found.error is None:
            keys += [partition_key(topic, partition) for partition in sorted(found.partitions)]
    return keys


def committed_offsets(consumer: _Consumer, partitions: Sequence[str]) -> dict[str, int]:
    """The consumer group's committed offsets of ``partitions`` (those that have one).

    Call after the transactional producer's ``init_transactions``: a read_committed consumer
    waits for the offsets of a transaction still open, which that call aborts."""
    if not partitions:
        return {}
    answers = consumer.committed([topic_partition(key, -1001) for key in partitions], timeout=30)
    offsets = {}
    for answer in answers:
        if answer.error is not None:
            raise StartupError(f"cannot read the committed offset of {answer.topic}:"
                               f"{answer.partition}: {answer.error}")
        if answer.offset >= 0:
            offsets[partition_key(answer.topic, answer.partition)] = answer.offset
    return offsets


def rewind_group(producer: _Producer, consumer: _Consumer, offsets: Offsets) -> None:
    """Commit ``offsets`` as the group's, alone in a transaction; before the consumer joins."""
    producer.begin_transaction()
    producer.send_offsets_to_transaction(
        [topic_partition(key, offset) for key, offset in sorted(offsets.items())],
        consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(60)


def start_offsets(
    consumer: _Consumer, producer: _Producer, topics: Sequence[str], snapshot: Offsets | None,
) -> dict[str, int]:
    """Check the restored ``snapshot`` (None: no checkpoint) against the group's committed offsets
    of the input ``topics``, rewind the group if the snapshot is behind, and return where the
    state stands in every input partition: what the next checkpoint records. Raises
    :class:`ResumeRefused` (one line) when they contradict each other."""
    partitions = input_partitions(consumer, topics)
    decision = decide(snapshot, committed_offsets(consumer, partitions))
    if decision.action == "stop":
        raise ResumeRefused(f"refusing to resume: {decision.reason}")
    if decision.unrecorded:
        log.warning("the checkpoint does not record %s; reading on from the group's offsets",
                    _listed({p: decision.start[p] for p in decision.unrecorded}))
    if decision.action == "rewind":
        rewind_group(producer, consumer, decision.start)
        log.warning(
            "the checkpoint is behind the consumer group's offsets; rewound the group to the "
            "checkpoint's offsets to process again what lies between: %s",
            ", ".join(f"{p} {theirs} -> {ours}" for p, (ours, theirs)
                      in sorted(decision.behind.items())))
    return _from_start(consumer, partitions, decision.start)


def group_offsets(consumer: _Consumer, topics: Sequence[str]) -> dict[str, int]:
    """Where the group stands in every partition of ``topics``: its committed offset, or the
    start of the partition where it has none (what a state built from nothing covers)."""
    partitions = input_partitions(consumer, topics)
    return _from_start(consumer, partitions, committed_offsets(consumer, partitions))


def _from_start(consumer: _Consumer, partitions: Sequence[str],
                known: Mapping[str, int]) -> dict[str, int]:
    """``known`` offsets, and the low watermark of every other partition."""
    return {**known, **{
        p: consumer.get_watermark_offsets(topic_partition(p, -1001), timeout=10)[0]
        for p in partitions if p not in known}}
