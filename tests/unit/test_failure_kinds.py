"""Each failure kind in each confluent-kafka service, through the shared loop on in-memory clients.

Bad input is dead-lettered with its reason and the stream goes on; a retriable failure is retried
on the same message and nothing is observed twice; a bug stops the loop with one line naming the
message, commits nothing of it and dead-letters nothing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry, Gauge

from schemas.alerts import DriftAlert
from schemas.codec import decode, encode
from schemas.dead_letters import DeadLetterHeaders
from schemas.features import FeatureVector
from schemas.predictions import Prediction
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec
from services.common.committers import DeliveryReports, OffsetCommitter
from services.common.consumer_loop import ConsumerLoop, Handler
from services.common.dead_letters import DeadLetterPublisher
from services.common.failures import BrokenInvariant, Retriable, describe_crash
from services.common.runtime import StopSignal
from services.common.service_metrics import LoopMetrics
from services.drift.detectors import ErrorStreamMonitor
from services.drift.handler import DriftHandler, DriftMetrics
from services.metrics_sink.handler import SinkHandler
from services.metrics_sink.metrics import SinkMetrics
from services.model.handler import ModelHandler, ModelTopics
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.settings import ModelOptions
from tests.unit.fakes import ManualClock, ManualMonotonic, message
from tests.unit.kafka_fakes import FakeBroker, FakeConsumer, FakeKafkaProducer, Record
from tests.unit.test_drift_handler import DETECTED_AT, T0, outcome, pipeline
from tests.unit.test_metrics_sink import TOPICS as SINK_TOPICS
from tests.unit.test_metrics_sink import outcome as sink_outcome
from tests.unit.test_metrics_sink import scored

GROUP = "service"


@dataclass
class Service:
    """One service's handler on an in-memory broker, run by the shared loop."""

    broker: FakeBroker = field(default_factory=FakeBroker)
    producer: FakeKafkaProducer = field(init=False)
    deliveries: DeliveryReports = field(default_factory=DeliveryReports)
    waits: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.producer = FakeKafkaProducer(self.broker, self.deliveries.on_delivery)

    def publish(self, topic: str, values: list[bytes]) -> None:
        for value in values:
            self.broker.append(topic, Record(value))

    def run(self, handler: Handler, topics: list[str], max_messages: int,
            on_wait: Callable[[], None] = lambda: None) -> int:
        consumer, stop = FakeConsumer(self.broker, GROUP), StopSignal()

        def sleep(seconds: float) -> bool:
            self.waits.append(seconds)
            on_wait()
            return False

        loop = ConsumerLoop(
            consumer, self.producer, handler,  # type: ignore[arg-type]
            DeadLetterPublisher(self.producer, "dead-letters", "svc"), stop,
            LoopMetrics(CollectorRegistry(), "svc"), base_name_of=str,
            committer=OffsetCommitter(consumer, self.producer,  # type: ignore[arg-type]
                                      interval=0.0, deliveries=self.deliveries),
            sleep=sleep,
        )
        loop.subscribe(topics)
        return loop.run(max_messages=max_messages)

    def committed(self, topic: str) -> int | None:
        return self.broker.committed.get((GROUP, topic, 0))

    def dead_letters(self) -> list[DeadLetterHeaders]:
        return [DeadLetterHeaders.from_kafka_headers([
            (name, value.encode() if isinstance(value, str) else value)
            for name, value in record.headers or []])
            for record in self.broker.records("dead-letters")]


def crash_line(caplog: pytest.LogCaptureFixture) -> str:
    [line] = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    return line


# -- drift -------------------------------------------------------------------------------------

def drift(service: Service) -> tuple[DriftHandler, CollectorRegistry]:
    registry = CollectorRegistry()
    return DriftHandler(pipeline(), service.producer, "drift-alerts", DriftMetrics(registry),
                        clock=ManualClock(DETECTED_AT)), registry


def drifting_outcomes() -> list[bytes]:
    """2,000 outcomes with 10% errors, then 400 with 60%: one concept alert (ADWIN)."""
    rng = random.Random(1)
    rates = [0.1] * 2000 + [0.6] * 400
    return [outcome(n, "logreg", rng.random() >= rate) for n, rate in enumerate(rates)]


def test_drift_dead_letters_an_undecodable_outcome_and_goes_on() -> None:
    service = Service()
    handler, registry = drift(service)
    service.publish("outcomes", [b"nope", outcome(0, "logreg", True)])
    assert service.run(handler, ["outcomes"], max_messages=2) == 2
    [headers] = service.dead_letters()
    assert (headers.source_offset, headers.reason_code) == (0, "malformed_json")
    assert registry.get_sample_value(
        "streamml_drift_observations_total", {"kind": "concept"}) == 1.0
    assert service.committed("outcomes") == 2


def test_drift_retries_an_alert_the_producer_cannot_queue_and_observes_each_outcome_once() -> None:
    service = Service()
    handler, registry = drift(service)
    outcomes = drifting_outcomes()
    service.publish("outcomes", outcomes)
    service.producer.queue_limit = 0  # full when the alert comes

    def free() -> None:
        service.producer.queue_limit = None

    assert service.run(handler, ["outcomes"], max_messages=len(outcomes), on_wait=free) == 2400
    assert service.waits == [0.05]
    [alert] = [decode(DriftAlert, r.value) for r in service.broker.records("drift-alerts")]
    assert (alert.kind, alert.target) == ("concept", "error:logreg")
    assert 2000 < alert.stream_position <= 2300
    assert registry.get_sample_value(
        "streamml_drift_observations_total", {"kind": "concept"}) == 2400.0
    assert registry.get_sample_value(
        "streamml_drift_alerts_raised_total", {"kind": "concept", "detector": "ADWIN"}) == 1.0
    assert service.committed("outcomes") == 2400


def test_drift_alerts_waiting_for_one_message_are_not_sent_for_another() -> None:
    service = Service()
    handler, _ = drift(service)
    service.producer.queue_limit = 0
    outcomes = drifting_outcomes()
    with pytest.raises(Retriable):
        for offset, value in enumerate(outcomes):
            handler.handle(message("outcomes", value, offset=offset))
    with pytest.raises(BrokenInvariant, match="unsent"):
        handler.handle(message("outcomes", outcomes[0], offset=9999))


def test_drift_stops_on_a_bug_without_committing_or_dead_lettering_the_message(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(self: ErrorStreamMonitor, error: float) -> None:
        raise ZeroDivisionError("a detector bug")

    monkeypatch.setattr(ErrorStreamMonitor, "update", broken)
    service = Service()
    handler, _ = drift(service)
    service.publish("outcomes", [outcome(0, "logreg", True)])
    with pytest.raises(ZeroDivisionError):
        service.run(handler, ["outcomes"], max_messages=1)
    assert crash_line(caplog) == ("stopping: unexpected error while processing outcomes[0]@0: "
                                  "ZeroDivisionError: a detector bug")
    assert service.committed("outcomes") is None
    assert service.dead_letters() == []


# -- metrics sink --------------------------------------------------------------------------

def test_sink_dead_letters_an_undecodable_outcome_and_goes_on() -> None:
    service = Service()
    handler = SinkHandler(SINK_TOPICS, SinkMetrics(CollectorRegistry()), window=4)
    service.publish(SINK_TOPICS.outcomes, [b'{"event_id": "e"}', sink_outcome(True)])
    assert service.run(handler, [SINK_TOPICS.outcomes], max_messages=2) == 2
    [headers] = service.dead_letters()
    assert (headers.source_topic, headers.reason_code) == (SINK_TOPICS.outcomes, "schema_invalid")
    assert handler.quality["logreg"].accuracy.mean == 1.0
    assert service.committed(SINK_TOPICS.outcomes) == 2


class _KeyErrorOnAbsentSeries:
    """A gauge that raises on removing a series never set, as prometheus-client < 0.22 did."""

    def __init__(self) -> None:
        self.series: dict[str, float] = {}

    def remove(self, model: str) -> None:
        del self.series[model]

    def labels(self, model: str) -> Any:
        raise AssertionError("not reached")


def test_sink_stops_on_a_metrics_library_error_without_committing_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Service()
    metrics = SinkMetrics(CollectorRegistry())
    metrics.rolling_roc_auc = _KeyErrorOnAbsentSeries()  # type: ignore[assignment]
    handler = SinkHandler(SINK_TOPICS, metrics, window=4, roc_auc_every=1)
    service.publish(SINK_TOPICS.outcomes, [scored(True, 0.9)])  # one class: no ROC AUC
    with pytest.raises(KeyError):
        service.run(handler, [SINK_TOPICS.outcomes], max_messages=1)
    assert crash_line(caplog).startswith(
        f"stopping: unexpected error while processing {SINK_TOPICS.outcomes}[0]@0: KeyError")
    assert service.committed(SINK_TOPICS.outcomes) is None
    assert service.dead_letters() == []


def test_the_installed_prometheus_client_removes_an_absent_series_quietly() -> None:
    gauge = Gauge("g", "a gauge", ["model"], registry=CollectorRegistry())
    gauge.remove("never-set")  # raised KeyError before prometheus-client 0.22.0
    gauge.labels(model="m").set(1.0)
    gauge.remove("m")
    gauge.remove("m")


# -- model ---------------------------------------------------------------------------------

class BrokenClassifier:
    """An estimator with a bug."""

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        raise ZeroDivisionError("an estimator bug")

    def learn_one(self, x: dict[str, float], y: Any) -> None: ...


def broken_classifier() -> BrokenClassifier:
    """Factory named in a model spec (``module:function``)."""
    return BrokenClassifier()


MODEL_TOPICS = ModelTopics(features="features", labels="labels", predictions="predictions",
                           outcomes="outcomes")


def model(service: Service, estimator: str) -> ModelHandler:
    label = LabelSpec.model_validate({"type": "binary", "feedback_window_seconds": 30.0})
    learner = Learner(ModelsSpec(champion=ModelSpec(name="champ", estimator=estimator)), label)
    return ModelHandler(
        learner, service.producer, MODEL_TOPICS,
        DeadLetterPublisher(service.producer, "dead-letters", "model"),
        ModelOptions(), ModelMetrics(CollectorRegistry()), clock=ManualClock(T0),
        monotonic=ManualMonotonic(),
    )


def vector(event_id: str) -> bytes:
    return encode(FeatureVector(
        event_id=event_id, event_time=T0 + timedelta(seconds=1), entity={"user": "u"},
        features={"x": 1.0}, ingested_at=T0, computed_at=T0,
    ))


def test_model_dead_letters_an_undecodable_vector_and_predicts_on_the_next() -> None:
    service = Service()
    handler = model(service, "tests.unit.fakes:recording_classifier")
    service.publish("features", [b"{not json", vector("e-1")])
    assert service.run(handler, ["features"], max_messages=2) == 2
    [headers] = service.dead_letters()
    assert (headers.source_offset, headers.reason_code) == (0, "malformed_json")
    [prediction] = [decode(Prediction, r.value) for r in service.broker.records("predictions")]
    assert prediction.event_id == "e-1"
    assert service.committed("features") == 2


def test_model_stops_on_an_estimator_bug_without_committing_or_dead_lettering_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = Service()
    handler = model(service, "tests.unit.test_failure_kinds:broken_classifier")
    service.publish("features", [vector("e-1")])
    with pytest.raises(ZeroDivisionError):
        service.run(handler, ["features"], max_messages=1)
    assert crash_line(caplog) == ("stopping: unexpected error while processing features[0]@0: "
                                  "ZeroDivisionError: an estimator bug")
    assert service.committed("features") is None
    assert service.dead_letters() == []
    assert service.broker.records("predictions") == []


def test_a_fenced_producer_is_named_as_such_with_what_to_do() -> None:
    fenced = KafkaException(KafkaError(KafkaError._FENCED, "producer fenced by a newer instance"))
    line = describe_crash(fenced, "a commit")
    assert line.startswith("stopping: fenced while processing a commit: another process started")
    assert "one learner per deployment" in line
    other = describe_crash(KafkaException(KafkaError(KafkaError._TIMED_OUT)), "a commit")
    assert other.startswith("stopping: unexpected error while processing a commit")
