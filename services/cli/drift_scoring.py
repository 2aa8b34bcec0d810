"""Score drift alerts against a run's ground truth: pure logic, no Kafka.

Input: the run's :class:`~schemas.truth.GroundTruth`, how many events the run had, and its
alerts, each placed on the stream as a :class:`PlacedAlert` (the index and time of the newest
event the pipeline had taken in when the alert was raised).

How alerts meet drifts:

* Every drift point ``d`` of the truth with a drift kind (covariate, label, concept) has a
  *window*: from its first event ``d.index`` to the end of its phase plus ``grace`` events
  (detection lags, so an alert just after the phase still answers it), cut at the end of the run.
* ``d`` is *detected* by the first alert of its kind inside its window. Its delay is counted from
  ``d.index`` (for a gradual drift, the start of the ramp): in events (``alert.index - d.index``)
  and in seconds of event time. An alert inside the windows of two drifts of its kind (grace
  reaching into the next phase) belongs to the later drift. Concept alerts are also kept per
  model (each model's error stream has its own detector): ``by_model`` gives each model's delay.
  Other kinds that fired inside the window are listed in ``also`` (a concept drift also moves
  the label rate and the scores, for instance).
* A *false alarm* is any alert, of any kind, raised in a stationary phase outside every drift's
  window (and after ``warmup`` events). A run without phases (no timeline) is stationary
  throughout. The false-alarm rate is per 10,000 of those stationary events.

>>> from datetime import UTC, datetime
>>> truth = GroundTruth(scenario="s", start=datetime(2026, 1, 1, tzinfo=UTC), interval_seconds=1)
>>> score_run(truth, [], events=5000).stationary_events
5000
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from schemas.alerts import DriftAlert, DriftKind
from schemas.truth import DriftPoint, GroundTruth, PhaseSpan

DEFAULT_GRACE_EVENTS = 2000
"""Events after the end of a drift's phase in which an alert still counts for that drift."""


@dataclass(frozen=True)
class PlacedAlert:
    """An alert and where the stream was when it was raised: the 0-based index of the newest
    event taken in, and that moment in event time."""

    alert: DriftAlert
    index: int
    time: datetime

    def describe(self) -> str:
        """``ADWIN on error:logreg``: the detector and what it watched."""
        return f"{self.alert.detector} on {self.alert.target}"

    def to_json(self) -> dict[str, object]:
        """The alert's essentials and its place, JSON-ready."""
        alert = self.alert
        return {"kind": alert.kind, "detector": alert.detector, "target": alert.target,
                "model": alert.model, "index": self.index, "time": self.time.isoformat(),
                "statistic": alert.statistic, "threshold": alert.threshold}


@dataclass(frozen=True)
class DriftResult:
    """Whether and how late one true drift was detected."""

    drift: DriftPoint
    window_end: int
    reached: bool
    alert: PlacedAlert | None = None
    delay_events: int | None = None
    delay_seconds: float | None = None
    by_model: dict[str, int] = field(default_factory=dict)
    also: tuple[str, ...] = ()

    @property
    def detected(self) -> bool:
        """Whether an alert of the drift's kind answered it."""
        return self.alert is not None

    def to_json(self) -> dict[str, object]:
        """The result, JSON-ready."""
        drift = self.drift
        return {
            "phase": drift.phase, "kind": drift.drift_kind, "transition": drift.transition,
            "start_index": drift.index, "width": drift.width, "window_end": self.window_end,
            "reached": self.reached, "detected": self.detected,
            "delay_events": self.delay_events, "delay_seconds": self.delay_seconds,
            "alert": None if self.alert is None else self.alert.to_json(),
            "by_model": self.by_model, "also": list(self.also),
        }


@dataclass(frozen=True)
class RunScore:
    """Every true drift's result and the false alarms of one run."""

    events: int
    drifts: tuple[DriftResult, ...]
    stationary_events: int
    false_alarms: tuple[PlacedAlert, ...]

    @property
    def false_alarms_per_10k(self) -> float | None:
        """False alarms per 10,000 stationary events (``None`` without stationary events)."""
        if not self.stationary_events:
            return None
        return len(self.false_alarms) * 10_000 / self.stationary_events

    def false_alarms_by_kind(self) -> dict[str, int]:
        """False alarms counted by alert kind."""
        return dict(Counter(placed.alert.kind for placed in self.false_alarms))

    def to_json(self) -> dict[str, object]:
        """The score, JSON-ready."""
        return {
            "events": self.events, "drifts": [result.to_json() for result in self.drifts],
            "stationary_events": self.stationary_events,
            "false_alarms": len(self.false_alarms),
            "false_alarms_per_10k": self.false_alarms_per_10k,
            "false_alarms_by_kind": self.false_alarms_by_kind(),
            "false_alarm_alerts": [placed.to_json() for placed in self.false_alarms],
        }


def score_run(
    truth: GroundTruth, alerts: list[PlacedAlert], events: int,
    grace: int = DEFAULT_GRACE_EVENTS, warmup: int = 0,
) -> RunScore:
    """Score the ``alerts`` of a run of ``events`` events against ``truth`` (see the module)."""
    phases = _phases(truth, events)
    drifts = [d for d in truth.drift_points if d.drift_kind is not None]
    windows = {d.index: (d.index, min(_phase_end(phases, d) + grace, events)) for d in drifts}
    owners = _owners(drifts, windows, alerts)
    results = tuple(
        _result(d, windows[d.index], [a for a, owner in owners if owner is d], alerts, events)
        for d in drifts
    )
    stationary = _stationary_indexes(phases, list(windows.values()), warmup, events)
    false_alarms = tuple(
        placed for placed in sorted(alerts, key=lambda placed: placed.index)
        if _inside(stationary, placed.index)
    )
    return RunScore(events, results, sum(end - start for start, end in stationary),
                    false_alarms)


def _phases(truth: GroundTruth, events: int) -> list[PhaseSpan]:
    """The phases the run went through; the last one lasts until the run ends."""
    if not truth.phases:
        return [PhaseSpan(name="stationary", kind="stationary", start_index=0,
                          end_index=max(events, 1), start_time=truth.start)]
    phases = [phase for phase in truth.phases if phase.start_index < events]
    last = phases[-1]
    if last.end_index < events:
        phases[-1] = last.model_copy(update={"end_index": events})
    return phases


def _phase_end(phases: list[PhaseSpan], drift: DriftPoint) -> int:
    for phase in phases:
        if phase.start_index == drift.index:
            return phase.end_index
    return drift.end_index


def _owners(
    drifts: list[DriftPoint], windows: dict[int, tuple[int, int]], alerts: list[PlacedAlert],
) -> list[tuple[PlacedAlert, DriftPoint | None]]:
    """Each alert with the latest drift of its kind whose window holds it (or ``None``)."""
    owned: list[tuple[PlacedAlert, DriftPoint | None]] = []
    for placed in alerts:
        holders = [d for d in drifts if d.drift_kind == placed.alert.kind
                   and windows[d.index][0] <= placed.index < windows[d.index][1]]
        owned.append((placed, max(holders, key=lambda d: d.index) if holders else None))
    return owned


def _result(
    drift: DriftPoint, window: tuple[int, int], own: list[PlacedAlert],
    alerts: list[PlacedAlert], events: int,
) -> DriftResult:
    start, end = window
    if drift.index >= events:
        return DriftResult(drift, end, reached=False)
    own = sorted(own, key=lambda placed: placed.index)
    kind: DriftKind | None = drift.drift_kind
    also = sorted({placed.alert.kind for placed in alerts
                   if start <= placed.index < end and placed.alert.kind != kind})
    if not own:
        return DriftResult(drift, end, reached=True, also=tuple(also))
    first = own[0]
    by_model: dict[str, int] = {}
    for placed in own:
        if placed.alert.model is not None:
            by_model.setdefault(placed.alert.model, placed.index - drift.index)
    return DriftResult(
        drift, end, reached=True, alert=first, delay_events=first.index - drift.index,
        delay_seconds=(first.time - drift.event_time).total_seconds(), by_model=by_model,
        also=tuple(also),
    )


def _stationary_indexes(
    phases: list[PhaseSpan], windows: list[tuple[int, int]], warmup: int, events: int,
) -> list[tuple[int, int]]:
    """The stretches ``[start, end)`` of stationary phases outside every drift window."""
    stretches = [(max(p.start_index, warmup), min(p.end_index, events))
                 for p in phases if p.kind == "stationary"]
    for low, high in windows:
        cut: list[tuple[int, int]] = []
        for start, end in stretches:
            cut += [(start, min(end, low)), (max(start, high), end)]
        stretches = cut
    return [(start, end) for start, end in stretches if start < end]


def _inside(stretches: list[tuple[int, int]], index: int) -> bool:
    return any(start <= index < end for start, end in stretches)


@dataclass(frozen=True)
class DriftSummary:
    """One drift of the timeline over several runs (seeds): how often and how late detected."""

    phase: str
    kind: str
    transition: str
    start_index: int
    reached: int
    delays_events: tuple[int | None, ...]
    delays_seconds: tuple[float | None, ...]
    detectors: tuple[str, ...]

    @property
    def detected(self) -> int:
        """Runs in which the drift was detected."""
        return sum(delay is not None for delay in self.delays_events)

    @property
    def median_delay_events(self) -> float | None:
        """Median delay in events over the runs that detected it."""
        return _median([float(d) for d in self.delays_events if d is not None])

    @property
    def median_delay_seconds(self) -> float | None:
        """Median delay in seconds over the runs that detected it."""
        return _median([d for d in self.delays_seconds if d is not None])

    def to_json(self) -> dict[str, object]:
        """The summary, JSON-ready."""
        return {"phase": self.phase, "kind": self.kind, "transition": self.transition,
                "start_index": self.start_index, "reached": self.reached,
                "detected": self.detected, "delays_events": list(self.delays_events),
                "delays_seconds": list(self.delays_seconds),
                "median_delay_events": self.median_delay_events,
                "median_delay_seconds": self.median_delay_seconds,
                "detectors": list(self.detectors)}


def summarise(scores: list[RunScore]) -> list[DriftSummary]:
    """Each drift of the runs' common timeline, over all runs that reached it (same order as
    the truth). Runs of different timelines cannot be summarised together."""
    if not scores:
        return []
    layouts = {tuple((r.drift.phase, r.drift.index) for r in s.drifts) for s in scores}
    if len(layouts) != 1:
        raise ValueError("runs of different timelines cannot be summarised together")
    summaries = []
    for position, first in enumerate(scores[0].drifts):
        results = [score.drifts[position] for score in scores if score.drifts[position].reached]
        summaries.append(DriftSummary(
            phase=first.drift.phase, kind=str(first.drift.drift_kind),
            transition=first.drift.transition, start_index=first.drift.index,
            reached=len(results),
            delays_events=tuple(r.delay_events for r in results),
            delays_seconds=tuple(r.delay_seconds for r in results),
            detectors=tuple(r.alert.describe() for r in results if r.alert is not None),
        ))
    return summaries


def false_alarm_rate(scores: list[RunScore]) -> tuple[int, int, float | None]:
    """False alarms and stationary events summed over runs, and the rate per 10,000 events."""
    alarms = sum(len(score.false_alarms) for score in scores)
    events = sum(score.stationary_events for score in scores)
    return alarms, events, (alarms * 10_000 / events if events else None)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
