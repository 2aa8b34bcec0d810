"""Wiring of the drift service: settings -> spec -> clients -> monitors -> consumer loop."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from schemas.spec import load_spec
from schemas.topics import TopicName
from services.common.consumer_service import connect, serve
from services.common.resume import group_offsets, start_offsets
from services.common.runtime import StopSignal, configure_logging
from services.common.settings import OffPathBatchSettings, Settings
from services.common.transactions import TRANSACTION_TIMEOUT_MS
from services.drift.checkpoint import (
    DriftCheckpointer,
    read_latest,
    restore_monitors,
    settings_fingerprint,
)
from services.drift.covariate import watched_features
from services.drift.handler import DriftHandler, DriftMetrics

log = logging.getLogger(__name__)
SERVICE = "drift"


class DriftOptions(BaseModel):
    """The drift service's own settings (``STREAMML_DRIFT__...``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint_interval_seconds: float = Field(default=5.0, gt=0)
    """How often the monitors are checkpointed with their offsets while messages come (and at
    once after an alert): a restart re-reads at most this much of the inputs."""


class DriftSettings(Settings):
    """Everything the drift service reads at start."""

    metrics_port: int = Field(default=9104, ge=0, le=65535)
    batch: OffPathBatchSettings = Field(default_factory=OffPathBatchSettings)
    drift: DriftOptions = Field(default_factory=DriftOptions)


def run(settings: DriftSettings, stop: StopSignal) -> int:
    """Watch features (covariate shift) and outcomes (label shift, prediction and concept drift)
    until stopped; return the messages processed.

    Starts from the newest checkpoint of the monitors, if there is one, at the offsets it covers
    (:mod:`services.drift.checkpoint`); without one, fresh monitors read on from the group's
    offsets (a group that ran before checkpoints existed included)."""
    spec = load_spec(settings.spec)
    watched_features(spec)  # a bad feature list fails here, before waiting for the broker
    inputs: list[TopicName] = ["features", "outcomes"]
    group = settings.group(SERVICE)
    plumbing = connect(SERVICE, settings, inputs, transactional_id=group,
                       producer_overrides={"transaction.timeout.ms": TRANSACTION_TIMEOUT_MS})
    plumbing.producer.init_transactions(60)
    handler = DriftHandler(
        spec, plumbing.producer, settings.topic("drift-alerts"), DriftMetrics(plumbing.registry),
        features_topic=settings.topic("features"), outcomes_topic=settings.topic("outcomes"),
    )
    state_topic = settings.topic("drift-state")
    snapshot = read_latest(settings.kafka, state_topic, group)
    if snapshot is not None:
        restore_monitors(snapshot, handler, spec)
    topics = [settings.topic(name) for name in inputs]
    offsets = (group_offsets(plumbing.consumer, topics) if snapshot is None else
               start_offsets(plumbing.consumer, plumbing.producer, topics, snapshot.offsets))
    checkpointer = DriftCheckpointer(
        plumbing.producer, plumbing.consumer, state_topic, group, handler,
        settings_fingerprint(spec), offsets, interval=settings.drift.checkpoint_interval_seconds,
        restored=snapshot,
    )
    checkpointer.begin()
    log.info("watching features %s, label %s, predictions %s, concept detector %s",
             sorted(handler.covariate.features), spec.drift.label.enabled,
             spec.drift.prediction.enabled, spec.drift.concept.detector)
    return serve(plumbing, handler, stop, committer=checkpointer, details=lambda: {
        "spec": spec.name, "monitors": handler.positions(),
        "checkpoints": checkpointer.checkpoints, "checkpoint_bytes": checkpointer.last_size,
    })


def main() -> int:
    """Entry point of ``python -m services.drift``."""
    settings = DriftSettings()
    configure_logging(SERVICE, settings.log_level)
    run(settings, StopSignal().install())
    return 0
