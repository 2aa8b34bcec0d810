"""The consume -> process -> produce -> commit loop shared by the confluent-kafka services.

Contract (``tests/contracts/consumer_loop.py`` checks it against in-memory clients and the real
broker):

* Messages are consumed in batches (``consume(batch_size, poll_timeout)``) and handled one by
  one, in order. A message counts as processed only after its handler returned, or after its
  dead letter was handed to the producer; only then does the :class:`Committer` hear of it
  (with the default :class:`OffsetCommitter`, its offset is stored before the next commit).
  Whether a commit is due is asked after every message; the producer's delivery reports are
  served and the metrics updated once per batch.
* A handler's :class:`~services.common.failures.Retriable` is retried on the same message with a
  bounded exponential :class:`~services.common.failures.Backoff` (an injectable sleep that wakes
  on the stop signal); nothing is committed meanwhile. A stop while retrying leaves the message
  and the rest of its batch unprocessed and rewinds the consumer to the first unprocessed
  message of each partition; a failure that outlasts the back-off is a crash.
* :class:`~services.common.dead_letters.DeadLetter`: the message goes to ``dead-letters`` with
  its reason and is counted.
* Anything else is a crash: one line (:func:`~services.common.failures.describe_crash`) naming
  topic, partition and offset, then the error propagates (the process exits non-zero) and
  nothing more is committed, not even when closing the consumer revokes its partitions.
* Partitions are committed before they are revoked, and messages of theirs still in a poll are
  dropped (their next owner reads them). A commit that raises
  :class:`~services.common.committers.Rewound` has sought its partitions back to their last
  commit: what the loop holds of them is dropped, what it holds of other partitions is sought
  back to, and all of it is read again.
* :class:`OffsetCommitter` commits stored offsets only once the producer acknowledged every
  record produced so far (outputs and dead letters): a record still outstanding postpones the
  commit, one whose delivery failed stops the service uncommitted
  (:class:`~services.common.failures.UndeliveredOutput`). A crash replays messages (at least
  once) and never skips one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import (
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from services.common.batches import consume_ready
from services.common.committers import DeliveryReports, OffsetCommitter, Rewound
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.common.failures import Backoff, Retriable, describe_crash
from services.common.runtime import StopSignal
from services.common.service_metrics import LoopMetrics

log = logging.getLogger(__name__)


class Handler(Protocol):
    """One service's processing of a message.

    Raise :class:`DeadLetter` to reject the message, :class:`Retriable` (before changing any
    state for it, or idempotently) to be called again with the same message after a back-off;
    anything else stops the service.
    """

    def handle(self, message: Message) -> None: ...

    def on_idle(self) -> None:
        """Called when a poll returns nothing: a chance to act on time (timeouts, flushes)."""


class Committer(Protocol):
    """How a loop makes finished work durable. :class:`OffsetCommitter` is at-least-once; the
    model service commits outputs, state and offsets in one transaction instead."""

    def processed(self, message: Message) -> None:
        """The work for ``message`` is done (its outputs are produced)."""

    def due(self) -> bool:
        """Whether it is time to :meth:`commit`."""

    def commit(self) -> None:
        """Make everything processed so far durable."""


class ConsumerLoop:
    """Runs a :class:`Handler` over a subscribed consumer until stopped or ``max_messages``.

    ``sleep(seconds)`` waits between retries and returns whether a stop was asked for (by
    default the stop signal's own wait, which wakes early on a stop).
    """

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        handler: Handler,
        dead_letters: DeadLetterPublisher,
        stop: StopSignal,
        metrics: LoopMetrics,
        base_name_of: Callable[[str], str],
        committer: Committer | None = None,
        poll_timeout: float = 0.1,
        batch_size: int = 500,
        monotonic: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        sleep: Callable[[float], bool] | None = None,
        deliveries: DeliveryReports | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._handler = handler
        self._dead_letters = dead_letters
        self._stop = stop
        self._metrics = metrics
        self._base_name_of = base_name_of
        self._committer = committer or OffsetCommitter(
            consumer, producer, deliveries=deliveries, monotonic=monotonic)
        self._poll_timeout = poll_timeout
        self._batch_size = batch_size
        self._monotonic = monotonic
        self._backoff = backoff or Backoff()
        self._sleep = sleep or stop.wait
        self._crashed = False
        self._revoked: set[tuple[str | None, int | None]] = set()
        """Partitions revoked, or rewound by a commit, since the last poll."""
        self._rewound = False
        self._where: str | Message = "the consumer loop"
        """What the loop is doing (a message: handling it), for the line a crash logs."""
        self.last_turn = monotonic()
        """When the loop last went round (monotonic): a loop stuck in a client call stops it."""

    def subscribe(self, topics: list[str]) -> None:
        """Subscribe, committing finished work before partitions are taken away (not after a
        crash: the message in hand must be read again). Messages of those partitions that the
        poll in progress still returns are not this consumer's to handle: they are dropped."""

        def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            if not self._crashed:
                self._commit()
            self._revoked.update((p.topic, p.partition) for p in partitions)

        self._consumer.subscribe(topics, on_revoke=on_revoke)

    def _commit(self) -> None:
        """Commit; after a :class:`Rewound` commit, drop what the poll in progress or the batch
        in hand holds of the rewound partitions (the consumer reads them again)."""
        try:
            self._committer.commit()
        except Rewound as rewound:
            log.warning("%s; reading them again", rewound)
            self._revoked.update(rewound.positions)
            self._rewound = True

    def _fresh(self, batch: list[Message]) -> list[Message]:
        """``batch`` less the messages of partitions revoked or rewound while it was fetched;
        those of other partitions after a rewind are sought back to, not handled now."""
        if not self._revoked:
            return batch
        dropped, self._revoked = self._revoked, set()
        kept = [m for m in batch if (m.topic(), m.partition()) not in dropped]
        if self._rewound:
            self._rewound = False
            self._rewind(kept)
            return []
        return kept

    def run(self, max_messages: int | None = None) -> int:
        """Process until a stop signal (or ``max_messages``); commit, close. Return the count.

        A crash logs :func:`describe_crash` and propagates, committing nothing more.
        """
        processed = 0
        self._where = "the consumer loop"
        self._metrics.up.set(1)
        try:
            while not self._stop.is_set and (max_messages is None or processed < max_messages):
                self.last_turn = self._monotonic()
                self._where = "a poll"
                wanted = self._batch_size if max_messages is None else min(
                    self._batch_size, max_messages - processed)
                batch = self._fresh(consume_ready(self._consumer, wanted, self._poll_timeout))
                self._producer.poll(0)
                if not batch:
                    self._where = "idle work"
                    self._idle()
                else:
                    done, stopped = self._process_batch(batch)
                    processed += done
                    if stopped:
                        break
                self._where = "a commit"
                if self._committer.due():
                    self._commit()
                self._revoked.clear()  # nothing fetched before a rewind is in hand any more
                self._rewound = False
            self._where = "the final commit"
            self._commit()
        except Exception as error:
            self._crashed = True
            where = self._where
            log.error(describe_crash(error, where if isinstance(where, str) else _position(where)))
            raise
        finally:
            self._metrics.up.set(0)
            self._consumer.close()
        return processed

    def _process_batch(self, batch: list[Message]) -> tuple[int, bool]:
        """Handle ``batch`` in order, committing whenever due. Returns the number of messages
        done and whether a stop came while retrying (the consumer is then rewound to the first
        message not done of each partition)."""
        started = time.perf_counter()
        done = 0
        stopped = False
        by_topic: dict[str, int] = {}
        try:
            for index, message in enumerate(batch):
                if self._is_error(message):
                    continue
                self._where = message
                topic = message.topic() or ""
                by_topic[topic] = by_topic.get(topic, 0) + 1
                if not self._process(message):
                    self._rewind(batch[index:])
                    stopped = True
                    break
                done += 1
                if self._committer.due():
                    self._where = "a commit"
                    self._commit()
                    if self._rewound:
                        self._rewound = False
                        self._rewind([m for m in batch[index + 1:]
                                      if (m.topic(), m.partition()) not in self._revoked])
                        break
        finally:
            for topic, count in by_topic.items():
                self._metrics.messages(service=self._metrics_service,
                                       topic=self._base_name_of(topic)).inc(count)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.batch_size.observe(done)
        return done, stopped

    def _idle(self) -> None:
        try:
            self._handler.on_idle()
        except Retriable as error:
            log.warning("idle work failed, will try again: %s", error)

    def _process(self, message: Message) -> bool:
        """Handle ``message`` (retrying while retriable); False when stopped before it was
        done."""
        rejected: DeadLetter | None = None
        try:
            done = self._retrying(message, lambda: self._handler.handle(message))
        except DeadLetter as dead:
            rejected = dead
        if rejected is not None:
            done = self._retrying(message, lambda: self._dead_letter(message, rejected))
        if not done:
            return False
        self._committer.processed(message)
        return True

    def _retrying(self, message: Message, step: Callable[[], None]) -> bool:
        """Run ``step`` until it does not raise :class:`Retriable`; False if stopped first."""
        attempt = 0
        failing_since: float | None = None
        while True:
            try:
                step()
                return True
            except Retriable as error:
                now = self._monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since >= self._backoff.give_up_after:
                    raise
                delay = self._backoff.delay(attempt)
                attempt += 1
                log.warning("retrying %s in %.2f s (attempt %d): %s",
                            _position(message), delay, attempt, error)
                if self._sleep(delay) or self._stop.is_set:
                    return False
                self._producer.poll(0)
                self.last_turn = self._monotonic()

    def _dead_letter(self, message: Message, dead: DeadLetter) -> None:
        try:
            self._dead_letters.publish(
                message.value(), message.key(), message.topic() or "", message.partition() or 0,
                message.offset() or 0, dead,
            )
        except BufferError as error:
            raise Retriable(f"the producer's queue is full: {error}") from error
        self._metrics.dead_letters(service=self._metrics_service, reason=dead.reason_code).inc()

    def _rewind(self, unprocessed: list[Message]) -> None:
        """Seek each partition back to its first message in ``unprocessed``: a committer that
        reads the consumer's positions then does not cover them."""
        first: dict[tuple[str, int], int] = {}
        for message in unprocessed:
            if message.error() is None:
                first.setdefault((message.topic() or "", message.partition() or 0),
                                 message.offset() or 0)
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as error:
                log.warning("could not rewind to %s[%d]@%d: %s", topic, partition, offset, error)

    @property
    def _metrics_service(self) -> str:
        return self._dead_letters.service

    @staticmethod
    def _is_error(message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer error: %s", error)
        return True


def _position(message: Message) -> str:
    """``topic[partition]@offset`` of a consumed message, for log lines."""
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"
