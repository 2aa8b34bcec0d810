"""Wiring of the drift service: settings -> spec -> clients -> monitors -> consumer loop."""

from __future__ import annotations

import logging

from pydantic import Field

from schemas.spec import load_spec
from services.common.consumer_service import connect, serve
from services.common.runtime import StopSignal, configure_logging
from services.common.settings import OffPathBatchSettings, Settings
from services.drift.covariate import watched_features
from services.drift.handler import DriftHandler, DriftMetrics

log = logging.getLogger(__name__)
SERVICE = "drift"


class DriftSettings(Settings):
    """Everything the drift service reads at start."""

    metrics_port: int = Field(default=9104, ge=0, le=65535)
    batch: OffPathBatchSettings = Field(default_factory=OffPathBatchSettings)


def run(settings: DriftSettings, stop: StopSignal) -> int:
    """Watch features (covariate shift) and outcomes (label shift, prediction and concept drift)
    until stopped; return the messages processed."""
    spec = load_spec(settings.spec)
    watched_features(spec)  # a bad feature list fails here, before waiting for the broker
    plumbing = connect(SERVICE, settings, ["features", "outcomes"])
    handler = DriftHandler(
        spec, plumbing.producer, settings.topic("drift-alerts"), DriftMetrics(plumbing.registry),
        features_topic=settings.topic("features"), outcomes_topic=settings.topic("outcomes"),
    )
    log.info("watching features %s, label %s, predictions %s, concept detector %s",
             sorted(handler.covariate.features), spec.drift.label.enabled,
             spec.drift.prediction.enabled, spec.drift.concept.detector)
    return serve(plumbing, handler, stop, details=lambda: {
        "spec": spec.name, "monitors": handler.positions(),
    })


def main() -> int:
    """Entry point of ``python -m services.drift``."""
    settings = DriftSettings()
    configure_logging(SERVICE, settings.log_level)
    run(settings, StopSignal().install())
    return 0
