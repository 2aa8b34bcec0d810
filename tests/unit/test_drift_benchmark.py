"""The synthetic drift benchmark's scoring and report, on hand-made alerts; one tiny real run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.alerts import DriftAlert, DriftKind
from services.cli.drift_benchmark import (
    START,
    Case,
    CaseResult,
    grace_for,
    percentile,
    plan,
    rows_of,
    run_case,
    run_cases,
    totals,
)
from services.cli.drift_benchmark_report import render
from services.cli.drift_scoring import DEFAULT_GRACE_EVENTS, PlacedAlert, score_run
from services.cli.synth_streams import TIMINGS, StreamRecipe, SynthScenario, raw_stream

ABRUPT = StreamRecipe("sea-abrupt", "SEA", "abrupt", 30_000, (1, 2, 3), (10_000, 20_000))
STATIONARY = StreamRecipe("sea", "SEA", "none", 100_000, (1,))
IMMEDIATE = TIMINGS["immediate"]


def placed(kind: DriftKind, index: int) -> PlacedAlert:
    when = START + timedelta(seconds=index)
    alert = DriftAlert(alert_id=f"{kind}-{index}", kind=kind, detector="ADWIN",
                       target=f"{kind}-target", model="logreg" if kind == "concept" else None,
                       statistic=0.3, threshold=0.2, stream_position=index, event_time=when,
                       detected_at=when)
    return PlacedAlert(alert, index, when)


def result(recipe: StreamRecipe, seed: int, *alerts: PlacedAlert) -> CaseResult:
    """A run of ``recipe`` that raised ``alerts``, scored as the benchmark scores it."""
    truth = SynthScenario(recipe, IMMEDIATE, seed).ground_truth(START, 1.0)
    score = score_run(truth, list(alerts), recipe.events, grace_for(IMMEDIATE))
    return CaseResult(Case(recipe, IMMEDIATE, seed), score, alerts, recipe.events, {}, {}, 0.1)


def test_the_grace_window_adds_the_label_lag_of_each_timing() -> None:
    assert grace_for(TIMINGS["immediate"]) == DEFAULT_GRACE_EVENTS
    assert grace_for(TIMINGS["delayed"]) == DEFAULT_GRACE_EVENTS + TIMINGS["delayed"].delay
    assert grace_for(TIMINGS["implicit"]) == DEFAULT_GRACE_EVENTS + TIMINGS["implicit"].window


def test_the_plan_gives_stationary_streams_their_own_seeds() -> None:
    cases = plan([STATIONARY, ABRUPT], [IMMEDIATE, TIMINGS["delayed"]], [1, 2, 3], [1])
    assert [(c.recipe.name, c.timing.name, c.seed) for c in cases] == [
        ("sea", "immediate", 1), ("sea", "delayed", 1),
        ("sea-abrupt", "immediate", 1), ("sea-abrupt", "immediate", 2),
        ("sea-abrupt", "immediate", 3), ("sea-abrupt", "delayed", 1),
        ("sea-abrupt", "delayed", 2), ("sea-abrupt", "delayed", 3)]


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([], 0.9) is None
    assert percentile([7], 0.9) == 7
    assert percentile([50, 10, 40, 20, 30], 0.9) == 50
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile(list(range(1, 11)), 0.5) == 5


def test_rows_count_detections_delays_and_false_alarms_by_kind() -> None:
    grace = grace_for(IMMEDIATE)
    runs = [
        # seed 1: both changes found (120 and 300 events late), a covariate false alarm before
        # the first change, a label alert inside the first grace window (it answers the change)
        result(ABRUPT, 1, placed("covariate", 5_000), placed("concept", 10_120),
               placed("label", 10_900), placed("concept", 20_300)),
        # seed 2: the first change is found too late (after its grace window: a false alarm),
        # the second not at all
        result(ABRUPT, 2, placed("concept", 10_001 + grace)),
    ]
    runs.append(result(STATIONARY, 1, placed("prediction", 1_500), placed("prediction", 60_000)))
    rows = rows_of(runs)
    drift, stationary = rows
    assert (drift.stream, drift.seeds, drift.changes, drift.detected) == (
        "sea-abrupt", (1, 2), 4, 2)
    assert drift.delays == (120, 300)
    assert drift.median_delay == 210
    assert drift.p90_delay == 300
    clear_per_run = 30_000 - 2 * (1 + grace)  # each change's window is 1 + grace events
    assert drift.clear_events == 2 * clear_per_run
    assert drift.false_alarms == {"covariate": 1, "concept": 1}
    assert drift.per_100k("concept") == pytest.approx(100_000 / (2 * clear_per_run))
    assert drift.per_100k("label") == 0
    assert stationary.false_alarms == {"prediction": 2}
    assert stationary.per_100k("prediction") == 2.0
    assert stationary.changes == 0 and stationary.median_delay is None
    summed = totals(rows)
    assert summed.events == 2 * clear_per_run + 100_000
    assert summed.false_alarms == {"covariate": 1, "concept": 1, "prediction": 2}


def test_the_report_gives_each_timing_its_verdicts() -> None:
    rows = rows_of([result(STATIONARY, 1),
                    result(ABRUPT, 1, placed("concept", 10_100), placed("concept", 20_200))])
    report = render(rows, {"timings": {}})
    assert "| sea | none | immediate | 1 | 100,000 | — |" in report
    assert "| sea-abrupt | abrupt | immediate | 1 | 30,000 | 2/2 | 150 | 200 |" in report
    assert "immediate: stationary streams, 100,000 events: 0 false alarm(s)" in report
    assert "target 0: met" in report
    assert "2/2 changes detected, median delay 150 events" in report
    assert "target ≤ 300: met" in report
    # One change found 100 events late, one never: the median of the two is "never".
    missed = render(rows_of([result(ABRUPT, 1, placed("concept", 10_100))]), {"timings": {}})
    assert "1/2 changes detected, median delay never" in missed
    assert "target ≤ 300: not met" in missed


def test_runs_keep_their_order_and_report_each_one_done() -> None:
    cases = plan([ABRUPT], [IMMEDIATE], [3, 1, 2], [1])
    done: list[int] = []
    results = run_cases(cases, 1, lambda r: done.append(r.case.seed),
                        runner=lambda case: result(case.recipe, case.seed))
    assert [r.case.seed for r in results] == [3, 1, 2] == done


def test_a_tiny_implicit_run_goes_through_the_pipeline_with_only_its_positives_sent() -> None:
    recipe = StreamRecipe("stagger", "STAGGER", "none", 1500, (2,))
    run = run_case(Case(recipe, TIMINGS["implicit"], 1))
    positives = sum(y for _, y in raw_stream(recipe, 1))
    assert run.score.events == 1500
    assert 0 < run.labels == positives < 1500
    assert run.dead_letters == {}
