"""Wiring of the metrics sink: settings -> clients -> metrics -> consumer loop."""

from __future__ import annotations

import logging

from pydantic import Field

from services.common.consumer_service import connect, serve
from services.common.runtime import StopSignal, configure_logging
from services.common.settings import Settings
from services.metrics_sink.handler import SinkHandler, SinkTopics
from services.metrics_sink.metrics import SinkMetrics

log = logging.getLogger(__name__)
SERVICE = "metrics-sink"


class SinkSettings(Settings):
    """Everything the metrics sink reads at start."""

    metrics_port: int = Field(default=9105, ge=0, le=65535)
    accuracy_window: int = Field(default=1000, gt=0)


def run(settings: SinkSettings, stop: StopSignal) -> int:
    """Expose pipeline metrics until stopped; return the messages processed."""
    plumbing = connect(
        SERVICE, settings,
        ["predictions", "outcomes", "drift-alerts", "dead-letters", "model-events"],
    )
    topics = SinkTopics(
        predictions=settings.topic("predictions"), outcomes=settings.topic("outcomes"),
        alerts=settings.topic("drift-alerts"), dead_letters=settings.topic("dead-letters"),
        model_events=settings.topic("model-events"),
        prefix=settings.topic_prefix,
    )
    handler = SinkHandler(topics, SinkMetrics(plumbing.registry), settings.accuracy_window)
    return serve(plumbing, handler, stop, details=lambda: {
        "accuracy": {model: round(window.mean, 4) for model, window in handler.accuracy.items()},
    })


def main() -> int:
    """Entry point of ``python -m services.metrics_sink``."""
    settings = SinkSettings()
    configure_logging(SERVICE, settings.log_level)
    run(settings, StopSignal().install())
    return 0
