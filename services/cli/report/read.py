"""Read a run's topics from Kafka, from the beginning (or a time) to where they end now.

The reader assigns every partition itself (no consumer group is joined and nothing is
committed), notes each partition's end when it starts, and stops once every partition has been
read up to that end or reports that nothing more is readable (``read_committed``: an open
transaction ends what can be read). Messages produced meanwhile may or may not be included.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from schemas.alerts import DriftAlert
from schemas.codec import ContractError, decode
from schemas.dead_letters import DeadLetterHeaders
from schemas.events import Event, Label
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction
from schemas.topics import TopicName
from services.cli.report.records import DeadLetterRecord, ReportError, RunRecords
from services.common.kafka import make_consumer
from services.common.settings import KafkaSettings

T = TypeVar("T")

REPORT_TOPICS: tuple[TopicName, ...] = (
    "predictions", "outcomes", "drift-alerts", "model-events", "dead-letters",
)


def read_run(kafka: KafkaSettings, prefix: str, since: datetime | None = None,
             timeout: float = 120.0,
             topics: tuple[TopicName, ...] = REPORT_TOPICS) -> RunRecords:
    """Every message of the run's topics under ``prefix``, decoded into :class:`RunRecords`.

    ``since`` skips messages whose Kafka timestamp is older. ``topics``: the run topics read
    (``events`` and ``labels`` can be added). A topic missing from the cluster
    counts as empty. Passing broker trouble (a leader moving, a broker restarting) is waited
    out. :class:`ReportError` is raised if no run topic exists, or if the topics cannot be read
    to their end within ``timeout`` seconds (with the last error seen).
    """
    deadline = time.monotonic() + timeout
    consumer = make_consumer(kafka, f"{prefix}streamml-report-{uuid.uuid4().hex[:8]}",
                             **{"enable.partition.eof": True})
    try:
        marks = _watermarks(consumer, prefix, deadline, topics)
        starts = ({tp: low for tp, (low, _) in marks.items()} if since is None
                  else _offsets_since(consumer, list(marks), since, deadline))
        pending = {tp: high for tp, (_, high) in marks.items() if starts[tp] < high}
        consumer.assign([TopicPartition(topic, partition, starts[(topic, partition)])
                         for topic, partition in pending])
        records = RunRecords()
        last_error = "none"
        while pending:
            if time.monotonic() > deadline:
                late = ", ".join(sorted({topic for topic, _ in pending}))
                raise ReportError(f"could not read {late} to its end within {timeout:.0f}s "
                                  f"(last error: {last_error})")
            message = consumer.poll(0.5)
            if message is not None:
                last_error = _take(message, prefix, records, pending) or last_error
            _drop_finished(consumer, pending)
        return records
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, prefix: str, deadline: float,
                topics: tuple[TopicName, ...]) -> dict[tuple[str, int], tuple[int, int]]:
    """Low and high watermark of every partition of the run topics that exist."""
    listed = _retrying(lambda: consumer.list_topics(timeout=_left(deadline)).topics, deadline)
    names = [f"{prefix}{name}" for name in topics if f"{prefix}{name}" in listed]
    if not names:
        raise ReportError(f"no run topics under prefix '{prefix}' (looked for "
                          f"{prefix}predictions, {prefix}outcomes, ...); is the prefix right?")
    marks: dict[tuple[str, int], tuple[int, int]] = {}
    for name in names:
        for partition in listed[name].partitions:
            marks[(name, partition)] = _watermark(consumer, TopicPartition(name, partition),
                                                  deadline)
    return marks


def _watermark(consumer: Consumer, tp: TopicPartition, deadline: float) -> tuple[int, int]:
    while True:
        marks = _retrying(
            lambda: consumer.get_watermark_offsets(tp, timeout=_left(deadline), cached=False),
            deadline)
        if marks is not None:  # None: the query timed out
            return int(marks[0]), int(marks[1])
        if time.monotonic() > deadline:
            raise ReportError(f"no end offsets for {tp.topic}[{tp.partition}] in time")


def _offsets_since(consumer: Consumer, partitions: list[tuple[str, int]], since: datetime,
                   deadline: float) -> dict[tuple[str, int], int]:
    wanted = [TopicPartition(topic, partition, int(since.timestamp() * 1000))
              for topic, partition in partitions]
    found = _retrying(lambda: consumer.offsets_for_times(wanted, timeout=_left(deadline)),
                      deadline)
    # -1: no message at or after ``since``; start past the end so the partition is skipped.
    return {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else 2**62 for tp in found}


TRANSIENT = frozenset({  # errors of a broker restarting or a leader moving
    KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
    KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_COORDINATOR,
})


def _retrying(call: Callable[[], T], deadline: float) -> T:
    """``call()``, again every half second while it fails in a passing way, until ``deadline``."""
    while True:
        try:
            return call()
        except KafkaException as exception:
            error = exception.args[0] if exception.args else None
            passing = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in TRANSIENT)
            if not passing or time.monotonic() + 0.5 > deadline:
                raise ReportError(f"Kafka: {exception}") from exception
            time.sleep(0.5)


def _left(deadline: float) -> float:
    return max(1.0, min(30.0, deadline - time.monotonic()))


def _take(message: Message, prefix: str, records: RunRecords,
          pending: dict[tuple[str, int], int]) -> str | None:
    """Record one polled message; returns the text of a passing error, if it was one."""
    key = (message.topic() or "", message.partition() or 0)
    error = message.error()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            pending.pop(key, None)
            return None
        if error.fatal():
            raise ReportError(f"reading {key[0]}: {error.str()}")
        return error.str()  # librdkafka recovers from the others by itself
    if key in pending:
        if (message.offset() or 0) + 1 >= pending[key]:
            pending.pop(key)
        _record(message, key[0].removeprefix(prefix), prefix, records)
    return None


def _record(message: Message, topic: str, prefix: str, records: RunRecords) -> None:
    try:
        if topic == "predictions":
            records.predictions.append(decode(Prediction, message.value()))
        elif topic == "outcomes":
            records.outcomes.append(decode(Outcome, message.value()))
        elif topic == "drift-alerts":
            records.alerts.append(decode(DriftAlert, message.value()))
        elif topic == "model-events":
            records.model_events.append(decode(ModelEvent, message.value()))
        elif topic == "dead-letters":
            records.dead_letters.append(_dead_letter(message, prefix))
        elif topic == "events":
            records.events.append(decode(Event, message.value()))
        elif topic == "labels":
            records.labels.append(decode(Label, message.value()))
    except ContractError:
        records.unreadable[topic] = records.unreadable.get(topic, 0) + 1


def _dead_letter(message: Message, prefix: str) -> DeadLetterRecord:
    try:
        headers = DeadLetterHeaders.from_kafka_headers(message.headers() or [])
    except ValidationError:
        return DeadLetterRecord("unknown", "unlabelled", "unknown")
    return DeadLetterRecord(headers.source_topic.removeprefix(prefix), headers.reason_code,
                            headers.service)


def _drop_finished(consumer: Consumer, pending: dict[tuple[str, int], int]) -> None:
    """Forget partitions whose position passed their end (transaction markers take offsets)."""
    if not pending:
        return
    wanted = [TopicPartition(topic, partition) for topic, partition in pending]
    for tp in consumer.position(wanted):
        key = (tp.topic, tp.partition)
        if tp.offset >= 0 and tp.offset >= pending.get(key, 2**62):
            pending.pop(key, None)
