"""Pace a scenario onto the bus: events at a target rate, each label when its delay is up."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from schemas.events import Event, Label
from services.common.runtime import StopSignal
from services.producer.scenarios.base import Scenario
from services.producer.truth import write_truth

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where a run's events and labels go (an :class:`~services.producer.client.EventClient`)."""

    def publish_event(self, event: Event) -> object: ...

    def publish_label(self, label: Label) -> object: ...

    def flush(self) -> None: ...

    @property
    def events_published(self) -> int: ...

    @property
    def labels_published(self) -> int: ...


class Clock(Protocol):
    """Monotonic time, and an interruptible wait (returns True when stopped)."""

    def monotonic(self) -> float: ...

    def wait(self, seconds: float, stop: StopSignal) -> bool: ...


class WallClock:
    """The real clock: ``time.monotonic`` and :meth:`StopSignal.wait`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, seconds: float, stop: StopSignal) -> bool:
        return stop.wait(seconds)


@dataclass(frozen=True)
class RunSummary:
    """What a run put on the bus, and where its ground truth was written (if it was)."""

    events: int
    labels: int
    seconds: float
    truth_path: Path | None = None


def stream_scenario(
    scenario: Scenario,
    client: Publisher,
    rate: float,
    stop: StopSignal,
    duration_seconds: float | None = None,
    max_events: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    truth_path: Path | None = None,
    start_time: datetime | None = None,
    clock: Clock | None = None,
) -> RunSummary:
    """Publish ``scenario`` at ``rate`` events/s until stopped, ``duration`` or ``max_events``.

    Event times are ``start_time + i / rate`` (default start: now). With ``truth_path``, the
    run's ground truth is written there before the first event. Labels whose delay is due are
    published between events; when the events end, the labels still pending are published at
    their due time (unless stopped), so a finished run has sent every label its scenario drew.
    """
    clock = clock or WallClock()
    started = clock.monotonic()
    start_time = start_time or datetime.now(UTC)
    if truth_path is not None:
        write_truth(truth_path, scenario, start_time, 1.0 / rate)
        log.info("ground truth written to %s", truth_path)
    pending: list[tuple[float, int, Label]] = []
    for index, labelled in enumerate(scenario.events(start_time, 1.0 / rate)):
        if stop.is_set or (max_events is not None and index >= max_events):
            break
        due = started + index / rate
        if duration_seconds is not None and due - started >= duration_seconds:
            break
        _publish_due_labels(client, pending, until=due, stop=stop, clock=clock)
        client.publish_event(labelled.event)
        if labelled.label_delay_seconds is not None:
            delay = labelled.label_delay_seconds
            label = Label(
                event_id=labelled.event.event_id,
                label_time=labelled.event.event_time + timedelta(seconds=delay),
                label=labelled.label,
            )
            heapq.heappush(pending, (due + delay, index, label))
        if on_progress is not None and (index + 1) % 100 == 0:
            on_progress(client.events_published, client.labels_published)
    if not stop.is_set and pending:
        last_due = max(entry[0] for entry in pending)
        _publish_due_labels(client, pending, until=last_due, stop=stop, clock=clock)
    client.flush()
    return RunSummary(client.events_published, client.labels_published,
                      clock.monotonic() - started, truth_path)


def _publish_due_labels(
    client: Publisher, pending: list[tuple[float, int, Label]], until: float, stop: StopSignal,
    clock: Clock,
) -> None:
    """Publish labels due before ``until``, waiting (interruptibly) until then."""
    while True:
        now = clock.monotonic()
        if pending and pending[0][0] <= now:
            client.publish_label(heapq.heappop(pending)[2])
            continue
        wake = min(until, pending[0][0]) if pending else until
        if wake <= now or clock.wait(wake - now, stop):
            return
