"""The drift handler: features and outcomes in, drift alerts of every kind out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from schemas.alerts import DriftAlert
from schemas.codec import decode, encode
from schemas.features import FeatureVector
from schemas.predictions import Outcome
from schemas.spec import DetectorSpec, PipelineSpec
from services.common.dead_letters import DeadLetter
from services.drift.detectors import ErrorStreamMonitor
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


def pipeline(window: float = 1.0, on_timeout: str = "drop", **drift: Any) -> PipelineSpec:
    """A spec whose labels come within ``window`` seconds (the outcomes here all take 1 s, so
    with the default every outcome is known once the first window has closed)."""
    return PipelineSpec.model_validate({
        "name": "shop", "entity_keys": ["user"],
        "fields": {"x": {"type": "float"}, "device": {"type": "categorical"}},
        "label": {"type": "binary", "feedback_window_seconds": window,
                  "on_timeout": on_timeout},
        "models": {"champion": {"name": "logreg",
                                "estimator": "linear_model.LogisticRegression"}},
        # Scores are watched from the first outcome here (the changes come at 3,000).
        "drift": {"concept": DetectorSpec(detector="ADWIN", params={"delta": 0.002}),
                  "prediction": {"warmup_observations": 0}, **drift},
    })


def build(window: float = 1.0, on_timeout: str = "drop", **drift: Any) -> tuple[
        DriftHandler, FakeProducer, CollectorRegistry]:
    producer, registry = FakeProducer(), CollectorRegistry()
    handler = DriftHandler(pipeline(window, on_timeout, **drift), producer, "drift-alerts",
                           DriftMetrics(registry), clock=ManualClock(DETECTED_AT))
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
    assert set(handler.concept_monitors) == {"steady", "drifting"}
    assert handler.concept_monitors["steady"].position == 1500


def test_regression_outcomes_without_correctness_are_skipped() -> None:
    handler, producer, registry = build()
    for n in range(100):
        handler.handle(message("outcomes", outcome(n, "linreg", None)))
    assert handler.concept_monitors == {}
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


def features(n: int, x: float | None, device: str = "mobile") -> bytes:
    return encode(FeatureVector(
        event_id=f"e-{n}", event_time=T0 + timedelta(seconds=n), entity={"user": "u1"},
        features={"x": x, "device": device}, ingested_at=T0 + timedelta(seconds=n),
        computed_at=T0 + timedelta(seconds=n),
    ))


def champion_outcome(n: int, label: bool, score: float, correct: bool) -> bytes:
    return encode(Outcome(
        event_id=f"e-{n}", model="logreg", model_version=1, prediction=score >= 0.5,
        score=score, label=label, correct=correct, label_delay_seconds=1.0,
        event_time=T0 + timedelta(seconds=n), learned_at=T0 + timedelta(seconds=n + 1),
    ))


def published(producer: FakeProducer) -> list[DriftAlert]:
    return [decode(DriftAlert, record.value) for record in producer.on("drift-alerts")
            if record.value is not None]


def test_a_feature_shift_becomes_one_covariate_alert_with_the_feature_as_target() -> None:
    handler, producer, registry = build()
    rng = random.Random(4)
    for n in range(1, 6001):
        x = rng.gauss(1.0 if n > 3000 else 0.0, 1.0)
        handler.handle(message("features", features(n, x)))
    [alert] = published(producer)
    assert (alert.kind, alert.detector, alert.target, alert.model) == (
        "covariate", "PSI", "feature:x", None)
    assert alert.statistic > alert.threshold == 0.2
    assert 3000 < alert.stream_position <= 3500
    assert alert.event_time == T0 + timedelta(seconds=alert.stream_position)
    assert alert.detected_at == DETECTED_AT
    assert producer.on("drift-alerts")[0].key == b"feature:x"
    assert registry.get_sample_value(
        "streamml_drift_alerts_raised_total", {"kind": "covariate", "detector": "PSI"}) == 1.0
    assert registry.get_sample_value(
        "streamml_drift_observations_total", {"kind": "covariate"}) == 6000.0
    labels = {"kind": "covariate", "detector": "PSI", "target": "feature:x"}
    latest = registry.get_sample_value("streamml_drift_statistic", labels)
    assert latest is not None
    assert 0.0 <= latest < 0.2  # re-based on the new regime
    assert registry.get_sample_value("streamml_drift_threshold", labels) == 0.2
    assert registry.get_sample_value("streamml_drift_statistic", {
        "kind": "covariate", "detector": "missing_rate", "target": "feature:device"}) == 0.0


def test_a_vanishing_feature_and_a_new_category_are_schema_alerts() -> None:
    handler, producer, _ = build()
    rng = random.Random(5)
    for n in range(1, 4001):
        x = None if n > 3000 else rng.gauss(0.0, 1.0)
        device = "watch" if n > 3000 and rng.random() < 0.2 else rng.choice(["mobile", "tablet"])
        handler.handle(message("features", features(n, x, device)))
    found = {(a.target, a.detector) for a in published(producer)}
    assert found == {("feature:x", "missing_rate"), ("feature:device", "new_category")}


def test_outcomes_feed_label_prediction_and_concept_monitors_of_the_champion() -> None:
    handler, producer, registry = build()
    rng = random.Random(6)
    for n in range(1, 8001):
        changed = n > 3000
        label = rng.random() < (0.5 if changed else 0.3)
        score = rng.betavariate(3, 4) if changed else rng.betavariate(2, 5)
        correct = rng.random() >= (0.6 if changed else 0.1)
        handler.handle(message("outcomes", champion_outcome(n, label, score, correct)))
    alerts = {alert.kind: alert for alert in published(producer)}
    assert set(alerts) == {"label", "prediction", "concept"}
    assert len(published(producer)) == 3
    assert (alerts["label"].target, alerts["label"].detector) == ("label_rate", "rate_difference")
    assert (alerts["prediction"].target, alerts["prediction"].model) == ("score:logreg", "logreg")
    assert alerts["concept"].target == "error:logreg"
    for alert in alerts.values():
        assert 3000 < alert.stream_position <= 4000
        assert alert.event_time == T0 + timedelta(seconds=alert.stream_position)
    for kind in ("label", "prediction", "concept"):
        assert registry.get_sample_value(
            "streamml_drift_observations_total", {"kind": kind}) == 8000.0
    assert registry.get_sample_value("streamml_drift_statistic", {
        "kind": "prediction", "detector": "PSI", "target": "score"}) is not None
    assert handler.positions()["label"] == 8000


def test_topics_are_matched_by_their_full_names_and_others_ignored() -> None:
    producer, registry = FakeProducer(), CollectorRegistry()
    handler = DriftHandler(pipeline(), producer, "dev.drift-alerts", DriftMetrics(registry),
                           features_topic="dev.features", outcomes_topic="dev.outcomes")
    handler.handle(message("dev.features", features(1, 0.5)))
    handler.handle(message("features", b"not even json"))  # another deployment's topic
    handler.handle(message("dev.outcomes", champion_outcome(1, True, 0.5, True)))
    assert handler.covariate.position == 1
    assert handler.positions()["concept"] == {"logreg": 1}


def test_disabled_covariate_monitoring_reads_no_features() -> None:
    handler, _, registry = build(covariate={"enabled": False})
    handler.handle(message("features", features(1, 0.5)))
    assert handler.covariate.windows == {}
    assert registry.get_sample_value(
        "streamml_drift_observations_total", {"kind": "covariate"}) is None


@pytest.mark.parametrize(("raw", "code"), [(b"{", "malformed_json"),
                                           (b'{"event_id": "e"}', "schema_invalid")])
def test_undecodable_feature_vectors_are_dead_lettered(raw: bytes, code: str) -> None:
    handler, producer, _ = build()
    with pytest.raises(DeadLetter) as raised:
        handler.handle(message("features", raw))
    assert raised.value.reason_code == code
    assert producer.records == []


def test_implicit_outcomes_known_before_a_models_first_window_closes_are_not_watched() -> None:
    """Clicks come back after 1 s, non-clicks when the 30 s window closes (implicit negatives):
    for the first 30 s a model's outcomes are clicks only. Its errors on them are rare (5%), on
    non-clicks frequent (60%), so its error rate rises when the first window closes although
    nothing changed."""
    rng = random.Random(8)
    arrivals: list[tuple[float, bytes, bool]] = []
    for n in range(6000):
        event_time = T0 + timedelta(seconds=n * 0.1)
        clicked = rng.random() < 0.5
        delay = 1.0 if clicked else 30.0
        wrong = rng.random() < (0.05 if clicked else 0.6)
        arrivals.append((n * 0.1 + delay, encode(Outcome(
            event_id=f"e-{n}", model="logreg", model_version=1, prediction=clicked != wrong,
            score=0.5, label=clicked, correct=not wrong, timed_out=not clicked,
            label_delay_seconds=delay, event_time=event_time,
            learned_at=event_time + timedelta(seconds=delay),
        )), wrong))
    # In arrival order, up to the last event (later, only non-clicks would still come back).
    arrivals = sorted((a for a in arrivals if a[0] < 600.0), key=lambda arrival: arrival[0])

    unsettled = ErrorStreamMonitor(DetectorSpec())
    assert any(unsettled.update(float(wrong)) for _, _, wrong in arrivals)  # the naive view

    handler, producer, registry = build(window=30.0, on_timeout="negative")
    handler.handle(message("outcomes", arrivals[0][1]))
    assert handler.positions()["unwatched"] == {
        "logreg": {"watched_from": (T0 + timedelta(seconds=30)).isoformat()}}
    assert registry.get_sample_value("streamml_drift_models_unwatched") == 1.0
    for _, raw, _ in arrivals[1:]:
        handler.handle(message("outcomes", raw))
    assert handler.positions()["unwatched"] == {}
    assert registry.get_sample_value("streamml_drift_models_unwatched") == 0.0
    assert [a for a in published(producer) if a.kind == "concept"] == []
    known_late = sum(1 for arrived, _, _ in arrivals if arrived >= 30.0)
    assert handler.positions()["concept"] == {"logreg": known_late}
    assert handler.positions()["label"] == known_late


def test_explicit_outcomes_are_watched_from_the_first_so_a_drift_in_the_first_window_is_caught(
) -> None:
    """Labels that come (``on_timeout = "drop"``) are no biased sample: with a one-day window,
    an error-rate jump a few hundred outcomes in (minutes of stream time) is still found."""
    handler, producer, registry = build(window=86_400.0)
    run(handler, "logreg", [(0.1, 500), (0.6, 500)])
    concept = [a for a in published(producer) if a.kind == "concept"]
    assert len(concept) == 1
    assert 500 < concept[0].stream_position < 800
    assert handler.positions()["unwatched"] == {}
    assert registry.get_sample_value("streamml_drift_models_unwatched") == 0.0
