"""A 3-node local cluster (127.0.0.11-13) loses the leader of a partition to SIGKILL mid-stream.

First with the project's idempotent ``acks=all`` producer alone, on a topic with 3 replicas and
``min.insync.replicas=2``: every acknowledged event is still in the topic, exactly once. Then
with the pipeline itself: features, model, drift and metrics-sink under the supervisor, on topics
the project's own code created (the catalogue by ``ensure_topics``, the features worker's
internal topic and changelog, faust's own), which must all carry 3 replicas and
``min.insync.replicas`` 2 without being told; an Elec2 replay (one aggregate added) streams in,
the leader of the ``events`` partition it fills is killed, and every event is in ``events``
once and gets exactly one prediction and one outcome.

The cluster runs on its own port (19392) and homes under pytest's tmp directory, never the
shared broker; both tests share it, and teardown stops every node, with SIGKILL for any that
lingers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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

from schemas.codec import decode
from schemas.events import Event
from schemas.predictions import Outcome, Prediction
from services.cli import stack
from services.cli.local_kafka import LocalBroker, LocalCluster
from services.common.kafka import create_missing_topics, make_admin, make_consumer, make_producer
from services.common.settings import KafkaSettings, Settings
from services.common.topic_admin import existing_topics
from services.features.topology import home_partition
from services.producer.client import EventClient
from tests.chaos.stack import consumers_running, ids_in
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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), REPO / ".cache", size=3,
                           port=PORT, controller_port=PORT + 1, heap="512m")
    try:
        started = time.monotonic()
        cluster.start(timeout=300)
        print(f"\n3-node cluster {cluster.bootstrap_servers} up in "
              f"{time.monotonic() - started:.1f}s")
        yield cluster
    finally:
        cluster.stop(timeout=20)


@pytest.mark.timeout(600)
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


ELEC2 = REPO / "data" / "elec2.csv"
ELEC2_SPEC = REPO / "schemas" / "specs" / "elec2.toml"
COUNT_AGGREGATE = """
[[aggregates]]
name = "market_events_1h"
entity = "market"
function = "count"
size_seconds = 3600
"""
"""Elec2 with one aggregate, so the features worker has a table, an internal topic and a
changelog of its own; still one model, so one prediction per event."""
ROWS = 12_000
PIPELINE_RATE = 1_000
KILL_AT_EVENTS = 4_000
"""The leader dies once this many replayed events are in their partition (4 s into the replay)."""


@pytest.mark.timeout(600)
@pytest.mark.parametrize("victim_role", ["events-leader", "model-group-coordinator"])
def test_the_pipeline_on_its_own_topics_survives_a_node_kill(
    cluster: LocalCluster, tmp_path: Path, victim_role: str
) -> None:
    """``events-leader``: the node leading the ``events`` partition the replay fills dies.
    ``model-group-coordinator``: the node coordinating the model's consumer group dies, the
    broker its transactions send their input offsets to (librdkafka's
    ``send_offsets_to_transaction`` can then block past its own timeout, issue #5511)."""
    kafka = cluster.client_settings()
    spec = tmp_path / "elec2-counted.toml"
    spec.write_text(ELEC2_SPEC.read_text() + COUNT_AGGREGATE)
    # The last 48 labels have no later event to release them: learn them after 5 s idle.
    with consumers_running(kafka, tmp_path / "home", str(spec), port_offset=1900, tag="f",
                           timeout=240,
                           settings={"STREAMML_MODEL__LABEL_HOLD_SECONDS": "5"}) as pipeline:
        layout = _layout(kafka, pipeline.prefix)
        print("\n" + "\n".join(f"{name}: {replicas} replicas, min.insync.replicas {isr}"
                               for name, (replicas, isr) in sorted(layout.items())))
        assert any(name.endswith("-changelog") for name in layout), "the features worker's"
        weak = {name: found for name, found in layout.items() if found != (3, "2")}
        assert not weak, f"topics without 3 replicas and min.insync.replicas 2: {weak}"

        events = f"{pipeline.prefix}events"
        leaders_before = _leaders(kafka, events)
        busy = home_partition(b"nsw", len(leaders_before))  # Elec2's one market: one partition
        victim_id = (leaders_before[busy] if victim_role == "events-leader"
                     else _group_coordinator(kafka, f"{pipeline.prefix}streamml-model"))
        victim = cluster.node(victim_id)
        victim_pid = victim.pid
        assert victim_pid is not None
        before = stack.status(pipeline.home)["services"]
        log = tmp_path / "replay.log"
        publisher = _replay(pipeline.env, spec, log)
        try:
            try:
                in_topic = _wait_for_records(kafka, events, busy, KILL_AT_EVENTS)
                os.kill(victim_pid, signal.SIGKILL)
                killed_at = time.monotonic()
                publisher.wait(timeout=300)
                replayed = time.monotonic() - killed_at
            finally:
                if publisher.poll() is None:
                    publisher.kill()
                    publisher.wait()
            output = log.read_text(errors="replace")
            print(f"SIGKILLed node {victim_id} ({victim_role}; leader of {events}[{busy}]: node "
                  f"{leaders_before[busy]}) with {in_topic} events in that partition; the replay "
                  f"finished {replayed:.1f}s later: "
                  f"{(output.strip().splitlines() or ['(no output)'])[-1]}")
            assert publisher.returncode == 0, f"the replay lost events:\n{output[-3000:]}"

            counted = {name: ids_in(kafka, f"{pipeline.prefix}{name}", decoder, ROWS,
                                      timeout=180)
                       for name, decoder in (("events", _event_of),
                                             ("predictions", _prediction_of),
                                             ("outcomes", _outcome_of))}
            leaders_after = _leaders(kafka, events)
            after = stack.status(pipeline.home)["services"]
        finally:
            _restart(cluster, victim)
    print(f"leaders {leaders_before} -> {leaders_after}; services: " + "; ".join(
        f"{name} restarts {after[name]['restarts']}" for name in before))
    problems = []
    for name, (ids, size) in counted.items():
        doubled = sum(count - 1 for count in ids.values())
        print(f"{name}: {size} records, {len(ids)} distinct events, {doubled} doubled")
        if len(ids) != ROWS or size != ROWS:
            problems.append(f"{name}: {len(ids)} distinct events in {size} records, for {ROWS}")
    if victim_id == leaders_before[busy]:
        assert leaders_after[busy] != leaders_before[busy], f"{events}[{busy}] needs a new leader"
    assert not problems, "; ".join(problems)


def _group_coordinator(kafka: KafkaSettings, group: str) -> int:
    """The id of the node coordinating consumer group ``group``."""
    admin = make_admin(kafka)  # kept until the answer is in: the future needs its client
    future = admin.describe_consumer_groups([group], request_timeout=10)[group]
    return int(future.result(timeout=15).coordinator.id)


def _restart(cluster: LocalCluster, node: LocalBroker) -> None:
    """Start a killed ``node`` again (nothing if it runs) and wait until the cluster lists all
    its nodes, so the next test of the module finds three."""
    node.start(timeout=180)
    wait_for(lambda: len(make_admin(cluster.client_settings()).list_topics(timeout=10).brokers)
             == cluster.size, 120, "the restarted node to rejoin the cluster")


def _layout(kafka: KafkaSettings, prefix: str) -> dict[str, tuple[int, str]]:
    """Replicas and effective ``min.insync.replicas`` of every topic under ``prefix``."""
    admin = make_admin(kafka)
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    return {name: (topic.replication_factor, topic.config.get("min.insync.replicas", "?"))
            for name, topic in existing_topics(admin, names).items()}


def _replay(env: dict[str, str], spec: Path, log: Path) -> subprocess.Popen[bytes]:
    """``streamml replay`` of Elec2 at ``PIPELINE_RATE``, its labels 48 rows later; it exits
    non-zero if any event or label is not acknowledged."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "replay", str(ELEC2), "--spec", str(spec),
             "--label-delay", "48", "--limit", str(ROWS), "--rate", str(PIPELINE_RATE),
             "--quiet"],
            env={**os.environ, **env, "STREAMML_METRICS_PORT": "0"},
            stdout=out, stderr=subprocess.STDOUT,
        )


def _wait_for_records(kafka: KafkaSettings, topic: str, partition: int, count: int,
                      timeout: float = 120.0) -> int:
    """Wait until ``topic[partition]``'s high watermark reaches ``count``; return it then."""
    consumer = make_consumer(kafka, f"watcher-{uuid.uuid4().hex[:8]}")
    end = [0]

    def reached() -> bool:
        end[0] = int(consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                    timeout=10)[1])
        return end[0] >= count

    try:
        wait_for(reached, timeout, f"{topic}[{partition}] to reach {count} records")
    finally:
        consumer.close()
    return end[0]


def _event_of(raw: bytes | None) -> str:
    return decode(Event, raw).event_id


def _prediction_of(raw: bytes | None) -> str:
    return decode(Prediction, raw).event_id


def _outcome_of(raw: bytes | None) -> str:
    return decode(Outcome, raw).event_id


