"""A 3-node local cluster (127.0.0.11-13, replication 3, min.insync.replicas=2) loses the leader
of a partition to SIGKILL while events stream in through the project's idempotent ``acks=all``
producer: every acknowledged event is still in the topic, exactly once.

The cluster runs on its own port (19392) and homes under pytest's tmp_path, never the shared
broker; teardown stops every node, with SIGKILL for any that lingers.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from confluent_kafka.cimpl import NewTopic

from services.cli.local_kafka import LocalCluster
from services.common.kafka import create_missing_topics, make_admin, make_consumer, make_producer
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient
from tests.integration.conftest import REPO, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

EVENTS = 20_000
RATE = 1_500
KILL_AFTER = 5_000
PARTITIONS = 3
PORT = 19392


@dataclass
class Acks:
    """Delivery reports, as the producer's callback sees them."""

    acknowledged: set[str] = field(default_factory=set)
    failed: Counter[str] = field(default_factory=Counter)
    times: dict[int, list[float]] = field(default_factory=dict)

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failed[error.name()] += 1
            return
        self.acknowledged.add(_event_id(message))
        self.times.setdefault(message.partition() or 0, []).append(time.monotonic())


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "cluster", REPO / ".cache", size=3, port=PORT,
                           controller_port=PORT + 1, heap="512m")
    try:
        started = time.monotonic()
        cluster.start(timeout=300)
        print(f"\n3-node cluster {cluster.bootstrap_servers} up in "
              f"{time.monotonic() - started:.1f}s")
        yield cluster
    finally:
        cluster.stop(timeout=20)


def test_killing_a_partition_leader_loses_no_acknowledged_event(cluster: LocalCluster) -> None:
    kafka = cluster.client_settings()
    settings = Settings(kafka=kafka, topic_prefix=f"t{uuid.uuid4().hex[:10]}-")
    topic = settings.topic("events")
    create_missing_topics(kafka, [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=3,
                                           config={"min.insync.replicas": "2"})])
    wait_for(lambda: all(len(isr) == 3 for isr in _isrs(kafka, topic).values()), 60,
             "every partition to have 3 in-sync replicas")
    leaders_before = _leaders(kafka, topic)
    victim = cluster.node(leaders_before[0])
    victim_pid = victim.pid
    assert victim_pid is not None

    acks = Acks()
    producer = make_producer(kafka)
    client = EventClient(producer, settings, entity_key="user", on_delivery=acks)
    base = datetime.now(UTC) - timedelta(hours=1)
    started = time.monotonic()
    killed_at = 0.0
    for n in range(EVENTS):
        while time.monotonic() < started + n / RATE:
            producer.poll(0.001)  # serves delivery reports while waiting for the next slot
        if n == KILL_AFTER:
            os.kill(victim_pid, signal.SIGKILL)
            killed_at = time.monotonic()
        client.publish_event({
            "event_id": f"ev-{n}", "event_time": base + timedelta(milliseconds=n),
            "entity": {"user": f"u{n % 101}"}, "fields": {"n": n},
        })
    published = time.monotonic() - started
    client.flush(timeout=240)
    flushed = time.monotonic() - started

    leaders_after = _leaders(kafka, topic)
    read = _read_to_end(kafka, topic)
    counts = Counter(read)
    duplicates = sum(count - 1 for count in counts.values())
    lost = sorted(acks.acknowledged - counts.keys(), key=lambda e: int(e.split("-")[1]))
    twice = [event for event in acks.acknowledged if counts[event] > 1]
    resumed = min(t for t in acks.times.get(0, []) if t > killed_at) - killed_at
    failovers = sum(leaders_before[p] != leaders_after[p] for p in leaders_before)

    restarted_at = time.monotonic()
    victim.start(timeout=180)
    wait_for(lambda: all(len(isr) == 3 for isr in _isrs(kafka, topic).values()), 120,
             "the restarted node to be back in every ISR")
    rejoined = time.monotonic() - restarted_at

    print(f"published {EVENTS} events in {published:.1f}s ({EVENTS / published:.0f}/s), "
          f"flushed after {flushed:.1f}s; SIGKILLed node {leaders_before[0]} (leader of "
          f"partition 0) before event {KILL_AFTER}")
    print(f"acknowledged={len(acks.acknowledged)} failed={dict(acks.failed)} read={len(read)} "
          f"distinct={len(counts)} duplicates={duplicates} lost={len(lost)} "
          f"acknowledged-twice={len(twice)}")
    print(f"failovers={failovers} (leaders {leaders_before} -> {leaders_after}); partition 0 "
          f"acknowledged again {resumed:.1f}s after the kill; the node rejoined every ISR "
          f"{rejoined:.1f}s after its restart")
    assert leaders_after[0] != leaders_before[0], "partition 0 must have a new leader"
    assert failovers >= 1
    assert lost == [], f"acknowledged but missing: {lost[:10]}"
    assert twice == [], f"acknowledged events read more than once: {twice[:10]}"
    assert len(acks.acknowledged) == EVENTS, "acks=all with 2 of 3 replicas left takes every event"


def _event_id(message: Message) -> str:
    return str(orjson.loads(message.value() or b"{}")["event_id"])


def _leaders(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    partitions = make_admin(kafka).list_topics(topic, timeout=10).topics[topic].partitions
    return {p: meta.leader for p, meta in sorted(partitions.items())}


def _isrs(kafka: KafkaSettings, topic: str) -> dict[int, list[int]]:
    partitions = make_admin(kafka).list_topics(topic, timeout=10).topics[topic].partitions
    return {p: list(meta.isrs) for p, meta in partitions.items()}


def _read_to_end(kafka: KafkaSettings, topic: str, timeout: float = 120.0) -> list[str]:
    """Every event id in ``topic``, in partition order, read up to the high watermarks."""
    consumer = make_consumer(kafka, f"reader-{uuid.uuid4().hex[:8]}")
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        ids: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                ids.append(_event_id(message))
            positions = consumer.position([TopicPartition(topic, p) for p in range(PARTITIONS)])
            if all(ends[tp.partition] == 0 or tp.offset >= ends[tp.partition]
                   for tp in positions):
                return ids
        raise AssertionError(f"could not read {topic} to its end within {timeout:.0f}s")
    finally:
        consumer.close()
