"""Model releases: what the learner publishes on ``model-releases`` and when, and how it reads
back on ``prediction-log`` what predictors served with them (and how stale it was)."""

from __future__ import annotations

import base64
import pickle
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Histogram

from schemas.codec import decode, encode
from schemas.features import FeatureVector
from schemas.predictions import Prediction
from schemas.serving import ModelRelease, ServedPrediction
from services.common.dead_letters import DeadLetter
from services.model.learner import Learner, ServedModel
from services.model.releases import (
    RELEASE_FORMAT,
    ReleasePublisher,
    ReleaseRefused,
    StalenessMetrics,
    models_of,
    release_of,
)
from tests.unit.fakes import FakeProducer, ManualMonotonic, RecordingClassifier
from tests.unit.release_fakes import LEARNER, RELEASES, tiny_learner

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
INTERVAL, EVERY, HEARTBEAT = 5.0, 100, 30.0


def estimator(model: ServedModel) -> RecordingClassifier:
    assert isinstance(model.estimator, RecordingClassifier)
    return model.estimator


def with_state(release: ModelRelease, payload: object) -> ModelRelease:
    state = base64.b64encode(zlib.compress(pickle.dumps(payload))).decode()
    return release.model_copy(update={"state": state})


# --- release_of / models_of -------------------------------------------------------------------


def test_a_release_carries_the_learners_models_through_the_wire() -> None:
    learner = tiny_learner(p_champion=0.8, p_challenger=0.3)
    made = release_of(learner, LEARNER, 42)
    received = decode(ModelRelease, encode(made))
    models = models_of(received)
    assert (received.learner, received.labels_learned) == (LEARNER, 42)
    assert (received.champion, received.champion_version) == ("champ", 1)
    assert received.library_versions["state_format"] == RELEASE_FORMAT
    assert [(m.name, m.role, m.version) for m in models] == [
        ("champ", "champion", 1), ("rival", "challenger", 1)]
    assert [estimator(m).p_true for m in models] == [0.8, 0.3]


def test_a_release_after_a_promotion_names_the_new_champion_first() -> None:
    learner = tiny_learner()
    learner.promote("rival")
    made = release_of(learner, LEARNER, 7)
    assert (made.champion, made.champion_version) == ("rival", 2)
    assert [(m.name, m.role, m.version) for m in models_of(made)] == [
        ("rival", "champion", 2), ("champ", "challenger", 1)]


def test_a_release_is_a_copy_not_the_learners_live_models() -> None:
    learner = tiny_learner()
    models = models_of(release_of(learner, LEARNER, 0))
    learner.learn({"x": 1.0}, True)
    assert estimator(learner.champion).learned() == [({"x": 1.0}, True)]
    assert estimator(models[0]).learned() == []


@pytest.mark.parametrize(("library", "version"), [("river", "0.1.0"), ("python", "2.7"),
                                                  ("state_format", "release-0")])
def test_a_release_from_incompatible_library_versions_is_refused(library: str,
                                                                  version: str) -> None:
    made = release_of(tiny_learner(), LEARNER, 3)
    foreign = made.model_copy(update={"library_versions": {**made.library_versions,
                                                           library: version}})
    with pytest.raises(ReleaseRefused, match=library):
        models_of(foreign)


def test_a_release_with_a_different_patch_version_of_river_is_loaded() -> None:
    made = release_of(tiny_learner(), LEARNER, 3)
    river = made.library_versions["river"].split(".")
    patched = ".".join([*river[:2], "999"])
    newer = made.model_copy(update={"library_versions": {**made.library_versions,
                                                         "river": patched}})
    assert [m.name for m in models_of(newer)] == ["champ", "rival"]


@pytest.mark.parametrize("payload", [{"champ": 1}, [1, 2], "models", []])
def test_a_release_not_holding_a_list_of_models_is_refused(payload: object) -> None:
    made = with_state(release_of(tiny_learner(), LEARNER, 3), payload)
    with pytest.raises(ReleaseRefused, match="list of models"):
        models_of(made)


# --- ReleasePublisher.due / publish -----------------------------------------------------------


class Releases:
    """A publisher with a fake producer and clock, and the releases it produced."""

    def __init__(self, every: int = EVERY, time_share: float = 0.1) -> None:
        self.producer = FakeProducer()
        self.monotonic = ManualMonotonic()
        self.registry = CollectorRegistry()
        self.publisher = ReleasePublisher(
            self.producer, RELEASES, LEARNER, interval=INTERVAL, every_labels=every,
            heartbeat=HEARTBEAT, staleness=staleness(self.registry), monotonic=self.monotonic,
            time_share=time_share,
        )

    def published(self) -> list[ModelRelease]:
        return [decode(ModelRelease, r.value) for r in self.producer.on(RELEASES)]


class Learning:
    """What :meth:`ReleasePublisher.publish_if_due` reads of the model handler."""

    def __init__(self, learner: Learner, labels_learned: int) -> None:
        self.learner = learner
        self.labels_learned = labels_learned


def staleness(registry: CollectorRegistry) -> StalenessMetrics:
    return StalenessMetrics(
        labels=Histogram("t_labels_behind", "", buckets=(0, 1, 10, 100), registry=registry),
        seconds=Histogram("t_release_age_seconds", "", buckets=(0, 1, 10), registry=registry),
    )


def test_the_first_release_is_always_due() -> None:
    releases = Releases()
    assert releases.publisher.due(0)
    assert releases.publisher.due(5)


def test_publish_produces_the_release_keyed_by_the_learner_id() -> None:
    releases = Releases()
    releases.publisher.publish(tiny_learner(), 12)
    [record] = releases.producer.on(RELEASES)
    assert record.key == LEARNER.encode()
    assert record.value is not None
    made = decode(ModelRelease, record.value)
    assert (made.learner, made.labels_learned) == (LEARNER, 12)
    assert releases.publisher.published == 1
    assert releases.publisher.last_size == len(record.value)


def test_new_labels_are_released_with_a_commit_once_the_interval_passed() -> None:
    releases = Releases()
    releases.publisher.publish(tiny_learner(), 10)
    releases.monotonic.advance(INTERVAL - 0.1)
    assert not releases.publisher.due(11, at_commit=True)
    releases.monotonic.advance(0.1)
    assert releases.publisher.due(11, at_commit=True)
    # Between commits a release would wait in the open transaction: it goes out with the next.
    assert not releases.publisher.due(11)


def test_with_no_interval_every_commit_after_new_labels_releases() -> None:
    monotonic = ManualMonotonic()
    publisher = ReleasePublisher(FakeProducer(), RELEASES, LEARNER, interval=0.0,
                                 every_labels=EVERY, heartbeat=HEARTBEAT,
                                 staleness=staleness(CollectorRegistry()), monotonic=monotonic)
    handler = Learning(tiny_learner(), 10)
    assert publisher.publish_if_due(handler, at_commit=True)
    assert not publisher.publish_if_due(handler, at_commit=True)  # nothing new learned
    handler.labels_learned = 11
    assert publisher.publish_if_due(handler, at_commit=True)


def test_every_labels_new_labels_are_released_at_once() -> None:
    releases = Releases()
    releases.publisher.publish(tiny_learner(), 10)
    assert not releases.publisher.due(10 + EVERY - 1)
    assert releases.publisher.due(10 + EVERY)


def test_without_new_labels_only_the_heartbeat_is_due() -> None:
    releases = Releases()
    releases.publisher.publish(tiny_learner(), 10)
    releases.monotonic.advance(INTERVAL)
    assert not releases.publisher.due(10)
    releases.monotonic.advance(HEARTBEAT - INTERVAL)
    assert releases.publisher.due(10)


class SlowProducer(FakeProducer):
    """A producer whose every record takes ``seconds`` of the learner's time."""

    def __init__(self, monotonic: ManualMonotonic, seconds: float) -> None:
        super().__init__()
        self.monotonic, self.seconds = monotonic, seconds

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                *args: object, **kwargs: object) -> None:
        self.monotonic.advance(self.seconds)
        super().produce(topic, value, key)


def test_the_time_share_delays_releases_after_a_slow_one() -> None:
    monotonic = ManualMonotonic()
    publisher = ReleasePublisher(SlowProducer(monotonic, 1.0), RELEASES, LEARNER,
                                 interval=INTERVAL, every_labels=EVERY, heartbeat=HEARTBEAT,
                                 staleness=staleness(CollectorRegistry()), monotonic=monotonic,
                                 time_share=0.1)
    publisher.publish(tiny_learner(), 10)
    # 1 s of releasing at a 10% share: the next one no sooner than 9 s later.
    monotonic.advance(8.9)
    assert not publisher.due(10 + EVERY)
    monotonic.advance(0.1)
    assert publisher.due(10 + EVERY)


def test_the_time_share_also_delays_the_heartbeat() -> None:
    monotonic = ManualMonotonic()
    publisher = ReleasePublisher(SlowProducer(monotonic, 5.0), RELEASES, LEARNER,
                                 interval=INTERVAL, every_labels=EVERY, heartbeat=HEARTBEAT,
                                 staleness=staleness(CollectorRegistry()), monotonic=monotonic,
                                 time_share=0.1)
    publisher.publish(tiny_learner(), 10)
    monotonic.advance(HEARTBEAT)
    assert not publisher.due(10)  # the floor is 45 s, past the 30 s heartbeat
    monotonic.advance(45.0 - HEARTBEAT)
    assert publisher.due(10)


def test_publish_if_due_publishes_only_when_due() -> None:
    releases = Releases()
    handler = Learning(tiny_learner(), 3)
    assert releases.publisher.publish_if_due(handler)
    assert not releases.publisher.publish_if_due(handler)
    handler.labels_learned = 3 + EVERY
    assert releases.publisher.publish_if_due(handler)
    assert [r.labels_learned for r in releases.published()] == [3, 3 + EVERY]
    assert releases.publisher.published == 2


# --- ReleasePublisher.read_served -------------------------------------------------------------


def served(release_labels: int, release_age: float) -> ServedPrediction:
    vector = FeatureVector(event_id="e1", event_time=T0, entity={"user": "u"},
                           features={"price": 3.0}, ingested_at=T0, computed_at=T0)
    predicted_at = T0 + timedelta(seconds=2)
    answers = [
        Prediction(event_id="e1", model="champ", model_version=3, role="champion",
                   prediction=True, probabilities={"True": 0.9, "False": 0.1}, score=0.9,
                   event_time=T0, features_at=T0 + timedelta(seconds=1),
                   predicted_at=predicted_at, model_release=release_labels),
        Prediction(event_id="e1", model="rival", model_version=1, role="challenger",
                   prediction=False, probabilities={"True": 0.2, "False": 0.8}, score=0.2,
                   event_time=T0, features_at=T0 + timedelta(seconds=1),
                   predicted_at=predicted_at, model_release=release_labels),
    ]
    return ServedPrediction(
        event_time=T0, vector=vector, answers=answers, release_labels=release_labels,
        release_created_at=predicted_at - timedelta(seconds=release_age),
        received_at=T0 + timedelta(seconds=1),
    )


def histogram(releases: Releases, name: str) -> tuple[float, float]:
    """(count, sum) of one staleness histogram."""
    count = releases.registry.get_sample_value(f"{name}_count")
    total = releases.registry.get_sample_value(f"{name}_sum")
    assert count is not None and total is not None
    return count, total


def test_read_served_returns_the_vector_answers_and_reception_time() -> None:
    releases = Releases()
    record = served(release_labels=5, release_age=4.0)
    vector, answers, received_at = releases.publisher.read_served(encode(record), 5)
    assert vector == record.vector
    assert received_at == T0 + timedelta(seconds=1)
    assert [(a.model, a.version, a.role, a.prediction, a.score, a.probabilities)
            for a in answers] == [
        ("champ", 3, "champion", True, 0.9, {"True": 0.9, "False": 0.1}),
        ("rival", 1, "challenger", False, 0.2, {"True": 0.2, "False": 0.8}),
    ]


def test_read_served_observes_labels_behind_and_the_release_age() -> None:
    releases = Releases()
    releases.publisher.read_served(encode(served(release_labels=4, release_age=7.5)), 10)
    assert histogram(releases, "t_labels_behind") == (1.0, 6.0)
    assert histogram(releases, "t_release_age_seconds") == (1.0, 7.5)


def test_a_prediction_from_an_up_to_date_release_has_age_zero() -> None:
    releases = Releases()
    releases.publisher.read_served(encode(served(release_labels=10, release_age=60.0)), 10)
    assert histogram(releases, "t_labels_behind") == (1.0, 0.0)
    assert histogram(releases, "t_release_age_seconds") == (1.0, 0.0)


def test_a_release_ahead_of_the_learners_place_counts_as_not_behind() -> None:
    releases = Releases()
    releases.publisher.read_served(encode(served(release_labels=12, release_age=3.0)), 10)
    assert histogram(releases, "t_labels_behind") == (1.0, 0.0)
    assert histogram(releases, "t_release_age_seconds") == (1.0, 0.0)


def test_an_unreadable_served_prediction_is_a_dead_letter() -> None:
    releases = Releases()
    with pytest.raises(DeadLetter):
        releases.publisher.read_served(b"{not json", 10)
    with pytest.raises(DeadLetter):
        releases.publisher.read_served(None, 10)
    assert releases.registry.get_sample_value("t_labels_behind_count") == 0.0
