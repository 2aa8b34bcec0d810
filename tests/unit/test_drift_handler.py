"""The drift handler: outcomes in, concept-drift alerts out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from schemas.alerts import DriftAlert
from schemas.codec import decode, encode
from schemas.predictions import Outcome
from schemas.spec import DetectorSpec
from services.common.dead_letters import DeadLetter
from services.drift.handler import DriftHandler, DriftMetrics
from tests.unit.fakes import FakeProducer, ManualClock, message

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
DETECTED_AT = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)


def outcome(n: int, model: str, correct: bool | None) -> bytes:
    return encode(Outcome(
        event_id=f"e-{n}", model=model, model_version=1, prediction=1.0 if correct else 0.0,
        label=1.0, correct=correct, label_delay_seconds=1.0,
        event_time=T0 + timedelta(seconds=n), learned_at=T0 + timedelta(seconds=n + 1),
    ))


def build() -> tuple[DriftHandler, FakeProducer, CollectorRegistry]:
    producer, registry = FakeProducer(), CollectorRegistry()
    handler = DriftHandler(DetectorSpec(detector="ADWIN", params={"delta": 0.002}), producer,
                           "drift-alerts", DriftMetrics(registry), clock=ManualClock(DETECTED_AT))
    return handler, producer, registry


def run(handler: DriftHandler, model: str, error_rates: list[tuple[float, int]],
        seed: int = 1) -> int:
    rng, n = random.Random(seed), 0
    for rate, count in error_rates:
        for _ in range(count):
            handler.handle(message("outcomes", outcome(n, model, rng.random() >= rate)))
            n += 1
    return n


def test_an_error_rate_jump_produces_one_concept_alert_for_that_model() -> None:
    handler, producer, registry = build()
    run(handler, "logreg", [(0.1, 2000), (0.6, 400)])
    alerts = [decode(DriftAlert, record.value) for record in producer.on("drift-alerts")]
    assert len(alerts) == 1
    [alert] = alerts
    assert alert.kind == "concept"
    assert alert.target == "error:logreg"
    assert alert.model == "logreg"
    assert alert.detector == "ADWIN"
    assert 2000 < alert.stream_position <= 2300
    assert alert.event_time == T0 + timedelta(seconds=alert.stream_position - 1)
    assert alert.detected_at == DETECTED_AT
    assert producer.on("drift-alerts")[0].key == b"error:logreg"
    assert registry.get_sample_value(
        "streamml_drift_alerts_raised_total", {"kind": "concept", "detector": "ADWIN"}) == 1.0
    assert registry.get_sample_value(
        "streamml_drift_observations_total", {"kind": "concept"}) == 2400.0


def test_a_steady_model_raises_no_alert() -> None:
    handler, producer, _ = build()
    run(handler, "logreg", [(0.1, 3000)])
    assert producer.records == []


def test_each_model_has_its_own_monitor() -> None:
    handler, producer, _ = build()
    run(handler, "steady", [(0.1, 1500)], seed=2)
    run(handler, "drifting", [(0.1, 2000), (0.7, 400)], seed=3)
    alerts = [decode(DriftAlert, record.value) for record in producer.on("drift-alerts")]
    assert {alert.model for alert in alerts} == {"drifting"}
    assert set(handler.monitors) == {"steady", "drifting"}
    assert handler.monitors["steady"].position == 1500


def test_regression_outcomes_without_correctness_are_skipped() -> None:
    handler, producer, registry = build()
    for n in range(100):
        handler.handle(message("outcomes", outcome(n, "linreg", None)))
    assert handler.monitors == {}
    assert producer.records == []
    assert registry.get_sample_value(
        "streamml_drift_observations_total", {"kind": "concept"}) is None


@pytest.mark.parametrize(("raw", "code"), [(b"nope", "malformed_json"),
                                           (b'{"event_id": "e"}', "schema_invalid")])
def test_undecodable_outcomes_are_dead_lettered(raw: bytes, code: str) -> None:
    handler, _, _ = build()
    with pytest.raises(DeadLetter) as raised:
        handler.handle(message("outcomes", raw))
    assert raised.value.reason_code == code
