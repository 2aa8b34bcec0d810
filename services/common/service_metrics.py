"""Metrics every Kafka-consuming service exposes, declared once against an injectable registry.

Labels are bounded: topic base names, reason codes, never an event or entity id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

MetricT = TypeVar("MetricT", bound=MetricWrapperBase)

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
"""Seconds, from 1 ms to 10 s."""


def labelled(metric: MetricT) -> Callable[..., MetricT]:
    """``metric.labels``, remembering each child it returns.

    Label values are bounded, and finding a child through prometheus_client (validation, a lock)
    on every message costs more than the increment itself. Children are never removed.
    """
    return functools.lru_cache(maxsize=4096)(metric.labels)


BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class LoopMetrics:
    """Consumption, dead letters, processing time and consumer lag of one service."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.messages = labelled(Counter(
            "streamml_messages_consumed_total", "Messages consumed, by topic.",
            ["service", "topic"], registry=registry,
        ))
        self.dead_letters = labelled(Counter(
            "streamml_dead_letters_published_total",
            "Messages sent to dead-letters by this service, by reason code.",
            ["service", "reason"], registry=registry,
        ))
        self.batch_seconds = Histogram(
            "streamml_batch_processing_seconds",
            "Time to process one batch of consumed messages.", ["service"],
            buckets=LATENCY_BUCKETS, registry=registry,
        ).labels(service=service)
        self.batch_size = Histogram(
            "streamml_batch_messages", "Messages processed per consumed batch.", ["service"],
            buckets=BATCH_BUCKETS, registry=registry,
        ).labels(service=service)
        self.consumer_lag = labelled(Gauge(
            "streamml_consumer_lag_messages",
            "Messages behind the end of the log, summed over this member's partitions.",
            ["service", "group", "topic"], registry=registry,
        ))
        self.up = Gauge(
            "streamml_service_up", "1 while the service's loop runs.", ["service"],
            registry=registry,
        ).labels(service=service)
        self._service = service

    def record_statistics(
        self, statistics_json: str, topic_base_names: dict[str, str], group: str
    ) -> None:
        """Update consumer lag of ``group`` from a librdkafka statistics document (``stats_cb``).

        Lag is measured from the offset stored after processing (``consumer_lag_stored``), which
        is current, rather than from the last commit; librdkafka's ``consumer_lag`` is the
        fallback. Unknown lags (-1) are left out. A partition whose only unread offsets are
        transaction markers (see :func:`_only_markers_left`) has no lag.
        """
        document: dict[str, Any] = orjson.loads(statistics_json)
        for topic, topic_stats in document.get("topics", {}).items():
            lag = 0
            for partition, stats in topic_stats.get("partitions", {}).items():
                value = stats.get("consumer_lag_stored", -1)
                if value is None or value < 0:
                    value = stats.get("consumer_lag", -1)
                if partition == "-1" or value is None or value < 0:
                    continue
                lag += 0 if _only_markers_left(stats) else int(value)
            base = topic_base_names.get(topic, topic)
            self.consumer_lag(service=self._service, group=group, topic=base).set(lag)


def _only_markers_left(stats: dict[str, Any]) -> bool:
    """True when the consumer has been handed every message up to the end of the partition's log
    and none waits in its fetch queue.

    A transactional producer ends each transaction with a marker that takes an offset but is
    never delivered: librdkafka moves ``app_offset`` past it, while the offset stored after the
    last processed message stays one short. Without this check a read_committed consumer of
    ``predictions`` or ``outcomes`` would report a lag of one per partition forever. (The
    message in hand while this runs counts as processed; the loop handles one at a time.)
    """
    end = stats.get("ls_offset", -1)
    if end is None or end < 0:
        end = stats.get("hi_offset", -1)
    if end is None or end < 0:
        return False
    return bool(
        stats.get("fetchq_cnt", -1) == 0
        and (stats.get("app_offset") or -1) >= end
        and (stats.get("next_offset") or -1) >= end
    )
