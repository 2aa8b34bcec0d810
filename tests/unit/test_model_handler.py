"""The model handler with in-memory clients and clocks: predict, then learn, exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import decode, encode
from schemas.events import Label, LabelValue
from schemas.features import FeatureValue, FeatureVector
from schemas.predictions import Outcome, Prediction
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.model.estimators import vectorize
from services.model.handler import ModelHandler, ModelTopics
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.settings import ModelOptions
from tests.unit.fakes import (
    FakeProducer,
    ManualClock,
    ManualMonotonic,
    RecordingClassifier,
    message,
)

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
WINDOW = 30.0
TOPICS = ModelTopics(features="features", labels="labels", predictions="predictions",
                     outcomes="outcomes")
CHAMPION = ModelSpec(name="champ", estimator="tests.unit.fakes:recording_classifier")
CHALLENGER = ModelSpec(name="rival", estimator="tests.unit.fakes:recording_classifier",
                       params={"p_true": 0.25})
FEATURES: dict[str, FeatureValue] = {"price": 12.5, "device": "mobile", "user_mean_5m": None}


@dataclass
class Model:
    handler: ModelHandler
    learner: Learner
    producer: FakeProducer
    clock: ManualClock
    monotonic: ManualMonotonic
    registry: CollectorRegistry

    def features(self, event_id: str, seconds: float = 0.0,
                 features: dict[str, FeatureValue] | None = None, offset: int = 0) -> None:
        vector = FeatureVector(
            event_id=event_id, event_time=T0 + timedelta(seconds=seconds), entity={"user": "u"},
            features=FEATURES if features is None else features, ingested_at=T0, computed_at=T0,
        )
        self.handler.handle(message("features", encode(vector), event_id.encode(), 1, offset))

    def label(self, event_id: str, seconds: float, value: LabelValue = 1, offset: int = 0) -> None:
        label = Label(event_id=event_id, label_time=T0 + timedelta(seconds=seconds), label=value)
        self.handler.handle(message("labels", encode(label), event_id.encode(), 2, offset))

    def predictions(self) -> list[Prediction]:
        return [decode(Prediction, r.value) for r in self.producer.on("predictions")]

    def outcomes(self) -> list[Outcome]:
        return [decode(Outcome, r.value) for r in self.producer.on("outcomes")]

    def spy(self, index: int = 0) -> RecordingClassifier:
        estimator = self.learner.models[index].estimator
        assert isinstance(estimator, RecordingClassifier)
        return estimator

    def anomalies(self, kind: str) -> float:
        value = self.registry.get_sample_value(
            "streamml_model_label_anomalies_total", {"kind": kind})
        return value or 0.0


def build(on_timeout: str = "negative", champion: ModelSpec = CHAMPION,
          challengers: tuple[ModelSpec, ...] = (CHALLENGER,),
          options: ModelOptions | None = None) -> Model:
    label = LabelSpec.model_validate({
        "type": "binary", "feedback_window_seconds": WINDOW, "on_timeout": on_timeout,
        "negative_value": 0,
    })
    learner = Learner(ModelsSpec(champion=champion, challengers=challengers), label)
    producer = FakeProducer()
    clock, monotonic, registry = ManualClock(T0), ManualMonotonic(), CollectorRegistry()
    handler = ModelHandler(
        learner, producer, TOPICS, DeadLetterPublisher(producer, "dead-letters", "model"),
        options or ModelOptions(), ModelMetrics(registry), clock=clock, monotonic=monotonic,
    )
    return Model(handler, learner, producer, clock, monotonic, registry)


def test_every_feature_vector_gets_exactly_one_champion_prediction() -> None:
    model = build(
        champion=ModelSpec(name="logreg", estimator="linear_model.LogisticRegression"),
        challengers=(ModelSpec(name="tree", estimator="tree.HoeffdingTreeClassifier"),),
    )
    for n in range(25):
        model.features(f"e-{n}", seconds=n / 10, offset=n)
    predictions = model.predictions()
    assert [p.event_id for p in predictions] == [f"e-{n}" for n in range(25)]
    assert {(p.model, p.role) for p in predictions} == {("logreg", "champion")}
    assert [r.key for r in model.producer.on("predictions")] == [
        f"e-{n}".encode() for n in range(25)]
    assert all(p.event_time == T0 + timedelta(seconds=n / 10) for n, p in enumerate(predictions))
    assert all(p.features_at == p.predicted_at == T0 for p in predictions)


def test_a_redelivered_feature_vector_is_not_predicted_twice() -> None:
    model = build()
    model.features("e-1", offset=7)
    model.features("e-1", offset=7)
    assert len(model.predictions()) == 1
    assert len(model.spy().predicted()) == 1
    assert model.registry.get_sample_value(
        "streamml_model_duplicate_feature_vectors_total") == 1.0


def test_a_label_after_its_features_gives_one_outcome_per_model() -> None:
    model = build()
    model.features("e-1")
    model.label("e-1", seconds=4, value=1)
    outcomes = {o.model: o for o in model.outcomes()}
    assert set(outcomes) == {"champ", "rival"}
    champ, rival = outcomes["champ"], outcomes["rival"]
    assert (champ.role, rival.role) == ("champion", "challenger")
    assert (champ.prediction, rival.prediction) == (True, False)  # p_true 0.75 and 0.25
    assert (champ.correct, rival.correct) == (True, False)
    assert champ.label is True
    assert champ.timed_out is False
    assert champ.label_delay_seconds == 4.0
    assert champ.event_time == T0
    assert champ.score == 0.75


def test_models_learn_once_on_exactly_the_input_they_predicted_with() -> None:
    model = build()
    model.features("e-1")
    model.label("e-1", seconds=4, value="yes")
    for index in (0, 1):
        spy = model.spy(index)
        assert spy.predicted() == [vectorize(FEATURES)]
        assert spy.learned() == [(vectorize(FEATURES), True)]
        assert [kind for kind, _, _ in spy.calls] == ["predict", "learn"]


def test_an_early_label_is_learned_right_after_the_prediction() -> None:
    model = build()
    model.label("e-1", seconds=3, value=0)
    assert model.producer.records == []
    assert model.spy().calls == []
    model.features("e-1")
    topics = [record.topic for record in model.producer.records]
    assert topics == ["predictions", "outcomes", "outcomes"]
    assert model.spy().learned() == [(vectorize(FEATURES), False)]
    assert [kind for kind, _, _ in model.spy().calls] == ["predict", "learn"]
    assert model.outcomes()[0].label_delay_seconds == 3.0
    model.monotonic.advance(10 * WINDOW)
    model.handler.on_idle()
    assert model.producer.on("dead-letters") == []  # the early label was used, not orphaned


def test_a_timeout_learns_the_negative_label() -> None:
    model = build(on_timeout="negative")
    model.features("e-1")
    model.monotonic.advance(WINDOW - 1)
    model.handler.on_idle()
    assert model.outcomes() == []
    model.monotonic.advance(1)
    model.handler.on_idle()
    outcomes = model.outcomes()
    assert len(outcomes) == 2
    assert all(o.timed_out for o in outcomes)
    assert all(o.label is False for o in outcomes)
    assert all(o.label_delay_seconds == WINDOW for o in outcomes)
    assert model.spy().learned() == [(vectorize(FEATURES), False)]
    assert len(model.handler.pending) == 0


def test_newer_events_close_the_window_of_older_ones() -> None:
    model = build(on_timeout="negative")
    model.features("e-1", seconds=0)
    model.features("e-2", seconds=WINDOW - 1)
    assert model.outcomes() == []
    model.features("e-3", seconds=WINDOW + 1)
    assert {o.event_id for o in model.outcomes()} == {"e-1"}
    assert "e-2" in model.handler.pending


def test_a_timeout_with_drop_policy_learns_nothing() -> None:
    model = build(on_timeout="drop")
    model.features("e-1")
    model.monotonic.advance(WINDOW + 1)
    model.handler.on_idle()
    assert model.outcomes() == []
    assert model.spy().learned() == []
    assert model.anomalies("timeout_dropped") == 1.0


@pytest.mark.parametrize("on_timeout", ["negative", "drop"])
def test_a_label_after_its_window_closed_is_dead_lettered_as_late(on_timeout: str) -> None:
    model = build(on_timeout=on_timeout)
    model.features("e-1")
    model.monotonic.advance(WINDOW + 1)
    model.handler.on_idle()
    learned = len(model.spy().learned())
    with pytest.raises(DeadLetter) as raised:
        model.label("e-1", seconds=WINDOW + 2)
    assert raised.value.reason_code == "late_label"
    assert len(model.spy().learned()) == learned
    assert model.anomalies("late") == 1.0


def test_a_label_stamped_after_the_window_is_late_even_without_a_tick_between() -> None:
    model = build(on_timeout="negative")
    model.features("e-1")
    with pytest.raises(DeadLetter) as raised:
        model.label("e-1", seconds=WINDOW + 15, value=1)
    assert raised.value.reason_code == "late_label"
    [outcome, _] = model.outcomes()
    assert outcome.timed_out is True
    assert outcome.label is False
    assert model.spy().learned() == [(vectorize(FEATURES), False)]


def test_a_duplicate_label_is_ignored() -> None:
    model = build()
    model.features("e-1")
    model.label("e-1", seconds=2, value=1)
    model.label("e-1", seconds=2, value=1)
    model.label("e-1", seconds=3, value=0)
    assert len(model.outcomes()) == 2
    assert model.spy().learned() == [(vectorize(FEATURES), True)]
    assert model.anomalies("duplicate") == 2.0
    assert model.producer.on("dead-letters") == []


def test_a_label_whose_features_never_arrive_is_dead_lettered_once() -> None:
    model = build()
    label = Label(event_id="ghost", label_time=T0, label=1)
    model.handler.handle(message("labels", encode(label), b"ghost", partition=3, offset=99))
    model.features("other-1", seconds=WINDOW - 1)
    assert model.producer.on("dead-letters") == []
    model.features("other-2", seconds=WINDOW)  # the features stream is a window past the label
    model.features("other-3", seconds=2 * WINDOW)
    model.handler.on_idle()
    [dead] = model.producer.on("dead-letters")
    assert dead.value == encode(label)
    assert dead.key == b"ghost"
    headers = dead.dead_letter_headers()
    assert headers.reason_code == "unknown_event"
    assert (headers.source_topic, headers.source_partition, headers.source_offset) == (
        "labels", 3, 99)
    assert headers.service == "model"
    assert model.anomalies("unknown_event") == 1.0
    assert "ghost" not in {o.event_id for o in model.outcomes()}


def test_a_label_waits_for_a_slow_features_stream() -> None:
    model = build()
    model.label("e-1", seconds=0, value=1)
    model.monotonic.advance(100 * WINDOW)  # wall-clock time alone does not orphan the label
    model.handler.on_idle()
    assert model.producer.on("dead-letters") == []
    model.features("e-1")
    assert len(model.outcomes()) == 2
    assert model.spy().learned() == [(vectorize(FEATURES), True)]


def test_the_pending_store_is_bounded() -> None:
    model = build(options=ModelOptions(pending_capacity=3))
    for n in range(10):
        model.features(f"e-{n}", seconds=n / 100)
    assert len(model.handler.pending) == 3
    assert model.registry.get_sample_value("streamml_model_pending_evicted_total") == 7.0
    assert model.registry.get_sample_value("streamml_model_pending_events") == 3.0


@pytest.mark.parametrize(
    ("topic", "raw", "code"),
    [("features", b"{oops", "malformed_json"), ("features", b'{"event_id": "e"}', "schema_invalid"),
     ("labels", b"[]", "malformed_json"), ("labels", b'{"label": 1}', "schema_invalid")],
)
def test_undecodable_messages_are_dead_lettered(topic: str, raw: bytes, code: str) -> None:
    model = build()
    with pytest.raises(DeadLetter) as raised:
        model.handler.handle(message(topic, raw))
    assert raised.value.reason_code == code
    assert model.producer.records == []


def test_the_label_of_an_evicted_event_is_late_not_unknown() -> None:
    model = build(options=ModelOptions(pending_capacity=2))
    for n in range(3):
        model.features(f"e-{n}", seconds=n / 100)
    with pytest.raises(DeadLetter) as raised:
        model.label("e-0", seconds=1)
    assert raised.value.reason_code == "late_label"
    assert model.anomalies("late") == 1.0


def test_labels_forgotten_by_a_full_waiting_store_are_dead_lettered() -> None:
    model = build(options=ModelOptions(early_label_capacity=2))
    for n in range(3):
        model.label(f"early-{n}", seconds=n, offset=n)
    [dead] = model.producer.on("dead-letters")
    assert dead.key == b"early-0"
    assert dead.dead_letter_headers().reason_code == "unknown_event"
    assert model.anomalies("unknown_event") == 1.0


def test_stream_time_never_goes_backwards() -> None:
    model = build()
    model.features("e-1", seconds=0)
    model.monotonic.advance(10)
    before = model.handler.stream_now()
    model.features("e-2", seconds=5)  # newer event, but older than wall-advanced stream time
    assert model.handler.stream_now() >= before
