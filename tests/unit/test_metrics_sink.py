"""The metrics sink: rolling accuracy and the Prometheus metrics each topic moves."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from schemas.alerts import DriftAlert
from schemas.codec import encode
from schemas.dead_letters import DeadLetterHeaders
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction
from services.common.dead_letters import DeadLetter
from services.metrics_sink.handler import SinkHandler, SinkTopics
from services.metrics_sink.metrics import SinkMetrics
from services.metrics_sink.rolling import RollingMean
from tests.unit.fakes import WireHeaders, message

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
TOPICS = SinkTopics(predictions="acme.predictions", outcomes="acme.outcomes",
                    alerts="acme.drift-alerts", dead_letters="acme.dead-letters", prefix="acme.")


def test_rolling_mean_equals_the_mean_of_the_last_values() -> None:
    rng = random.Random(8)
    window, values = RollingMean(50), []
    for _ in range(5000):
        value = rng.choice([0.0, 1.0, rng.random()])
        values.append(value)
        recent = values[-50:]
        assert window.update(value) == pytest.approx(sum(recent) / len(recent), abs=1e-9)
    assert len(window) == 50


def test_empty_rolling_mean_is_zero() -> None:
    assert RollingMean(3).mean == 0.0
    assert len(RollingMean(3)) == 0


def sink(accuracy_window: int = 4, roc_auc_every: int = 100) -> tuple[
    SinkHandler, CollectorRegistry
]:
    registry = CollectorRegistry()
    return SinkHandler(TOPICS, SinkMetrics(registry), accuracy_window, roc_auc_every), registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    sample = registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def outcome(correct: bool, model: str = "logreg", timed_out: bool = False) -> bytes:
    return encode(Outcome(
        event_id="e", model=model, model_version=2, prediction=True, label=correct,
        correct=correct, timed_out=timed_out, label_delay_seconds=7.0, event_time=T0,
        learned_at=T0,
    ))


def test_predictions_count_and_latency_are_recorded() -> None:
    handler, registry = sink()
    prediction = Prediction(event_id="e", model="logreg", model_version=2, prediction=True,
                            event_time=T0, features_at=T0,
                            predicted_at=T0 + timedelta(milliseconds=30))
    for _ in range(3):
        handler.handle(message(TOPICS.predictions, encode(prediction)))
    assert value(registry, "streamml_predictions_total", model="logreg", version="2") == 3
    assert value(registry, "streamml_event_to_prediction_seconds_count", model="logreg") == 3
    assert value(registry, "streamml_event_to_prediction_seconds_sum",
                 model="logreg") == pytest.approx(0.09)


def test_outcomes_move_counters_and_rolling_accuracy_per_model() -> None:
    handler, registry = sink(accuracy_window=4)
    for correct in (True, False, True, True, True, True):
        handler.handle(message(TOPICS.outcomes, outcome(correct)))
    handler.handle(message(TOPICS.outcomes, outcome(False, model="tree", timed_out=True)))
    assert value(registry, "streamml_outcomes_total", model="logreg", version="2",
                 timed_out="false") == 6
    assert value(registry, "streamml_outcomes_total", model="tree", version="2",
                 timed_out="true") == 1
    assert value(registry, "streamml_rolling_accuracy_ratio", model="logreg") == 1.0
    assert value(registry, "streamml_rolling_accuracy_ratio", model="tree") == 0.0
    assert value(registry, "streamml_label_delay_seconds_sum", model="logreg") == 42.0


def test_the_majority_baseline_is_over_the_same_outcomes_as_the_accuracy() -> None:
    """A model that always answers True on mostly-False labels is worse than the baseline."""
    handler, registry = sink(accuracy_window=4)
    for label in (True, True, False, False, True, False):  # the window keeps the last four
        handler.handle(message(TOPICS.outcomes, encode(Outcome(
            event_id="e", model="logreg", model_version=2, prediction=True, label=label,
            correct=label, label_delay_seconds=1.0, event_time=T0, learned_at=T0))))
    assert value(registry, "streamml_rolling_accuracy_ratio", model="logreg") == 0.25
    assert value(registry, "streamml_rolling_majority_baseline_ratio", model="logreg") == 0.75


def scored(label: bool, score: float, timed_out: bool = False, model: str = "logreg") -> bytes:
    return encode(Outcome(
        event_id="e", model=model, model_version=1, prediction=score >= 0.5, score=score,
        label=label, correct=(score >= 0.5) == label,
        label_probability=score if label else 1.0 - score, timed_out=timed_out,
        label_delay_seconds=1.0, event_time=T0, learned_at=T0,
    ))


def test_outcomes_move_rolling_log_loss_and_label_coverage() -> None:
    handler, registry = sink(accuracy_window=3)
    for label, score, timed_out in [(True, 0.9, False), (False, 0.2, True), (True, 0.5, False),
                                    (False, 0.4, True)]:
        handler.handle(message(TOPICS.outcomes, scored(label, score, timed_out)))
    # The last three: probabilities 0.8, 0.5 and 0.6 given to what happened; two timed out.
    assert value(registry, "streamml_rolling_log_loss", model="logreg") == pytest.approx(
        -(math.log(0.8) + math.log(0.5) + math.log(0.6)) / 3)
    assert value(registry, "streamml_label_coverage_ratio", model="logreg") == pytest.approx(1 / 3)
    assert registry.get_sample_value("streamml_rolling_mae", {"model": "logreg"}) is None


def test_roc_auc_is_exported_every_few_outcomes_and_when_idle() -> None:
    handler, registry = sink(accuracy_window=10, roc_auc_every=3)
    auc = {"model": "logreg"}
    handler.handle(message(TOPICS.outcomes, scored(True, 0.9)))
    handler.handle(message(TOPICS.outcomes, scored(False, 0.3)))
    assert registry.get_sample_value("streamml_rolling_roc_auc_ratio", auc) is None
    handler.handle(message(TOPICS.outcomes, scored(False, 0.95)))  # third: recomputed
    assert registry.get_sample_value("streamml_rolling_roc_auc_ratio", auc) == 0.5
    handler.handle(message(TOPICS.outcomes, scored(True, 0.3)))  # a tie with a negative
    assert registry.get_sample_value("streamml_rolling_roc_auc_ratio", auc) == 0.5
    handler.on_idle()
    # Positives 0.9 and 0.3 against negatives 0.3 and 0.95: 0.9 beats 0.3, 0.3 ties 0.3.
    assert registry.get_sample_value("streamml_rolling_roc_auc_ratio", auc) == (1 + 0.5) / 4


def test_roc_auc_is_absent_while_the_window_holds_one_class() -> None:
    handler, registry = sink(accuracy_window=2, roc_auc_every=1)
    handler.handle(message(TOPICS.outcomes, scored(True, 0.9)))
    assert registry.get_sample_value("streamml_rolling_roc_auc_ratio", {"model": "logreg"}) is None
    handler.handle(message(TOPICS.outcomes, scored(False, 0.1)))
    assert registry.get_sample_value("streamml_rolling_roc_auc_ratio", {"model": "logreg"}) == 1.0
    handler.handle(message(TOPICS.outcomes, scored(False, 0.2)))
    handler.handle(message(TOPICS.outcomes, scored(False, 0.3)))  # now two negatives
    assert registry.get_sample_value("streamml_rolling_roc_auc_ratio", {"model": "logreg"}) is None


def test_regression_outcomes_move_rolling_mae_and_rmse_only() -> None:
    handler, registry = sink(accuracy_window=2)
    for target, predicted in [(10.0, 4.0), (3.0, 5.0), (1.0, 5.0)]:
        handler.handle(message(TOPICS.outcomes, encode(Outcome(
            event_id="e", model="lin", model_version=1, prediction=predicted, score=predicted,
            label=target, label_delay_seconds=1.0, event_time=T0, learned_at=T0,
        ))))
    assert value(registry, "streamml_rolling_mae", model="lin") == 3.0  # errors -2 and -4
    assert value(registry, "streamml_rolling_rmse", model="lin") == pytest.approx(math.sqrt(10))
    assert value(registry, "streamml_label_coverage_ratio", model="lin") == 1.0
    for name in ("streamml_rolling_accuracy_ratio", "streamml_rolling_log_loss",
                 "streamml_rolling_roc_auc_ratio"):
        assert registry.get_sample_value(name, {"model": "lin"}) is None
    assert handler.quality["lin"].summary() == {"label_coverage": 1.0, "mae": 3.0,
                                                "rmse": round(math.sqrt(10), 4)}


def test_drift_alerts_are_counted_and_timestamped() -> None:
    handler, registry = sink()
    alert = DriftAlert(alert_id="a", kind="concept", detector="ADWIN", target="error:logreg",
                       statistic=0.5, threshold=0.002, stream_position=10, detected_at=T0)
    handler.handle(message(TOPICS.alerts, encode(alert)))
    assert value(registry, "streamml_drift_alerts_total", kind="concept", detector="ADWIN") == 1
    assert value(registry, "streamml_last_drift_alert_timestamp_seconds",
                 kind="concept") == T0.timestamp()


def test_model_events_are_counted_and_set_the_champion_version() -> None:
    handler, registry = sink()
    assert value(registry, "streamml_champion_version") == 1
    promoted = ModelEvent(event_id="m", kind="promoted", model="tree", model_version=3,
                          previous_model="logreg", reason="won", labels_seen=900, at=T0)
    handler.handle(message(TOPICS.model_events, encode(promoted)))
    assert value(registry, "streamml_model_events_total", kind="promoted") == 1
    assert value(registry, "streamml_champion_version") == 3
    assert value(registry, "streamml_last_model_event_timestamp_seconds",
                 kind="promoted") == T0.timestamp()


def test_dead_letter_headers_become_source_and_reason_labels() -> None:
    handler, registry = sink()
    headers = DeadLetterHeaders(
        source_topic="acme.events", source_partition=0, source_offset=5, service="features",
        reason_code="spec_invalid", error_class="DeadLetter", reason="bad price",
    )
    for _ in range(2):
        handler.handle(message(TOPICS.dead_letters, b"\xff garbage",
                               headers=headers.to_kafka_headers()))
    assert value(registry, "streamml_dead_letters_total", source="events",
                 reason="spec_invalid") == 2


@pytest.mark.parametrize(
    "headers",
    [None, [], [("streamml.reason_code", b"spec_invalid")],
     [("streamml." + name, b"\xff\xfe") for name in DeadLetterHeaders.model_fields]],
    ids=["none", "empty", "partial", "garbled"],
)
def test_unparsable_dead_letter_headers_count_as_unknown(headers: WireHeaders | None) -> None:
    handler, registry = sink()
    handler.handle(message(TOPICS.dead_letters, b"x", headers=headers))
    assert value(registry, "streamml_dead_letters_total", source="unknown",
                 reason="unlabelled") == 1


@pytest.mark.parametrize("topic", [TOPICS.predictions, TOPICS.outcomes, TOPICS.alerts])
def test_undecodable_messages_are_dead_lettered(topic: str) -> None:
    handler, _ = sink()
    with pytest.raises(DeadLetter) as raised:
        handler.handle(message(topic, b"{not json"))
    assert raised.value.reason_code == "malformed_json"
