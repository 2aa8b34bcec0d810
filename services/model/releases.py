"""Model releases: the learner's models, published for predictor replicas to serve.

In the scaled layout (``ModelOptions.layout = "learner"``) the model service publishes its
models to the compacted ``model-releases`` topic inside its transactions: at start, then with
each commit after which it learned something (just before it, so the release is visible the
moment the commit is; at most every ``release_interval_seconds``), at once after
``release_every_labels`` labels, and every ``release_heartbeat_seconds`` even when it learned
nothing (a predictor tells a quiet learner from a dead one by the age of its newest release); a
model slow to pickle (a forest) is released less often, so that releases take at most
``release_time_share`` of the learner's time. A release is committed with the checkpoint that
covers it: a predictor never serves a model the learner could lose in a crash.

How far behind the learner a replica serves is the time from a label's arrival to the replica
loading a release with it (the replica's commit of the served prediction, the learner's commit,
the replica's next look: a few tenths of a second) times the rate of labels. A stream whose
recent labels matter most (elec2) pays for each label behind.

Staleness is measured where it is exact: the learner reads each served prediction at the place
in stream-time order where the one-process service would have predicted it, so the labels it has
learned by then, less those of the release the predictor used, are the labels the predictor's
model lacked (``streamml_model_served_labels_behind``).
"""

from __future__ import annotations

import base64
import pickle
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Histogram

from schemas.codec import encode
from schemas.features import FeatureVector
from schemas.serving import ModelRelease, ServedPrediction
from services.common.library_versions import incompatibilities, installed_versions
from services.model.learner import Learner, ModelPrediction, ServedModel
from services.model.messages import read_message

RELEASE_FORMAT = "release-1"
"""Bumped when what a release pickles changes shape."""


class ReleaseRefused(ValueError):
    """A release written by library versions this process cannot safely load."""


class _Producer(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes) -> None: ...


class _Learning(Protocol):
    learner: Learner
    labels_learned: int


def release_of(learner: Learner, learner_id: str, labels_learned: int) -> ModelRelease:
    """The learner's models as a release (pickled, compressed, base64)."""
    state = pickle.dumps(learner.models, protocol=pickle.HIGHEST_PROTOCOL)
    return ModelRelease(
        learner=learner_id, labels_learned=labels_learned, champion=learner.champion.name,
        champion_version=learner.champion_version, created_at=datetime.now(UTC),
        library_versions=installed_versions(RELEASE_FORMAT),
        state=base64.b64encode(zlib.compress(state, 1)).decode(),
    )


def models_of(release: ModelRelease) -> list[ServedModel]:
    """The models a release carries, champion first; :class:`ReleaseRefused` when it was pickled
    by incompatible library versions."""
    problems = incompatibilities(release.library_versions, installed_versions(RELEASE_FORMAT))
    if problems:
        raise ReleaseRefused("model release written by other library versions: "
                             + "; ".join(problems))
    models = pickle.loads(zlib.decompress(base64.b64decode(release.state)))  # noqa: S301
    if (not isinstance(models, list) or not models
            or not all(isinstance(m, ServedModel) for m in models)):
        raise ReleaseRefused("model release does not hold a list of models, champion first")
    return models


class ReleasePublisher:
    """Decides when the learner publishes a release, and produces it (in the open transaction);
    reads back what predictors served with it."""

    def __init__(self, producer: _Producer, topic: str, learner_id: str, interval: float,
                 every_labels: int, heartbeat: float, staleness: StalenessMetrics,
                 monotonic: Callable[[], float] = time.monotonic, time_share: float = 0.1,
                 ) -> None:
        """``time_share``: at most this share of the learner's time goes to releases (a release
        that took t seconds is followed by one no sooner than t * (1 - share) / share later)."""
        self._producer = producer
        self._pause_per_second = (1.0 - time_share) / time_share
        self._floor = 0.0
        self._topic, self._key = topic, learner_id
        self._interval, self._every, self._heartbeat = interval, every_labels, heartbeat
        self._staleness = staleness
        self._monotonic = monotonic
        self._last_at = -float("inf")
        self._last_labels = -1
        self.published = 0
        self.last_size = 0

    def due(self, labels_learned: int, at_commit: bool = False) -> bool:
        """Whether a release is due: none yet; new labels and a commit coming (``at_commit``)
        once the interval passed, or ``every_labels`` new labels; or the heartbeat passed.
        Never sooner than the time share allows after the last one."""
        waited = self._monotonic() - self._last_at
        if labels_learned == self._last_labels:
            return waited >= max(self._heartbeat, self._floor)
        return self._last_labels < 0 or (waited >= self._floor and (
            labels_learned - self._last_labels >= self._every
            or (at_commit and waited >= self._interval)))

    def publish_if_due(self, handler: _Learning, at_commit: bool = False) -> bool:
        """Publish a release of ``handler``'s learner if one is :meth:`due`; whether it did."""
        if not self.due(handler.labels_learned, at_commit):
            return False
        self.publish(handler.learner, handler.labels_learned)
        return True

    def publish(self, learner: Learner, labels_learned: int) -> None:
        """Produce a release of ``learner`` now."""
        started = self._monotonic()
        value = encode(release_of(learner, self._key, labels_learned))
        self._producer.produce(self._topic, value=value, key=self._key.encode())
        self._last_at, self._last_labels = self._monotonic(), labels_learned
        self._floor = (self._last_at - started) * self._pause_per_second
        self.published += 1
        self.last_size = len(value)

    def read_served(self, raw: bytes | None, labels_learned: int
                    ) -> tuple[FeatureVector, list[ModelPrediction], datetime]:
        """A ``prediction-log`` record: the vector, the answers served (champion first) and when
        the predictor read the features. Records how stale the release it used was, given the
        ``labels_learned`` by the learner at this point of the stream."""
        served = read_message(ServedPrediction, raw)
        answers = [ModelPrediction(p.model, p.model_version, p.role, p.prediction,
                                   p.probabilities, p.score) for p in served.answers]
        behind = max(0, labels_learned - served.release_labels)
        self._staleness.labels.observe(behind)
        age = (served.answers[0].predicted_at - served.release_created_at).total_seconds()
        self._staleness.seconds.observe(max(0.0, age) if behind else 0.0)
        return served.vector, answers, served.received_at


@dataclass(frozen=True)
class StalenessMetrics:
    """How far behind the learner the predictions served were."""

    labels: Histogram
    """Labels the learner had learned, at the prediction's place in the stream, that the
    release used had not."""
    seconds: Histogram
    """Age of the release used when the learner had learned more than it (0 when not)."""
