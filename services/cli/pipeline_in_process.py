"""The whole pipeline in one process, on a virtual clock: scenario -> features -> model -> drift.

For scoring drift detection quickly and repeatably. The producer's own pacing
(:func:`~services.producer.stream.stream_scenario`) publishes the scenario's events and labels
onto a :class:`LocalBus` instead of Kafka; the bus hands every record, as the same JSON bytes, to
the handlers subscribed to its topic, in the order they were produced:

* ``events`` -> the features service's per-event steps (``admit``, one ``advance`` per entity
  stage, ``finish`` from ``services/features/pipeline.py``) with one in-memory table per entity
  key instead of faust's changelog-backed tables and re-keying topics;
* ``features``, ``labels``, ``drift-alerts`` -> the model service's :class:`ModelHandler` (River
  models from the spec, so ``on_concept_drift`` acts on the alerts as it does live);
* ``features``, ``outcomes`` -> the drift service's :class:`DriftHandler`;
* ``drift-alerts`` -> recorded with the index and time of the newest event published
  (:class:`~services.cli.drift_scoring.PlacedAlert`); ``model-events`` and dead letters counted.

What differs from a live run: delivery is immediate and synchronous (no consumer lag, no
batching), and time is the scenario's event time, not the wall clock: the virtual clock moves
only when the producer waits for its next event or label. The run ends as a live one does when
its producer stops: the labels still due are published, and the feedback windows of the last
events stay open (closing them all at once would end every model's error stream with a burst of
timed-out outcomes, which is no part of the scenario).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from confluent_kafka import Message
from prometheus_client import CollectorRegistry

from schemas.alerts import DriftAlert
from schemas.codec import decode, encode
from schemas.events import Event, Label
from schemas.model_events import ModelEvent
from schemas.spec import PipelineSpec
from schemas.truth import GroundTruth
from services.cli.drift_scoring import PlacedAlert
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.common.runtime import StopSignal
from services.drift.handler import DriftHandler, DriftMetrics
from services.features.aggregates import EntityState
from services.features.pipeline import admit, advance, finish, plan_stages
from services.features.validation import Limits
from services.model.estimators import categories_of
from services.model.handler import ModelHandler, ModelTopics
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.settings import ModelOptions
from services.producer.scenarios.base import KnowsGroundTruth, Scenario
from services.producer.stream import stream_scenario


class Observer(Protocol):
    def handle(self, message: Message) -> None: ...


class VirtualClock:
    """Seconds since the run's start; waiting moves it on at once. Also the run's datetime."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.seconds = 0.0

    def monotonic(self) -> float:
        """Virtual seconds since the start."""
        return self.seconds

    def wait(self, seconds: float, stop: StopSignal) -> bool:
        """Move on by ``seconds`` (no real wait); return whether a stop was asked for."""
        self.seconds += max(0.0, seconds)
        return stop.is_set

    def now(self) -> datetime:
        """The virtual moment, in event time."""
        return self.start + timedelta(seconds=self.seconds)


class LocalBus:
    """Topics in memory: :meth:`produce` queues a record, :meth:`pump` delivers the queue in
    order to each topic's subscribers (records produced meanwhile join the queue's end).

    A handler raising :class:`DeadLetter` has its message counted in :attr:`dead_letters` by
    service and reason, as the consume loop would dead-letter it; records on ``dead-letters``
    are counted the same way.
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[str, bytes | None, bytes | None]] = deque()
        self._subscribers: dict[str, list[tuple[str, Observer]]] = {}
        self._offsets: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()

    def subscribe(self, topic: str, service: str, handler: Observer) -> None:
        """Deliver ``topic`` to ``handler`` (of ``service``), after earlier subscribers."""
        self._subscribers.setdefault(topic, []).append((service, handler))

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                headers: list[tuple[str, str | bytes | None]] | None = None) -> None:
        """Queue one record (the producer API the services use)."""
        if topic == "dead-letters":
            reason = dict(headers or []).get("reason_code", "unknown")
            text = reason.decode() if isinstance(reason, bytes) else str(reason)
            self.dead_letters[f"published:{text}"] += 1
            return
        self._queue.append((topic, value, key))

    def pump(self) -> None:
        """Deliver every queued record, and those they cause, until the queue is empty."""
        while self._queue:
            topic, value, key = self._queue.popleft()
            offset = self._offsets[topic]
            self._offsets[topic] += 1
            for service, handler in self._subscribers.get(topic, []):
                message = Message(topic=topic, partition=0, offset=offset, key=key, value=value)
                try:
                    handler.handle(message)
                except DeadLetter as error:
                    self.dead_letters[f"{service}:{error.reason_code}"] += 1


class _Features:
    """The features service's per-event steps, with one in-memory table per entity key."""

    def __init__(self, spec: PipelineSpec, bus: LocalBus, now: Callable[[], datetime]) -> None:
        self._spec, self._bus, self._now = spec, bus, now
        self._stages = plan_stages(spec)
        self._tables: dict[str, dict[str, EntityState]] = {s.entity: {} for s in self._stages}
        self._limits = Limits()

    def handle(self, message: Message) -> None:
        staged = admit(message.value(), self._spec, self._now(), self._limits,
                       (message.partition() or 0, message.offset() or 0))
        for stage in self._stages:
            table, key = self._tables[stage.entity], staged.event.entity[stage.entity]
            staged, table[key], _ = advance(staged, stage, table.get(key))
        vector = finish(staged, self._now())
        self._bus.produce("features", encode(vector),
                          vector.entity[self._spec.entity_keys[0]].encode())


@dataclass
class _Recorder:
    """Places drift alerts on the stream; counts model events."""

    clock: VirtualClock
    published: Callable[[], int]
    alerts: list[PlacedAlert]
    model_events: Counter[str]

    def handle(self, message: Message) -> None:
        if message.topic() == "model-events":
            self.model_events[decode(ModelEvent, message.value()).kind] += 1
            return
        alert = decode(DriftAlert, message.value())
        self.alerts.append(PlacedAlert(alert, max(self.published() - 1, 0), self.clock.now()))


class _Publisher:
    """The producer's publisher, onto the bus; every publish is delivered before it returns."""

    def __init__(self, bus: LocalBus, entity_key: str) -> None:
        self._bus, self._entity_key = bus, entity_key
        self.events = self.labels = 0

    def publish_event(self, event: Event) -> None:
        self.events += 1
        self._bus.produce("events", encode(event), event.entity[self._entity_key].encode())
        self._bus.pump()

    def publish_label(self, label: Label) -> None:
        self.labels += 1
        self._bus.produce("labels", encode(label), label.event_id.encode())
        self._bus.pump()

    def flush(self) -> None:
        """Nothing is buffered."""

    @property
    def events_published(self) -> int:
        return self.events

    @property
    def labels_published(self) -> int:
        return self.labels


@dataclass(frozen=True)
class InProcessRun:
    """What one in-process run produced: its truth, size, alerts and side counts."""

    truth: GroundTruth
    events: int
    labels: int
    alerts: list[PlacedAlert]
    model_events: dict[str, int]
    dead_letters: dict[str, int]
    wall_seconds: float


@dataclass
class InProcessPipeline:
    """The features, model and drift logic of ``spec`` wired onto one :class:`LocalBus`, on a
    :class:`VirtualClock`; alerts and model events recorded, ``observers`` (topic, handler)
    reading after the services."""

    bus: LocalBus
    clock: VirtualClock
    publisher: _Publisher
    recorder: _Recorder
    model: ModelHandler

    @classmethod
    def wire(cls, spec: PipelineSpec, entity_key: str, start: datetime,
             observers: Sequence[tuple[str, Observer]] = ()) -> InProcessPipeline:
        clock, bus = VirtualClock(start), LocalBus()
        publisher = _Publisher(bus, entity_key)
        recorder = _Recorder(clock, lambda: publisher.events, [], Counter())
        model = ModelHandler(
            Learner(spec.models, spec.label), bus,
            ModelTopics(features="features", labels="labels", predictions="predictions",
                        outcomes="outcomes"),
            DeadLetterPublisher(bus, "dead-letters", "model"), ModelOptions(),
            ModelMetrics(CollectorRegistry()), clock=clock.now, monotonic=clock.monotonic,
            promotion=spec.models.promotion, on_concept_drift=spec.models.on_concept_drift,
            categories=categories_of(spec),
        )
        drift = DriftHandler(spec, bus, "drift-alerts", DriftMetrics(CollectorRegistry()),
                             clock=clock.now)
        bus.subscribe("events", "features", _Features(spec, bus, clock.now))
        for topic in ("features", "labels", "drift-alerts"):
            bus.subscribe(topic, "model", model)
        for topic in ("features", "outcomes"):
            bus.subscribe(topic, "drift", drift)
        bus.subscribe("drift-alerts", "evaluation", recorder)
        bus.subscribe("model-events", "evaluation", recorder)
        for topic, observer in observers:
            bus.subscribe(topic, "evaluation", observer)
        return cls(bus, clock, publisher, recorder, model)


def run_in_process(
    spec: PipelineSpec, scenario: Scenario, events: int, rate: float, start: datetime,
    observers: Sequence[tuple[str, Observer]] = (),
) -> InProcessRun:
    """Stream ``events`` events of ``scenario`` at ``rate`` events/s of event time (from
    ``start``) through the features, model and drift logic of ``spec``; return the alerts.
    ``observers``: (topic, handler) pairs that also read a topic, after the services."""
    if not isinstance(scenario, KnowsGroundTruth):
        raise ValueError(f"scenario '{scenario.spec_name}' has no ground truth to score against")
    began = time.perf_counter()
    pipeline = InProcessPipeline.wire(spec, scenario.entity_key, start, observers)
    stream_scenario(scenario, pipeline.publisher, rate, StopSignal(), max_events=events,
                    start_time=start, clock=pipeline.clock)
    return InProcessRun(
        truth=scenario.ground_truth(start, 1.0 / rate), events=pipeline.publisher.events,
        labels=pipeline.publisher.labels, alerts=pipeline.recorder.alerts,
        model_events=dict(pipeline.recorder.model_events),
        dead_letters=dict(pipeline.bus.dead_letters), wall_seconds=time.perf_counter() - began,
    )
