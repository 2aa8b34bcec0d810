"""The model service's processing of one message: predict on features, learn on labels.

Predict, then learn, in stream-time order. Every feature vector is predicted on by every model
the moment it arrives. A label is learned on the exact input the models predicted with, once the
*features* stream has passed the label's time: before the first vector whose ``event_time`` is
later than the label's ``label_time`` is predicted. Feedback windows close the same way, at their
deadline (``event_time + window``). So the order of learning is fixed by timestamps, not by how
the ``features`` and ``labels`` topics happen to interleave on arrival: a replay whose label *j*
follows event *j + N* (``streamml replay --label-delay N``) learns exactly as River's
``progressive_val_score(delay=N + 1)`` does, and a restored checkpoint replays to the same models.
Labels earlier than a vector must be read before it; :mod:`services.model.alignment` sees to it.

When no feature vector has arrived for ``label_hold_seconds``, stream time is the newest time
seen advanced by wall-clock time, so a quiet stream still learns its last labels and closes its
last windows.

A label whose features have not arrived waits (bounded); it is an unknown event once the features
stream has moved a whole window past the label's time.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka import Message

from schemas.alerts import DriftAlert
from schemas.codec import encode, encode_plain
from schemas.events import Label
from schemas.features import FeatureVector
from schemas.model_events import ModelEvent
from schemas.spec import PromotionSpec
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.model.estimators import vectorize
from services.model.governance import DriftReaction, Governor
from services.model.learner import InvalidLabel, Learner, ModelPrediction
from services.model.messages import (
    EarlyLabel,
    check_repeat,
    event_position,
    outcomes_of,
    pack_position,
    prediction_of,
    read_message,
)
from services.model.messages import ModelTopics as ModelTopics
from services.model.metrics import ModelMetrics
from services.model.pending import BoundedMap, PendingEntry, PendingStore, named
from services.model.releases import ReleasePublisher
from services.model.segments import segment_of
from services.model.settings import ModelOptions
from services.model.state import HandlerState


class _Producer(Protocol):
    def produce(self, topic: str, value: bytes, key: bytes) -> None: ...


_EarlyLabel = EarlyLabel  # the name snapshots written before it moved to ``messages`` pickled


class ModelHandler:
    """Implements :class:`services.common.consumer_loop.Handler` for the model service.

    Everything it remembers (models, pending store, waiting labels, clocks) is plain data, so a
    checkpoint pickles the handler's :meth:`state` and :meth:`restore` puts it back.
    """

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
        promotion: PromotionSpec | None = None,
        on_concept_drift: DriftReaction = "none",
        categories: Mapping[str, Sequence[str]] | None = None,
        releases: ReleasePublisher | None = None,
    ) -> None:
        """With ``releases``, the scaled layout's learner: ``topics.features`` is what predictors
        served (``prediction-log``), and models are released rather than predicted with."""
        self.learner = learner
        self._releases = releases
        self._categories = dict(categories or {})
        self.governor = Governor(learner, promotion or PromotionSpec(), on_concept_drift,
                                 self._publish_model_event, metrics, clock)
        self._producer, self._topics, self._dead_letters = producer, topics, dead_letters
        self._metrics, self._clock, self._monotonic = metrics, clock, monotonic
        self._window = learner.label.feedback_window_seconds
        self._learn_at_close = (learner.label.on_timeout == "negative"
                                and learner.label.learn_at == "window_close")
        self._hold = options.label_hold_seconds
        self.pending = PendingStore(options.pending_capacity)
        self._early = BoundedMap[EarlyLabel](options.early_label_capacity, "early")
        # event_id -> where its event was read from ``events`` (see FeatureVector), if known
        self._predicted = BoundedMap[int](options.remembered_ids, "predicted")
        self._resolved = BoundedMap[bool](options.remembered_ids, "resolved")  # -> timed out?
        self._ready: list[tuple[float, float, str]] = []  # (label time, event time, event id)
        self._newest_time = self._newest_feature_time = self._stream_now = 0.0
        self._newest_seen_at = self._last_features_at = monotonic()
        self.labels_learned = 0
        self.revision = 0
        """Bumped whenever state changes or output is produced: what a checkpoint must cover."""
        self._expired_since_idle = False
        self._measure_stores()

    # -- the Handler protocol -------------------------------------------------------------

    def handle(self, message: Message) -> None:
        """Dispatch one consumed message by topic."""
        self.revision += 1
        topic = message.topic()
        if topic == self._topics.features:
            self._on_features(message)
        elif topic == self._topics.labels:
            self._on_label(message)
            if self._monotonic() - self._last_features_at >= self._hold:
                self._advance(self.stream_now())
        elif topic == self._topics.drift_alerts:
            self.governor.on_alert(read_message(DriftAlert, message.value()), self.labels_learned)
        self._release_if_due()

    def _release_if_due(self, at_commit: bool = False) -> None:
        if self._releases is not None and self._releases.publish_if_due(self, at_commit):
            self.revision += 1

    def before_commit(self) -> None:
        """The checkpointer is about to commit: a release due now goes into that transaction."""
        self._release_if_due(at_commit=True)

    def on_idle(self) -> None:
        """Learn waiting labels and close windows by wall-clock time once no feature vector has
        come for ``label_hold_seconds`` (a pause shorter than that keeps the time order)."""
        if self._monotonic() - self._last_features_at >= self._hold:
            learned = self.labels_learned
            self._advance(self.stream_now())
            if self.labels_learned != learned or self._expired_since_idle:
                self.revision += 1
            self._expired_since_idle = False
        self._release_if_due()

    def _measure_stores(self) -> None:  # read when metrics are scraped, not per message
        self._metrics.pending.set_function(lambda: len(self.pending))
        self._metrics.early_labels.set_function(lambda: len(self._early))
        self._metrics.remembered_ids(store="predicted").set_function(lambda: len(self._predicted))
        self._metrics.remembered_ids(store="resolved").set_function(lambda: len(self._resolved))

    # -- state for checkpoints -------------------------------------------------------------

    def champion(self) -> tuple[str, int]:
        """The serving model's name and version."""
        return self.learner.champion.name, self.learner.champion.version

    def state(self) -> HandlerState:
        """Everything needed to continue exactly where this handler is (picklable)."""
        return HandlerState(
            models=self.learner.models, champion_version=self.learner.champion_version,
            race=self.governor.race, pending=self.pending, early=self._early,
            predicted=self._predicted, resolved=self._resolved, ready=self._ready,
            newest_time=self._newest_time, newest_feature_time=self._newest_feature_time,
            stream_now=self.stream_now(), labels_learned=self.labels_learned,
            segments=self.learner.segments,
        )

    def restore(self, loaded: object) -> None:
        """Continue from a :meth:`state` taken earlier, or an older dict (HandlerState.of)."""
        state = HandlerState.of(loaded)
        self.learner.models = state.models
        self.learner.champion_version = int(state.champion_version)
        if self.learner.segments is not None and state.segments is not None:
            self.learner.segments = state.segments
        self.governor.race = state.race
        self.pending = state.pending
        self._early, self._predicted, self._resolved = (
            named(state.early, "early"), named(state.predicted, "predicted"),
            named(state.resolved, "resolved"))
        self._ready = state.ready
        self._newest_time, self._newest_feature_time, self._stream_now = (
            float(state.newest_time), float(state.newest_feature_time), float(state.stream_now))
        self.labels_learned = int(state.labels_learned)
        self._newest_seen_at = self._last_features_at = self._monotonic()

    # -- time -------------------------------------------------------------------------------

    def stream_now(self) -> float:
        """Newest time seen, advanced by wall-clock time since; never goes backwards."""
        now = self._newest_time + (self._monotonic() - self._newest_seen_at)
        self._stream_now = max(self._stream_now, now)
        return self._stream_now

    def _observe_time(self, stamp: float) -> None:
        if stamp > self._newest_time:
            self._newest_time = stamp
            self._newest_seen_at = self._monotonic()

    # -- features: predict ------------------------------------------------------------------

    def _on_features(self, message: Message) -> None:
        received, served = self._clock(), None
        if self._releases is None:
            vector = read_message(FeatureVector, message.value())
        else:
            vector, served, received = self._releases.read_served(message.value(),
                                                                  self.labels_learned)
        event_time = vector.event_time.timestamp()
        self._observe_time(event_time)
        self._last_features_at = self._monotonic()
        self._newest_feature_time = max(self._newest_feature_time, event_time)
        self._advance(event_time)
        if vector.event_id in self._predicted:
            check_repeat(self._predicted.get(vector.event_id), vector)
            self._metrics.duplicate_features.inc()
            return
        self._predict(vector, received, served)
        early = self._early.pop(vector.event_id)
        if early is not None and not self._accept_label(early.label):
            self._metrics.label_events(kind="late").inc()
            self._dead_letters.publish(
                early.raw, early.key, self._topics.labels, early.partition, early.offset,
                DeadLetter("late_label", self._late_reason(early.label)),
            )
        self._expire_early_labels()

    def _predict(self, vector: FeatureVector, received: datetime,
                 served: list[ModelPrediction] | None) -> None:
        """Every model's answer into the pending store; the champion's to ``predictions``. What a
        predictor ``served`` is taken as it is (and was published by the predictor)."""
        x, segment = vectorize(vector.features, self._categories), segment_of(
            vector, self.learner.segment_by)
        entry = PendingEntry(vector.event_id, x, vector.event_time,
                             deadline=vector.event_time.timestamp() + self._window, segment=segment)
        predicted_at = self._clock()
        keep_probabilities = self.learner.keeps_class_probabilities()
        for answer in self.learner.predict(x, segment) if served is None else served:
            entry.predictions[answer.model] = (answer.version, answer.prediction, answer.score)
            if keep_probabilities and answer.probabilities is not None:
                entry.class_probabilities = entry.class_probabilities or {}
                entry.class_probabilities[answer.model] = answer.probabilities
            if answer.role != "champion" or served is not None:
                continue
            prediction = prediction_of(vector, answer, received, predicted_at, segment=segment)
            self._producer.produce(self._topics.predictions, value=encode_plain(prediction),
                                   key=vector.event_id.encode())
            self._metrics.predictions(model=answer.model, version=str(answer.version),
                                      role=answer.role).inc()
        self._metrics.predict_seconds.observe((self._clock() - received).total_seconds())
        self._predicted.put(vector.event_id, pack_position(event_position(vector)))
        evicted = self.pending.add(entry)
        if evicted is not None:
            # Given up on: its label, if it ever comes, is late rather than unknown.
            self._metrics.pending_evicted.inc()
            self._resolved.put(evicted.event_id, True)
            if evicted.label is not None:  # its label came but was never learned
                self._metrics.label_events(kind="evicted").inc()

    # -- labels: queue, then learn in time order --------------------------------------------

    def _on_label(self, message: Message) -> None:
        """Take a label in: rejected (dead letter, counted as ``invalid``) when its value does not
        fit the spec's label type, before it changes anything; else queued or set aside."""
        label = read_message(Label, message.value())
        try:
            self.learner.normalise_label(label.label)
        except InvalidLabel as error:
            raise self._invalid(label, error) from error
        self._observe_time(label.label_time.timestamp())
        entry = self.pending.get(label.event_id)
        if entry is not None:
            if entry.label is not None:
                self._metrics.label_events(kind="duplicate").inc()
            elif not self._accept_label(label):
                self._metrics.label_events(kind="late").inc()
                raise DeadLetter("late_label", self._late_reason(label))
            return
        timed_out = self._resolved.pop(label.event_id)
        if timed_out is not None:
            self._resolved.put(label.event_id, timed_out)
            if timed_out:
                self._metrics.label_events(kind="late").inc()
                raise DeadLetter("late_label", self._late_reason(label))
            self._metrics.label_events(kind="duplicate").inc()
            return
        if label.event_id in self._early:
            self._metrics.label_events(kind="duplicate").inc()
            return
        forgotten = self._early.put(label.event_id, EarlyLabel(
            label, label.label_time.timestamp(), message.value(), message.key(),
            message.partition() or 0, message.offset() or 0,
        ))
        if forgotten is not None:
            self._dead_letter_early(forgotten[1], "the store of labels awaiting features is full")

    def _accept_label(self, label: Label) -> bool:
        """Queue the label of a pending event; False if it is stamped after its window closed
        (the window's timeout policy then decides, as if the label had never come)."""
        entry = self.pending.get(label.event_id)
        if entry is None or label.label_time.timestamp() > entry.deadline:
            return False
        self.pending.attach_label(entry, label)
        # Implicit labels are learned when the window closes (``LabelSpec.learn_at``).
        learn_time = entry.deadline if self._learn_at_close else label.label_time.timestamp()
        heapq.heappush(self._ready, (learn_time, entry.event_time.timestamp(), label.event_id))
        if len(self._ready) > 2 * len(self.pending) + 1024:
            # Labels of events evicted while they waited for a lagging features stream: drop.
            self._ready = [item for item in self._ready if self.pending.has_label(item[2])]
            heapq.heapify(self._ready)
        return True

    def _late_reason(self, label: Label) -> str:
        return f"label for {label.event_id} arrived after its {self._window:g}s window"

    def _advance(self, now: float) -> None:
        """Learn queued labels and close windows whose time is before ``now``, oldest first."""
        while True:
            label_time = self._ready[0][0] if self._ready else None
            deadline = self.pending.next_deadline()
            if label_time is not None and label_time < now and (
                deadline is None or label_time <= deadline
            ):
                _, _, event_id = heapq.heappop(self._ready)
                entry = self.pending.take(event_id)
                if entry is not None and entry.label is not None:
                    self._learn_label(entry, entry.label)
            elif deadline is not None and deadline < now:
                for entry in self.pending.expire(deadline):
                    self._time_out(entry)
            else:
                return

    def _learn_label(self, entry: PendingEntry, label: Label) -> None:
        """Learn ``entry``'s label. One that does not fit the spec (only in state restored from a
        checkpoint taken before labels were checked on arrival) is dead-lettered, and the
        window's timeout policy decides instead, as if it had never come."""
        try:
            y = self.learner.normalise_label(label.label)
        except InvalidLabel as error:
            self._dead_letters.publish(encode(label), label.event_id.encode(),
                                       self._topics.labels, -1, -1, self._invalid(label, error))
            self._time_out(entry)
            return
        self._learn(entry, y, False,
                    max(0.0, (label.label_time - entry.event_time).total_seconds()))

    def _invalid(self, label: Label, error: InvalidLabel) -> DeadLetter:
        self._metrics.label_events(kind="invalid").inc()
        dead = DeadLetter("spec_invalid", f"label for {label.event_id}: {error}")
        dead.__cause__ = error
        return dead

    def _time_out(self, entry: PendingEntry) -> None:
        self._expired_since_idle = True
        if self.learner.label.on_timeout == "negative":
            self._learn(entry, self.learner.timeout_label(), True, self._window)
        else:
            self._metrics.label_events(kind="timeout_dropped").inc()
            self._resolved.put(entry.event_id, True)

    def _learn(
        self, entry: PendingEntry, y: bool | int | float | str, timed_out: bool, delay: float
    ) -> None:
        for outcome in outcomes_of(entry, y, timed_out, delay, self._clock(), self.learner):
            self._producer.produce(
                self._topics.outcomes, value=encode_plain(outcome), key=entry.event_id.encode()
            )
            self._metrics.learned(model=outcome.model, timed_out=str(timed_out).lower()).inc()
        self.learner.learn(entry.x, y, entry.segment)
        self.labels_learned += 1
        self._resolved.put(entry.event_id, timed_out)
        self.governor.after_label(entry.predictions, y, self.labels_learned)

    def _publish_model_event(self, event: ModelEvent) -> None:
        self._producer.produce(self._topics.model_events, value=encode(event),
                               key=event.model.encode())
        self.revision += 1

    # -- labels whose features never come --------------------------------------------------

    def _expire_early_labels(self) -> None:
        while (oldest := self._early.oldest()) is not None:
            event_id, early = oldest
            if early.label_time + self._window > self._newest_feature_time:
                break  # labels wait in arrival order; the oldest decides
            self._early.pop(event_id)
            self._dead_letter_early(early, f"no features within {self._window:g}s of its label")

    def _dead_letter_early(self, early: EarlyLabel, why: str) -> None:
        self._metrics.label_events(kind="unknown_event").inc()
        self._dead_letters.publish(
            early.raw, early.key, self._topics.labels, early.partition, early.offset,
            DeadLetter("unknown_event", f"label for {early.label.event_id}: {why}"),
        )
