"""The model handler with in-memory clients and clocks: predict, then learn, exactly once.

Labels are learned in stream-time order: a label waits until the features stream passes its
``label_time`` (the first later feature vector), or until wall-clock stream time does
(``on_idle``, or a label arriving after ``label_hold_seconds`` without features).
"""

from __future__ import annotations

import itertools
import math
import pickle
import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from river import evaluate, linear_model, metrics

from schemas.codec import decode, encode
from schemas.events import Label, LabelValue
from schemas.features import FeatureValue, FeatureVector
from schemas.predictions import Outcome, Prediction
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.model import journal
from services.model.estimators import vectorize
from services.model.handler import ModelHandler, ModelTopics
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.settings import ModelOptions
from tests.unit.fakes import (
    FakeProducer,
    ManualClock,
    ManualMonotonic,
    Produced,
    RecordingClassifier,
    message,
)

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
WINDOW = 30.0
HOLD = 10.0  # shorter than WINDOW, so holding never closes a window by itself
TOPICS = ModelTopics(features="features", labels="labels", predictions="predictions",
                     outcomes="outcomes")
CHAMPION = ModelSpec(name="champ", estimator="tests.unit.fakes:recording_classifier")
CHALLENGER = ModelSpec(name="rival", estimator="tests.unit.fakes:recording_classifier",
                       params={"p_true": 0.25})
LOGREG = ModelSpec(name="logreg", estimator="linear_model.LogisticRegression")
FEATURES: dict[str, FeatureValue] = {"price": 12.5, "device": "mobile", "user_mean_5m": None}


def numbered(n: float) -> dict[str, FeatureValue]:
    """Features that tell events apart in the spy's log."""
    return {"n": float(n)}


@dataclass
class Model:
    handler: ModelHandler
    learner: Learner
    producer: FakeProducer
    clock: ManualClock
    monotonic: ManualMonotonic
    registry: CollectorRegistry

    def features(self, event_id: str, seconds: float = 0.0,
                 features: dict[str, FeatureValue] | None = None, offset: int = 0,
                 event_position: tuple[int, int] | None = None) -> None:
        """A feature vector; ``event_position`` is its event's (partition, offset) in events."""
        partition, event_offset = event_position or (None, None)
        vector = FeatureVector(
            event_id=event_id, event_time=T0 + timedelta(seconds=seconds), entity={"user": "u"},
            features=FEATURES if features is None else features, ingested_at=T0, computed_at=T0,
            event_partition=partition, event_offset=event_offset,
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
          options: ModelOptions | None = None, window: float = WINDOW,
          label_type: str = "binary", learn_at: str = "label") -> Model:
    label = LabelSpec.model_validate({
        "type": label_type, "feedback_window_seconds": window, "on_timeout": on_timeout,
        "negative_value": 0, "learn_at": learn_at,
    })
    learner = Learner(ModelsSpec(champion=champion, challengers=challengers), label)
    producer = FakeProducer()
    clock, monotonic, registry = ManualClock(T0), ManualMonotonic(), CollectorRegistry()
    handler = ModelHandler(
        learner, producer, TOPICS, DeadLetterPublisher(producer, "dead-letters", "model"),
        options or ModelOptions(label_hold_seconds=HOLD), ModelMetrics(registry),
        clock=clock, monotonic=monotonic,
    )
    return Model(handler, learner, producer, clock, monotonic, registry)


def trace(model: Model) -> list[tuple[str, str]]:
    """(topic, event id) of every prediction and outcome, in the order they were produced."""
    return [(r.topic, (r.key or b"").decode()) for r in model.producer.records
            if r.topic in ("predictions", "outcomes")]


def wire(records: Iterable[Produced]) -> list[tuple[str, bytes | None, bytes | None]]:
    """Produced records as bytes on the wire: topic, key, value."""
    return [(r.topic, r.key, r.value) for r in records]


@dataclass(frozen=True)
class Msg:
    """One message to deliver: a feature vector or a label of ``event_id`` at ``seconds``."""

    topic: str
    event_id: str
    seconds: float
    value: LabelValue = 1
    features: dict[str, FeatureValue] | None = None


def play(model: Model, messages: Iterable[Msg]) -> list[str]:
    """Deliver ``messages`` in order (offsets counted per topic); the dead letters raised."""
    offsets: dict[str, int] = defaultdict(int)
    raised: list[str] = []
    for msg in messages:
        offset = offsets[msg.topic]
        offsets[msg.topic] += 1
        try:
            if msg.topic == "features":
                model.features(msg.event_id, msg.seconds, msg.features, offset=offset)
            else:
                model.label(msg.event_id, msg.seconds, msg.value, offset=offset)
        except DeadLetter as dead:
            raised.append(f"{msg.event_id}:{dead.reason_code}")
    return raised


@dataclass(frozen=True)
class Event:
    """A synthetic event: features at ``n`` seconds, its label (if any) at ``label_at``."""

    n: int
    x: dict[str, FeatureValue]
    y: int
    label_at: float | None


def synthetic(count: int, seed: int, label_delay: Callable[[int], float | None]) -> list[Event]:
    """``count`` events one second apart; y follows a fixed rule of x (seeded inputs)."""
    rng = random.Random(seed)
    events: list[Event] = []
    for n in range(count):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        delay = label_delay(n)
        events.append(Event(n, {"a": a, "b": b}, int(a + 0.5 * b > 0.1),
                            None if delay is None else n + delay))
    return events


def interleave(events: Sequence[Event], after: Callable[[int, float], int]) -> list[Msg]:
    """Features in event order; the label of event n right after the features of event
    ``after(n, label_at)`` (-1: before any); labels at the same place in label-time order."""
    labels = sorted(
        ((e.label_at, e) for e in events if e.label_at is not None), key=lambda pair: pair[0])
    slots: dict[int, list[Msg]] = defaultdict(list)
    for label_at, event in labels:
        slot = max(-1, min(after(event.n, label_at), len(events) - 1))
        slots[slot].append(Msg("labels", f"e-{event.n}", label_at, value=event.y))
    messages = list(slots[-1])
    for event in events:
        messages.append(Msg("features", f"e-{event.n}", event.n, features=event.x))
        messages.extend(slots[event.n])
    return messages


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


def test_a_vector_sent_again_for_the_same_event_is_skipped_without_a_dead_letter() -> None:
    model = build()
    model.features("e-1", offset=7, event_position=(2, 40))
    model.features("e-1", offset=9, event_position=(2, 40))
    assert len(model.predictions()) == 1
    assert model.producer.on("dead-letters") == []
    assert model.registry.get_sample_value(
        "streamml_model_duplicate_feature_vectors_total") == 1.0


def test_another_event_reusing_an_event_id_is_a_duplicate_dead_letter() -> None:
    model = build()
    model.features("e-1", offset=7, event_position=(2, 40))
    with pytest.raises(DeadLetter) as raised:
        model.features("e-1", offset=8, event_position=(0, 13))
    assert raised.value.reason_code == "duplicate"
    assert "partition 2 offset 40" in raised.value.reason
    assert "partition 0 offset 13" in raised.value.reason
    assert len(model.predictions()) == 1
    assert len(model.spy().predicted()) == 1


def test_a_restored_checkpoint_still_tells_a_redelivery_from_a_duplicate() -> None:
    original = build()
    original.features("e-1", offset=7, event_position=(2, 40))
    restored = build()
    restored.handler.restore(pickle.loads(pickle.dumps(original.handler.state())))  # noqa: S301
    restored.features("e-1", offset=8, event_position=(2, 40))
    assert restored.producer.on("dead-letters") == []
    with pytest.raises(DeadLetter) as raised:
        restored.features("e-1", offset=9, event_position=(1, 40))
    assert raised.value.reason_code == "duplicate"


def test_a_label_after_its_features_gives_one_outcome_per_model() -> None:
    model = build()
    model.features("e-1")
    model.label("e-1", seconds=4, value=1)
    assert model.outcomes() == []  # queued until the features stream passes 4 s
    model.features("e-2", seconds=5)
    outcomes = {o.model: o for o in model.outcomes()}
    assert {o.event_id for o in model.outcomes()} == {"e-1"}
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


def test_binary_outcomes_carry_the_probability_given_to_the_observed_label() -> None:
    model = build(on_timeout="negative")
    model.features("e-1", seconds=0)
    model.label("e-1", seconds=1, value=1)
    model.features("e-2", seconds=2)
    model.features("e-3", seconds=WINDOW + 3)  # e-2's window closes: a negative label
    probabilities = {(o.event_id, o.model): o.label_probability for o in model.outcomes()}
    assert probabilities == {("e-1", "champ"): 0.75, ("e-1", "rival"): 0.25,
                             ("e-2", "champ"): 0.25, ("e-2", "rival"): 0.75}


def test_multiclass_outcomes_carry_the_probability_of_the_observed_class() -> None:
    naive_bayes = ModelSpec(name="nb", estimator="naive_bayes.GaussianNB")
    model = build(champion=naive_bayes, challengers=(), label_type="multiclass")
    centres = {"a": -5.0, "b": 0.0, "c": 5.0}
    for n, cls in enumerate(["a", "b", "c"] * 20):
        model.features(f"e-{n}", seconds=n, features={"x": centres[cls] + (n % 5) * 0.1})
        model.label(f"e-{n}", seconds=n + 0.5, value=cls)
    model.features("e-last", seconds=100)
    predictions = {p.event_id: p for p in model.predictions()}
    outcomes = model.outcomes()
    assert len(outcomes) == 60
    [first] = [o for o in outcomes if o.event_id == "e-0"]
    assert first.prediction is None and first.label_probability is None  # nothing learned yet
    for outcome in outcomes[1:]:
        probabilities = predictions[outcome.event_id].probabilities
        assert probabilities is not None
        assert outcome.label_probability == probabilities.get(str(outcome.label), 0.0)
    assert outcomes[1].label_probability == 0.0  # "b" had never been seen when e-1 was predicted
    assert min(o.label_probability or 0.0 for o in outcomes[30:]) > 0.9


def test_a_pending_entry_pickled_before_class_probabilities_existed_loads() -> None:
    model = build()
    model.features("e-1")
    entry = model.handler.pending.get("e-1")
    assert entry is not None
    del entry.__dict__["class_probabilities"]  # as written by the previous version
    loaded = pickle.loads(pickle.dumps(entry))  # noqa: S301 - our own bytes
    assert loaded.class_probabilities is None


def test_models_learn_once_on_exactly_the_input_they_predicted_with() -> None:
    model = build()
    model.features("e-1")
    model.label("e-1", seconds=4, value="yes")
    model.monotonic.advance(HOLD)
    model.handler.on_idle()  # no features for a while: wall-clock stream time passes the label
    for index in (0, 1):
        spy = model.spy(index)
        assert spy.predicted() == [vectorize(FEATURES)]
        assert spy.learned() == [(vectorize(FEATURES), True)]
        assert [kind for kind, _, _ in spy.calls] == ["predict", "learn"]


def test_an_early_label_is_learned_once_the_features_stream_passes_its_time() -> None:
    model = build()
    model.label("e-1", seconds=3, value=0)
    assert model.producer.records == []
    assert model.spy().calls == []
    model.features("e-1", seconds=0)
    model.features("e-2", seconds=3)  # not later than the label: it still waits
    assert trace(model) == [("predictions", "e-1"), ("predictions", "e-2")]
    model.features("e-3", seconds=4)
    assert trace(model) == [("predictions", "e-1"), ("predictions", "e-2"), ("outcomes", "e-1"),
                            ("outcomes", "e-1"), ("predictions", "e-3")]
    assert model.spy().learned() == [(vectorize(FEATURES), False)]
    assert [kind for kind, _, _ in model.spy().calls] == ["predict", "predict", "learn", "predict"]
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
    assert model.outcomes() == []  # at the deadline the window is still open (a label may come)
    model.monotonic.advance(0.5)
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


@pytest.mark.parametrize("on_timeout", ["negative", "drop"])
def test_a_label_stamped_after_the_window_is_late_even_without_a_tick_between(
    on_timeout: str,
) -> None:
    model = build(on_timeout=on_timeout)
    model.features("e-1")
    with pytest.raises(DeadLetter) as raised:
        model.label("e-1", seconds=WINDOW + 15, value=1)
    assert raised.value.reason_code == "late_label"
    assert model.anomalies("late") == 1.0
    assert model.outcomes() == []
    model.features("e-2", seconds=WINDOW + 16)  # the window closes: its timeout policy applies
    outcomes = [o for o in model.outcomes() if o.event_id == "e-1"]
    if on_timeout == "negative":
        assert [(o.timed_out, o.label) for o in outcomes] == [(True, False), (True, False)]
        assert model.spy().learned() == [(vectorize(FEATURES), False)]
    else:
        assert outcomes == []
        assert model.spy().learned() == []
        assert model.anomalies("timeout_dropped") == 1.0


def test_a_duplicate_label_is_ignored() -> None:
    model = build()
    model.features("e-1")
    model.label("e-1", seconds=2, value=1)
    model.label("e-1", seconds=2, value=1)  # while the first is queued
    model.label("e-1", seconds=3, value=0)
    assert model.outcomes() == []
    model.features("e-2", seconds=4)
    model.label("e-1", seconds=5, value=0)  # after the first was learned
    assert [o.event_id for o in model.outcomes()] == ["e-1", "e-1"]
    assert all(o.label is True for o in model.outcomes())
    assert model.spy().learned() == [(vectorize(FEATURES), True)]
    assert model.anomalies("duplicate") == 3.0
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
    model.features("e-1", seconds=0)
    assert model.outcomes() == []
    model.features("e-2", seconds=1)  # the features stream passes the label's time
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


def test_labels_ahead_of_a_lagging_features_stream_stay_bounded() -> None:
    # Each label comes while its event is pending but is stamped after the features stream's
    # time, so it waits; the store then evicts its event. Those waiting labels are dropped.
    model = build(options=ModelOptions(pending_capacity=10, label_hold_seconds=HOLD),
                  window=3600)
    for n in range(3000):
        model.features(f"e-{n}", seconds=0)
        model.label(f"e-{n}", seconds=60)
    assert len(model.handler.pending) == 10
    assert len(model.handler._ready) <= 2 * 10 + 1024 + 1
    model.features("later", seconds=61)  # the features stream passes the labels' time
    assert {o.event_id for o in model.outcomes()} == {f"e-{n}" for n in range(2990, 3000)}
    assert model.anomalies("evicted") == 2990.0  # none dropped without a count


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


# -- stream-time order ----------------------------------------------------------------------


@pytest.mark.parametrize("delivered_before", range(6))
def test_a_label_is_learned_when_the_features_stream_passes_its_time(
    delivered_before: int,
) -> None:
    """Wherever the label of e-0 (stamped 4.5 s) arrives, it is learned between e-4 and e-5."""
    model = build()
    for n in range(10):
        if n == delivered_before:  # 0: before its own features (early); 5: after e-4's
            model.label("e-0", seconds=4.5, value=1)
        model.features(f"e-{n}", seconds=n, features=numbered(n))
    assert [(kind, x) for kind, x, _ in model.spy().calls] == (
        [("predict", vectorize(numbered(n))) for n in range(5)]
        + [("learn", vectorize(numbered(0)))]
        + [("predict", vectorize(numbered(n))) for n in range(5, 10)]
    )
    assert trace(model)[3:8] == [
        ("predictions", "e-3"), ("predictions", "e-4"), ("outcomes", "e-0"), ("outcomes", "e-0"),
        ("predictions", "e-5"),
    ]


DETERMINISM_WINDOW = 8.0


def _random_delay(seed: int) -> Callable[[int], float | None]:
    rng = random.Random(seed)

    def delay(n: int) -> float | None:
        value = round(rng.uniform(0.1, 6.0), 3)
        return None if n % 5 == 4 else value  # every fifth event is never labelled

    return delay


def _interleavings(seed: int) -> dict[str, Callable[[int, float], int]]:
    """Where each label may arrive: anywhere before the features stream passes its time."""
    rng = random.Random(seed)
    return {
        "labels_first": lambda n, at: -1,
        "after_own_features": lambda n, at: n,
        "just_in_time": lambda n, at: math.floor(at),
        "random": lambda n, at: rng.randint(-1, math.floor(at)),
    }


@pytest.mark.parametrize("interleaving", ["after_own_features", "just_in_time", "random"])
def test_the_interleaving_of_features_and_labels_does_not_change_what_is_learned(
    interleaving: str,
) -> None:
    events = synthetic(40, seed=3, label_delay=_random_delay(4))
    label_times = [e.label_at for e in events if e.label_at is not None]
    assert len(set(label_times)) == len(label_times)  # ties: see the test after this one

    def run(name: str) -> tuple[Model, list[str]]:
        model = build(challengers=(LOGREG,), window=DETERMINISM_WINDOW)
        raised = play(model, interleave(events, _interleavings(seed=9)[name]))
        model.monotonic.advance(10 * DETERMINISM_WINDOW)
        model.handler.on_idle()  # the last labels and windows, by wall-clock stream time
        return model, raised

    reference, reference_raised = run("labels_first")
    model, raised = run(interleaving)
    assert raised == reference_raised == []
    assert model.spy().calls == reference.spy().calls
    assert wire(model.producer.records) == wire(reference.producer.records)
    outcomes = reference.outcomes()  # the run is not trivial: labels, timeouts, real learning
    assert {o.timed_out for o in outcomes} == {True, False}
    assert len({o.score for o in outcomes if o.model == "logreg"}) > 10
    assert reference.handler.labels_learned == len(events)


def test_labels_stamped_at_the_same_time_are_learned_in_the_same_order_whatever_the_interleaving(
) -> None:
    """Determinism with ties: two labels stamped 7 s, one delivered before, one after features."""
    features = [Msg("features", f"e-{n}", n, features=numbered(n)) for n in (3, 5, 8)]
    labels = [Msg("labels", "e-5", 7, value=1), Msg("labels", "e-3", 7, value=0)]
    labels_first = build()
    play(labels_first, [*labels, *features])
    interleaved = build()
    play(interleaved, [*features[:2], *labels, features[2]])
    assert interleaved.spy().learned() == labels_first.spy().learned()
    assert wire(interleaved.producer.records) == wire(labels_first.producer.records)


def test_a_second_label_while_the_first_waits_for_its_features_is_a_duplicate() -> None:
    """The first label wins, as it does when the features came first (same learning either way)."""
    first, second = Msg("labels", "e-1", 2, value=1), Msg("labels", "e-1", 3, value=0)
    features = [Msg("features", "e-1", 1, features=numbered(1)),
                Msg("features", "e-9", 9, features=numbered(9))]
    after_features = build()
    play(after_features, [features[0], first, second, features[1]])
    assert after_features.spy().learned() == [(vectorize(numbered(1)), True)]
    assert after_features.anomalies("duplicate") == 1.0
    early = build()
    play(early, [first, second, *features])
    assert early.spy().learned() == after_features.spy().learned()
    assert early.anomalies("duplicate") == 1.0


# -- River parity -------------------------------------------------------------------------------


def test_a_replay_with_label_delay_learns_exactly_as_rivers_progressive_validation() -> None:
    """Labels stamped d + 0.5 s after their event are learned right before event n + d + 1."""
    delay, count = 5, 300
    events = synthetic(count, seed=11, label_delay=lambda n: delay + 0.5)
    model = build(champion=LOGREG, challengers=())
    play(model, interleave(events, lambda n, at: n))  # each label right after its own features
    served = [(p.prediction, p.score) for p in model.predictions()]
    assert [p.event_id for p in model.predictions()] == [f"e-{n}" for n in range(count)]
    assert model.handler.labels_learned == count - delay - 1

    def river_x(event: Event) -> dict[Hashable, Any]:
        return {name: value for name, value in vectorize(event.x).items()}

    reference: Any = linear_model.LogisticRegression()
    expected: list[tuple[object, float]] = []
    for i, event in enumerate(events):
        if (j := i - delay - 1) >= 0:
            reference.learn_one(river_x(events[j]), bool(events[j].y))
        x = river_x(event)
        expected.append((reference.predict_one(x), reference.predict_proba_one(x)[True]))
    assert served == expected
    assert len({score for _, score in served}) > count // 2  # the model did learn

    # River's own progressive validation: a delay of d + 1 samples asks the same questions.
    steps = evaluate.iter_progressive_val_score(
        [(river_x(e), bool(e.y)) for e in events], linear_model.LogisticRegression(),
        metrics.LogLoss(), delay=delay + 1, yield_predictions=True,  # type: ignore[no-untyped-call]
    )
    assert [step["Prediction"][True] for step in steps] == [score for _, score in served]


# -- timeouts and labels in one time order ---------------------------------------------------


@pytest.mark.parametrize(
    ("label_at", "order"),
    [(1.5, ["e-1", "e-0"]), (2.0, ["e-1", "e-0"]), (3.0, ["e-0", "e-1"])],
)
def test_timeouts_and_labels_are_processed_in_time_order(
    label_at: float, order: list[str],
) -> None:
    """e-0's deadline is 2 s; a label at or before it is learned first, a later one after."""
    model = build(on_timeout="negative", window=2.0)
    model.features("e-0", seconds=0, features=numbered(0))
    model.features("e-1", seconds=1, features=numbered(1))
    model.label("e-1", seconds=label_at, value=1)  # at 3.0: e-1's own deadline, still in time
    assert model.outcomes() == []
    model.features("e-2", seconds=4, features=numbered(2))
    learned = {"e-0": (vectorize(numbered(0)), False), "e-1": (vectorize(numbered(1)), True)}
    assert model.spy().learned() == [learned[event_id] for event_id in order]
    champion = [(o.event_id, o.timed_out, o.label) for o in model.outcomes() if o.model == "champ"]
    outcome = {"e-0": ("e-0", True, False), "e-1": ("e-1", False, True)}
    assert champion == [outcome[event_id] for event_id in order]
    assert trace(model)[-1] == ("predictions", "e-2")  # all of it before e-2 is predicted


def test_implicit_labels_learned_at_window_close_keep_event_time_order() -> None:
    """With ``learn_at = "window_close"`` a quick label waits for its window like a silence:
    every event is learned, and its outcome published, in the order of its event time."""
    model = build(on_timeout="negative", window=2.0, learn_at="window_close")
    model.features("e-0", seconds=0, features=numbered(0))
    model.features("e-1", seconds=1, features=numbered(1))
    model.label("e-1", seconds=1.2, value=1)
    model.features("e-2", seconds=1.5, features=numbered(2))
    assert model.outcomes() == [], "the click waits for its window (closing at 3 s)"
    model.features("e-3", seconds=2.5, features=numbered(3))
    assert model.spy().learned() == [(vectorize(numbered(0)), False)], "e-0 timed out at 2 s"
    model.features("e-4", seconds=3.5, features=numbered(4))
    assert model.spy().learned() == [(vectorize(numbered(0)), False),
                                     (vectorize(numbered(1)), True)]
    champion = [(o.event_id, o.timed_out, o.label, o.label_delay_seconds)
                for o in model.outcomes() if o.model == "champ"]
    assert champion == [("e-0", True, False, 2.0), ("e-1", False, True, pytest.approx(0.2))]


# -- wall-clock stream time ----------------------------------------------------------------


def test_on_idle_learns_queued_labels_once_the_features_stream_is_quiet() -> None:
    model = build()
    model.features("e-0", seconds=0)
    model.label("e-0", seconds=2, value=1)
    model.handler.on_idle()
    assert model.spy().learned() == []  # stream time is the newest seen (2 s): not past it
    model.monotonic.advance(HOLD - 1)
    model.handler.on_idle()
    assert model.spy().learned() == []  # a short pause keeps the time order
    model.monotonic.advance(1)
    model.handler.on_idle()
    assert model.spy().learned() == [(vectorize(FEATURES), True)]
    assert [o.label_delay_seconds for o in model.outcomes()] == [2.0, 2.0]
    assert model.handler.stream_now() == T0.timestamp() + 2 + HOLD


def test_a_label_only_stream_still_learns_by_stream_time() -> None:
    model = build()
    for n in range(5):
        model.features(f"e-{n}", seconds=n, features=numbered(n))
    model.monotonic.advance(HOLD - 1)
    model.label("e-0", seconds=0.5)
    assert model.spy().learned() == []  # it waits for the next feature vector, for now
    model.monotonic.advance(1)  # no features for label_hold_seconds
    model.label("e-1", seconds=1.5)
    assert model.spy().learned() == [(vectorize(numbered(0)), True), (vectorize(numbered(1)), True)]
    model.label("e-2", seconds=2.5)
    assert len(model.spy().learned()) == 3
    assert len(model.handler.pending) == 2


# -- checkpoints -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_dict", [False, True], ids=["typed", "dict-of-older-checkpoints"])
@pytest.mark.parametrize("deltas", [False, True], ids=["full", "full-then-deltas"])
def test_a_restored_checkpoint_continues_exactly_like_the_original(
    deltas: bool, as_dict: bool,
) -> None:
    """Restored from one full checkpoint, or from a full one and the deltas taken after it;
    from the typed state, or from the dict checkpoints written before it held."""
    def specs() -> Model:
        tree = ModelSpec(name="tree", estimator="tree.HoeffdingTreeClassifier")
        return build(champion=LOGREG, challengers=(tree,), window=DETERMINISM_WINDOW)

    events = synthetic(60, seed=5, label_delay=_random_delay(6))
    # Most labels right after their own features; some three events early.
    messages = interleave(events, lambda n, at: n - 3 if n % 7 == 3 else n)
    def position(topic: str, event_id: str) -> int:
        return next(i for i, m in enumerate(messages) if (m.topic, m.event_id) == (topic, event_id))

    messages.insert(position("features", "e-24") + 1, Msg("labels", "ghost", 25.0))  # no features
    cut = position("labels", "e-30") + 1
    after = [
        *messages[cut:cut + 10],
        Msg("labels", "e-0", 3.0),  # a duplicate of a label learned before the checkpoint
        Msg("labels", "e-4", 13.0),  # late: e-4's window closed before the checkpoint
        *messages[cut + 10:],
    ]

    original = specs()
    cuts = [0, cut // 3, 2 * cut // 3, cut] if deltas else [0, cut]
    dumps = []
    for number, (start, end) in enumerate(itertools.pairwise(cuts)):
        assert play(original, messages[start:end]) == []
        taken = original.handler.state()
        dumps.append(journal.dump(dict(vars(taken)) if as_dict else taken, delta=number > 0))
    state = original.handler.state()
    assert state.ready  # labels queued, waiting for the stream to pass their time
    assert state.early  # labels waiting for their features (e-31's, the ghost's)
    assert len(original.handler.pending) > 0
    restored = specs()
    restored.handler.restore(journal.load(dumps))
    checkpointed = len(original.producer.records)

    for model in (original, restored):
        assert play(model, after) == ["e-4:late_label"]
        model.monotonic.advance(10 * DETERMINISM_WINDOW)
        model.handler.on_idle()
    assert wire(restored.producer.records) == wire(original.producer.records[checkpointed:])
    assert [r.headers for r in restored.producer.records] == [
        r.headers for r in original.producer.records[checkpointed:]]
    assert {r.topic for r in restored.producer.records} == {
        "predictions", "outcomes", "dead-letters"}
    [dead] = restored.producer.on("dead-letters")
    assert (dead.key, dead.dead_letter_headers().reason_code) == (b"ghost", "unknown_event")
    assert restored.handler.labels_learned == original.handler.labels_learned
    assert restored.anomalies("duplicate") == 1.0


# -- late labels ---------------------------------------------------------------------------


@pytest.mark.parametrize("on_timeout", ["negative", "drop"])
def test_a_waiting_label_stamped_after_its_window_is_late_when_its_features_come(
    on_timeout: str,
) -> None:
    model = build(on_timeout=on_timeout)
    late = Label(event_id="e-1", label_time=T0 + timedelta(seconds=WINDOW + 1), label=1)
    model.handler.handle(message("labels", encode(late), b"e-1", partition=4, offset=17))
    assert model.producer.records == []
    model.features("e-1", seconds=0)
    assert [p.event_id for p in model.predictions()] == ["e-1"]
    [dead] = model.producer.on("dead-letters")
    assert (dead.value, dead.key) == (encode(late), b"e-1")
    headers = dead.dead_letter_headers()
    assert headers.reason_code == "late_label"
    assert (headers.source_topic, headers.source_partition, headers.source_offset) == (
        "labels", 4, 17)
    assert model.anomalies("late") == 1.0
    assert model.anomalies("unknown_event") == 0.0
    model.features("e-2", seconds=WINDOW + 2)  # the window closes: its timeout policy applies
    outcomes = [o for o in model.outcomes() if o.event_id == "e-1"]
    if on_timeout == "negative":
        assert [(o.timed_out, o.label) for o in outcomes] == [(True, False), (True, False)]
        assert model.spy().learned() == [(vectorize(FEATURES), False)]
    else:
        assert outcomes == []
        assert model.spy().learned() == []
        assert model.anomalies("timeout_dropped") == 1.0
