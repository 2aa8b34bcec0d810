"""Time-aligned input for the model service: a feature vector is handed on only once the labels
that precede it in time have been read.

The handler learns a label before the first feature vector whose ``event_time`` is later than
the label's ``label_time`` (:mod:`services.model.handler`), but it can only learn labels it has
read. Kafka keeps order within a partition, not across the ``features`` and ``labels`` topics:
when the consumer has a backlog (a restart, or simply a model that fell behind), one fetch brings
a run of feature vectors and the labels of the same moment, and hands them out partition by
partition. Feature vectors read before the labels that precede them were then predicted by a
model short of those labels, and the prediction depended on how a fetch happened to interleave
the topics: not River's ``progressive_val_score``, and not what a restored model repeats.

:class:`AlignedConsumer` wraps the service's consumer and holds a feature vector back while some
labels partition may still hold a label earlier than it: that partition's newest label read is
older than the vector's ``event_time``, and the partition has messages on the broker not read yet
(its position is below the high watermark of the latest fetch). While a vector is held, every
later one is held behind it and the ``features`` partitions are paused; labels (and every other
topic) go through. A held message has not been handed to the service, so the positions the
wrapper reports (what a checkpoint records) stop at it: a crash reads it again.

A label still in its producer's queue when the feature vector was fetched cannot be waited for
(that is the label arriving late, which no reader can tell from a label never sent), and a
labels partition that stops making progress (a label reader would otherwise wait forever, e.g.
behind a transaction marker it cannot read past) is waited for at most ``max_wait`` seconds
from the hold or from the last label read, whichever is later.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
from confluent_kafka import Message, TopicPartition

from services.common.batches import consume_ready

log = logging.getLogger(__name__)

OFFSET_INVALID = -1001


_Callback = Callable[[Any, list[TopicPartition]], None]


class _Consumer(Protocol):
    def consume(self, num_messages: int = 1, timeout: float = -1.0) -> list[Message]: ...

    def assignment(self) -> list[TopicPartition]: ...

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = ...,
                              cached: bool = False) -> tuple[int, int]: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def seek(self, partition: TopicPartition) -> None: ...

    def subscribe(self, topics: list[str], on_assign: _Callback | None = None,
                  on_revoke: _Callback | None = None, on_lost: _Callback | None = None) -> None: ...


def peek_time(raw: bytes | None, field: str) -> float | None:
    """The timestamp in ``field`` of a JSON message, as the handler will read it; None if the
    message has none (the handler then rejects it)."""
    try:
        value = orjson.loads(raw or b"")[field]
        return datetime.fromisoformat(value).timestamp()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


@dataclass
class _Held:
    message: Message
    event_time: float


class AlignedConsumer:
    """A consumer whose :meth:`consume` hands out a ``features`` message only once every assigned
    ``labels`` partition has been read up to its ``event_time`` or has nothing more fetched.

    ``start`` gives, for every input partition (``"topic:partition"``), the offset the service
    starts reading from (where its restored state stands), for partitions nothing has been read
    from yet. Every other method is the wrapped consumer's.
    """

    def __init__(
        self,
        consumer: _Consumer,
        features_topic: str,
        labels_topic: str,
        start: Mapping[str, int] | None = None,
        max_wait: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
        on_forced: Callable[[], None] = lambda: None,
        on_held: Callable[[], None] = lambda: None,
    ) -> None:
        self._consumer = consumer
        self._features = features_topic
        self._labels = labels_topic
        self._start = dict(start or {})
        self._max_wait = max_wait
        self._monotonic = monotonic
        self._on_forced = on_forced
        self._on_held = on_held
        self._held: deque[_Held] = deque()
        self._unreturned: deque[Message] = deque()  # ready, not returned yet by :meth:`poll`
        self._held_since = 0.0
        self._last_label_at = 0.0
        self._paused: list[TopicPartition] = []
        self._newest_label: dict[int, float] = {}  # labels partition -> newest label_time read
        self._next_label: dict[int, int] = {}  # labels partition -> next offset to read
        self._assigned: list[TopicPartition] | None = None  # None: to be read again
        self.held_total = 0
        self.forced = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    # -- reading ---------------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> Message | None:
        """The next message in time order (see the module); None when nothing is ready within
        ``timeout`` seconds."""
        if not self._unreturned:
            self._unreturned.extend(self.consume(1, -1.0 if timeout is None else timeout))
        return self._unreturned.popleft() if self._unreturned else None

    def consume(self, num_messages: int = 1, timeout: float = -1.0) -> list[Message]:
        """The messages ready in time order from one fetch of up to ``num_messages`` (a few
        more when held vectors become ready with it); an empty list when nothing is ready within
        ``timeout`` seconds (negative: no limit). Consumer errors come through as messages."""
        if self._unreturned:
            ready = list(self._unreturned)
            self._unreturned.clear()
            return ready
        deadline = None if timeout < 0 else self._monotonic() + timeout
        ready = []
        while True:
            labels = self._labels_assigned()
            self._release_ready(ready, labels)
            if ready:
                return ready
            fetched = consume_ready(self._consumer, num_messages, self._wait(deadline))
            labels = self._labels_assigned()
            for message in fetched:
                self._admit(message, ready, labels)
            if ready:
                return ready
            if not fetched and self._held and self._stalled():
                self.forced += 1
                self._on_forced()
                log.warning("features held %.1fs for labels partitions that made no progress;"
                            " going on without them", self._monotonic() - self._held_since)
                return [self._release()]
            if not fetched and deadline is not None and self._monotonic() >= deadline:
                return ready

    def _wait(self, deadline: float | None) -> float:
        """How long the next fetch may block: until ``deadline`` (-1: no limit), and, while
        vectors are held, no longer than the moment to give up on a stalled labels partition."""
        remaining = -1.0 if deadline is None else max(0.0, deadline - self._monotonic())
        if not self._held:
            return remaining
        give_up = max(self._held_since, self._last_label_at) + self._max_wait
        until_give_up = max(0.0, give_up - self._monotonic())
        return until_give_up if remaining < 0 else min(remaining, until_give_up)

    def _admit(self, message: Message, ready: list[Message],
               labels: list[TopicPartition]) -> None:
        """Hand ``message`` on (append it to ``ready``) or hold it back."""
        if message.error() is not None:
            ready.append(message)
            return
        topic = message.topic()
        if topic == self._labels:
            self._read_label(message)
            ready.append(message)
            self._release_ready(ready, labels)
            return
        if topic != self._features:
            ready.append(message)
            return
        event_time = peek_time(message.value(), "event_time")
        if event_time is None or (not self._held and self._ready(event_time, labels)):
            ready.append(message)
        else:
            self._hold(message, event_time)

    def _release_ready(self, ready: list[Message], labels: list[TopicPartition]) -> None:
        while self._held and self._ready(self._held[0].event_time, labels):
            ready.append(self._release())

    def _assignment(self, topic: str) -> list[TopicPartition]:
        """The assigned partitions of ``topic``. ``assignment()`` is a round trip to
        librdkafka's main thread, so it is asked again only after a rebalance callback."""
        if self._assigned is None:
            self._assigned = self._consumer.assignment()
        return [tp for tp in self._assigned if tp.topic == topic]

    def _labels_assigned(self) -> list[TopicPartition]:
        return self._assignment(self._labels)

    def _read_label(self, message: Message) -> None:
        partition = message.partition() or 0
        self._next_label[partition] = (message.offset() or 0) + 1
        self._last_label_at = self._monotonic()
        label_time = peek_time(message.value(), "label_time")
        if label_time is not None and label_time > self._newest_label.get(partition, -1.0):
            self._newest_label[partition] = label_time

    def _ready(self, event_time: float, labels: list[TopicPartition]) -> bool:
        """Whether every assigned labels partition (``labels``) has been read up to
        ``event_time``: its newest label is not earlier, or nothing more was fetched from it."""
        for assigned in labels:
            if self._newest_label.get(assigned.partition, -1.0) >= event_time:
                continue
            if not self._caught_up(assigned):
                return False
        return True

    def _caught_up(self, partition: TopicPartition) -> bool:
        marks: tuple[int, int] | None = self._consumer.get_watermark_offsets(partition,
                                                                             cached=True)
        if marks is None or marks[1] < 0:
            return False  # nothing fetched yet: unknown
        following = self._next_label.get(partition.partition)
        if following is None:
            following = self._start.get(f"{partition.topic}:{partition.partition}",
                                        OFFSET_INVALID)
        return following >= marks[1]

    def _stalled(self) -> bool:
        return (self._monotonic() - max(self._held_since, self._last_label_at)
                >= self._max_wait)

    def _hold(self, message: Message, event_time: float) -> None:
        if not self._held:
            self._held_since = self._monotonic()
            self._paused = self._assignment(self._features)
            if self._paused:
                self._consumer.pause(self._paused)
        self._held.append(_Held(message, event_time))
        self.held_total += 1
        self._on_held()

    def _release(self) -> Message:
        held = self._held.popleft()
        if not self._held:
            self._resume()
        return held.message

    def _resume(self) -> None:
        if self._paused:
            self._consumer.resume(self._paused)
            self._paused = []

    # -- positions, seeks and rebalances -----------------------------------------------------

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The consumer's positions, except that a partition with messages held back stands at
        the first of them (it has not been handed on)."""
        first: dict[tuple[str, int], int] = {}
        for message in [*self._unreturned, *(held.message for held in self._held)]:
            key = (message.topic() or "", message.partition() or 0)
            first.setdefault(key, message.offset() or 0)
        positions = self._consumer.position(partitions)
        return [TopicPartition(tp.topic, tp.partition, first[(tp.topic, tp.partition)])
                if (tp.topic, tp.partition) in first else tp for tp in positions]

    def seek(self, partition: TopicPartition) -> None:
        """Seek, forgetting the messages held from that partition at or after the offset."""
        self._drop(lambda held: held.message.topic() == partition.topic
                   and held.message.partition() == partition.partition
                   and (held.message.offset() or 0) >= partition.offset)
        if partition.topic == self._labels:
            self._next_label.pop(partition.partition, None)
            self._start[f"{partition.topic}:{partition.partition}"] = partition.offset
        self._consumer.seek(partition)

    def subscribe(self, topics: list[str], on_assign: _Callback | None = None,
                  on_revoke: _Callback | None = None, on_lost: _Callback | None = None) -> None:
        """Subscribe; partitions taken away lose what was held from them (a lost assignment
        with no ``on_lost`` goes to ``on_revoke``, as with the consumer itself)."""
        callbacks: dict[str, _Callback] = {"on_revoke": self._revoking(on_revoke),
                                           "on_assign": self._assigning(on_assign)}
        if on_lost is not None:
            callbacks["on_lost"] = self._revoking(on_lost)
        self._consumer.subscribe(topics, **callbacks)

    def _assigning(self, given: _Callback | None) -> _Callback:
        def assigned(consumer: Any, partitions: list[TopicPartition]) -> None:
            self._assigned = None
            if given is not None:
                given(consumer, partitions)

        return assigned

    def _revoking(self, given: _Callback | None) -> _Callback:
        def revoked(consumer: Any, partitions: list[TopicPartition]) -> None:
            self._assigned = None
            if given is not None:
                given(consumer, partitions)  # commits with the held messages still excluded
            gone = {(tp.topic, tp.partition) for tp in partitions}
            self._paused = [tp for tp in self._paused if (tp.topic, tp.partition) not in gone]
            self._drop(lambda held: (held.message.topic(), held.message.partition()) in gone)
            for tp in partitions:
                if tp.topic == self._labels:
                    self._next_label.pop(tp.partition, None)
                    self._newest_label.pop(tp.partition, None)

        return revoked

    def _drop(self, which: Callable[[_Held], bool]) -> None:
        self._unreturned = deque(message for message in self._unreturned
                                 if not which(_Held(message, 0.0)))
        if self._held:
            self._held = deque(held for held in self._held if not which(held))
            if not self._held:
                self._resume()
