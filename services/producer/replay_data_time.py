"""Replay a file whose spec names a time column: every event keeps the file's own time.

Data time is the time of the rows. The replay keeps a *data clock*: the latest event time
published so far. A row whose time goes backwards is published in file order with its own time
(out-of-order events are ordinary in a stream, and the pipeline places them by their time), and
pacing never waits backwards for it: the data clock does not move back.

Pacing (:class:`~services.producer.replay_options.ReplayOptions`): at ``speed`` s, data time
``origin + d`` (origin: the first event's time) is due on the wall clock ``d / s`` seconds after
the start; with a ``rate``, event k is due ``k / rate`` seconds after the start whatever its
time; with neither, nothing waits. Whatever the pacing, the order of events and labels is the
order of data time:

- a label delay in data time (``label_delay_seconds``), or a label time from the file's label
  time column, gives each label a due time; the label is published, with that time as its
  ``label_time``, once the data clock reaches it: before the first event at or after that time,
  or right after its own event when the data clock is already there (a delay of 0, a row whose
  time went backwards);
- a label delay in events (``label_delay_events``, the default 0) publishes label i right after
  event i+N, with the data clock as its ``label_time``.

When the rows end, the labels still waiting are published in order of their due time (paced at
``speed`` unless stopped), so every event sent has its label.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.events import Label, LabelValue
from services.common.kafka import BrokerUnavailable
from services.common.runtime import StopSignal
from services.producer.progress import Progress
from services.producer.replay import BadRow, RowConverter, SourceRow
from services.producer.replay_options import Publisher, ReplayOptions, ReplaySummary


@dataclass(order=True, frozen=True)
class _DueLabel:
    """A label waiting for the data clock to reach ``at`` (ties keep the events' order)."""

    at: datetime
    order: int
    event_id: str = field(compare=False)
    value: LabelValue = field(compare=False)


class _Replay:
    """The state of one data-time replay: the data clock, the labels waiting, the counts."""

    def __init__(self, client: Publisher, options: ReplayOptions, stop: StopSignal,
                 clock: Callable[[], float], wait: Callable[[float], bool]) -> None:
        self.client, self.options, self.stop = client, options, stop
        self.clock, self.wait = clock, wait
        self.started = clock()
        self.origin: datetime | None = None
        self.earliest: datetime | None = None
        self.reached: datetime | None = None
        self.due: list[_DueLabel] = []
        self.by_count: deque[tuple[str, LabelValue, datetime]] = deque()
        self.read = self.bad = 0

    def wall_of(self, moment: datetime) -> float | None:
        """When data time ``moment`` is due on the wall clock; None when nothing waits."""
        if self.options.speed is None or self.origin is None:
            return None
        return self.started + (moment - self.origin).total_seconds() / self.options.speed

    def wait_until(self, wall: float | None) -> bool:
        """Wait for ``wall`` (no wait for None or the past); False when stopped meanwhile."""
        if wall is None:
            return True
        current = self.clock()
        return wall <= current or not self.wait(wall - current)

    def release(self, until: datetime, paced: bool) -> bool:
        """Publish the labels due at or before ``until`` in order, each at its wall time when
        ``paced``; False (the rest left waiting) when stopped meanwhile."""
        while self.due and self.due[0].at <= until:
            if paced and not self.wait_until(self.wall_of(self.due[0].at)):
                return False
            label = heapq.heappop(self.due)
            self._publish_label(label.event_id, label.value, label.at)
        return True

    def advance(self, event_time: datetime) -> bool:
        """Pace up to an event at ``event_time``, publishing the labels due before it; False
        when stopped meanwhile (the event is then not published)."""
        if self.origin is None:
            self.origin = event_time
        target = max(self.reached, event_time) if self.reached is not None else event_time
        rate = self.options.rate
        if rate is not None and not self.wait_until(
                self.started + self.client.events_published / rate):
            return False
        if not self.release(target, paced=True) or not self.wait_until(self.wall_of(target)):
            return False
        self.reached = target
        self.earliest = min(self.earliest or event_time, event_time)
        return True

    def queue_label(self, event_id: str, value: LabelValue, event_time: datetime,
                    label_time: datetime | None) -> None:
        """Hold the label of the event just published until it is due, then publish what is."""
        delay = self.options.label_delay_seconds
        if label_time is None and delay is not None:
            label_time = event_time + timedelta(seconds=delay)
        if label_time is not None:
            heapq.heappush(self.due, _DueLabel(label_time, self.client.events_published,
                                               event_id, value))
            self.release(self._now(), paced=False)
            return
        self.by_count.append((event_id, value, event_time))
        while len(self.by_count) > (self.options.label_delay_events or 0):
            self._publish_counted(*self.by_count.popleft())

    def finish(self) -> None:
        """Publish every label still waiting (paced unless stopped) and flush."""
        if self.due and not self.stop.is_set:
            self.release(max(self.due).at, paced=True)
        while self.by_count:
            self._publish_counted(*self.by_count.popleft())
        while self.due:
            label = heapq.heappop(self.due)
            self._publish_label(label.event_id, label.value, label.at)
        try:
            self.client.flush()
        except RuntimeError as error:
            raise BrokerUnavailable(str(error)) from error

    def summary(self) -> ReplaySummary:
        """What was read and published, and the span of data time of the events."""
        span = (self.reached - self.earliest).total_seconds() if (
            self.reached is not None and self.earliest is not None) else 0.0
        return ReplaySummary(self.read, self.client.events_published,
                             self.client.labels_published, self.bad,
                             self.clock() - self.started, self.stop.is_set, span)

    def _now(self) -> datetime:
        if self.reached is None:  # only called after an event was published
            raise RuntimeError("the data clock has not started")
        return self.reached

    def _publish_label(self, event_id: str, value: LabelValue, at: datetime) -> None:
        """Publish a label with ``at`` as its ``label_time``."""
        self.client.publish_label(Label(event_id=event_id, label_time=at, label=value))

    def _publish_counted(self, event_id: str, value: LabelValue, event_time: datetime) -> None:
        """Publish a label delayed by a count of events: it became known when the last of those
        events happened, the data clock now (never before its own event)."""
        at = max(event_time, self.reached) if self.reached is not None else event_time
        self._publish_label(event_id, value, at)


def replay_in_data_time(
    rows: Iterable[SourceRow],
    converter: RowConverter,
    client: Publisher,
    options: ReplayOptions,
    stop: StopSignal,
    progress: Progress | None,
    on_bad_row: Callable[[BadRow], None] | None,
    clock: Callable[[], float],
    wait: Callable[[float], bool],
) -> ReplaySummary:
    """Publish ``rows`` as events at their own times and their labels, as the module says.

    A row is converted whole (times and values) before it moves the data clock, so a bad row
    neither waits nor releases labels. It raises :class:`BadRow` after the labels of the events
    sent are published and everything is flushed, unless ``options.skip_bad``: then it is
    counted and passed to ``on_bad_row``. ``wait(seconds)`` sleeps and returns True when stopped.
    """
    replay = _Replay(client, options, stop, clock, wait)
    try:
        for row in rows:
            if stop.is_set or (options.limit is not None and replay.read >= options.limit):
                break
            try:
                times = converter.times(row)
                event, label = converter.convert(row, times.event_time)
            except BadRow as error:
                replay.read += 1
                replay.bad += 1
                if not options.skip_bad:
                    raise
                if on_bad_row is not None:
                    on_bad_row(error)
                continue
            if not replay.advance(event.event_time):
                break
            replay.read += 1
            client.publish_event(event)
            replay.queue_label(event.event_id, label, event.event_time, times.label_time)
            if progress is not None:
                progress.update(replay.read, client.events_published, client.labels_published,
                                clock() - replay.started)
    finally:
        replay.finish()
        if progress is not None:
            progress.update(replay.read, client.events_published, client.labels_published,
                            clock() - replay.started, force=True)
            progress.close()
    return replay.summary()
