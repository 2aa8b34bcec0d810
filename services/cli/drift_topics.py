"""Score a live run: its drift alerts read from the broker, placed on the stream by its truth.

A live run's producer streams in real time (event ``i`` at ``truth.start + i * interval``, on the
wall clock), so an alert raised at ``detected_at`` (the drift service's clock) came when the
producer had reached event ``(detected_at - start) / interval``: :func:`place_alerts` puts it
there, which counts the pipeline's own lag in the delay. (The alert's ``event_time``, the time of
the last observation its monitor saw, would leave out the wait for labels.)
"""

from __future__ import annotations

import math
import time
import uuid

from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas.alerts import DriftAlert
from schemas.codec import ContractError, decode
from schemas.truth import GroundTruth
from services.cli.drift_scoring import PlacedAlert
from services.common.kafka import make_consumer
from services.common.settings import KafkaSettings


class LiveRunError(RuntimeError):
    """The run's topics cannot be read (missing, or not to their end in time)."""


def place_alerts(alerts: list[DriftAlert], truth: GroundTruth, events: int) -> list[PlacedAlert]:
    """Each alert at the event the producer had reached when it was raised (clipped to the
    run), in that order."""
    placed = []
    for alert in alerts:
        offset = (alert.detected_at - truth.start).total_seconds() / truth.interval_seconds
        index = min(max(math.floor(offset), 0), max(events - 1, 0))
        placed.append(PlacedAlert(alert, index, alert.detected_at))
    return sorted(placed, key=lambda placed: placed.index)


def read_live_run(kafka: KafkaSettings, prefix: str,
                  timeout: float = 60.0) -> tuple[list[DriftAlert], int, int]:
    """The drift alerts on ``<prefix>drift-alerts`` up to their current end, the number of
    events on ``<prefix>events``, and how many alert records could not be decoded."""
    consumer = make_consumer(kafka, f"{prefix}streamml-evaluate-{uuid.uuid4().hex[:8]}",
                             **{"enable.partition.eof": True})
    try:
        deadline = time.monotonic() + timeout
        marks = _watermarks(consumer, f"{prefix}events", deadline)
        events = sum(high - low for low, high in marks.values())
        alert_marks = _watermarks(consumer, f"{prefix}drift-alerts", deadline)
        ends = {tp: high for tp, (low, high) in alert_marks.items() if high > low}
        consumer.assign([TopicPartition(topic, partition, alert_marks[(topic, partition)][0])
                         for topic, partition in ends])
        alerts: list[DriftAlert] = []
        broken = 0
        while ends:
            if time.monotonic() > deadline:
                raise LiveRunError(f"could not read {prefix}drift-alerts to its end in "
                                   f"{timeout:.0f}s")
            message = consumer.poll(0.5)
            if message is None:
                continue
            key = (message.topic() or "", message.partition() or 0)
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                continue
            if error is None:
                try:
                    alerts.append(decode(DriftAlert, message.value()))
                except ContractError:
                    broken += 1
            position = (message.offset() or 0) + (0 if error is not None else 1)
            if key in ends and position >= ends[key]:
                del ends[key]
        return alerts, events, broken
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, topic: str,
                deadline: float) -> dict[tuple[str, int], tuple[int, int]]:
    listed = consumer.list_topics(topic, timeout=max(1.0, deadline - time.monotonic()))
    metadata = listed.topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise LiveRunError(f"no topic {topic} on the broker; is the prefix right?")
    marks = {}
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=max(1.0, deadline - time.monotonic()),
            cached=False)
        marks[(topic, partition)] = (int(low), int(high))
    return marks
