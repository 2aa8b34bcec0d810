"""Wiring of the producer service: settings -> client -> paced scenario run."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter

from services.common.kafka import wait_for_broker
from services.common.metrics_server import Health, MetricsServer
from services.common.runtime import StopSignal, announce_ready, configure_logging
from services.producer.client import EventClient
from services.producer.scenarios import SCENARIOS, NaturalLabels, Scenario, load_timeline
from services.producer.settings import ProducerOptions, ProducerSettings
from services.producer.stream import RunSummary, stream_scenario

log = logging.getLogger(__name__)
SERVICE = "producer"


def build_scenario(options: ProducerOptions) -> Scenario:
    """The scenario the options name, seeded, with its timeline and label options.

    Raises ``ValueError`` (a :class:`~services.producer.scenarios.TimelineError` for a bad
    timeline) before anything is published.
    """
    try:
        factory = SCENARIOS[options.scenario]
    except KeyError:
        raise ValueError(
            f"unknown scenario {options.scenario!r}; choose one of {sorted(SCENARIOS)}"
        ) from None
    timeline = load_timeline(options.timeline) if options.timeline is not None else None
    labels = NaturalLabels(delay=options.label_delay, late_share=options.late_share,
                           lost_share=options.lost_share)
    scenario: Scenario = factory(seed=options.seed, explicit_negatives=options.explicit_negatives,
                                 timeline=timeline, labels=labels)
    return scenario


def run(settings: ProducerSettings, stop: StopSignal) -> RunSummary:
    """Stream the configured scenario until stopped or its duration/count is reached."""
    registry = CollectorRegistry()
    published = Counter(
        "streamml_producer_published_messages_total", "Messages published, by topic.",
        ["topic"], registry=registry,
    )
    seen = {"events": 0, "labels": 0}
    scenario = build_scenario(settings.producer)
    wait_for_broker(settings.kafka)  # wrong credentials: one clear line, not retries
    client = EventClient.connect(settings, scenario.entity_key)

    def progress(events: int, labels: int) -> None:
        for topic, total in (("events", events), ("labels", labels)):
            published.labels(topic=topic).inc(total - seen[topic])
            seen[topic] = total

    server = MetricsServer(
        registry, lambda: Health(ok=True, details={"service": SERVICE}),
        settings.metrics_host, settings.metrics_port,
    ).start()
    announce_ready(SERVICE, server.port)
    try:
        summary = stream_scenario(
            scenario, client, settings.producer.rate, stop,
            duration_seconds=settings.producer.duration_seconds,
            max_events=settings.producer.max_events, on_progress=progress,
            truth_path=settings.producer.truth_path,
        )
        progress(summary.events, summary.labels)
    finally:
        server.stop()
    log.info("published %d events and %d labels in %.1fs",
             summary.events, summary.labels, summary.seconds)
    return summary


def main() -> int:
    """Entry point of ``python -m services.producer``."""
    settings = ProducerSettings()
    configure_logging(SERVICE, settings.log_level)
    run(settings, StopSignal().install())
    return 0
