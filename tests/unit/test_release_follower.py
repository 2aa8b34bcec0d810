"""A predictor follows the learner's releases on ``model-releases``: the newest one is served."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from confluent_kafka import KafkaError, Message

from services.predictor.follower import TAIL, ReleaseFollower
from tests.unit.fakes import ManualMonotonic
from tests.unit.release_fakes import (
    LEARNER,
    RELEASES,
    FakeReleaseConsumer,
    encoded,
    release,
    release_message,
)

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
CHECK_EVERY = 0.25  # exact in binary: a manual clock reaches it exactly


def follower(consumer: FakeReleaseConsumer,
             monotonic: ManualMonotonic | None = None) -> ReleaseFollower:
    return ReleaseFollower(consumer, RELEASES, LEARNER, CHECK_EVERY,
                           monotonic=monotonic or ManualMonotonic())


def test_start_assigns_the_last_records_of_partition_0() -> None:
    consumer = FakeReleaseConsumer(low=0, high=100)
    follower(consumer).start()
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.assigned] == [
        (RELEASES, 0, 100 - TAIL)]
    assert TAIL == 16


def test_start_never_assigns_before_the_low_watermark() -> None:
    consumer = FakeReleaseConsumer(low=95, high=100)
    follower(consumer).start()
    assert [(tp.partition, tp.offset) for tp in consumer.assigned] == [(0, 95)]


def test_newer_returns_the_newest_release_of_the_batch() -> None:
    consumer = FakeReleaseConsumer()
    consumer.queue(encoded(release(3, T0), 0), encoded(release(8, T0), 1))
    follow = follower(consumer)
    newest = follow.newer()
    assert newest is not None and newest.labels_learned == 8
    assert follow.newest_labels == 8


def test_newer_returns_none_when_nothing_came() -> None:
    follow = follower(FakeReleaseConsumer())
    assert follow.newer() is None
    assert follow.newest_labels == -1


def test_newer_looks_at_most_every_check_every_seconds() -> None:
    consumer = FakeReleaseConsumer()
    monotonic = ManualMonotonic()
    follow = follower(consumer, monotonic)
    assert follow.newer() is None
    consumer.queue(encoded(release(4, T0)))
    monotonic.advance(CHECK_EVERY / 2)
    assert follow.newer() is None
    assert len(consumer.consumes) == 1  # not read again yet
    monotonic.advance(CHECK_EVERY / 2)
    made = follow.newer()
    assert made is not None and made.labels_learned == 4
    assert len(consumer.consumes) == 2


def test_newer_with_a_wait_reads_at_once_and_waits_that_long() -> None:
    consumer = FakeReleaseConsumer()
    follow = follower(consumer)
    assert follow.newer() is None
    consumer.queue(encoded(release(4, T0)))
    made = follow.newer(wait=2.0)
    assert made is not None and made.labels_learned == 4
    assert consumer.consumes[-1] == (64, 2.0)


def test_releases_of_another_learner_are_ignored() -> None:
    consumer = FakeReleaseConsumer()
    other = release(9, T0, learner_id="learner-b")
    consumer.queue(encoded(release(2, T0), 0),
                   release_message(encoded(other).value(), key=b"learner-b", offset=1))
    made = follower(consumer).newer()
    assert made is not None and (made.learner, made.labels_learned) == (LEARNER, 2)


def test_tombstones_and_errors_are_ignored() -> None:
    consumer = FakeReleaseConsumer()
    failed = Message(topic=RELEASES, partition=0, offset=3, key=LEARNER.encode(),
                     value=encoded(release(20, T0)).value(),
                     error=KafkaError(KafkaError._PARTITION_EOF))
    consumer.queue(encoded(release(5, T0), 0), release_message(None, offset=1),
                   release_message(b"", offset=2), failed)
    made = follower(consumer).newer()
    assert made is not None and made.labels_learned == 5


def test_an_undecodable_newest_release_is_logged_and_skipped(
        caplog: pytest.LogCaptureFixture) -> None:
    consumer = FakeReleaseConsumer()
    consumer.queue(release_message(b"{not json", offset=7))
    follow = follower(consumer)
    with caplog.at_level(logging.ERROR, "services.predictor.follower"):
        assert follow.newer() is None
    assert follow.newest_labels == -1
    assert f"{RELEASES}[0]@7" in caplog.text


def test_an_older_release_after_a_newer_one_is_never_returned() -> None:
    consumer = FakeReleaseConsumer()
    monotonic = ManualMonotonic()
    follow = follower(consumer, monotonic)
    consumer.queue(encoded(release(10, T0)))
    consumer.queue(encoded(release(6, T0)))
    first = follow.newer()
    monotonic.advance(CHECK_EVERY)
    assert first is not None and first.labels_learned == 10
    assert follow.newer() is None
    assert follow.newest_labels == 10


def test_a_heartbeat_release_with_the_same_labels_is_returned() -> None:
    consumer = FakeReleaseConsumer()
    monotonic = ManualMonotonic()
    follow = follower(consumer, monotonic)
    consumer.queue(encoded(release(10, T0)))
    consumer.queue(encoded(release(10, T0.replace(minute=1))))
    assert follow.newer() is not None
    monotonic.advance(CHECK_EVERY)
    heartbeat = follow.newer()
    assert heartbeat is not None and heartbeat.created_at == T0.replace(minute=1)

