"""Exactly-once learning: outputs, model state and input offsets committed in one transaction.

Everything the model service produces (predictions, outcomes, dead letters) goes out inside a
Kafka transaction. A checkpoint appends the pickled handler state to the compacted
``model-snapshots`` topic, adds the offsets after the messages it covers to the same transaction
and commits it.
After a crash the open transaction is aborted by the broker: its outputs never reach
``read_committed`` readers, the group's committed offsets are those of the last snapshot, and
the service restores that snapshot and replays from there. No label is learned twice or skipped,
and no outcome is published twice.

Most checkpoints are *deltas*: only what changed since the checkpoint before
(:mod:`services.model.journal`), under their own keys; a *full* one is written first, then
whenever the deltas since the last full one add up to its size or reach a set number, and it
tombstones the deltas it supersedes. Restoring reads the newest full
checkpoint and its deltas (:func:`read_checkpoint_chain`).

A snapshot records the library versions it was written with; :func:`load_state` refuses one
written by an incompatible River or Python with :class:`SnapshotIncompatible`.
"""

from __future__ import annotations

import base64
import functools
import importlib.metadata
import logging
import platform
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from schemas.codec import decode, encode
from schemas.snapshots import ModelSnapshot
from services.common.blocking_call import call_within
from services.common.kafka import make_consumer
from services.common.runtime import StartupError
from services.common.settings import KafkaSettings
from services.model import journal
from services.model.resume import partition_key, topic_partition

log = logging.getLogger(__name__)

STATE_FORMAT = "1"


class SnapshotIncompatible(StartupError):
    """A snapshot was written by library versions this process cannot safely load."""


def library_versions() -> dict[str, str]:
    """The versions a pickled state depends on (read from the installed packages once)."""
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    return (
        ("river", importlib.metadata.version("river")),
        ("python", ".".join(platform.python_version_tuple()[:2])),
        ("state_format", STATE_FORMAT),
    )


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_compatible(recorded: dict[str, str], current: dict[str, str]) -> None:
    """Raise :class:`SnapshotIncompatible` unless River (major.minor), Python (major.minor) and
    the state format match."""
    problems = [
        f"{name} {recorded.get(name, '?')} (snapshot) vs {current[name]} (here)"
        for name in ("river", "python", "state_format")
        if _major_minor(recorded.get(name, "")) != _major_minor(current[name])
    ]
    if problems:
        raise SnapshotIncompatible(
            "refusing to load a model snapshot written by other library versions: "
            + "; ".join(problems)
            + ". Run with the versions it was written with, or start fresh under a new "
            "STREAMML_TOPIC_PREFIX (or delete the snapshot key from model-snapshots and the "
            "model group's committed offsets: a group with offsets and no checkpoint is refused)."
        )


def dump_state(state: object, delta: bool = False) -> str:
    """Pickled (whole, or as a delta on the previous dump), compressed and base64-encoded."""
    return base64.b64encode(zlib.compress(journal.dump(state, delta), 1)).decode()


def load_state(chain: ModelSnapshot | Sequence[ModelSnapshot]) -> object:
    """The state of a full snapshot followed by its deltas, after checking library versions
    (for the model handler, a :class:`~services.model.state.HandlerState`, or the dict that
    checkpoints written before it hold)."""
    snapshots = [chain] if isinstance(chain, ModelSnapshot) else list(chain)
    for snapshot in snapshots:
        check_compatible(snapshot.library_versions, library_versions())
    return journal.load(
        zlib.decompress(base64.b64decode(snapshot.state)) for snapshot in snapshots)


def delta_key(key: str, base: int, sequence: int) -> str:
    """The key of delta ``sequence`` on the full checkpoint ``base`` of learner ``key``."""
    return f"{key}/delta/{base}/{sequence}"


def read_checkpoint_chain(kafka: KafkaSettings, topic: str, key: str) -> list[ModelSnapshot]:
    """The newest committed full checkpoint under ``key`` and its deltas in order, read from the
    start of ``topic``; empty if there is none.

    The deltas stop at the first missing sequence: a delta applies only on top of the one before
    it, so the chain restores the state as of the delta before the gap (logged, with the deltas
    left out). That state is older than the offsets the group committed with the later deltas;
    :mod:`services.model.resume` finds it behind and has the inputs read again from its offsets.
    """
    full: Message | None = None
    deltas: dict[str, Message] = {}
    for message in _committed_records(kafka, topic):
        name = (message.key() or b"").decode(errors="replace")
        if name == key:
            full = message
        elif name.startswith(f"{key}/delta/"):
            if message.value() is None:
                deltas.pop(name, None)  # tombstone: superseded by a newer full checkpoint
            else:
                deltas[name] = message
    if full is None:
        return []
    chain = [decode(ModelSnapshot, full.value())]
    while (following := deltas.get(delta_key(key, chain[0].sequence,
                                             chain[-1].sequence + 1))) is not None:
        chain.append(decode(ModelSnapshot, following.value()))
    base_prefix = delta_key(key, chain[0].sequence, 0).rpartition("/")[0]
    left_out = sorted(sequence for name in deltas if name.rpartition("/")[0] == base_prefix
                      and (sequence := int(name.rpartition("/")[2])) > chain[-1].sequence)
    if left_out:
        log.warning("checkpoint %d of %s is missing: restoring up to checkpoint %d and leaving "
                    "out the %d deltas after the gap (%d to %d)", chain[-1].sequence + 1, key,
                    chain[-1].sequence, len(left_out), left_out[0], left_out[-1])
    return chain


READ_SECONDS = 60.0
"""How long reading one partition of ``model-snapshots`` may take at start. A read cut short
restores an older checkpoint, which the offset check on start then finds behind the group."""


def _committed_records(kafka: KafkaSettings, topic: str) -> Iterator[Message]:
    """Every committed record of ``topic``, partition by partition, in offset order (a partition
    not read to its end within :data:`READ_SECONDS` is left at that, with a warning)."""
    consumer = make_consumer(kafka, f"snapshot-reader-{uuid.uuid4().hex[:8]}")
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                       timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            started = time.monotonic()
            deadline = started + READ_SECONDS
            while True:
                if time.monotonic() >= deadline:
                    log.warning("%s[%d] not read to its end within %.0fs: the checkpoint "
                                "restored may be older than the newest", topic, partition,
                                READ_SECONDS)
                    break
                message = consumer.poll(0.5)
                if message is None:
                    position = consumer.position([TopicPartition(topic, partition)])[0].offset
                    if position >= high or (position < 0 and time.monotonic() - started > 5):
                        break  # past the end (aborted records and markers leave gaps)
                    continue
                if message.error() is not None:
                    continue
                yield message
                if (message.offset() or 0) >= high - 1:
                    break
    finally:
        consumer.close()


class Checkpointable(Protocol):
    """What a checkpoint covers: the model handler."""

    labels_learned: int
    revision: int
    """Bumped on every change of state or output; unchanged means nothing to checkpoint."""

    def state(self) -> object:
        """Everything the handler needs to continue (picklable)."""
        ...

    def champion(self) -> tuple[str, int]:
        """The serving model's name and version."""
        ...


class TransactionalCheckpointer:
    """A :class:`~services.common.consumer_loop.Committer` that checkpoints the model state.

    Commits every ``interval`` seconds or ``every_labels`` learned labels, whichever is first,
    and when partitions are revoked or the service stops. A snapshot's cost grows with the state
    (pending events, remembered ids, the models), so the pace adapts: after a commit that took
    ``t`` seconds the next one waits at least ``t * (1 - time_share) / time_share``, keeping
    checkpoints to ``time_share`` of the service's time; outputs then become visible to
    ``read_committed`` readers less often, never later than the slower pace. The wait never
    exceeds ``max_wait``: the transaction stays open that long, and the broker aborts one older
    than the producer's ``transaction.timeout.ms`` (60 s) and fences the producer. A commit that
    waited out a broker restart would otherwise be followed by one more than 60 s later.

    Between full checkpoints come at most ``max_deltas`` deltas, adding up to at most
    ``delta_budget`` times the last full one. The first checkpoint of a process is full;
    ``restored`` (the chain it started from) numbers the next ones and names the deltas that
    full checkpoint tombstones.

    A checkpoint's ``offsets`` cover every input partition the state knows: ``offsets`` (where
    the state stood at start, :func:`services.model.resume.start_offsets`), moved on past every
    message :meth:`processed` heard of (never the consumer's positions, which run ahead of the
    batch being handled); all of them are committed as the group's offsets in its transaction,
    so the offsets of the newest checkpoint always equal the group's, partitions nothing has
    been read from since the start included.
    """

    def __init__(
        self,
        producer: Producer,
        consumer: Consumer,
        snapshot_topic: str,
        key: str,
        source: Checkpointable,
        interval: float = 1.0,
        every_labels: int = 10_000,
        time_share: float = 0.25,
        max_wait: float = 15.0,
        restored: Sequence[ModelSnapshot] = (),
        max_deltas: int = 1_000,
        delta_budget: float = 1.0,
        offsets: Mapping[str, int] | None = None,
    ) -> None:
        self._producer = producer
        self._consumer = consumer
        self._topic = snapshot_topic
        self._key = key
        self._source = source
        self._committed_revision = source.revision
        self._interval = interval
        self._every_labels = every_labels
        self._wait_per_commit_second = (1.0 - time_share) / time_share
        self._wait = interval
        self._max_wait = max(interval, max_wait)
        self._dirty = False
        self._last = time.monotonic()
        self._labels_at_last = source.labels_learned
        self.checkpoints = 0
        self.last_size = 0
        self.last_full_size = 0
        self.last_seconds = 0.0
        self._sequence = restored[-1].sequence if restored else 0
        self._base: int | None = None  # the full checkpoint this process's deltas build on
        self._superseded = [delta_key(key, snapshot.base_sequence, snapshot.sequence)
                            for snapshot in restored if snapshot.base_sequence is not None]
        self._delta_bytes = 0
        self._max_deltas, self._delta_budget = max_deltas, delta_budget
        self._offsets = dict(offsets or {})
        self._processed: dict[tuple[str, int], int] = {}
        """Offset after the last message processed, by input partition, since the last commit:
        tracked here, not read from the consumer, whose positions run ahead of a batch."""

    def begin(self) -> None:
        """Open the first transaction (after ``init_transactions``)."""
        self._producer.begin_transaction()

    def processed(self, message: Message) -> None:
        self._dirty = True
        self._processed[(message.topic() or "", message.partition() or 0)] = (
            (message.offset() or 0) + 1)

    def _changed(self) -> bool:
        return self._dirty or self._source.revision != self._committed_revision

    def due(self) -> bool:
        return self._changed() and (
            time.monotonic() - self._last >= self._wait
            or self._source.labels_learned - self._labels_at_last >= self._every_labels
        )

    def commit(self) -> None:
        """Snapshot, offsets and outputs, atomically; then open the next transaction.

        Anything the handler produced since the last commit, including output made while idle
        (labels learned at the end of a stream), is inside this transaction, so an open
        transaction never outlives the checkpoint interval.
        """
        started = self._last = time.monotonic()
        if not self._changed():
            return
        revision = self._source.revision
        offsets = {**self._offsets, **{
            partition_key(topic, partition): offset
            for (topic, partition), offset in self._processed.items()}}
        name, version = self._source.champion()
        full = (self._base is None or len(self._superseded) >= self._max_deltas
                or self._delta_bytes >= self._delta_budget * self.last_full_size)
        sequence = self._sequence + 1
        snapshot = ModelSnapshot(
            model=name, model_version=version, created_at=datetime.now(UTC),
            library_versions=library_versions(),
            offsets=offsets,
            labels_learned=self._source.labels_learned,
            state=dump_state(self._source.state(), delta=not full),
            sequence=sequence, base_sequence=None if full else self._base,
        )
        value = encode(snapshot)
        key = self._key if full or self._base is None else delta_key(self._key, self._base,
                                                                      sequence)
        self._producer.produce(self._topic, key=key.encode(), value=value)
        if full:
            for superseded in self._superseded:
                self._producer.produce(self._topic, key=superseded.encode(), value=None)
        if offsets:
            positions = [topic_partition(name, offset) for name, offset in sorted(offsets.items())]
            metadata = self._consumer.consumer_group_metadata()
            _retried(lambda: self._producer.send_offsets_to_transaction(positions, metadata,
                                                                         OFFSETS_TIMEOUT_S),
                     "adding the input offsets to the transaction", OFFSETS_TIMEOUT_S)
        _retried(lambda: self._producer.commit_transaction(COMMIT_TIMEOUT_S),
                 "committing the transaction", COMMIT_TIMEOUT_S)
        self._producer.begin_transaction()
        self._sequence = sequence
        if full:
            self._base, self._superseded, self._delta_bytes = sequence, [], 0
            self.last_full_size = len(value)
        else:
            self._superseded.append(key)
            self._delta_bytes += len(value)
        self._dirty = False
        self._offsets = offsets
        self._processed.clear()
        self._committed_revision = revision
        self._labels_at_last = snapshot.labels_learned
        self._last = time.monotonic()  # the interval runs from the end of a slow commit too
        self.last_seconds = self._last - started
        self._wait = min(self._max_wait,
                         max(self._interval, self.last_seconds * self._wait_per_commit_second))
        self.checkpoints += 1
        self.last_size = len(value)
        log.debug("checkpoint %d (%s): %d bytes, %d labels learned", sequence,
                  "full" if full else "delta", len(value), snapshot.labels_learned)


RETRY_SECONDS = 240.0
"""How long a checkpoint retries a transaction call that failed with a retriable error (a
broker restarting, a coordinator moving). Shorter than the producer's transaction timeout
(:data:`TRANSACTION_TIMEOUT_MS`), so the broker does not abort the transaction meanwhile."""

OFFSETS_TIMEOUT_S = 30.0
"""The timeout given to ``send_offsets_to_transaction``."""

COMMIT_TIMEOUT_S = 60.0
"""The timeout given to ``commit_transaction``."""

HANG_GRACE_S = 15.0
"""How long past its own timeout a transaction call may block before the service gives up on
its producer (:func:`_retried`)."""

TRANSACTION_TIMEOUT_MS = 300_000
"""The model producer's ``transaction.timeout.ms``: an open transaction may ride out an outage
of a few minutes (the broker caps it at its ``transaction.max.timeout.ms``, 15 min by default)."""


def _retried(call: Callable[[], None], what: str, timeout: float) -> None:
    """Run a transaction call given ``timeout`` seconds, again while it fails with a retriable
    error (librdkafka's contract for ``send_offsets_to_transaction`` and
    ``commit_transaction``); anything else, or still failing after :data:`RETRY_SECONDS`, is
    raised: the service then restarts from its last checkpoint.

    A call still blocked :data:`HANG_GRACE_S` after its own timeout raises
    :class:`~services.common.blocking_call.CallHung` (librdkafka issues #5456, #5511): the
    transaction is never committed, so the restart loses and repeats nothing.
    """
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            call_within(call, timeout + HANG_GRACE_S, what)
            return
        except KafkaException as exception:
            error = exception.args[0]
            if not error.retriable() or time.monotonic() > deadline:
                raise
            log.warning("%s failed, retrying: %s", what, error.str())
