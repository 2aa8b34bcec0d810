"""``streamml evaluate-drift --synthetic``: drift detection on standard synthetic streams.

Every stream of :func:`~services.cli.synth_streams.default_recipes` (SEA, Agrawal, Hyperplane,
STAGGER; stationary, abrupt, gradual, incremental) runs under every label timing of
:data:`~services.cli.synth_streams.TIMINGS` (immediate, delayed, implicit negatives) and several
seeds through the features, model and drift logic in this process
(:func:`~services.cli.pipeline_in_process.run_in_process`: the real ``DriftHandler`` with the
spec's default monitors, fed the feature vectors and outcomes the model service makes, the
``ModelHandler`` learning each label when it comes and each implicit negative when its window
closes). Each run is scored by :func:`~services.cli.drift_scoring.score_run` against the stream's
known change points, with a grace of :data:`~services.cli.drift_scoring.DEFAULT_GRACE_EVENTS`
events plus the timing's label lag (:func:`grace_for`).

What a :class:`Row` (one stream under one timing, over its seeds) reports:

* ``detected`` of ``changes``: change points with a concept alert between the change and the end
  of its grace window; ``delays``: for each detected one, events from the change (the start of
  the ramp when gradual) to the first such alert, counted on the event stream (so a label lag is
  part of the delay);
* false alarms by kind (concept, covariate, label, prediction): alerts outside every change's
  grace window (any kind inside it answers the change), per 100,000 of the events outside those
  windows. On a stationary stream that is every alert over every event.

Runs are independent and seeded, so the figures do not depend on ``--jobs``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from services.cli.drift_scoring import DEFAULT_GRACE_EVENTS, PlacedAlert, RunScore, score_run
from services.cli.synth_streams import LabelTiming, StreamRecipe, SynthScenario, spec_for

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
"""Event time of every run's first event; the pipeline runs at one event per second."""
KINDS = ("concept", "covariate", "label", "prediction")
PER_EVENTS = 100_000
TARGET_DELAY_EVENTS = 300
"""The issue's target: an abrupt concept drift found within this many events (median)."""


def grace_for(timing: LabelTiming) -> int:
    """Events after a change in which an alert still answers it: the default grace plus the
    events before its labels can tell (the fixed delay; the window for implicit negatives)."""
    lag = {"immediate": 0.0, "delayed": timing.delay, "implicit": timing.window}[timing.name]
    return DEFAULT_GRACE_EVENTS + math.ceil(lag)


@dataclass(frozen=True)
class Case:
    """One run: a stream, a label timing, a seed."""

    recipe: StreamRecipe
    timing: LabelTiming
    seed: int


@dataclass(frozen=True)
class CaseResult:
    """What one run produced and how it scored."""

    case: Case
    score: RunScore
    alerts: tuple[PlacedAlert, ...]
    labels: int
    model_events: dict[str, int]
    dead_letters: dict[str, int]
    wall_seconds: float

    def to_json(self) -> dict[str, object]:
        """The run, JSON-ready (every alert included)."""
        case = self.case
        return {"stream": case.recipe.name, "timing": case.timing.name, "seed": case.seed,
                "events": self.score.events, "labels": self.labels,
                "wall_seconds": round(self.wall_seconds, 2), "model_events": self.model_events,
                "dead_letters": self.dead_letters, "score": self.score.to_json(),
                "alerts": [placed.to_json() for placed in self.alerts]}


def plan(recipes: Iterable[StreamRecipe], timings: Iterable[LabelTiming], seeds: list[int],
         stationary_seeds: list[int]) -> list[Case]:
    """Every run, in report order: each stream under each timing with each of its seeds
    (``stationary_seeds`` for stationary streams, ``seeds`` for the others)."""
    timings = list(timings)
    return [Case(recipe, timing, seed) for recipe in recipes for timing in timings
            for seed in (stationary_seeds if recipe.stationary else seeds)]


def run_case(case: Case) -> CaseResult:
    """Run one case through the pipeline in process and score it."""
    from services.cli.pipeline_in_process import run_in_process

    scenario = SynthScenario(case.recipe, case.timing, case.seed)
    run = run_in_process(spec_for(case.recipe, case.timing), scenario, case.recipe.events, 1.0,
                         START)
    score = score_run(run.truth, run.alerts, run.events, grace_for(case.timing))
    return CaseResult(case, score, tuple(run.alerts), run.labels, run.model_events,
                      run.dead_letters, run.wall_seconds)


def run_cases(cases: list[Case], jobs: int,
              on_done: Callable[[CaseResult], None] | None = None,
              runner: Callable[[Case], CaseResult] = run_case) -> list[CaseResult]:
    """Run ``cases`` on ``jobs`` processes (in this one when 1); results in ``cases``' order."""
    if jobs <= 1:
        results = []
        for case in cases:
            results.append(runner(case))
            if on_done is not None:
                on_done(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(runner, case) for case in cases]
        done = []
        for future in futures:
            done.append(future.result())
            if on_done is not None:
                on_done(done[-1])
        return done


def percentile(values: list[int], share: float) -> int | None:
    """The nearest-rank percentile: the smallest value with at least ``share`` of the values at
    or below it (``None`` for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


@dataclass(frozen=True)
class Row:
    """One stream under one label timing, over its seeds."""

    stream: str
    change: str
    timing: str
    seeds: tuple[int, ...]
    events: int
    changes: int
    delays: tuple[int, ...]
    clear_events: int
    false_alarms: dict[str, int]

    @property
    def detected(self) -> int:
        """Change points detected (over all seeds)."""
        return len(self.delays)

    @property
    def median_delay(self) -> float | None:
        """Median delay in events of the detected change points."""
        return statistics.median(self.delays) if self.delays else None

    @property
    def p90_delay(self) -> int | None:
        """90th percentile (nearest rank) of the delays in events."""
        return percentile(list(self.delays), 0.9)

    def per_100k(self, kind: str) -> float | None:
        """False alarms of ``kind`` per 100,000 events outside the grace windows."""
        if not self.clear_events:
            return None
        return self.false_alarms.get(kind, 0) * PER_EVENTS / self.clear_events

    def to_json(self) -> dict[str, object]:
        """The row, JSON-ready."""
        return {"stream": self.stream, "change": self.change, "timing": self.timing,
                "seeds": list(self.seeds), "events": self.events, "changes": self.changes,
                "detected": self.detected, "delays": list(self.delays),
                "median_delay": self.median_delay, "p90_delay": self.p90_delay,
                "clear_events": self.clear_events, "false_alarms": self.false_alarms,
                "false_alarms_per_100k": {kind: self.per_100k(kind) for kind in KINDS}}


def rows_of(results: list[CaseResult]) -> list[Row]:
    """One :class:`Row` per stream and timing, in the order the results first name them."""
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for result in results:
        groups.setdefault((result.case.recipe.name, result.case.timing.name), []).append(result)
    rows = []
    for (stream, timing), group in groups.items():
        alarms: Counter[str] = Counter()
        for result in group:
            alarms.update(placed.alert.kind for placed in result.score.false_alarms)
        reached = [d for result in group for d in result.score.drifts if d.reached]
        rows.append(Row(
            stream=stream, change=group[0].case.recipe.change, timing=timing,
            seeds=tuple(result.case.seed for result in group),
            events=sum(result.score.events for result in group), changes=len(reached),
            delays=tuple(d.delay_events for d in reached if d.delay_events is not None),
            clear_events=sum(result.score.stationary_events for result in group),
            false_alarms=dict(alarms),
        ))
    return rows


@dataclass(frozen=True)
class Totals:
    """False alarms summed over a set of rows (e.g. every stationary stream of one timing)."""

    events: int
    false_alarms: dict[str, int]

    def per_100k(self, kind: str) -> float | None:
        """False alarms of ``kind`` per 100,000 of the rows' events outside grace windows."""
        return self.false_alarms.get(kind, 0) * PER_EVENTS / self.events if self.events else None


def totals(rows: Iterable[Row]) -> Totals:
    """The false alarms and clear events of ``rows``, summed."""
    alarms: Counter[str] = Counter()
    events = 0
    for row in rows:
        alarms.update(row.false_alarms)
        events += row.clear_events
    return Totals(events, dict(alarms))

