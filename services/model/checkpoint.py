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
import logging
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import Consumer, Message, Producer

from schemas.codec import decode, encode
from schemas.snapshots import ModelSnapshot
from services.common.compacted import committed_records
from services.common.library_versions import incompatibilities, installed_versions
from services.common.resume import partition_key
from services.common.runtime import StartupError
from services.common.settings import KafkaSettings
from services.common.transactions import commit_with_offsets
from services.model import journal

log = logging.getLogger(__name__)

STATE_FORMAT = "1"


class SnapshotIncompatible(StartupError):
    """A snapshot was written by library versions this process cannot safely load."""


def library_versions() -> dict[str, str]:
    """The versions a pickled model state depends on."""
    return installed_versions(STATE_FORMAT)


def check_compatible(recorded: dict[str, str], current: dict[str, str]) -> None:
    """Raise :class:`SnapshotIncompatible` unless River (major.minor), Python (major.minor) and
    the state format match."""
    problems = incompatibilities(recorded, current)
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
    :mod:`services.common.resume` finds it behind and has the inputs read again from its offsets.
    """
    full: Message | None = None
    deltas: dict[str, Message] = {}
    for message in committed_records(kafka, topic):
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
    the state stood at start, :func:`services.common.resume.start_offsets`), moved on past every
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
        before_commit: Callable[[], None] = lambda: None,
    ) -> None:
        """``before_commit`` is called as a commit begins: what it produces (a model release)
        goes into the transaction being committed."""
        self._before_commit = before_commit
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
        self._before_commit()
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
        commit_with_offsets(self._producer, self._consumer, offsets)
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
