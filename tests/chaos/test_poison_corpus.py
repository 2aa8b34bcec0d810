"""Poison at 1% of traffic: every bad message becomes exactly one dead letter with the reason its
kind calls for, every good event still gets exactly one prediction and one outcome per model, and
no service restarts.

The clicks scenario runs at 200 events/s through features, model, drift and metrics-sink under
the supervisor. After every 99th good event one poison from :mod:`tests.chaos.poison` is
published, cycling through its kinds; their positions (topic, partition, offset) come from the
delivery reports. A dead letter names where its message came from: the features service and the
model's label checks give the position in ``events``/``labels`` directly; the model's duplicate
check dead-letters the feature vector, which carries its event's position in ``events``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer

from schemas.codec import decode
from schemas.dead_letters import DeadLetterHeaders, ReasonCode
from schemas.events import Event, Label
from schemas.features import FeatureVector
from schemas.predictions import Outcome, Prediction
from services.cli import stack
from services.cli.demo import scrape
from services.common.kafka import make_producer
from services.common.runtime import StopSignal
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient
from services.producer.scenarios.clicks import ClicksScenario
from services.producer.stream import stream_scenario
from tests.chaos.poison import KINDS, Poison, make_poison
from tests.chaos.stack import RunningStack, consumers_running
from tests.integration.conftest import read_topic, topic_size, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

RATE = 200.0
GOOD_EVENTS = 9_900
EVERY = 99  # one poison per 99 good events: 1% of the traffic
MODELS = ("logreg", "tree")  # the clicks spec's champion and challenger
UNKNOWN_LABEL_SLOTS = 3
"""A label for an unknown event is given up on once the features stream has moved a feedback
window (30 s) past it, so these go first, while most of the stream is still to come."""

Position = tuple[str, int, int]


@dataclass
class PoisonInjector:
    """A :class:`~services.producer.stream.Publisher` that sends a scenario's events and labels
    through ``client`` and, after every ``EVERY``-th good event, the next poison of ``schedule``
    on the same producer; records where each poison landed."""

    client: EventClient
    producer: Producer
    prefix: str
    schedule: list[str]
    good_ids: list[str] = field(default_factory=list)
    landed: dict[Position, Poison] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def events_published(self) -> int:
        return self.client.events_published

    @property
    def labels_published(self) -> int:
        return self.client.labels_published

    def publish_event(self, event: Event) -> Event:
        sent = self.client.publish_event(event)
        self.good_ids.append(event.event_id)
        slot, due = divmod(len(self.good_ids), EVERY)
        if due == 0 and slot - 1 < len(self.schedule):
            self._inject(make_poison(self.schedule[slot - 1], event, str(slot)))
        return sent

    def publish_label(self, label: Label) -> Label:
        return self.client.publish_label(label)

    def flush(self) -> None:
        self.client.flush()
        assert self.producer.flush(30) == 0

    def _inject(self, poison: Poison) -> None:
        def landed(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                self.failures.append(f"{poison.kind}: {error}")
                return
            self.landed[(poison.topic, message.partition() or 0, message.offset() or 0)] = poison

        self.producer.produce(f"{self.prefix}{poison.topic}", value=poison.value, key=poison.key,
                              on_delivery=landed)
        self.producer.poll(0)


def poison_schedule() -> list[str]:
    """The kind of each poison slot: unknown-event labels first, then every other kind in turn."""
    others = [kind for kind in KINDS if kind != "label_for_unknown_event"]
    slots = GOOD_EVENTS // EVERY
    return ["label_for_unknown_event"] * UNKNOWN_LABEL_SLOTS + [
        others[n % len(others)] for n in range(slots - UNKNOWN_LABEL_SLOTS)]


@pytest.fixture
def services(kafka: KafkaSettings, tmp_path: Path) -> Iterator[RunningStack]:
    """features, model, drift and metrics-sink on the clicks spec, on a fresh prefix."""
    with consumers_running(kafka, tmp_path / "home", "clicks", port_offset=1800, tag="p",
                           settings={"STREAMML_MODEL__LABEL_HOLD_SECONDS": "5"}) as running:
        yield running


def dead_letter_origin(message: Message, prefix: str) -> tuple[Position, DeadLetterHeaders]:
    """Where the dead-lettered message's event or label was published, and its headers."""
    headers = DeadLetterHeaders.from_kafka_headers(message.headers() or [])
    if headers.source_topic == f"{prefix}features":
        vector = decode(FeatureVector, message.value())
        assert vector.event_partition is not None and vector.event_offset is not None
        return ("events", vector.event_partition, vector.event_offset), headers
    topic = headers.source_topic.removeprefix(prefix)
    return (topic, headers.source_partition, headers.source_offset), headers


def restarts(home: Path) -> dict[str, int]:
    return {name: int(service["restarts"])
            for name, service in stack.status(home)["services"].items()}


@pytest.mark.timeout(600)
def test_poison_at_one_percent_is_dead_lettered_exactly_and_loses_no_good_event(
    services: RunningStack, kafka: KafkaSettings,
) -> None:
    producer = make_producer(kafka)
    settings = Settings(kafka=kafka, topic_prefix=services.prefix)
    injector = PoisonInjector(EventClient(producer, settings, "user"), producer,
                              services.prefix, poison_schedule())
    started = time.monotonic()
    stream_scenario(ClicksScenario(seed=21), injector, RATE, StopSignal(),
                    max_events=GOOD_EVENTS)
    published_in = time.monotonic() - started
    assert not injector.failures, injector.failures
    injected = injector.landed
    good = set(injector.good_ids)
    kinds = Counter(poison.kind for poison in injected.values())
    print(f"\npublished {len(good)} good events and {len(injected)} poison messages "
          f"({len(kinds)} kinds) in {published_in:.1f}s")
    assert len(good) == GOOD_EVENTS
    assert len(injected) == len(poison_schedule())
    assert len(kinds) == len(KINDS)

    letters = read_topic(kafka, f"{services.prefix}dead-letters",
                         lambda got: len(got) >= len(injected), timeout=180)
    origins: dict[Position, DeadLetterHeaders] = {}
    for letter in letters:
        origin, headers = dead_letter_origin(letter, services.prefix)
        assert origin not in origins, f"two dead letters for {origin}"
        origins[origin] = headers
    wrong_reason = {
        injected[origin].kind: (headers.reason_code, headers.reason[:120])
        for origin, headers in origins.items()
        if origin in injected and headers.reason_code != injected[origin].reason_code
    }
    by_reason = Counter[ReasonCode](headers.reason_code for headers in origins.values())
    print(f"dead letters: {len(origins)} ({dict(sorted(by_reason.items()))})")
    assert set(origins) - set(injected) == set(), "a good message was dead-lettered"
    assert set(injected) - set(origins) == set(), "a poison message got no dead letter"
    assert not wrong_reason, f"dead-lettered for the wrong reason: {wrong_reason}"
    assert all(origins[at].service == poison.service for at, poison in injected.items())

    predictions = [decode(Prediction, m.value()).event_id for m in read_topic(
        kafka, f"{services.prefix}predictions", lambda got: len(got) >= len(good), timeout=180)]
    seen = Counter[str]()

    def every_outcome_of_the_spec_models(got: list[Message]) -> bool:
        """Counts new messages only; a fresh challenger (added on a drift alert) has outcomes
        too, so the total alone does not say the spec's models are complete."""
        for message in got[seen["read"]:]:
            seen[decode(Outcome, message.value()).model] += 1
        seen["read"] = len(got)
        return all(seen[model] >= len(good) for model in MODELS)

    outcomes = [decode(Outcome, m.value()) for m in read_topic(
        kafka, f"{services.prefix}outcomes", every_outcome_of_the_spec_models, timeout=180)]
    print(f"predictions: {len(predictions)} for {len(set(predictions))} events; outcomes: "
          f"{len(outcomes)}; metrics-sink took {time.monotonic() - started:.0f}s in all")
    assert set(predictions) == good, "a good event got no prediction"
    assert topic_size(kafka, f"{services.prefix}predictions") == len(good)
    for model in MODELS:
        answered = [o.event_id for o in outcomes if o.model == model]
        assert set(answered) == good and len(answered) == len(good), f"{model}: outcomes lost"

    sink_port = int(stack.status(services.home)["services"]["metrics-sink"]["port"])

    def sink_counts_them() -> bool:
        counted = scrape(sink_port)
        return sum(value for key, value in counted.items()
                   if key.startswith("streamml_dead_letters_total")) == len(injected)

    wait_for(sink_counts_them, timeout=60, what="metrics-sink to count every dead letter")
    assert restarts(services.home) == {name: 0 for name in restarts(services.home)}
