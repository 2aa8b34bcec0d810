"""Estimated accuracy while labels are pending: calibration by confidence, and the sink's gauge."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import encode
from schemas.predictions import Outcome, Prediction
from services.metrics_sink.estimate import (
    AccuracyEstimate,
    ConfidenceCalibration,
    confidence_of,
    outcome_confidence,
)
from services.metrics_sink.handler import SinkHandler, SinkTopics
from services.metrics_sink.metrics import SinkMetrics
from tests.unit.fakes import message

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TOPICS = SinkTopics(predictions="p.predictions", outcomes="p.outcomes", alerts="p.drift-alerts",
                    dead_letters="p.dead-letters", prefix="p.")


def prediction(event_id: str, score: float | None, probabilities: dict[str, float] | None = None,
               answer: bool | str = True) -> Prediction:
    return Prediction(event_id=event_id, model="logreg", model_version=1, prediction=answer,
                      probabilities=probabilities, score=score, event_time=T0, features_at=T0,
                      predicted_at=T0)


def test_confidence_is_the_probability_of_the_class_predicted() -> None:
    assert confidence_of(prediction("a", 0.8)) == pytest.approx(0.8)
    assert confidence_of(prediction("a", 0.1, answer=False)) == pytest.approx(0.9)
    three = {"red": 0.2, "green": 0.5, "blue": 0.3}
    assert confidence_of(prediction("a", None, three, answer="green")) == pytest.approx(0.5)
    assert confidence_of(prediction("a", None)) is None  # nothing learned yet: no confidence


def test_a_bin_without_outcomes_takes_the_model_at_its_word() -> None:
    calibration = ConfidenceCalibration(bins=10, per_bin=100, prior=10)
    assert calibration.expected(calibration.bin_of(0.95)) == pytest.approx(0.95)


def test_a_bin_learns_how_often_its_answers_were_right_over_its_latest_outcomes() -> None:
    calibration = ConfidenceCalibration(bins=10, per_bin=100, prior=10)
    index = calibration.bin_of(0.95)
    for n in range(1_000):  # confident, yet right only 60% of the time
        calibration.observe(0.95, n % 5 < 3)
    assert calibration.outcomes(index) == 100
    assert calibration.expected(index) == pytest.approx((60 + 10 * 0.95) / 110)
    for _ in range(100):  # the latest outcomes replace the older ones
        calibration.observe(0.95, True)
    assert calibration.expected(index) == pytest.approx((100 + 9.5) / 110)


def test_the_estimate_is_the_mean_expected_accuracy_of_the_predictions_waiting() -> None:
    estimate = AccuracyEstimate(calibration=ConfidenceCalibration(bins=10, per_bin=10, prior=0.001))
    for n in range(10):
        estimate.resolved(f"old-{n}", n < 9, confidence=0.95)   # 0.9 bin: 90% right
        estimate.resolved(f"old-{n}", n < 6, confidence=0.65)   # 0.6 bin: 60% right
    assert math.isnan(estimate.estimate())
    for n in range(3):
        estimate.predicted(f"sure-{n}", 0.95)
    estimate.predicted("unsure", 0.65)
    assert len(estimate) == 4
    assert estimate.estimate() == pytest.approx((3 * 0.9 + 0.6) / 4, abs=1e-3)
    estimate.resolved("unsure", False, None)
    assert len(estimate) == 3
    assert estimate.estimate() == pytest.approx(0.9, abs=1e-3)


def test_the_estimate_matches_the_realised_accuracy_of_a_calibrated_model() -> None:
    rng = random.Random(3)
    estimate, expected, right = AccuracyEstimate(), [], []
    for n in range(20_000):  # a calibrated model: right with the probability it gives
        confidence = rng.uniform(0.5, 1.0)
        estimate.predicted(f"e{n}", confidence)
        correct = rng.random() < confidence
        if n >= 10_000:
            expected.append(estimate.estimate())
            right.append(correct)
        estimate.resolved(f"e{n}", correct, None)
    assert sum(right) / len(right) == pytest.approx(sum(expected) / len(expected), abs=0.02)


def test_waiting_predictions_are_bounded_and_the_oldest_dropped() -> None:
    estimate = AccuracyEstimate(capacity=3)
    for n in range(5):
        estimate.predicted(f"e{n}", 0.9)
    estimate.predicted("e4", 0.9)  # read again: counted once
    assert len(estimate) == 3
    assert estimate.dropped == 2
    estimate.resolved("e0", True, None)  # dropped already: learned from the outcome's own score
    assert len(estimate) == 3


def test_the_sink_exports_the_estimate_of_the_champions_waiting_predictions() -> None:
    registry = CollectorRegistry()
    handler = SinkHandler(TOPICS, SinkMetrics(registry), window=100)
    for n in range(4):
        handler.handle(message(TOPICS.predictions, encode(prediction(f"e{n}", 0.9))))
    gauge = "streamml_estimated_accuracy_ratio"
    # No outcome yet: the model is taken at its word.
    assert registry.get_sample_value(gauge, {"model": "logreg"}) == pytest.approx(0.9, abs=0.03)
    assert registry.get_sample_value("streamml_estimated_accuracy_waiting",
                                     {"model": "logreg"}) == 4
    for n in range(2):
        handler.handle(message(TOPICS.outcomes, encode(Outcome(
            event_id=f"e{n}", model="logreg", model_version=1, prediction=True, score=0.9,
            label=False, correct=False, label_delay_seconds=1.0, event_time=T0,
            learned_at=T0))))
    assert registry.get_sample_value("streamml_estimated_accuracy_waiting",
                                     {"model": "logreg"}) == 2
    # Two confident answers were wrong: the 0.9 bin now expects less of the two still waiting.
    assert registry.get_sample_value(gauge, {"model": "logreg"}) == pytest.approx(
        (0 + 10 * 0.925) / 12)


def test_an_outcome_knows_its_binary_confidence_from_its_score() -> None:
    made = Outcome(event_id="e", model="m", model_version=1, prediction=False, score=0.3,
                   label=False, correct=True, label_delay_seconds=1.0, event_time=T0,
                   learned_at=T0)
    assert outcome_confidence(made) == pytest.approx(0.7)


def test_the_report_gives_each_prediction_the_estimate_known_when_it_was_made() -> None:
    from datetime import timedelta

    from services.cli.report.estimate import estimates_at_prediction
    from services.cli.report.records import RunRecords

    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    records = RunRecords()
    for n in range(20):  # confident answers, at 0..19 s; each wrong, its outcome 0.5 s later
        records.predictions.append(prediction(f"e{n}", 0.95).model_copy(
            update={"predicted_at": at(n)}))
        records.outcomes.append(Outcome(
            event_id=f"e{n}", model="logreg", model_version=1, prediction=True, score=0.95,
            label=False, correct=False, label_delay_seconds=0.5, event_time=at(n),
            learned_at=at(n + 0.5)))
    made = estimates_at_prediction(records)
    assert [p.event_id for p, _ in made] == [f"e{n}" for n in range(20)]
    estimates = [estimate for _, estimate in made]
    assert estimates[0] == pytest.approx(0.975)  # nothing known yet: the bin's middle
    # each later one knows the n wrong answers before it, and no later outcome
    assert estimates[5] == pytest.approx(10 * 0.975 / (5 + 10))
    assert estimates == sorted(estimates, reverse=True)
