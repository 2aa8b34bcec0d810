"""Pace a scenario onto the bus: events at a target rate, each label when its delay is up."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas.events import Label
from services.common.runtime import StopSignal
from services.producer.client import EventClient
from services.producer.scenarios.base import Scenario


@dataclass(frozen=True)
class RunSummary:
    """What a run put on the bus."""

    events: int
    labels: int
    seconds: float


def stream_scenario(
    scenario: Scenario,
    client: EventClient,
    rate: float,
    stop: StopSignal,
    duration_seconds: float | None = None,
    max_events: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Publish ``scenario`` at ``rate`` events/s until stopped, ``duration`` or ``max_events``.

    Labels whose delay is due are published between events; when the events end, the labels still
    pending are published at their due time (unless stopped), so a finished run has sent every
    label its scenario drew. Event times are ``start + i / rate``.
    """
    started = time.monotonic()
    start_time = datetime.now(UTC)
    pending: list[tuple[float, int, Label]] = []
    for index, labelled in enumerate(scenario.events(start_time, 1.0 / rate)):
        if stop.is_set or (max_events is not None and index >= max_events):
            break
        due = started + index / rate
        if duration_seconds is not None and due - started >= duration_seconds:
            break
        _publish_due_labels(client, pending, until=due, stop=stop)
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
        _publish_due_labels(client, pending, until=max(entry[0] for entry in pending), stop=stop)
    client.flush()
    return RunSummary(client.events_published, client.labels_published,
                      time.monotonic() - started)


def _publish_due_labels(
    client: EventClient, pending: list[tuple[float, int, Label]], until: float, stop: StopSignal
) -> None:
    """Publish labels due before ``until``, sleeping (interruptibly) until then."""
    while True:
        now = time.monotonic()
        if pending and pending[0][0] <= now:
            client.publish_label(heapq.heappop(pending)[2])
            continue
        wake = min(until, pending[0][0]) if pending else until
        if wake <= now or stop.wait(wake - now):
            return
