"""Labels that never come, and a flood of labels: the model service's memory stays bounded.

The real model service (``python -m services.model``, Elec2 spec) runs against the real broker
with small stores (``STREAMML_MODEL__PENDING_CAPACITY``, ``__EARLY_LABEL_CAPACITY``,
``__REMEMBERED_IDS``) while feature vectors and labels are published straight to its input
topics, many times more than the stores hold:

1. Labels that never come: feature vectors out of time order and no label. The pending store
   evicts the oldest; a later vector closes the windows of the rest. Every event is predicted
   once, and evicted + timed out + still pending == vectors published.
2. Labels of events that do not exist (or not yet): the store of labels awaiting features keeps
   the newest, the others go to ``dead-letters`` (``unknown_event``): published == dead-lettered
   + held at every step. Features then come for some held labels (learned) and the stream moves
   a window past the rest (dead-lettered): published == dead-lettered + learned.
3. Labels ahead of a lagging features stream: each label comes while its event is pending but is
   stamped after the features' time, so it waits in the queue of labels to learn while the
   pending store evicts its event.

The bound is asserted structurally, never on sizes in bytes (memory figures belong to
``streamml bench model-memory``): the store gauges of ``/metrics`` never exceed their
capacities while the service runs, and every store in its latest checkpoint (the whole state it
keeps: pending store and its deadline heap, waiting labels, queued labels, remembered ids) is
within its bound. The service's resident memory (``VmRSS``) is sampled and printed, not judged.
"""

from __future__ import annotations

import random
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from schemas.codec import decode, encode
from schemas.dead_letters import DeadLetterHeaders
from schemas.events import Label
from schemas.features import FeatureVector
from schemas.predictions import Outcome, Prediction
from services.cli.bench.wire import fast_producer, produce
from services.cli.demo import scrape
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from services.model.checkpoint import load_state, read_checkpoint_chain
from services.model.state import HandlerState
from tests.integration.conftest import read_topic, topic_size, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

PENDING_CAPACITY = 1_000
EARLY_LABEL_CAPACITY = 500
REMEMBERED_IDS = 2_000
HEAP_SLACK = 1024
"""Stale deadlines and queued labels are dropped once they outnumber the live ones by this."""
QUEUE_BOUND = 2 * PENDING_CAPACITY + HEAP_SLACK + 1

SILENT_EVENTS = 6_000
CLOSERS = 10
GHOST_LABELS = 3_000
SOON = 200
AHEAD = 4_000
WINDOW = 86_400.0  # the elec2 spec's feedback window (seconds of event time)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
B = T0 + timedelta(days=2)  # phase 2, past every phase-1 deadline
C = B + timedelta(days=3)  # phase 3, past every phase-2 deadline
FEATURES = {"period": 0.5, "nswprice": 0.06, "nswdemand": 0.42, "vicprice": 0.003,
            "vicdemand": 0.42, "transfer": 0.41}


@dataclass
class Sampler:
    """Scrapes the service's ``/metrics`` and ``VmRSS`` in a thread, per phase."""

    port: int
    pid: int
    phase: str = "start"
    peaks: dict[str, dict[str, float]] = field(default_factory=dict)
    rss_kb: dict[str, list[int]] = field(default_factory=dict)
    scrapes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    GAUGES = ("streamml_model_pending_events", "streamml_model_early_labels",
              "streamml_model_remembered_ids{store=predicted}",
              "streamml_model_remembered_ids{store=resolved}")

    def run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.sample()
            except OSError:
                continue  # a scrape that failed; a service that died fails the test anyway

    def sample(self) -> None:
        metrics = scrape(self.port)
        peaks = self.peaks.setdefault(self.phase, {})
        for name in self.GAUGES:
            peaks[name] = max(peaks.get(name, 0.0), metrics.get(name, 0.0))
        self.rss_kb.setdefault(self.phase, []).append(rss_kb(self.pid))
        self.scrapes += 1

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Service:
    process: ServiceProcess
    pid: int
    port: int
    prefix: str
    sampler: Sampler

    def metrics(self) -> dict[str, float]:
        return scrape(self.port)

    def total(self, name: str) -> float:
        """Sum of ``name`` over all its label sets."""
        return sum(value for key, value in self.metrics().items()
                   if key == name or key.startswith(name + "{"))

    def anomalies(self, kind: str) -> float:
        return self.metrics().get(f"streamml_model_label_anomalies_total{{kind={kind}}}", 0.0)

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as reply:
            return bool(orjson.loads(reply.read())["ok"])

    def wait(self, name: str, value: float, what: str, timeout: float = 60.0) -> None:
        wait_for(lambda: self.total(name) >= value, timeout, what)
        assert self.total(name) == value, f"{name}: {self.total(name)}, expected {value}"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture
def service(kafka: KafkaSettings, tmp_path: Path) -> Iterator[Service]:
    prefix = f"mem{uuid.uuid4().hex[:8]}-"
    ensure_topics(kafka, prefix)
    env = {
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_SPEC": "elec2",
        "STREAMML_METRICS_PORT": "0",  # a free port: never collides with another test
        "STREAMML_MODEL__PENDING_CAPACITY": str(PENDING_CAPACITY),
        "STREAMML_MODEL__EARLY_LABEL_CAPACITY": str(EARLY_LABEL_CAPACITY),
        "STREAMML_MODEL__REMEMBERED_IDS": str(REMEMBERED_IDS),
        # Stream time moves only with the features: no window closes by wall-clock time.
        "STREAMML_MODEL__LABEL_HOLD_SECONDS": "600",
    }
    process = ServiceProcess("services.model", env, tmp_path / "model.log").start()
    try:
        assert process._process is not None and process.metrics_port is not None
        sampler = Sampler(process.metrics_port, process._process.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        yield Service(process, sampler.pid, sampler.port, prefix, sampler)
        sampler.stop()
        thread.join(5)
    finally:
        process.stop()


def vector(event_id: str, event_time: datetime) -> bytes:
    now = datetime.now(UTC)
    return encode(FeatureVector(event_id=event_id, event_time=event_time,
                                entity={"market": "nsw"}, features=dict(FEATURES),
                                ingested_at=now, computed_at=now))


def label(event_id: str, label_time: datetime, value: int = 1) -> bytes:
    return encode(Label(event_id=event_id, label_time=label_time, label=value))


def publish_vectors(producer: Producer, prefix: str, vectors: list[tuple[str, datetime]]) -> None:
    for event_id, event_time in vectors:
        produce(producer, f"{prefix}features", b"nsw", vector(event_id, event_time))
    assert producer.flush(30) == 0


def publish_labels(producer: Producer, prefix: str, labels: list[tuple[str, datetime]]) -> None:
    for n, (event_id, label_time) in enumerate(labels):
        produce(producer, f"{prefix}labels", event_id.encode(), label(event_id, label_time, n % 2))
    assert producer.flush(30) == 0


def checkpoint_after(kafka: KafkaSettings, prefix: str, features_read: int) -> HandlerState:
    """The state in the first checkpoint that covers ``features_read`` feature vectors."""
    states: list[HandlerState] = []

    def covered() -> bool:
        chain = read_checkpoint_chain(kafka, f"{prefix}model-snapshots",
                                      f"{prefix}streamml-model")
        if not chain:
            return False
        read = sum(offset for name, offset in chain[-1].offsets.items()
                   if name.startswith(f"{prefix}features:"))
        if read < features_read:
            return False
        states.append(HandlerState.of(load_state(chain)))
        return True

    wait_for(covered, timeout=60, what=f"a checkpoint covering {features_read} feature vectors")
    return states[-1]


def assert_stores_bounded(state: HandlerState, phase: str) -> None:
    """Every store the service keeps (the whole checkpointed state) is within its bound."""
    sizes = {
        "pending": len(state.pending),
        "pending deadlines": len(state.pending._deadlines),
        "waiting labels": len(state.early),
        "queued labels": len(state.ready),
        "predicted ids": len(state.predicted),
        "resolved ids": len(state.resolved),
    }
    bounds = {
        "pending": PENDING_CAPACITY, "pending deadlines": QUEUE_BOUND,
        "waiting labels": EARLY_LABEL_CAPACITY, "queued labels": QUEUE_BOUND,
        "predicted ids": REMEMBERED_IDS, "resolved ids": REMEMBERED_IDS,
    }
    print(f"{phase}: checkpointed stores " + ", ".join(
        f"{name} {size}/{bounds[name]}" for name, size in sizes.items()))
    over = {name: size for name, size in sizes.items() if size > bounds[name]}
    assert not over, f"{phase}: stores beyond their bounds {over} (bounds {bounds})"


def assert_gauges_bounded(sampler: Sampler, phase: str) -> None:
    peaks = sampler.peaks[phase]
    assert peaks["streamml_model_pending_events"] <= PENDING_CAPACITY, peaks
    assert peaks["streamml_model_early_labels"] <= EARLY_LABEL_CAPACITY, peaks
    assert peaks["streamml_model_remembered_ids{store=predicted}"] <= REMEMBERED_IDS, peaks
    assert peaks["streamml_model_remembered_ids{store=resolved}"] <= REMEMBERED_IDS, peaks


def print_peaks(sampler: Sampler) -> None:
    print(f"gauge peaks over {sampler.scrapes} scrapes of /metrics (pending/"
          f"{PENDING_CAPACITY}, waiting labels/{EARLY_LABEL_CAPACITY}, remembered predicted and "
          f"resolved ids/{REMEMBERED_IDS}):")
    for phase, peaks in sampler.peaks.items():
        print(f"  {phase}: " + " ".join(f"{peaks[name]:.0f}" for name in Sampler.GAUGES))


def print_rss(sampler: Sampler) -> None:
    for phase, samples in sampler.rss_kb.items():
        middle = samples[len(samples) // 2]
        print(f"VmRSS {phase}: first {samples[0] / 1024:.1f} MB, middle {middle / 1024:.1f} MB, "
              f"last {samples[-1] / 1024:.1f} MB, peak {max(samples) / 1024:.1f} MB "
              f"({len(samples)} samples)")


@pytest.mark.timeout(300)
def test_memory_stays_bounded_when_labels_never_come_and_when_they_flood(
    kafka: KafkaSettings, service: Service
) -> None:
    prefix, sampler = service.prefix, service.sampler
    producer = fast_producer(kafka)
    predictions = "streamml_model_predictions_total"
    rng = random.Random(11)
    sampler.sample()
    print()

    # -- 1. labels that never come --------------------------------------------------------
    sampler.phase = "1 labels never come"
    offsets = list(range(SILENT_EVENTS))
    rng.shuffle(offsets)  # out of time order, all within one window: only eviction bounds it
    silent = [(f"silent-{n}", T0 + timedelta(seconds=offset)) for n, offset in enumerate(offsets)]
    publish_vectors(producer, prefix, silent)
    service.wait(predictions, SILENT_EVENTS, "a prediction for every silent event")
    assert service.total("streamml_model_pending_events") == PENDING_CAPACITY
    assert_stores_bounded(checkpoint_after(kafka, prefix, SILENT_EVENTS), "1, store full")
    # A later vector closes every window still open: the rest time out (on_timeout = "drop").
    closers = [(f"closer-{n}", B) for n in range(CLOSERS)]
    publish_vectors(producer, prefix, closers)
    service.wait(predictions, SILENT_EVENTS + CLOSERS, "a prediction for every closer")
    sampler.sample()
    evicted = service.total("streamml_model_pending_evicted_total")
    timed_out = service.anomalies("timeout_dropped")
    pending = service.total("streamml_model_pending_events")
    print(f"1: {SILENT_EVENTS + CLOSERS} vectors, no label: evicted {evicted:.0f}, "
          f"timed out {timed_out:.0f}, pending {pending:.0f}")
    assert evicted == SILENT_EVENTS - PENDING_CAPACITY
    assert timed_out == PENDING_CAPACITY
    assert pending == CLOSERS
    assert evicted + timed_out + pending == SILENT_EVENTS + CLOSERS
    assert_gauges_bounded(sampler, sampler.phase)
    assert_stores_bounded(checkpoint_after(kafka, prefix, SILENT_EVENTS + CLOSERS),
                          "1, windows closed")
    published = {event_id for event_id, _ in silent + closers}
    read = read_topic(kafka, f"{prefix}predictions",
                      lambda got: len(got) >= len(published), timeout=60)
    assert {decode(Prediction, m.value()).event_id for m in read} == published
    assert topic_size(kafka, f"{prefix}predictions") == len(published), "predicted twice"

    # -- 2. labels of events that do not exist, or not yet -----------------------------------
    sampler.phase = "2 flood of unknown labels"
    publish_labels(producer, prefix, [(f"ghost-{n}", B + timedelta(seconds=1))
                                      for n in range(GHOST_LABELS)])
    wait_for(lambda: service.anomalies("unknown_event") >= GHOST_LABELS - EARLY_LABEL_CAPACITY,
             60, "the flood of unknown labels to be read")
    assert service.anomalies("unknown_event") == GHOST_LABELS - EARLY_LABEL_CAPACITY
    assert service.total("streamml_model_early_labels") == EARLY_LABEL_CAPACITY
    # Labels whose features come next: the newest, so the store keeps them.
    soon = [(f"soon-{n}", B + timedelta(seconds=2)) for n in range(SOON)]
    publish_labels(producer, prefix, soon)
    labels_published = GHOST_LABELS + SOON
    wait_for(lambda: service.anomalies("unknown_event") >= labels_published - EARLY_LABEL_CAPACITY,
             60, "the early labels to be read")
    held = service.total("streamml_model_early_labels")
    unknown = service.anomalies("unknown_event")
    print(f"2: {labels_published} labels of no known event: dead-lettered {unknown:.0f}, "
          f"held {held:.0f}")
    assert unknown + held == labels_published
    assert held == EARLY_LABEL_CAPACITY
    publish_vectors(producer, prefix, [(event_id, B + timedelta(seconds=1))
                                       for event_id, _ in soon])
    service.wait(predictions, SILENT_EVENTS + CLOSERS + SOON, "predictions of the soon events")
    assert service.total("streamml_model_early_labels") == EARLY_LABEL_CAPACITY - SOON
    # The features stream moves a window past the ghosts' labels: the soon labels are learned,
    # the ghosts still held are dead-lettered.
    publish_vectors(producer, prefix, [("after-ghosts", B + timedelta(seconds=WINDOW + 100))])
    service.wait(predictions, SILENT_EVENTS + CLOSERS + SOON + 1, "a prediction of after-ghosts")
    sampler.sample()
    learned = service.total("streamml_model_labels_learned_total")
    unknown = service.anomalies("unknown_event")
    held = service.total("streamml_model_early_labels")
    print(f"2: then {SOON} of their events came and a window passed: dead-lettered "
          f"{unknown:.0f}, learned {learned:.0f}, held {held:.0f}")
    assert (unknown, learned, held) == (GHOST_LABELS, SOON, 0)
    assert service.anomalies("late") == service.anomalies("duplicate") == 0
    assert_gauges_bounded(sampler, sampler.phase)
    assert_stores_bounded(checkpoint_after(kafka, prefix, SILENT_EVENTS + CLOSERS + SOON + 1),
                          "2")
    dead = read_topic(kafka, f"{prefix}dead-letters",
                      lambda got: len(got) >= GHOST_LABELS, timeout=60)
    reasons = [DeadLetterHeaders.from_kafka_headers(m.headers() or []) for m in dead]
    assert {h.reason_code for h in reasons} == {"unknown_event"}
    assert {h.source_topic for h in reasons} == {f"{prefix}labels"}
    assert sorted((m.key() or b"").decode() for m in dead) == sorted(
        f"ghost-{n}" for n in range(GHOST_LABELS))
    assert topic_size(kafka, f"{prefix}dead-letters") == GHOST_LABELS
    outcomes = read_topic(kafka, f"{prefix}outcomes", lambda got: len(got) >= SOON, timeout=60)
    assert sorted(decode(Outcome, m.value()).event_id for m in outcomes) == sorted(
        event_id for event_id, _ in soon)
    assert topic_size(kafka, f"{prefix}outcomes") == SOON
    assert labels_published == len(dead) + len(outcomes) + held

    # -- 3. labels ahead of a lagging features stream ---------------------------------------
    sampler.phase = "3 labels ahead of features"
    before = service.total(predictions)
    for start in range(0, AHEAD, 250):
        batch = [(f"ahead-{n}", C) for n in range(start, start + 250)]
        publish_vectors(producer, prefix, batch)
        publish_labels(producer, prefix, [(event_id, C + timedelta(seconds=60))
                                          for event_id, _ in batch])
    service.wait(predictions, before + AHEAD, "a prediction for every event of phase 3")
    sampler.sample()
    print(f"3: {AHEAD} events of one instant, their labels stamped 60 s later: "
          f"evicted {service.total('streamml_model_pending_evicted_total') - evicted:.0f}, "
          f"late {service.anomalies('late'):.0f}, "
          f"unknown {service.anomalies('unknown_event') - GHOST_LABELS:.0f}")
    assert_gauges_bounded(sampler, sampler.phase)
    assert_stores_bounded(checkpoint_after(kafka, prefix, int(before) + AHEAD), "3")

    # -- the same process throughout, still healthy ------------------------------------------
    assert service.process._process is not None
    assert service.process._process.poll() is None, "the model service exited"
    assert service.process._process.pid == service.pid
    assert service.healthy()
    print_peaks(sampler)
    print_rss(sampler)
