"""Pacing a scenario onto a fake bus: ground truth first, labels when their delay is up."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.events import Event, Label
from schemas.truth import GroundTruth
from services.common.runtime import StopSignal
from services.producer.scenarios import ClicksScenario, NaturalLabels
from services.producer.scenarios.labels import UniformDelay
from services.producer.scenarios.timeline import load_timeline, parse_timeline
from services.producer.stream import stream_scenario

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """Monotonic time that moves only when the stream waits."""

    now: float = 100.0

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float, stop: StopSignal) -> bool:
        self.now += seconds
        return stop.is_set


@dataclass
class FakeClient:
    """Records what was published and when (by the clock it is given)."""

    clock: FakeClock | None = None
    events: list[tuple[float, Event]] = field(default_factory=list)
    labels: list[tuple[float, Label]] = field(default_factory=list)
    flushed: int = 0

    @property
    def events_published(self) -> int:
        return len(self.events)

    @property
    def labels_published(self) -> int:
        return len(self.labels)

    def _now(self) -> float:
        return self.clock.now if self.clock is not None else 0.0

    def publish_event(self, event: Event) -> Event:
        self.events.append((self._now(), event))
        return event

    def publish_label(self, label: Label) -> Label:
        self.labels.append((self._now(), label))
        return label

    def flush(self) -> None:
        self.flushed += 1


def test_a_run_writes_its_ground_truth_and_it_matches_the_timeline(tmp_path: Path) -> None:
    timeline = parse_timeline({"phases": [
        {"name": "calm", "kind": "stationary", "events": 60},
        {"name": "mix", "kind": "covariate_shift", "events": 40, "price_scale": 2.0},
        {"name": "ramp", "kind": "concept_drift", "events": 80, "transition": "gradual",
         "width": 50, "mixing": "linear", "concept": {"position": 0.2}},
    ]})
    clock, client = FakeClock(), FakeClient()
    client.clock = clock
    truth_path = tmp_path / "runs" / "one" / "truth.json"
    summary = stream_scenario(ClicksScenario(seed=1, timeline=timeline), client, 50.0,
                              StopSignal(), max_events=150, truth_path=truth_path,
                              start_time=START, clock=clock)
    assert summary.truth_path == truth_path and summary.events == 150
    truth = GroundTruth.model_validate_json(truth_path.read_bytes())
    assert truth.start == START and truth.interval_seconds == pytest.approx(0.02)
    assert [(p.index, p.phase, p.kind, p.transition, p.width, p.mixing)
            for p in truth.drift_points] == [
        (60, "mix", "covariate_shift", "abrupt", 0, None),
        (100, "ramp", "concept_drift", "gradual", 50, "linear"),
    ]
    published = [event for _, event in client.events]
    for point in truth.drift_points:  # the truth's times are those of the events it points at
        assert published[point.index].event_time == point.event_time
        assert published[point.index].event_id == f"clk-1-{point.index}"


def test_labels_are_published_when_their_delay_is_up() -> None:
    rate = 20.0
    labels = NaturalLabels(delay=UniformDelay(low=0.5, high=10.0), late_share=0.2,
                           lost_share=0.1)
    scenario = ClicksScenario(seed=3, explicit_negatives=True, labels=labels)
    clock, client = FakeClock(), FakeClient()
    client.clock = clock
    started = clock.now
    summary = stream_scenario(scenario, client, rate, StopSignal(), max_events=400,
                              start_time=START, clock=clock)
    drawn = {e.event.event_id: (index, e) for index, e in
             enumerate(itertools.islice(scenario.events(START, 1 / rate), 400))}
    sent = {key: value for key, value in drawn.items() if value[1].label_delay_seconds is not None}
    assert summary.events == 400 and summary.labels == len(sent) == len(client.labels)
    assert len(sent) < 400  # some were lost
    assert any((e.label_delay_seconds or 0) > 30 for _, e in sent.values())  # some are late
    for published_at, label in client.labels:
        index, labelled = sent[label.event_id]
        delay = labelled.label_delay_seconds
        assert delay is not None
        assert published_at == pytest.approx(started + index / rate + delay)
        assert label.label_time == labelled.event.event_time + timedelta(seconds=delay)
        assert label.label == labelled.label
    for published_at, event in client.events:
        assert published_at == pytest.approx(started + int(event.event_id.split("-")[-1]) / rate)
    assert client.flushed == 1


def test_a_real_clock_run_sends_every_label_it_drew(tmp_path: Path) -> None:
    labels = NaturalLabels(delay=UniformDelay(low=0.0, high=0.001), late_share=0.5)
    scenario = ClicksScenario(seed=5, labels=labels, feedback_window_seconds=0.002,
                              timeline=load_timeline("clicks-drift"))
    client = FakeClient()
    # Event times (and so the hour feature the clicks depend on) start at START in both runs.
    summary = stream_scenario(scenario, client, 20_000.0, StopSignal(), max_events=200,
                              truth_path=tmp_path / "truth.json", start_time=START)
    drawn = list(itertools.islice(scenario.events(START, 1.0 / 20_000.0), 200))
    assert summary.labels == sum(1 for e in drawn if e.label_delay_seconds is not None) > 0
    assert len(GroundTruth.model_validate_json(
        (tmp_path / "truth.json").read_bytes()).drift_points) == 4


def test_a_stopped_run_ends_at_once() -> None:
    stop = StopSignal()
    stop.set()
    client = FakeClient()
    summary = stream_scenario(ClicksScenario(), client, 10.0, stop, clock=FakeClock())
    assert summary.events == 0 and client.flushed == 1
