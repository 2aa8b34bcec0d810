"""Drift monitors that survive a restart: their state and offsets committed in one transaction.

The drift service produces its alerts (and dead letters) inside a Kafka transaction. A checkpoint
appends the pickled monitors (:class:`~services.drift.handler.DriftState`) to the compacted
``drift-state`` topic under the service's consumer group, adds the input offsets they cover to
the same transaction and commits it (:func:`~services.common.transactions.commit_with_offsets`).
After a crash the broker aborts the open transaction: its alerts never reach ``read_committed``
readers (the metrics sink, the model service), the group's offsets are those of the last
checkpoint, and the restarted service restores those monitors and reads on from there. The
messages in between are seen again by monitors that had not seen them, so the alerts they raise
are raised once: none is repeated, none is lost.

A checkpoint is due every ``interval`` seconds once anything was processed, and at once after a
message that raised an alert, so an alert reaches ``read_committed`` readers without waiting
for the interval. Restoring (:func:`restore_monitors`) starts fresh monitors, with a warning,
from a checkpoint written by other library versions or under other drift or label settings
(monitors built for the old thresholds would keep them); reading still resumes at its offsets.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import pickle
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import Message

from schemas.codec import decode, encode
from schemas.snapshots import DriftSnapshot
from schemas.spec import PipelineSpec
from services.common.compacted import committed_records
from services.common.library_versions import incompatibilities, installed_versions
from services.common.resume import partition_key
from services.common.settings import KafkaSettings
from services.common.transactions import GroupMember, TransactionalProducer, commit_with_offsets
from services.drift.handler import DriftHandler, DriftState

log = logging.getLogger(__name__)

STATE_FORMAT = "drift-2"
"""Bumped when the pickled monitors change shape incompatibly."""


def settings_fingerprint(spec: PipelineSpec) -> str:
    """Identifies what the monitors were built from: the drift and label settings and the
    fields and aggregates they may watch."""
    parts = [spec.drift.model_dump_json(), spec.label.model_dump_json(),
             *(f"{name}:{field.type}" for name, field in sorted(spec.fields.items())),
             *sorted(aggregate.name for aggregate in spec.aggregates)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def dump_monitors(state: DriftState) -> str:
    """Pickled, compressed and base64-encoded."""
    return base64.b64encode(zlib.compress(pickle.dumps(state, protocol=5), 1)).decode()


def load_monitors(text: str) -> DriftState:
    """The state :func:`dump_monitors` wrote (only ever read back from the service's own
    ``drift-state`` topic)."""
    state = pickle.loads(zlib.decompress(base64.b64decode(text)))  # noqa: S301 (own checkpoints)
    if not isinstance(state, DriftState):
        raise TypeError(f"a drift checkpoint holds {type(state).__name__}, not DriftState")
    return state


def read_latest(kafka: KafkaSettings, topic: str, key: str) -> DriftSnapshot | None:
    """The newest committed checkpoint under ``key``, or None."""
    latest: bytes | None = None
    for message in committed_records(kafka, topic):
        if (message.key() or b"").decode(errors="replace") == key:
            latest = message.value()
    return None if latest is None else decode(DriftSnapshot, latest)


def restore_monitors(snapshot: DriftSnapshot, handler: DriftHandler, spec: PipelineSpec) -> bool:
    """Put the checkpoint's monitors into ``handler`` if they fit; False (logged) if fresh
    monitors start instead."""
    problems = incompatibilities(snapshot.library_versions, installed_versions(STATE_FORMAT))
    if snapshot.settings_fingerprint != settings_fingerprint(spec):
        problems.append("the drift or label settings of the spec changed")
    if problems:
        log.warning("drift checkpoint not restored (%s): every monitor starts fresh and warms "
                    "up again; reading resumes at the checkpoint's offsets", "; ".join(problems))
        return False
    handler.restore(load_monitors(snapshot.state))
    log.info("restored the drift monitors of %s: %d observations, %d alerts raised before",
             snapshot.created_at.isoformat(), snapshot.observations, snapshot.alerts_raised)
    return True


class _Producer(TransactionalProducer, Protocol):
    def produce(self, topic: str, value: bytes, key: bytes) -> None: ...


class DriftCheckpointer:
    """A :class:`~services.common.consumer_loop.Committer`: alerts, monitors and input offsets
    in one transaction (see the module docstring).

    ``offsets`` is where the monitors stood at start in every input partition
    (:func:`services.common.resume.start_offsets`); each checkpoint records them moved on past
    every message :meth:`processed` heard of. ``restored`` (the checkpoint the service started
    from) carries its counts on.
    """

    def __init__(
        self,
        producer: _Producer,
        consumer: GroupMember,
        topic: str,
        key: str,
        handler: DriftHandler,
        fingerprint: str,
        offsets: Mapping[str, int],
        interval: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        restored: DriftSnapshot | None = None,
    ) -> None:
        self._producer, self._consumer = producer, consumer
        self._topic, self._key = topic, key
        self._handler = handler
        self._fingerprint = fingerprint
        self._offsets = dict(offsets)
        self._interval = interval
        self._monotonic = monotonic
        self._last = monotonic()
        self._alerts_at_last = handler.alerts_raised
        self._processed: dict[str, int] = {}
        self.observations = 0 if restored is None else restored.observations
        """Messages the monitors have taken in, those before the restored checkpoint included."""
        self._alerts_before = 0 if restored is None else restored.alerts_raised
        self.checkpoints = 0
        self.last_size = 0
        self.last_seconds = 0.0

    def begin(self) -> None:
        """Open the first transaction (after ``init_transactions``)."""
        self._producer.begin_transaction()

    def processed(self, message: Message) -> None:
        self._processed[partition_key(message.topic() or "", message.partition() or 0)] = (
            (message.offset() or 0) + 1)
        self.observations += 1

    def due(self) -> bool:
        if not self._processed:
            return False
        return (self._handler.alerts_raised != self._alerts_at_last
                or self._monotonic() - self._last >= self._interval)

    def commit(self) -> None:
        """Checkpoint the monitors with the offsets they cover and commit the transaction (with
        every alert produced since the last one); then open the next transaction."""
        started = self._last = self._monotonic()
        if not self._processed:
            return
        offsets = {**self._offsets, **self._processed}
        alerts = self._alerts_before + self._handler.alerts_raised
        snapshot = DriftSnapshot(
            created_at=datetime.now(UTC), library_versions=installed_versions(STATE_FORMAT),
            settings_fingerprint=self._fingerprint, offsets=offsets,
            observations=self.observations, alerts_raised=alerts,
            state=dump_monitors(self._handler.state()),
        )
        value = encode(snapshot)
        self._producer.produce(self._topic, key=self._key.encode(), value=value)
        commit_with_offsets(self._producer, self._consumer, offsets)
        self._offsets = offsets
        self._processed.clear()
        self._alerts_at_last = self._handler.alerts_raised
        self._last = self._monotonic()
        self.checkpoints += 1
        self.last_size = len(value)
        self.last_seconds = self._last - started
