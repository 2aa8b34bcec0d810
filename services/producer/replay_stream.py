"""Publish a replayed file: events in file order, each label N events or S seconds after its
event, as fast as possible or at a target rate.

:func:`replay_rows` is the loop (any client, clock and wait can be injected, so it runs without a
broker or sleeps in tests); :func:`replay_file` wires it to Kafka.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from schemas.events import Event, Label, LabelValue
from schemas.spec import PipelineSpec
from services.common.kafka import BrokerUnavailable, ensure_topics, wait_for_broker
from services.common.runtime import StopSignal
from services.common.settings import Settings
from services.producer.client import EventClient
from services.producer.progress import Progress
from services.producer.replay import BadRow, RowConverter, SourceRow, read_rows, source_of

MAX_BAD_ROWS_SHOWN = 10


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay. Label delay: ``label_delay_events`` (the label of the i-th event published
    goes right after event i+N; default 0) or ``label_delay_seconds``, not both. ``rate`` in
    events/s (``None``: as fast as possible). ``limit``: read at most that many rows. ``skip_bad``:
    count and report rows that cannot be converted instead of stopping at the first. Labels not
    yet due wait in memory: N of them, or those of the last S seconds of events."""

    label_delay_events: int | None = None
    label_delay_seconds: float | None = None
    rate: float | None = None
    limit: int | None = None
    skip_bad: bool = False

    def __post_init__(self) -> None:
        if self.label_delay_events is not None and self.label_delay_seconds is not None:
            raise ValueError("give a label delay in events or in seconds, not both")
        if self.label_delay_events is not None and self.label_delay_events < 0:
            raise ValueError(f"label delay must be >= 0 events, got {self.label_delay_events}")
        seconds = self.label_delay_seconds
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"label delay must be >= 0 seconds, got {seconds}")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a positive number of events/s, got {self.rate}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0 rows, got {self.limit}")


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay read and put on the bus."""

    rows: int
    events: int
    labels: int
    bad_rows: int
    seconds: float
    stopped: bool

    def describe(self, path: Path | str) -> str:
        """The final count line, e.g. ``replayed 10 events and 10 labels from x.csv in ...``."""
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        line = (f"replayed {self.events} events and {self.labels} labels from {path} "
                f"in {self.seconds:.1f}s ({rate:.0f} events/s)")
        if self.bad_rows:
            line += f"; skipped {self.bad_rows} bad row{'s' if self.bad_rows != 1 else ''}"
        return f"stopped early: {line}" if self.stopped else line


class Publisher(Protocol):
    """What the loop needs of :class:`~services.producer.client.EventClient`."""

    events_published: int
    labels_published: int

    def publish_event(self, event: Event) -> Event: ...

    def publish_label(self, label: Label) -> Label: ...

    def flush(self, timeout: float = ...) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


def replay_rows(
    rows: Iterable[SourceRow],
    converter: RowConverter,
    client: Publisher,
    options: ReplayOptions,
    stop: StopSignal,
    progress: Progress | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = _utc_now,
    wait: Callable[[float], bool] | None = None,
) -> ReplaySummary:
    """Publish ``rows`` as events (event time: publication time) and their labels.

    Events are paced on an absolute schedule (event k at ``start + k / rate`` on ``clock``), so
    pauses do not accumulate. When the rows end, or on a stop, the labels still pending are
    published (in time mode: at their due time unless stopped, then at once), so every event sent
    has its label, and everything is flushed. A bad row raises :class:`BadRow` after that
    clean-up unless ``options.skip_bad``, in which case it is counted and passed to ``on_bad_row``.
    ``wait(seconds)`` sleeps and returns True when stopped (default: ``stop.wait``).
    """
    sleep = wait if wait is not None else stop.wait
    started = clock()
    pending: deque[tuple[float, str, LabelValue]] = deque()
    delay_events = options.label_delay_events or 0
    delay_seconds = options.label_delay_seconds
    read = bad = 0

    def publish_label(event_id: str, value: LabelValue) -> None:
        client.publish_label(Label(event_id=event_id, label_time=now(), label=value))

    def publish_due_labels(until: float) -> bool:
        """Publish time-delayed labels as they fall due until ``until``; False if stopped."""
        while True:
            current = clock()
            if pending and pending[0][0] <= current:
                _, event_id, value = pending.popleft()
                publish_label(event_id, value)
                continue
            wake = min(until, pending[0][0]) if pending else until
            if wake <= current:
                return True
            if sleep(wake - current):
                return False

    def finish() -> None:
        if delay_seconds is not None and pending and not stop.is_set:
            publish_due_labels(pending[-1][0])
        while pending:
            _, event_id, value = pending.popleft()
            publish_label(event_id, value)
        try:
            client.flush()
        except RuntimeError as error:
            raise BrokerUnavailable(str(error)) from error

    try:
        for row in rows:
            if stop.is_set or (options.limit is not None and read >= options.limit):
                break
            due = started if options.rate is None else (
                started + client.events_published / options.rate)
            if delay_seconds is not None:
                if not publish_due_labels(due):
                    break
            elif due > clock() and sleep(due - clock()):
                break
            read += 1
            try:
                event, label = converter.convert(row, now())
            except BadRow as error:
                bad += 1
                if not options.skip_bad:
                    raise
                if on_bad_row is not None:
                    on_bad_row(error)
                continue
            client.publish_event(event)
            if delay_seconds is None:
                pending.append((0.0, event.event_id, label))
                while len(pending) > delay_events:
                    _, event_id, value = pending.popleft()
                    publish_label(event_id, value)
            else:
                pending.append((clock() + delay_seconds, event.event_id, label))
            if progress is not None:
                progress.update(read, client.events_published, client.labels_published,
                                clock() - started)
    finally:
        finish()
        if progress is not None:
            progress.update(read, client.events_published, client.labels_published,
                            clock() - started, force=True)
            progress.close()
    return ReplaySummary(read, client.events_published, client.labels_published, bad,
                         clock() - started, stop.is_set)


def replay_file(
    path: Path,
    spec: PipelineSpec,
    options: ReplayOptions,
    settings: Settings,
    stop: StopSignal,
    progress: Progress,
) -> ReplaySummary:
    """Replay ``path`` onto the deployment's ``events`` and ``labels`` topics (created if
    missing). The file and spec are checked before anything connects."""
    source_of(spec)
    converter = RowConverter(spec, str(path))
    rows = read_rows(path, converter.required_columns())
    wait_for_broker(settings.kafka, timeout=15)
    ensure_topics(settings.kafka, settings.topic_prefix, topics=settings.topics)
    client = EventClient.connect(settings, spec.entity_keys[0])
    shown = 0

    def report(error: BadRow) -> None:
        nonlocal shown
        shown += 1
        if shown <= MAX_BAD_ROWS_SHOWN:
            progress.note(f"skipped: {error}")
        elif shown == MAX_BAD_ROWS_SHOWN + 1:
            progress.note("skipped: ... (more bad rows; the count comes at the end)")

    return replay_rows(rows, converter, client, options, stop, progress, on_bad_row=report)
