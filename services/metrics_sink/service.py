"""Wiring of the metrics sink: settings -> clients -> metrics -> consumer loop."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from services.common.consumer_service import connect, serve
from services.common.runtime import StopSignal, configure_logging
from services.common.settings import OffPathBatchSettings, Settings
from services.metrics_sink.handler import SinkHandler, SinkTopics
from services.metrics_sink.metrics import SinkMetrics

log = logging.getLogger(__name__)
SERVICE = "metrics-sink"


class SinkSettings(Settings):
    """Everything the metrics sink reads at start."""

    metrics_port: int = Field(default=9105, ge=0, le=65535)
    batch: OffPathBatchSettings = Field(default_factory=OffPathBatchSettings)
    accuracy_window: int = Field(default=1000, gt=0)
    """Outcomes per model in every rolling quality window (accuracy, log loss, ROC AUC, MAE,
    RMSE, label coverage)."""
    roc_auc_every: int = Field(default=100, gt=0)
    """Recompute a model's ROC AUC (a sort of its window) after this many of its outcomes, and
    whenever the inputs are idle."""


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
    handler = SinkHandler(topics, SinkMetrics(plumbing.registry), settings.accuracy_window,
                          settings.roc_auc_every)

    def details() -> dict[str, Any]:
        models = dict(handler.quality)  # a copy: the loop may add a model meanwhile
        return {
            "accuracy": {model: round(quality.accuracy.mean, 4)
                         for model, quality in models.items() if len(quality.accuracy)},
            "quality": {model: quality.summary() for model, quality in models.items()},
        }

    return serve(plumbing, handler, stop, details=details)


def main() -> int:
    """Entry point of ``python -m services.metrics_sink``."""
    settings = SinkSettings()
    configure_logging(SERVICE, settings.log_level)
    run(settings, StopSignal().install())
    return 0
