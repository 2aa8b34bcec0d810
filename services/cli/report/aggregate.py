"""Turn a run's records into the figures of its report. Pure: no Kafka, no files, no clock.

The x axis (:mod:`.axis`) is event time, in seconds since the run's ``origin`` (the earliest
event time of its predictions and outcomes), cut into buckets of ``bucket_seconds``; or, when
event time spans too few buckets to draw a curve, stream position (events, counted from 0) cut
into buckets of a round number of events. Accuracy counts judged outcomes (``correct`` not
None) of each model. Latencies and label delays count each event once: latencies from champion
predictions, label delays from the first outcome of each event.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate

from schemas.alerts import DriftAlert
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction
from schemas.truth import GroundTruth
from services.cli.report.axis import (
    AxisChoice,
    AxisKind,
    StreamPositions,
    choose_axis,
    nice_count,
)
from services.cli.report.estimate import estimated_accuracy
from services.cli.report.records import RunRecords
from services.cli.report.stats import Histogram, Percentiles, histogram, nice_bucket_seconds

LABEL_DELAY_BINS = 30


@dataclass(frozen=True)
class AccuracyPoint:
    """Accuracy of one model over the bucket starting at ``start`` on the axis (seconds since
    origin, or events)."""

    start: float
    judged: int
    correct: int

    @property
    def accuracy(self) -> float:
        """Share of the bucket's judged outcomes that were correct (buckets have judged >= 1)."""
        return self.correct / self.judged


@dataclass(frozen=True)
class ModelSummary:
    """One model over the whole run: its outcomes, how many were judged and right, its versions."""

    model: str
    outcomes: int
    judged: int
    correct: int
    versions: tuple[int, ...]

    @property
    def accuracy(self) -> float | None:
        """Share of judged outcomes that were correct; ``None`` when none were judged."""
        return self.correct / self.judged if self.judged else None


@dataclass(frozen=True)
class LatencyPoint:
    """Latency percentiles (seconds) of the champion predictions of one bucket of the axis."""

    start: float
    event_to_prediction: Percentiles
    features_to_prediction: Percentiles


@dataclass(frozen=True)
class Marker:
    """Something that happened at ``at`` on the axis (seconds since origin, or events; ``None``
    when the run has no origin). ``category`` is a drift kind or a model-event kind; ``label``
    says what it was."""

    at: float | None
    category: str
    label: str


@dataclass(frozen=True)
class PhaseBand:
    """A drift phase of the ground truth, ``start`` to ``end`` on the axis."""

    name: str
    kind: str
    start: float
    end: float


@dataclass(frozen=True)
class LabelDelays:
    """How long labels took: a histogram of the labels that came, and how many timed out."""

    labelled: Percentiles
    timed_out: int
    histogram: Histogram


@dataclass(frozen=True)
class RunSummary:
    """Everything the report shows, computed from one run's records.

    ``axis`` is what the charts are drawn over; ``axis_span`` and ``bucket`` are its length and
    bucket width in its unit (seconds of event time, or events). ``span_seconds`` and
    ``bucket_seconds`` are those of event time whichever the axis.
    """

    origin: datetime | None
    span_seconds: float
    bucket_seconds: float
    predictions: int
    outcomes: int
    events: int
    models: tuple[ModelSummary, ...]
    accuracy: dict[str, tuple[AccuracyPoint, ...]]
    event_to_prediction: Percentiles
    features_to_prediction: Percentiles
    latency: tuple[LatencyPoint, ...]
    label_delays: LabelDelays
    alerts: tuple[DriftAlert, ...]
    model_events: tuple[ModelEvent, ...]
    markers: tuple[Marker, ...]
    dead_letters: tuple[tuple[str, str, int], ...]
    unreadable: dict[str, int]
    phases: tuple[PhaseBand, ...]
    axis: AxisKind = "event_time"
    axis_span: float = 0.0
    bucket: float = 1.0
    estimated: tuple[tuple[float, float], ...] = ()
    """(bucket start, mean accuracy the sink estimated for the champion's predictions of that
    bucket when they were made, before their labels came)."""


def summarise(records: RunRecords, bucket_seconds: float | None = None,
              truth: GroundTruth | None = None, axis: AxisChoice = "auto") -> RunSummary:
    """The report's figures for ``records``.

    ``bucket_seconds`` fixes the width of the time buckets; by default a readable width that
    cuts the run into at most 60. On the stream position axis it is a number of events instead
    (rounded, at least 1), by default a round number giving at most 60 buckets. ``axis``
    forces the axis (``time`` or ``events``); ``auto`` lets :func:`.axis.choose_axis` decide.
    ``truth`` adds the non-stationary phases of a generated run. Raises ``ValueError`` when
    ``bucket_seconds`` is not positive.
    """
    if bucket_seconds is not None and bucket_seconds <= 0:
        raise ValueError(f"bucket width must be positive, got {bucket_seconds}")
    times = [p.event_time for p in records.predictions] + [o.event_time for o in records.outcomes]
    origin = min(times, default=None)
    span = (max(times) - origin).total_seconds() if origin is not None else 0.0
    width = bucket_seconds or nice_bucket_seconds(span)
    kind = choose_axis(times, origin, width, axis)
    champions = [p for p in records.predictions if p.role == "champion"]
    places = _Places(records, origin, kind, span, width, bucket_seconds)
    accuracy: dict[str, tuple[AccuracyPoint, ...]] = {}
    estimated: tuple[tuple[float, float], ...] = ()
    latency: tuple[LatencyPoint, ...] = ()
    phases: tuple[PhaseBand, ...] = ()
    if origin is not None:
        accuracy = _accuracy(records.outcomes, places.of_outcome, places.bucket)
        estimated = estimated_accuracy(records, places.of_prediction, places.bucket)
        latency = _latency(champions, places.of_prediction, places.bucket)
        phases = _phase_bands(truth, places.at) if truth is not None else ()
    return RunSummary(
        origin=origin, span_seconds=span, bucket_seconds=width,
        predictions=len(records.predictions), outcomes=len(records.outcomes),
        events=len({p.event_id for p in records.predictions}),
        models=model_summaries(records.outcomes),
        accuracy=accuracy,
        event_to_prediction=Percentiles.of([_event_latency(p) for p in champions]),
        features_to_prediction=Percentiles.of([_features_latency(p) for p in champions]),
        latency=latency,
        label_delays=label_delays(records.outcomes),
        alerts=tuple(sorted(records.alerts, key=_alert_time)),
        model_events=tuple(sorted(records.model_events, key=lambda event: event.at)),
        markers=(markers(records.alerts, records.model_events, origin, records.outcomes)
                 if kind == "event_time" or origin is None else
                 _position_markers(records, places.positions)),
        dead_letters=dead_letter_counts(records),
        unreadable=dict(sorted(records.unreadable.items())),
        phases=phases,
        axis=kind, axis_span=places.span, bucket=places.bucket, estimated=estimated,
    )


class _Places:
    """Where records sit on the chosen axis, and that axis' span and bucket width."""

    def __init__(self, records: RunRecords, origin: datetime | None, kind: AxisKind,
                 span_seconds: float, bucket_seconds: float, asked: float | None) -> None:
        self.origin, self.kind = origin, kind
        self.positions = (StreamPositions(records.predictions, records.outcomes)
                          if kind == "position" else None)
        if self.positions is None:
            self.span, self.bucket = span_seconds, bucket_seconds
        else:
            self.span = float(self.positions.count)
            self.bucket = float(max(round(asked), 1) if asked else nice_count(
                self.positions.count))

    def at(self, moment: datetime) -> float:
        """Where ``moment`` sits: seconds since origin, or events up to it."""
        if self.positions is not None:
            return self.positions.after(moment)
        return _seconds(moment, self.origin) if self.origin is not None else 0.0

    def of_outcome(self, outcome: Outcome) -> float:
        return self._of(outcome.event_id, outcome.event_time)

    def of_prediction(self, prediction: Prediction) -> float:
        return self._of(prediction.event_id, prediction.event_time)

    def _of(self, event_id: str, event_time: datetime) -> float:
        if self.positions is not None:
            return float(self.positions.of(event_id))
        return self.at(event_time)


def model_summaries(outcomes: Iterable[Outcome]) -> tuple[ModelSummary, ...]:
    """Per model, in order of first outcome: outcomes, judged, correct and versions seen."""
    counts: dict[str, list[int]] = {}
    versions: defaultdict[str, set[int]] = defaultdict(set)
    for outcome in outcomes:
        tally = counts.setdefault(outcome.model, [0, 0, 0])
        tally[0] += 1
        if outcome.correct is not None:
            tally[1] += 1
            tally[2] += int(outcome.correct)
        versions[outcome.model].add(outcome.model_version)
    return tuple(ModelSummary(model, total, judged, correct, tuple(sorted(versions[model])))
                 for model, (total, judged, correct) in counts.items())


def accuracy_over_time(outcomes: Iterable[Outcome], origin: datetime,
                       bucket_seconds: float) -> dict[str, tuple[AccuracyPoint, ...]]:
    """Per model, the accuracy of each event-time bucket that has judged outcomes, in order."""
    return _accuracy(outcomes, lambda outcome: _seconds(outcome.event_time, origin),
                     bucket_seconds)


def latency_over_time(champions: Iterable[Prediction], origin: datetime,
                      bucket_seconds: float) -> tuple[LatencyPoint, ...]:
    """Latency percentiles of the given predictions per event-time bucket, in order."""
    return _latency(champions, lambda prediction: _seconds(prediction.event_time, origin),
                    bucket_seconds)


def _accuracy(outcomes: Iterable[Outcome], place: Callable[[Outcome], float],
              width: float) -> dict[str, tuple[AccuracyPoint, ...]]:
    """Per model, the accuracy of each bucket of ``width`` (outcomes placed by ``place``)."""
    tallies: defaultdict[str, defaultdict[int, list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0]))
    for outcome in outcomes:
        if outcome.correct is None:
            continue
        tally = tallies[outcome.model][int(place(outcome) // width)]
        tally[0] += 1
        tally[1] += int(outcome.correct)
    return {
        model: tuple(AccuracyPoint(index * width, judged, correct)
                     for index, (judged, correct) in sorted(buckets.items()))
        for model, buckets in tallies.items()
    }


def _latency(champions: Iterable[Prediction], place: Callable[[Prediction], float],
             width: float) -> tuple[LatencyPoint, ...]:
    """Latency percentiles per bucket of ``width`` (predictions placed by ``place``)."""
    buckets: defaultdict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for prediction in champions:
        event, features = buckets[int(place(prediction) // width)]
        event.append(_event_latency(prediction))
        features.append(_features_latency(prediction))
    return tuple(LatencyPoint(index * width, Percentiles.of(event), Percentiles.of(feat))
                 for index, (event, feat) in sorted(buckets.items()))


def label_delays(outcomes: Iterable[Outcome], bins: int = LABEL_DELAY_BINS) -> LabelDelays:
    """Label delays of the first outcome of each event: labels that came, and timeouts."""
    seen: set[str] = set()
    delays: list[float] = []
    timed_out = 0
    for outcome in outcomes:
        if outcome.event_id in seen:
            continue
        seen.add(outcome.event_id)
        if outcome.timed_out:
            timed_out += 1
        else:
            delays.append(outcome.label_delay_seconds)
    return LabelDelays(Percentiles.of(delays), timed_out, histogram(delays, bins))


def markers(alerts: Iterable[DriftAlert], events: Iterable[ModelEvent],
            origin: datetime | None, outcomes: Sequence[Outcome] = ()) -> tuple[Marker, ...]:
    """A marker per drift alert and per model event, on the event-time axis.

    An alert sits at its ``event_time`` (else when it was detected). A model event carries only
    the wall-clock time it happened (``at``), which a pipeline running behind its events would
    place too late: it sits at the latest event time learned by then (the ``event_time`` of the
    outcomes with ``learned_at <= at``), or at ``at`` when no outcome was learned before it.
    """
    found = [Marker(_since(_alert_time(alert), origin), alert.kind,
                    f"{alert.kind} drift: {alert.detector} on {alert.target}")
             for alert in alerts]
    learned = stream_clock(outcomes)
    found += [Marker(_since(learned(event.at) or event.at, origin), event.kind,
                     f"{event.kind.replace('_', ' ')}: {event.model} v{event.model_version}")
              for event in events]
    return tuple(sorted(found, key=lambda marker: (marker.at is None, marker.at or 0.0)))


def _position_markers(records: RunRecords,
                      positions: StreamPositions | None) -> tuple[Marker, ...]:
    """The markers of :func:`markers` on the stream position axis: an alert after the event it
    fired on (its ``event_time``, with its ``stream_position`` to choose among events of equal
    time), a model event after the latest event learned by then."""
    if positions is None:
        return ()
    found = [Marker(positions.after(alert.event_time, alert.stream_position), alert.kind,
                    f"{alert.kind} drift: {alert.detector} on {alert.target}")
             for alert in records.alerts]
    learned = stream_clock(records.outcomes)
    found += [Marker(positions.after(learned(event.at) or event.at), event.kind,
                     f"{event.kind.replace('_', ' ')}: {event.model} v{event.model_version}")
              for event in records.model_events]
    return tuple(sorted(found, key=lambda marker: marker.at or 0.0))


def stream_clock(outcomes: Sequence[Outcome]) -> Callable[[datetime], datetime | None]:
    """A function from a wall-clock time to the latest event time learned by then (``None``
    before the first outcome was learned)."""
    ordered = sorted(outcomes, key=lambda outcome: outcome.learned_at)
    moments = [outcome.learned_at for outcome in ordered]
    latest = list(accumulate((outcome.event_time for outcome in ordered), max))

    def event_time_at(moment: datetime) -> datetime | None:
        index = bisect_right(moments, moment)
        return latest[index - 1] if index else None

    return event_time_at


def dead_letter_counts(records: RunRecords) -> tuple[tuple[str, str, int], ...]:
    """``(source, reason, count)`` of the dead letters, most frequent first."""
    counts: defaultdict[tuple[str, str], int] = defaultdict(int)
    for letter in records.dead_letters:
        counts[(letter.source, letter.reason)] += 1
    return tuple((source, reason, count) for (source, reason), count
                 in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def phase_bands(truth: GroundTruth, origin: datetime) -> tuple[PhaseBand, ...]:
    """The ground truth's non-stationary phases, placed on the run's time axis."""
    return _phase_bands(truth, lambda moment: _seconds(moment, origin))


def _phase_bands(truth: GroundTruth,
                 place: Callable[[datetime], float]) -> tuple[PhaseBand, ...]:
    bands = []
    for phase in truth.phases:
        if phase.kind == "stationary":
            continue
        end = truth.start + timedelta(seconds=phase.end_index * truth.interval_seconds)
        bands.append(PhaseBand(phase.name, phase.kind, place(phase.start_time), place(end)))
    return tuple(bands)


def _alert_time(alert: DriftAlert) -> datetime:
    return alert.event_time if alert.event_time is not None else alert.detected_at


def _event_latency(prediction: Prediction) -> float:
    return (prediction.predicted_at - prediction.event_time).total_seconds()


def _features_latency(prediction: Prediction) -> float:
    return (prediction.predicted_at - prediction.features_at).total_seconds()


def _seconds(moment: datetime, origin: datetime) -> float:
    return (moment - origin).total_seconds()


def _since(moment: datetime, origin: datetime | None) -> float | None:
    return _seconds(moment, origin) if origin is not None else None
