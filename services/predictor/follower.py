"""Following the learner's releases on ``model-releases``: the newest one is the one served."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import Message, TopicPartition

from schemas.codec import ContractError, decode
from schemas.serving import ModelRelease

log = logging.getLogger(__name__)

TAIL = 16
"""Records read back from the end at start: the learner publishes at least every heartbeat, so
the newest release is among the last few (and, if not, the next heartbeat brings one)."""


class _Consumer(Protocol):
    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def consume(self, num_messages: int = 1, timeout: float = -1.0) -> list[Message]: ...

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float = ...,
                              cached: bool = False) -> tuple[int, int]: ...


class ReleaseFollower:
    """Reads ``topic`` (one partition, ``read_committed``) for releases of ``learner``.

    :meth:`newer` is cheap to call per message: it reads the topic at most every ``check_every``
    seconds and decodes only the newest record found.
    """

    def __init__(self, consumer: _Consumer, topic: str, learner: str, check_every: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._consumer = consumer
        self._topic = topic
        self._key = learner.encode()
        self._check_every = check_every
        self._monotonic = monotonic
        self._checked_at = -float("inf")
        self.newest_labels = -1
        """``labels_learned`` of the newest release returned (-1: none yet)."""

    def start(self) -> None:
        """Assign the partition a few records before its end."""
        partition = TopicPartition(self._topic, 0)
        low, high = self._consumer.get_watermark_offsets(partition, timeout=10)
        self._consumer.assign([TopicPartition(self._topic, 0, max(low, high - TAIL))])

    def newer(self, wait: float = 0.0) -> ModelRelease | None:
        """A release newer than the last one returned, if one was committed since; None if not
        (or if it is not time to look yet)."""
        now = self._monotonic()
        if wait <= 0 and now - self._checked_at < self._check_every:
            return None
        self._checked_at = now
        newest: Message | None = None
        for message in self._consumer.consume(64, wait):
            if message.error() is None and message.key() == self._key and message.value():
                newest = message
        if newest is None:
            return None
        try:
            release = decode(ModelRelease, newest.value())
        except ContractError as error:
            log.error("unreadable model release at %s[0]@%s: %s", self._topic, newest.offset(),
                      error)
            return None
        if release.labels_learned < self.newest_labels:
            return None  # an older learner's release read after a newer one: never go back
        self.newest_labels = release.labels_learned
        return release
