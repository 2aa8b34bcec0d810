"""The drift service's processing of one outcome: update the model's monitor, alert on drift."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import Message
from prometheus_client import CollectorRegistry, Counter

from schemas.alerts import DriftAlert
from schemas.codec import ContractError, decode, encode
from schemas.predictions import Outcome
from schemas.spec import DetectorSpec
from services.common.dead_letters import DeadLetter
from services.drift.detectors import ErrorStreamMonitor


class _Producer(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes) -> None: ...


class DriftMetrics:
    """Alerts raised by this service."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Counter(
            "streamml_drift_alerts_raised_total", "Drift alerts published, by kind and detector.",
            ["kind", "detector"], registry=registry,
        ).labels
        self.observations = Counter(
            "streamml_drift_observations_total", "Observations fed to detectors, by kind.",
            ["kind"], registry=registry,
        ).labels


class DriftHandler:
    """Concept drift: one error-stream monitor per (champion or challenger) model."""

    def __init__(
        self,
        concept: DetectorSpec,
        producer: _Producer,
        alerts_topic: str,
        metrics: DriftMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._concept = concept
        self._producer = producer
        self._alerts_topic = alerts_topic
        self._metrics = metrics
        self._clock = clock
        self.monitors: dict[str, ErrorStreamMonitor] = {}

    def handle(self, message: Message) -> None:
        """Feed one outcome's error to its model's monitor."""
        try:
            outcome = decode(Outcome, message.value())
        except ContractError as error:
            raise DeadLetter.from_contract_error(error) from error
        if outcome.correct is None:
            return
        monitor = self.monitors.get(outcome.model)
        if monitor is None:
            monitor = self.monitors[outcome.model] = ErrorStreamMonitor(self._concept)
        self._metrics.observations(kind="concept").inc()
        detection = monitor.update(0.0 if outcome.correct else 1.0)
        if detection is None:
            return
        alert = DriftAlert(
            alert_id=str(uuid.uuid4()), kind="concept", detector=self._concept.detector,
            target=f"error:{outcome.model}", model=outcome.model,
            statistic=detection.statistic, threshold=detection.threshold,
            stream_position=detection.position, event_time=outcome.event_time,
            detected_at=self._clock(),
        )
        self._producer.produce(self._alerts_topic, value=encode(alert), key=alert.target.encode())
        self._metrics.alerts(kind="concept", detector=self._concept.detector).inc()

    def on_idle(self) -> None:
        """Nothing to do on time alone."""
