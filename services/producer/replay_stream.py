"""Publish a replayed file: events in file order, each label N events or S seconds after its
event, as fast as possible or at a target rate.

:func:`replay_rows` is the loop (any client, clock and wait can be injected, so it runs without a
broker or sleeps in tests); :func:`replay_file` wires it to Kafka. Here an event's time is the
moment it is published; a file whose spec names a time column keeps its own times instead, in
the loop of :mod:`services.producer.replay_data_time`, which :func:`replay_rows` hands it to.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from schemas.events import Label, LabelValue
from schemas.spec import PipelineSpec
from services.common.kafka import BrokerUnavailable, ensure_topics, wait_for_broker
from services.common.runtime import StopSignal
from services.common.settings import Settings
from services.producer.client import EventClient
from services.producer.progress import Progress
from services.producer.replay import BadRow, RowConverter, SourceRow, read_rows, source_of
from services.producer.replay_data_time import replay_in_data_time
from services.producer.replay_options import Publisher, ReplayOptions, ReplaySummary

__all__ = ["Publisher", "ReplayOptions", "ReplaySummary", "replay_file", "replay_rows"]

MAX_BAD_ROWS_SHOWN = 10


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
    """Publish ``rows`` as events (event time: publication time) and their labels; hand them to
    :func:`~services.producer.replay_data_time.replay_in_data_time` when ``converter`` keeps the
    file's own times. :class:`~services.producer.replay.ReplayError` for options the spec's
    source cannot honour (see :meth:`ReplayOptions.check_against`).

    Events are paced on an absolute schedule (event k at ``start + k / rate`` on ``clock``), so
    pauses do not accumulate. When the rows end, or on a stop, the labels still pending are
    published (in time mode: at their due time unless stopped, then at once), so every event sent
    has its label, and everything is flushed. A bad row raises :class:`BadRow` after that
    clean-up unless ``options.skip_bad``, in which case it is counted and passed to ``on_bad_row``.
    ``wait(seconds)`` sleeps and returns True when stopped (default: ``stop.wait``).
    """
    options.check_against(converter)
    sleep = wait if wait is not None else stop.wait
    if converter.keeps_data_time:
        return replay_in_data_time(rows, converter, client, options, stop, progress, on_bad_row,
                                   clock, sleep)
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
    options.check_against(converter)
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
