"""Wiring of the model service: settings -> clients -> learner -> consumer loop."""

from __future__ import annotations

import logging

from schemas.spec import load_spec
from services.common.consumer_service import connect, serve
from services.common.runtime import StopSignal, configure_logging
from services.model.handler import ModelHandler, ModelTopics
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.settings import ModelSettings

log = logging.getLogger(__name__)
SERVICE = "model"


def run(settings: ModelSettings, stop: StopSignal) -> int:
    """Serve predictions and learn until stopped; return the number of messages processed."""
    spec = load_spec(settings.spec)
    learner = Learner(spec.models, spec.label)
    plumbing = connect(SERVICE, settings, ["features", "labels"])
    topics = ModelTopics(
        features=settings.topic("features"), labels=settings.topic("labels"),
        predictions=settings.topic("predictions"), outcomes=settings.topic("outcomes"),
    )
    handler = ModelHandler(
        learner, plumbing.producer, topics, plumbing.dead_letters, settings.model,
        ModelMetrics(plumbing.registry),
    )
    return serve(
        plumbing, handler, stop,
        details=lambda: {"spec": spec.name, "pending": len(handler.pending),
                         "models": [model.name for model in learner.models]},
        commit_interval=settings.model.commit_interval_seconds,
    )


def main() -> int:
    """Entry point of ``python -m services.model``."""
    settings = ModelSettings()
    configure_logging(SERVICE, settings.log_level)
    processed = run(settings, StopSignal().install())
    log.info("stopped after %d messages", processed)
    return 0
