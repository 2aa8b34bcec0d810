"""Reading back a compacted state topic (``model-snapshots``, ``drift-state``) at start."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Message, TopicPartition

from services.common.kafka import make_consumer
from services.common.settings import KafkaSettings

log = logging.getLogger(__name__)

READ_SECONDS = 60.0
"""How long reading one partition may take at start. A read cut short restores an older
checkpoint, which the offset check on start (:mod:`services.common.resume`) then finds behind
the group."""


def committed_records(kafka: KafkaSettings, topic: str) -> Iterator[Message]:
    """Every committed record of ``topic``, partition by partition, in offset order (a partition
    not read to its end within :data:`READ_SECONDS` is left at that, with a warning)."""
    consumer = make_consumer(kafka, f"snapshot-reader-{uuid.uuid4().hex[:8]}")
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                       timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            started = time.monotonic()
            deadline = started + READ_SECONDS
            while True:
                if time.monotonic() >= deadline:
                    log.warning("%s[%d] not read to its end within %.0fs: the checkpoint "
                                "restored may be older than the newest", topic, partition,
                                READ_SECONDS)
                    break
                message = consumer.poll(0.5)
                if message is None:
                    position = consumer.position([TopicPartition(topic, partition)])[0].offset
                    if position >= high or (position < 0 and time.monotonic() - started > 5):
                        break  # past the end (aborted records and markers leave gaps)
                    continue
                if message.error() is not None:
                    continue
                yield message
                if (message.offset() or 0) >= high - 1:
                    break
    finally:
        consumer.close()
