"""The x axis of the report's charts: event time, or stream position when event time says little.

A run's events are drawn over event time when their times spread over at least
:data:`MIN_TIME_BUCKETS` buckets of the chosen width, so the curves have a shape. Otherwise (a
file replayed at full speed with publication times, which spans a second or two; or data whose
times are all equal) they are drawn over stream position: the events in the order they were in
the stream, counted from 0. Pure: no Kafka, no clock.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> choose_axis([t0 + timedelta(seconds=s) for s in range(5)], t0, 1.0)
'position'
>>> choose_axis([t0 + timedelta(seconds=s) for s in range(30)], t0, 1.0)
'event_time'
>>> nice_count(18_159)
500
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from schemas.predictions import Outcome, Prediction

AxisKind = Literal["event_time", "position"]
AxisChoice = Literal["auto", "time", "events"]

MIN_TIME_BUCKETS = 20
"""Fewest distinct event-time buckets for which a run is drawn over event time (a third of the
60 buckets the report aims for)."""


def choose_axis(times: Iterable[datetime], origin: datetime | None,
                bucket_seconds: float, choice: AxisChoice = "auto") -> AxisKind:
    """``event_time`` when ``times`` fall in at least :data:`MIN_TIME_BUCKETS` distinct buckets
    of ``bucket_seconds`` from ``origin`` (or ``choice`` is ``time``), else ``position`` (or
    ``choice`` is ``events``). A run without an origin has no events: ``event_time``."""
    if choice != "auto":
        return "event_time" if choice == "time" else "position"
    if origin is None:
        return "event_time"
    buckets = {int((moment - origin).total_seconds() // bucket_seconds) for moment in times}
    return "event_time" if len(buckets) >= MIN_TIME_BUCKETS else "position"


def nice_count(events: int, target_buckets: int = 60) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... events per bucket that cuts ``events`` into at
    most ``target_buckets`` buckets."""
    width = 1
    while True:
        for step in (1, 2, 5):
            if events <= target_buckets * width * step:
                return width * step
        width *= 10


class StreamPositions:
    """Where each event of a run was in the stream: its index (from 0) among the run's events
    ordered by event time, then by when it was first predicted (when it was learned, for an
    event known only from its outcomes), then by id.

    For a replay stamped with publication times this is the order of the file; for data with
    equal times, the order the model saw them in.
    """

    def __init__(self, predictions: Iterable[Prediction], outcomes: Iterable[Outcome]) -> None:
        keys: dict[str, tuple[datetime, datetime]] = {}
        for prediction in predictions:
            key = (prediction.event_time, prediction.predicted_at)
            if prediction.event_id not in keys or key < keys[prediction.event_id]:
                keys[prediction.event_id] = key
        for outcome in outcomes:
            keys.setdefault(outcome.event_id, (outcome.event_time, outcome.learned_at))
        ordered = sorted(keys, key=lambda event_id: (*keys[event_id], event_id))
        self._index = {event_id: index for index, event_id in enumerate(ordered)}
        self._times = [keys[event_id][0] for event_id in ordered]

    @property
    def count(self) -> int:
        """How many events the run has."""
        return len(self._times)

    def of(self, event_id: str) -> int:
        """The index of ``event_id`` (``KeyError`` for an event the run does not have)."""
        return self._index[event_id]

    def after(self, moment: datetime | None, observations: int | None = None) -> float:
        """Where something that happened on the event at ``moment`` sits: the number of events
        up to and including it (``1`` after the first event).

        When several events share ``moment``, ``observations`` (an alert's ``stream_position``)
        picks among them; without it, the last one. A moment between events sits after those
        before it. Without a moment, ``observations`` alone places it (clamped to the run).
        """
        if moment is None:
            return float(min(max(observations or 0, 0), self.count))
        first, last = bisect_left(self._times, moment), bisect_right(self._times, moment)
        if first == last:
            return float(first)
        if observations is None:
            return float(last)
        return float(min(max(observations, first + 1), last))

    @property
    def times(self) -> Sequence[datetime]:
        """The event times in stream order."""
        return self._times
