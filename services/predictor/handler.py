"""A predictor replica's processing of one feature vector: predict with the newest release.

Contract: every feature vector read gives, in the open transaction, the champion's
:class:`~schemas.predictions.Prediction` on ``predictions`` (keyed by event id, stamped with the
release it used) and a :class:`~schemas.serving.ServedPrediction` on ``prediction-log`` (keyed as
the vector was, so an entity's records keep their order), from which the learner learns. A
vector for an event this replica has already predicted (a redelivery) is counted and skipped.
Nothing is learned here: models change only when a newer release is loaded, between messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import Message

from schemas.codec import encode, encode_plain
from schemas.features import FeatureVector
from schemas.serving import ModelRelease, ServedPrediction
from services.model.estimators import vectorize
from services.model.learner import Learner
from services.model.messages import (
    check_repeat,
    event_position,
    pack_position,
    prediction_of,
    read_message,
)
from services.model.pending import BoundedMap
from services.model.releases import ReleaseRefused, models_of
from services.predictor.follower import ReleaseFollower
from services.predictor.metrics import PredictorMetrics

log = logging.getLogger(__name__)


class _Producer(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes | None) -> None: ...


@dataclass(frozen=True)
class PredictorTopics:
    """Full names of the topics a predictor reads and writes."""

    features: str
    predictions: str
    prediction_log: str


class PredictorHandler:
    """Implements :class:`services.common.consumer_loop.Handler` for a predictor replica.

    ``learner`` supplies the label rules and takes the models of each release loaded; it must
    have been given one (:meth:`load`) before the first message.
    """

    def __init__(
        self, learner: Learner, follower: ReleaseFollower, producer: _Producer,
        topics: PredictorTopics, metrics: PredictorMetrics, max_staleness: float,
        remembered_ids: int, categories: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._learner = learner
        self._follower = follower
        self._producer = producer
        self._topics = topics
        self._metrics = metrics
        self._max_staleness = max_staleness
        self._categories = dict(categories or {})
        self._clock = clock
        self._predicted = BoundedMap[int](remembered_ids, "predicted")
        self._since_commit: list[str] = []
        self.release: ModelRelease | None = None
        self.stale = False
        metrics.release_age.set_function(self.release_age)

    def release_age(self) -> float:
        """Seconds since the learner made the release held (inf before the first)."""
        if self.release is None:
            return float("inf")
        return (self._clock() - self.release.created_at).total_seconds()

    def load(self, release: ModelRelease) -> bool:
        """Serve ``release`` from now on; False (and logged) if it cannot be loaded."""
        try:
            models = models_of(release)
        except ReleaseRefused as error:
            self._metrics.release_loads(outcome="refused").inc()
            log.error("release %d of %s not loaded: %s", release.labels_learned,
                      release.learner, error)
            return False
        self._learner.models = models
        self._learner.champion_version = release.champion_version
        self.release = release
        self._metrics.release_loads(outcome="loaded").inc()
        self._metrics.release_labels.set(release.labels_learned)
        return True

    def handle(self, message: Message) -> None:
        """Predict on one feature vector (after loading a newer release, if one came)."""
        self._refresh()
        received = self._clock()
        vector = read_message(FeatureVector, message.value())
        if vector.event_id in self._predicted:
            check_repeat(self._predicted.get(vector.event_id), vector)
            self._metrics.duplicate_features.inc()
            return
        release = self.release
        if release is None:
            raise RuntimeError("no model release loaded before the first feature vector")
        answers = self._learner.predict(vectorize(vector.features, self._categories))
        predicted_at = self._clock()
        served = [prediction_of(vector, answer, received, predicted_at, release.labels_learned)
                  for answer in answers]
        champion = served[0]
        self._producer.produce(self._topics.predictions, value=encode_plain(champion),
                               key=vector.event_id.encode())
        log_record = ServedPrediction(
            event_time=vector.event_time, vector=vector, answers=served,
            release_labels=release.labels_learned, release_created_at=release.created_at,
            received_at=received,
        )
        self._producer.produce(self._topics.prediction_log, value=encode(log_record),
                               key=message.key())
        self._predicted.put(vector.event_id, pack_position(event_position(vector)))
        self._since_commit.append(vector.event_id)
        self._metrics.predictions(model=champion.model, version=str(champion.model_version)).inc()
        self._metrics.predict_seconds.observe((self._clock() - received).total_seconds())

    def committed(self) -> None:
        """The predictions made so far are committed."""
        self._since_commit.clear()

    def aborted(self) -> None:
        """The predictions made since the last commit were aborted: their vectors come again
        and are not redeliveries."""
        for event_id in self._since_commit:
            self._predicted.pop(event_id)
        self._since_commit.clear()

    def on_idle(self) -> None:
        """Look for a newer release while no features come."""
        self._refresh()

    def _refresh(self) -> None:
        release = self._follower.newer()
        if release is not None:
            self.load(release)
        stale = self.release_age() > self._max_staleness
        if stale != self.stale:
            self.stale = stale
            self._metrics.stale.set(int(stale))
            if stale:
                log.warning("stale: the newest model release is %.0f s old (bound %.0f s); is "
                            "the learner running?", self.release_age(), self._max_staleness)
            else:
                log.info("fresh again: serving release %d", self.release.labels_learned
                         if self.release else -1)
