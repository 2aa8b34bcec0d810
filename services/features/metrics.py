"""Prometheus metrics of the features service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.service_metrics import LATENCY_BUCKETS


class FeaturesMetrics:
    """Events processed, invalid events by reason, processing latency, table sizes, re-homed and
    redelivered events, consumer lag."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events_processed = Counter(
            "streamml_features_events_processed_total",
            "Valid events that produced a feature vector.", registry=registry,
        )
        self.invalid_events = Counter(
            "streamml_features_invalid_events_total",
            "Events sent to dead-letters, by reason code.", ["reason"], registry=registry,
        )
        self.processing_seconds = Histogram(
            "streamml_features_processing_seconds",
            "Time from reading an event to emitting its feature vector.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.table_entities = Gauge(
            "streamml_features_table_entities",
            "Entities held in this worker's state table, by entity key.", ["entity"],
            registry=registry,
        )
        self.redelivered = Counter(
            "streamml_features_redelivered_events_total",
            "Events seen again by a stage (crash replay or duplicate) and not counted twice.",
            ["entity"], registry=registry,
        )
        self.rehomed = Counter(
            "streamml_features_rehomed_events_total",
            "Events read outside their primary entity's home partition of events (keyed or "
            "partitioned otherwise than librdkafka's default), processed after one more hop.",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "streamml_consumer_lag_messages",
            "Messages behind the end of the log, summed over this member's partitions.",
            ["service", "group", "topic"], registry=registry,
        )
        self.up = Gauge(
            "streamml_service_up", "1 while the service's loop runs.", ["service"],
            registry=registry,
        ).labels(service="features")
