"""Building blocks the confluent-kafka services share: connect the clients, then serve a loop.

A service's wiring function calls :func:`connect`, builds its handler on the returned
:class:`Plumbing`, and hands both to :func:`serve`, which exposes ``/metrics`` and ``/health``,
announces readiness and runs the loop until a stop signal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry

from schemas.topics import TopicName
from services.common.committers import DeliveryReports
from services.common.consumer_loop import Committer, ConsumerLoop, Handler
from services.common.dead_letters import DeadLetterPublisher
from services.common.kafka import make_consumer, make_producer, wait_for_broker
from services.common.metrics_server import Health, MetricsServer
from services.common.runtime import StopSignal, announce_ready
from services.common.service_metrics import LoopMetrics
from services.common.settings import Settings

STALLED_AFTER_SECONDS = 120.0
"""``/health`` fails once the consumer loop has not gone round for this long: longer than any
client call it makes may legitimately block (a transaction commit waits up to 60 s)."""


@dataclass(frozen=True)
class Plumbing:
    """The clients and shared metrics of one service, subscribed to ``inputs``."""

    service: str
    settings: Settings
    registry: CollectorRegistry
    producer: Producer
    consumer: Consumer
    dead_letters: DeadLetterPublisher
    loop_metrics: LoopMetrics
    inputs: dict[str, TopicName]
    """full topic name -> base name."""
    deliveries: DeliveryReports = field(default_factory=DeliveryReports)
    """The producer's failed deliveries (its ``on_delivery`` setting), which stop a commit."""


def connect(
    service: str, settings: Settings, inputs: list[TopicName],
    transactional_id: str | None = None,
    producer_overrides: Mapping[str, str | int] | None = None,
    consumer_overrides: Mapping[str, str | int] | None = None,
) -> Plumbing:
    """Wait for the cluster, then build the producer, consumer and dead-letter publisher.

    With ``transactional_id`` the producer is transactional (the caller initialises and runs the
    transactions). Every failed delivery of the producer is reported to the returned plumbing's
    ``deliveries`` (successful ones are not reported at all). The overrides are librdkafka
    settings of the producer (``message.max.bytes``, ...) and the consumer
    (``session.timeout.ms``, ...).
    """
    wait_for_broker(settings.kafka)
    registry = CollectorRegistry()
    loop_metrics = LoopMetrics(registry, service)
    names = {settings.topic(name): name for name in inputs}
    producer_config = dict(producer_overrides or {})
    if transactional_id:
        producer_config["transactional.id"] = transactional_id
    deliveries = DeliveryReports()
    # Only failed deliveries call back: no Python call per record delivered.
    producer = make_producer(settings.kafka, on_delivery=deliveries.on_delivery, **{
        "delivery.report.only.error": True, "linger.ms": settings.batch.linger_ms,
        **producer_config})
    consumer = make_consumer(
        settings.kafka, settings.group(service), **{
            **settings.batch.consumer_config(),
            "statistics.interval.ms": 5000,
            "stats_cb": lambda stats: loop_metrics.record_statistics(
                stats, dict(names), settings.group(service)
            ),
            **(consumer_overrides or {}),
        },
    )
    dead_letters = DeadLetterPublisher(producer, settings.topic("dead-letters"), service)
    return Plumbing(service, settings, registry, producer, consumer, dead_letters, loop_metrics,
                    names, deliveries)


def serve(
    plumbing: Plumbing,
    handler: Handler,
    stop: StopSignal,
    details: Callable[[], dict[str, Any]] = dict,
    committer: Committer | None = None,
) -> int:
    """Run ``handler`` over the inputs until stopped; return the number of messages processed."""
    loop = ConsumerLoop(
        plumbing.consumer, plumbing.producer, handler, plumbing.dead_letters, stop,
        plumbing.loop_metrics, base_name_of=lambda topic: plumbing.inputs.get(topic, topic),
        committer=committer, deliveries=plumbing.deliveries,
        batch_size=plumbing.settings.batch.max_messages,
    )
    loop.subscribe(list(plumbing.inputs))
    started = time.monotonic()

    def health() -> Health:
        stalled = time.monotonic() - loop.last_turn
        return Health(ok=not stop.is_set and stalled < STALLED_AFTER_SECONDS, details={
            "service": plumbing.service, "uptime_seconds": round(time.monotonic() - started),
            "seconds_since_loop_turn": round(stalled, 1), **details(),
        })

    settings = plumbing.settings
    server = MetricsServer(
        plumbing.registry, health, settings.metrics_host, settings.metrics_port
    ).start()
    announce_ready(plumbing.service, server.port)
    try:
        return loop.run()
    finally:
        server.stop()
