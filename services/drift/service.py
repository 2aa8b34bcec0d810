"""Wiring of the drift service: settings -> clients -> detectors -> consumer loop."""

from __future__ import annotations

import logging

from pydantic import Field

from schemas.spec import load_spec
from services.common.consumer_service import connect, serve
from services.common.runtime import StopSignal, configure_logging
from services.common.settings import Settings
from services.drift.handler import DriftHandler, DriftMetrics

log = logging.getLogger(__name__)
SERVICE = "drift"


class DriftSettings(Settings):
    """Everything the drift service reads at start."""

    metrics_port: int = Field(default=9104, ge=0, le=65535)


def run(settings: DriftSettings, stop: StopSignal) -> int:
    """Watch outcomes for concept drift until stopped; return the messages processed."""
    spec = load_spec(settings.spec)
    plumbing = connect(SERVICE, settings, ["outcomes"])
    handler = DriftHandler(
        spec.drift.concept, plumbing.producer, settings.topic("drift-alerts"),
        DriftMetrics(plumbing.registry),
    )
    return serve(plumbing, handler, stop, details=lambda: {
        "spec": spec.name,
        "monitors": {model: monitor.position for model, monitor in handler.monitors.items()},
    })


def main() -> int:
    """Entry point of ``python -m services.drift``."""
    settings = DriftSettings()
    configure_logging(SERVICE, settings.log_level)
    run(settings, StopSignal().install())
    return 0
