"""The benchmark on the wire: a paced publisher of events and labels, and readers that note
when each prediction becomes readable.

Readers run in their own processes (:func:`start_reader`), so the publisher's pacing and the
readers' clocks do not wait for each other's turn at the interpreter lock.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.events import LabelValue
from services.cli.bench.workload import Workload, event_bytes, event_id, label_bytes
from services.common.kafka import make_producer
from services.common.settings import KafkaSettings


def fast_producer(kafka: KafkaSettings, linger_ms: float = 20) -> Producer:
    """An idempotent producer (``acks=all``) with large batches and a deep local queue."""
    return make_producer(kafka, **{
        "linger.ms": linger_ms, "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
    })


def produce(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    """Produce, waiting for room in the local queue when it is full."""
    while True:
        try:
            producer.produce(topic, value=value, key=key)
            return
        except BufferError:
            producer.poll(0.05)


@dataclass
class WindowPublished:
    """What one paced window put on the bus, and when (wall clock, seconds) if recorded."""

    window: int
    rate: float
    events: int = 0
    labels: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    event_times: dict[str, float] = field(default_factory=dict)
    label_times: dict[str, float] = field(default_factory=dict)

    @property
    def achieved_rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


class PacedPublisher:
    """Publishes a workload's rows as events (keyed by the primary entity, event time = publish
    time) and each label right after the ``label_delay``-th next event (keyed by event id),
    paced on an absolute schedule so pauses do not accumulate."""

    def __init__(self, producer: Producer, events_topic: str, labels_topic: str,
                 workload: Workload, run: str, label_delay: int = 0) -> None:
        self._producer = producer
        self._events_topic = events_topic
        self._labels_topic = labels_topic
        self._rows = workload.rows()
        self._primary = workload.spec.entity_keys[0]
        self._run = run
        self._label_delay = label_delay
        self.events_published = 0
        """Events handed to the producer so far, every window included (read by samplers)."""

    def publish(self, window: int, rate: float, seconds: float, record: bool = False,
                stop: Callable[[], bool] | None = None) -> WindowPublished:
        """Publish ``rate * seconds`` events at ``rate``/s, then the labels still due, and wait
        for the broker's acknowledgements. ``stop()`` is asked between bursts and ends the
        window early when true. With ``record``, note every event's and label's publish time."""
        result = WindowPublished(window, rate)
        count = int(rate * seconds)
        waiting: deque[tuple[str, LabelValue]] = deque()
        began = time.monotonic()
        sent = 0
        while sent < count:
            now = time.monotonic()
            due = min(count, int((now - began) * rate) + 1)
            if due <= sent:
                time.sleep(max(0.0, began + sent / rate - now))
                continue
            while sent < due:
                identifier = event_id(self._run, window, sent)
                row = next(self._rows)
                wall = time.time()
                produce(self._producer, self._events_topic, row.entity[self._primary].encode(),
                        event_bytes(identifier, datetime.fromtimestamp(wall, UTC), row))
                if record:
                    result.event_times[identifier] = wall
                sent += 1
                self.events_published += 1
                waiting.append((identifier, row.label))
                while len(waiting) > self._label_delay:
                    self._publish_label(*waiting.popleft(), result, record)
            self._producer.poll(0)
            if stop is not None and stop():
                result.stopped_early = True
                break
        result.seconds = time.monotonic() - began
        while waiting:
            self._publish_label(*waiting.popleft(), result, record)
        result.events = sent
        if self._producer.flush(60):
            raise RuntimeError("the broker did not acknowledge the window's messages in 60 s")
        return result

    def _publish_label(self, identifier: str, label: LabelValue, result: WindowPublished,
                       record: bool) -> None:
        wall = time.time()
        produce(self._producer, self._labels_topic, identifier.encode(),
                label_bytes(identifier, datetime.fromtimestamp(wall, UTC), label))
        result.labels += 1
        if record:
            result.label_times[identifier] = wall


def end_offsets(client_config: dict[str, str], topic: str) -> dict[int, int]:
    """The next offset to be written on each partition of ``topic``."""
    consumer = Consumer({**client_config, "group.id": f"bench-{uuid.uuid4().hex[:8]}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
    finally:
        consumer.close()


def _reader_consumer(client_config: dict[str, str], topic: str, offsets: dict[int, int],
                     isolation: str) -> Consumer:
    consumer = Consumer({
        **client_config, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "isolation.level": isolation,
        "fetch.wait.max.ms": 5, "fetch.error.backoff.ms": 5,
    })
    consumer.assign([TopicPartition(topic, p, o) for p, o in offsets.items()])
    return consumer


READER_LINGER_SECONDS = 2.5
"""How long a reader keeps reading after it is told to finish: a transaction still open then
commits within the model's commit interval (1 s by default)."""


def read_predictions(client_config: dict[str, str], topic: str, offsets: dict[int, int],
                     isolation: str, prefix: str, expected: int, seconds: float,
                     out: str, ready: Any, finish: Any) -> None:
    """Read ``topic`` from ``offsets`` until ``expected`` predictions of ids starting with
    ``prefix`` arrived, ``seconds`` passed, or ``READER_LINGER_SECONDS`` after ``finish`` is
    set; write ``{id: [read at, features_at, predicted_at]}`` (wall-clock seconds) as JSON to
    ``out``. Sets ``ready`` once assigned."""
    consumer = _reader_consumer(client_config, topic, offsets, isolation)
    ready.set()
    raw: dict[str, tuple[float, str, str]] = {}
    deadline = time.monotonic() + seconds
    try:
        while len(raw) < expected and time.monotonic() < deadline:
            if finish.is_set():
                deadline = min(deadline, time.monotonic() + READER_LINGER_SECONDS)
                finish.clear()
            message = consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            arrived = time.time()
            document = orjson.loads(message.value() or b"{}")
            identifier = document.get("event_id", "")
            if identifier.startswith(prefix) and identifier not in raw:
                raw[identifier] = (arrived, document["features_at"], document["predicted_at"])
    finally:
        consumer.close()
    found = {identifier: [arrived, _epoch(features_at), _epoch(predicted_at)]
             for identifier, (arrived, features_at, predicted_at) in raw.items()}
    Path(out).write_bytes(orjson.dumps(found))


@dataclass
class Reader:
    """A :func:`read_predictions` process, the event that tells it to finish, its output."""

    process: BaseProcess
    finish: Any
    out: Path

    def result(self, timeout: float) -> dict[str, list[float]]:
        """Tell the reader to finish, wait for it, and return what it read."""
        self.finish.set()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
        found: dict[str, list[float]] = orjson.loads(self.out.read_bytes() or b"{}")
        self.out.unlink(missing_ok=True)
        return found


def start_reader(client_config: dict[str, str], topic: str, offsets: dict[int, int],
                 isolation: str, prefix: str, expected: int, seconds: float,
                 out: Path) -> Reader:
    """:func:`read_predictions` in a new process; returns once it is assigned."""
    context = multiprocessing.get_context("spawn")
    ready, finish = context.Event(), context.Event()
    process = context.Process(target=read_predictions, args=(
        client_config, topic, offsets, isolation, prefix, expected, seconds, str(out), ready,
        finish), daemon=True)
    process.start()
    if not ready.wait(60):
        process.kill()
        raise RuntimeError(f"the {isolation} reader of {topic} did not start")
    return Reader(process, finish, out)


def read_learned(client_config: dict[str, str], topic: str, offsets: dict[int, int],
                 prefix: str, expected: int, seconds: float) -> dict[str, float]:
    """When the champion learned each label of ids starting with ``prefix``: ``learned_at`` of
    its outcomes (not of timed-out windows), read_committed from ``offsets``."""
    consumer = _reader_consumer(client_config, topic, offsets, "read_committed")
    learned: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    try:
        while len(learned) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is None or message.error() is not None:
                continue
            document = orjson.loads(message.value() or b"{}")
            identifier = document.get("event_id", "")
            if (identifier.startswith(prefix) and document.get("role") == "champion"
                    and not document.get("timed_out")):
                learned.setdefault(identifier, document["learned_at"])
    finally:
        consumer.close()
    return {identifier: _epoch(at) for identifier, at in learned.items()}


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()
