"""A predictor replica: predict each feature vector with the newest release, publish the
champion's prediction and what was served (for the learner), never predict an event twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import decode, encode
from schemas.features import FeatureVector
from schemas.predictions import Prediction
from schemas.serving import ModelRelease, ServedPrediction
from services.common.dead_letters import DeadLetter
from services.model.learner import Learner
from services.model.releases import release_of
from services.predictor.follower import ReleaseFollower
from services.predictor.handler import PredictorHandler, PredictorTopics
from services.predictor.metrics import PredictorMetrics
from tests.unit.fakes import (
    FakeProducer,
    ManualClock,
    ManualMonotonic,
    RecordingClassifier,
    message,
)
from tests.unit.release_fakes import (
    LEARNER,
    RELEASES,
    FakeReleaseConsumer,
    encoded,
    release,
    tiny_learner,
)

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
TOPICS = PredictorTopics(features="features", predictions="predictions",
                         prediction_log="prediction-log")
MAX_STALENESS = 60.0
CHECK_EVERY = 0.25


@dataclass
class Replica:
    handler: PredictorHandler
    learner: Learner
    releases: FakeReleaseConsumer
    producer: FakeProducer
    clock: ManualClock
    monotonic: ManualMonotonic
    registry: CollectorRegistry

    def features(self, event_id: str, key: bytes = b"user-u", offset: int = 0,
                 position: tuple[int, int] | None = (0, 0)) -> FeatureVector:
        partition, event_offset = position or (None, None)
        vector = FeatureVector(
            event_id=event_id, event_time=T0, entity={"user": "u"}, features={"price": 2.0},
            ingested_at=T0, computed_at=T0, event_partition=partition, event_offset=event_offset,
        )
        self.handler.handle(message(TOPICS.features, encode(vector), key, 0, offset))
        return vector

    def predictions(self) -> list[Prediction]:
        return [decode(Prediction, r.value) for r in self.producer.on(TOPICS.predictions)]

    def served(self) -> list[ServedPrediction]:
        return [decode(ServedPrediction, r.value) for r in self.producer.on(TOPICS.prediction_log)]

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def champion(self) -> RecordingClassifier:
        estimator = self.learner.champion.estimator
        assert isinstance(estimator, RecordingClassifier)
        return estimator


def build(first: ModelRelease | None = None) -> Replica:
    """A replica; ``first``, when given, is loaded before any message."""
    learner = tiny_learner()
    releases = FakeReleaseConsumer()
    monotonic = ManualMonotonic()
    follower = ReleaseFollower(releases, RELEASES, LEARNER, CHECK_EVERY, monotonic=monotonic)
    producer, clock, registry = FakeProducer(), ManualClock(T0), CollectorRegistry()
    handler = PredictorHandler(learner, follower, producer, TOPICS, PredictorMetrics(registry),
                               MAX_STALENESS, remembered_ids=100, clock=clock)
    if first is not None:
        assert handler.load(first)
    return Replica(handler, learner, releases, producer, clock, monotonic, registry)


def refused(made: ModelRelease) -> ModelRelease:
    return made.model_copy(update={"library_versions": {**made.library_versions,
                                                        "river": "0.0.1"}})


# --- loading releases -------------------------------------------------------------------------


def test_load_serves_the_releases_models() -> None:
    replica = build()
    made = release(12, T0, p_champion=0.9)
    assert replica.handler.load(made)
    assert replica.handler.release == made
    assert replica.champion().p_true == 0.9
    assert replica.sample("streamml_predictor_release_labels") == 12.0
    assert replica.sample("streamml_predictor_release_loads_total", {"outcome": "loaded"}) == 1.0


def test_load_refuses_a_release_of_other_library_versions_and_keeps_the_old_one() -> None:
    first = release(5, T0, p_champion=0.9)
    replica = build(first)
    assert not replica.handler.load(refused(release(9, T0, p_champion=0.1)))
    assert replica.handler.release == first
    assert replica.champion().p_true == 0.9
    assert replica.sample("streamml_predictor_release_labels") == 5.0
    assert replica.sample("streamml_predictor_release_loads_total", {"outcome": "refused"}) == 1.0


def test_a_promotion_in_the_release_sets_the_champion_version() -> None:
    learner = tiny_learner()
    learner.promote("rival")
    made = release_of(learner, LEARNER, 3).model_copy(update={"created_at": T0})
    replica = build(made)
    replica.features("e1")
    [prediction] = replica.predictions()
    assert (prediction.model, prediction.model_version) == ("rival", 2)
    assert replica.learner.champion_version == 2


# --- handling feature vectors -----------------------------------------------------------------


def test_a_vector_before_any_release_raises() -> None:
    replica = build()
    with pytest.raises(RuntimeError, match="no model release"):
        replica.features("e1")
    assert replica.producer.records == []


def test_the_champions_prediction_goes_to_predictions_keyed_by_event_id() -> None:
    replica = build(release(12, T0, p_champion=0.9))
    replica.features("e1", key=b"user-u")
    [record] = replica.producer.on(TOPICS.predictions)
    assert record.key == b"e1"
    [prediction] = replica.predictions()
    assert (prediction.event_id, prediction.model, prediction.role) == ("e1", "champ",
                                                                         "champion")
    assert prediction.score == 0.9 and prediction.prediction is True
    assert prediction.model_release == 12
    assert replica.sample("streamml_predictor_predictions_total",
                          {"model": "champ", "version": "1"}) == 1.0


def test_what_was_served_goes_to_the_prediction_log_keyed_as_the_vector() -> None:
    made = release(12, T0 - timedelta(seconds=5), p_champion=0.9)
    replica = build(made)
    vector = replica.features("e1", key=b"user-u")
    [record] = replica.producer.on(TOPICS.prediction_log)
    assert record.key == b"user-u"
    [served] = replica.served()
    assert served.vector == vector
    assert served.event_time == vector.event_time
    assert [(a.model, a.role, a.model_release) for a in served.answers] == [
        ("champ", "champion", 12), ("rival", "challenger", 12)]
    assert served.answers[0] == replica.predictions()[0]
    assert (served.release_labels, served.release_created_at) == (12, made.created_at)
    assert served.received_at == T0


def test_each_vector_is_predicted_from_its_own_features() -> None:
    replica = build(release(1, T0))
    replica.features("e1", position=(0, 1))
    replica.features("e2", position=(0, 2))
    assert [p.event_id for p in replica.predictions()] == ["e1", "e2"]
    assert replica.champion().predicted() == [{"price": 2.0}, {"price": 2.0}]
    assert replica.champion().learned() == []


def test_a_newer_release_is_loaded_before_the_next_vector() -> None:
    replica = build(release(1, T0, p_champion=0.9))
    replica.releases.queue(encoded(release(30, T0, p_champion=0.6)))
    replica.features("e1")
    [prediction] = replica.predictions()
    assert prediction.model_release == 30
    assert prediction.score == 0.6


def test_the_first_release_can_come_from_the_follower() -> None:
    replica = build()
    replica.releases.queue(encoded(release(4, T0)))
    replica.features("e1")
    assert [p.model_release for p in replica.predictions()] == [4]


def test_a_redelivered_vector_is_counted_and_not_predicted_again() -> None:
    replica = build(release(1, T0))
    replica.features("e1", offset=3, position=(2, 40))
    replica.features("e1", offset=3, position=(2, 40))
    assert len(replica.predictions()) == 1
    assert len(replica.served()) == 1
    assert len(replica.champion().predicted()) == 1
    assert replica.sample("streamml_predictor_duplicate_feature_vectors_total") == 1.0


def test_another_event_reusing_an_event_id_is_a_duplicate_dead_letter() -> None:
    replica = build(release(1, T0))
    replica.features("e1", position=(2, 40))
    with pytest.raises(DeadLetter) as raised:
        replica.features("e1", position=(2, 41))
    assert raised.value.reason_code == "duplicate"
    assert len(replica.predictions()) == 1


def test_vectors_of_an_aborted_transaction_are_predicted_again() -> None:
    replica = build(release(1, T0))
    replica.features("e1", position=(0, 1))
    replica.handler.committed()
    replica.features("e2", position=(0, 2))
    replica.handler.aborted()
    replica.features("e2", position=(0, 2))
    replica.features("e1", position=(0, 1))
    assert [p.event_id for p in replica.predictions()] == ["e1", "e2", "e2"]
    assert replica.sample("streamml_predictor_duplicate_feature_vectors_total") == 1.0


# --- staleness --------------------------------------------------------------------------------


def test_release_age_is_inf_before_a_release_and_then_its_age() -> None:
    replica = build()
    assert replica.sample("streamml_predictor_release_age_seconds") == float("inf")
    replica.handler.load(release(1, T0 - timedelta(seconds=20)))
    assert replica.sample("streamml_predictor_release_age_seconds") == 20.0
    replica.clock.advance(5)
    assert replica.handler.release_age() == 25.0


def test_the_replica_turns_stale_when_the_release_passes_max_staleness() -> None:
    replica = build(release(1, T0))
    replica.clock.advance(MAX_STALENESS)
    replica.features("e1", position=(0, 1))
    assert not replica.handler.stale
    assert replica.sample("streamml_predictor_stale") == 0.0
    replica.clock.advance(1)
    replica.features("e2", position=(0, 2))
    assert replica.handler.stale
    assert replica.sample("streamml_predictor_stale") == 1.0
    assert len(replica.predictions()) == 2  # a stale replica still serves


def test_a_fresh_release_makes_a_stale_replica_fresh_again_while_idle() -> None:
    replica = build(release(1, T0))
    replica.clock.advance(MAX_STALENESS + 1)
    replica.handler.on_idle()
    assert replica.handler.stale
    replica.releases.queue(encoded(release(2, replica.clock.now)))
    replica.monotonic.advance(CHECK_EVERY)
    replica.handler.on_idle()
    assert not replica.handler.stale
    assert replica.sample("streamml_predictor_stale") == 0.0
    assert replica.handler.release is not None and replica.handler.release.labels_learned == 2
