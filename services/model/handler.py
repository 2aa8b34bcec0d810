"""The model service's processing of one message: predict on features, learn on labels.

Predict, then learn: a feature vector is predicted on by every model before its label can be
learned; a label that arrives first waits (bounded) for its features. The label is learned on
the exact input the models predicted with. Feedback windows close on *stream time*: the newest
event or label time seen, advanced by wall-clock time while the stream is quiet, so replays of old
data and live streams close them alike. A label waiting for its features is declared an unknown
event only once the *features* stream has moved past the label's time by a whole window, so a
slow or restarting features service delays labels instead of losing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import Message

from schemas.codec import ContractError, ContractT, decode, encode
from schemas.events import Label
from schemas.features import FeatureVector
from schemas.predictions import Outcome, Prediction
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.model.estimators import vectorize
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.pending import BoundedMap, PendingEntry, PendingStore
from services.model.settings import ModelOptions


class _Producer(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes) -> None: ...


@dataclass(frozen=True)
class ModelTopics:
    """Full topic names this service reads and writes."""

    features: str
    labels: str
    predictions: str
    outcomes: str


@dataclass(frozen=True)
class _EarlyLabel:
    label: Label
    label_time: float
    raw: bytes | None
    key: bytes | None
    partition: int
    offset: int


class ModelHandler:
    """Implements :class:`services.common.consumer_loop.Handler` for the model service."""

    def __init__(
        self,
        learner: Learner,
        producer: _Producer,
        topics: ModelTopics,
        dead_letters: DeadLetterPublisher,
        options: ModelOptions,
        metrics: ModelMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._learner = learner
        self._producer = producer
        self._topics = topics
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._window = learner.label.feedback_window_seconds
        self.pending = PendingStore(options.pending_capacity)
        self._early = BoundedMap[_EarlyLabel](options.early_label_capacity)
        self._predicted = BoundedMap[bool](options.remembered_ids)
        self._resolved = BoundedMap[bool](options.remembered_ids)  # event_id -> timed out?
        self._newest_time = 0.0
        self._newest_seen_at = monotonic()
        self._newest_feature_time = 0.0
        self._stream_now = 0.0

    def stream_now(self) -> float:
        """Stream time in epoch seconds; never goes backwards."""
        now = self._newest_time + (self._monotonic() - self._newest_seen_at)
        self._stream_now = max(self._stream_now, now)
        return self._stream_now

    def handle(self, message: Message) -> None:
        """Dispatch one consumed message by topic."""
        topic = message.topic()
        if topic == self._topics.features:
            self._on_features(message)
        elif topic == self._topics.labels:
            self._on_label(message)
        self._expire()

    def on_idle(self) -> None:
        """Close feedback windows that ended while the stream was quiet."""
        self._expire()

    def _observe_time(self, moment: datetime) -> None:
        stamp = moment.timestamp()
        if stamp > self._newest_time:
            self._newest_time = stamp
            self._newest_seen_at = self._monotonic()

    def _on_features(self, message: Message) -> None:
        received = self._clock()
        vector = _decode(FeatureVector, message.value())
        self._observe_time(vector.event_time)
        self._newest_feature_time = max(self._newest_feature_time, vector.event_time.timestamp())
        if vector.event_id in self._predicted:
            self._metrics.duplicate_features.inc()
            return
        x = vectorize(vector.features)
        entry = PendingEntry(
            vector.event_id, x, vector.event_time,
            deadline=vector.event_time.timestamp() + self._window,
        )
        predicted_at = self._clock()
        for answer in self._learner.predict(x):
            entry.predictions[answer.model] = (answer.version, answer.prediction, answer.score)
            if answer.role != "champion":
                continue
            prediction = Prediction(
                event_id=vector.event_id, model=answer.model, model_version=answer.version,
                prediction=answer.prediction, probabilities=answer.probabilities,
                score=answer.score, event_time=vector.event_time, features_at=received,
                predicted_at=predicted_at,
            )
            self._producer.produce(
                self._topics.predictions, value=encode(prediction), key=vector.event_id.encode()
            )
            self._metrics.predictions(
                model=answer.model, version=str(answer.version), role=answer.role
            ).inc()
        self._metrics.predict_seconds.observe((self._clock() - received).total_seconds())
        self._predicted.put(vector.event_id, True)
        evicted = self.pending.add(entry)
        if evicted is not None:
            # Given up on: its label, if it ever comes, is late rather than unknown.
            self._metrics.pending_evicted.inc()
            self._resolved.put(evicted.event_id, True)
        early = self._early.pop(vector.event_id)
        if early is not None:
            self._resolve(vector.event_id, early.label)
        self._metrics.pending.set(len(self.pending))

    def _on_label(self, message: Message) -> None:
        label = _decode(Label, message.value())
        self._observe_time(label.label_time)
        # Windows that closed by this label's time close first: a label stamped after its own
        # window is late, whether or not another message moved stream time in between.
        self._expire()
        if label.event_id in self.pending:
            self._resolve(label.event_id, label)
            return
        timed_out = self._resolved.pop(label.event_id)
        if timed_out is not None:
            self._resolved.put(label.event_id, timed_out)
            if timed_out:
                self._metrics.label_events(kind="late").inc()
                raise DeadLetter(
                    "late_label",
                    f"label for {label.event_id} arrived after its {self._window:g}s window",
                )
            self._metrics.label_events(kind="duplicate").inc()
            return
        forgotten = self._early.put(label.event_id, _EarlyLabel(
            label, label.label_time.timestamp(), message.value(), message.key(),
            message.partition() or 0, message.offset() or 0,
        ))
        if forgotten is not None:
            self._dead_letter_early(forgotten[1], "the store of labels awaiting features is full")

    def _resolve(self, event_id: str, label: Label) -> None:
        entry = self.pending.take(event_id)
        if entry is None:
            return
        delay = max(0.0, (label.label_time - entry.event_time).total_seconds())
        self._learn(entry, self._learner.normalise_label(label.label), False, delay)

    def _learn(
        self, entry: PendingEntry, y: bool | int | float | str, timed_out: bool, delay: float
    ) -> None:
        learned_at = self._clock()
        for model, (version, prediction, score) in entry.predictions.items():
            outcome = Outcome(
                event_id=entry.event_id, model=model, model_version=version,
                role="champion" if model == self._learner.models[0].name else "challenger",
                prediction=prediction,
                score=score, label=y,
                correct=None if self._learner.label.type == "regression" else prediction == y,
                timed_out=timed_out, label_delay_seconds=delay, event_time=entry.event_time,
                learned_at=learned_at,
            )
            self._producer.produce(
                self._topics.outcomes, value=encode(outcome), key=entry.event_id.encode()
            )
            self._metrics.learned(model=model, timed_out=str(timed_out).lower()).inc()
        self._learner.learn(entry.x, y)
        self._resolved.put(entry.event_id, timed_out)

    def _expire(self) -> None:
        now = self.stream_now()
        for entry in self.pending.expire(now):
            if self._learner.label.on_timeout == "negative":
                self._learn(entry, self._learner.timeout_label(), True, self._window)
            else:
                self._metrics.label_events(kind="timeout_dropped").inc()
                self._resolved.put(entry.event_id, True)
        while (oldest := self._early.oldest()) is not None:
            event_id, early = oldest
            if early.label_time + self._window > self._newest_feature_time:
                break  # labels wait in arrival order; the oldest decides
            self._early.pop(event_id)
            self._dead_letter_early(early, f"no features within {self._window:g}s of its label")
        self._metrics.pending.set(len(self.pending))


    def _dead_letter_early(self, early: _EarlyLabel, why: str) -> None:
        self._metrics.label_events(kind="unknown_event").inc()
        self._dead_letters.publish(
            early.raw, early.key, self._topics.labels, early.partition, early.offset,
            DeadLetter("unknown_event", f"label for {early.label.event_id}: {why}"),
        )

def _decode(model: type[ContractT], raw: bytes | None) -> ContractT:
    try:
        return decode(model, raw)
    except ContractError as error:
        raise DeadLetter.from_contract_error(error) from error

