"""Scoring drift alerts against hand-made ground truth: detections, delays, false alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.alerts import DriftAlert, DriftKind
from schemas.truth import DRIFT_KINDS, DriftPoint, GroundTruth, PhaseKind, PhaseSpan
from services.cli.drift_scoring import (
    PlacedAlert,
    false_alarm_rate,
    score_run,
    summarise,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
INTERVAL = 0.5  # seconds between events


def at(index: int) -> datetime:
    return T0 + timedelta(seconds=index * INTERVAL)


def truth(*phases: tuple[str, PhaseKind, int, int]) -> GroundTruth:
    """Phases as (name, kind, events, gradual width); drift points at every later phase."""
    spans, points, start = [], [], 0
    for number, (name, kind, events, width) in enumerate(phases):
        spans.append(PhaseSpan(name=name, kind=kind, start_index=start,
                               end_index=start + events, start_time=at(start)))
        if number:
            points.append(DriftPoint(
                index=start, event_time=at(start), phase=name, kind=kind,
                drift_kind=DRIFT_KINDS[kind], transition="gradual" if width else "abrupt",
                width=width, mixing="sigmoid" if width else None, end_index=start + width,
                end_time=at(start + width),
            ))
        start += events
    return GroundTruth(scenario="clicks", seed=1, timeline="t", start=T0,
                       interval_seconds=INTERVAL, total_events=start, phases=tuple(spans),
                       drift_points=tuple(points))


TIMELINE = truth(("baseline", "stationary", 1000, 0), ("tablets", "covariate_shift", 1000, 0),
                 ("layout", "concept_drift", 1000, 0), ("surge", "concept_drift", 1000, 200))


def alert(kind: DriftKind, index: int, model: str | None = None,
          detector: str = "ADWIN") -> PlacedAlert:
    target = f"error:{model}" if model else f"{kind}-target"
    raw = DriftAlert(alert_id=f"a-{kind}-{index}", kind=kind, detector=detector, target=target,
                     model=model, statistic=0.3, threshold=0.2, stream_position=index,
                     event_time=at(index), detected_at=at(index))
    return PlacedAlert(raw, index, at(index))


def test_each_drift_is_detected_by_the_first_alert_of_its_kind_with_its_delay() -> None:
    alerts = [alert("covariate", 1100, detector="PSI"), alert("concept", 2300, "a"),
              alert("concept", 2250, "b"), alert("concept", 2400, "b"), alert("label", 2100)]
    score = score_run(TIMELINE, alerts, events=4000)
    tablets, layout, surge = score.drifts
    assert (tablets.detected, tablets.delay_events, tablets.delay_seconds) == (True, 100, 50.0)
    assert tablets.alert is not None and tablets.alert.describe() == "PSI on covariate-target"
    assert (layout.delay_events, layout.delay_seconds) == (250, 125.0)
    assert layout.alert is not None and layout.alert.alert.model == "b"
    assert layout.by_model == {"b": 250, "a": 300}  # each model's first alert
    assert layout.also == ("label",)
    assert surge.reached and not surge.detected
    assert surge.delay_events is None


def test_an_alert_before_the_drift_or_of_another_kind_does_not_detect_it() -> None:
    score = score_run(TIMELINE, [alert("concept", 1500, "a"), alert("label", 1200)], 4000)
    tablets, layout, _ = score.drifts
    assert not tablets.detected
    assert tablets.also == ("concept", "label")
    assert not layout.detected


def test_an_alert_in_the_windows_of_two_drifts_of_its_kind_goes_to_the_later_one() -> None:
    score = score_run(TIMELINE, [alert("concept", 3050, "a")], events=4000)
    _, layout, surge = score.drifts
    assert not layout.detected  # 3050 is inside its grace, but the surge began at 3000
    assert (surge.detected, surge.delay_events) == (True, 50)


@pytest.mark.parametrize(("grace", "detected"), [(2000, True), (0, False)])
def test_an_alert_after_the_phase_counts_only_within_the_grace(grace: int, detected: bool) -> None:
    score = score_run(TIMELINE, [alert("covariate", 2100)], events=4000, grace=grace)
    tablets = score.drifts[0]
    assert tablets.detected is detected
    assert tablets.window_end == 2000 + grace


def test_false_alarms_are_alerts_in_stationary_phases_per_10k_stationary_events() -> None:
    alerts = [alert("prediction", 500), alert("concept", 900, "a"), alert("covariate", 1100)]
    score = score_run(TIMELINE, alerts, events=4000)
    assert score.stationary_events == 1000
    assert [placed.index for placed in score.false_alarms] == [500, 900]
    assert score.false_alarms_per_10k == pytest.approx(20.0)
    assert score.false_alarms_by_kind() == {"prediction": 1, "concept": 1}


def test_the_warmup_is_left_out_of_the_false_alarm_count() -> None:
    score = score_run(TIMELINE, [alert("prediction", 100), alert("label", 600)], 4000,
                      warmup=200)
    assert score.stationary_events == 800
    assert [placed.index for placed in score.false_alarms] == [600]


def test_a_stationary_phase_after_a_drift_counts_after_the_drifts_grace() -> None:
    calm = truth(("baseline", "stationary", 1000, 0), ("tablets", "covariate_shift", 1000, 0),
                 ("calm", "stationary", 5000, 0))
    alerts = [alert("prediction", 2500), alert("covariate", 4100)]
    score = score_run(calm, alerts, events=7000, grace=2000)
    assert [d.drift.phase for d in score.drifts] == ["tablets"]  # a stationary phase is no drift
    assert score.stationary_events == 1000 + (7000 - 4000)
    assert [placed.index for placed in score.false_alarms] == [4100]


def test_a_run_without_a_timeline_is_stationary_throughout() -> None:
    stationary = GroundTruth(scenario="clicks", start=T0, interval_seconds=INTERVAL)
    score = score_run(stationary, [alert("concept", 10, "a"), alert("label", 99_999)], 100_000)
    assert score.drifts == ()
    assert score.stationary_events == 100_000
    assert len(score.false_alarms) == 2
    assert score.false_alarms_per_10k == pytest.approx(0.2)


def test_a_short_run_leaves_later_drifts_unreached_and_clips_windows() -> None:
    score = score_run(TIMELINE, [alert("concept", 2450, "a")], events=2500)
    tablets, layout, surge = score.drifts
    assert tablets.reached and layout.reached and not surge.reached
    assert layout.window_end == 2500
    assert layout.delay_events == 450


def test_a_run_longer_than_the_timeline_stays_in_its_last_phase() -> None:
    alerts = [alert("concept", 5500, "a")]
    score = score_run(TIMELINE, alerts, events=8000, grace=0)
    surge = score.drifts[-1]
    assert surge.window_end == 8000
    assert surge.delay_events == 2500


def test_summaries_take_medians_over_the_runs_that_detected() -> None:
    runs = [
        score_run(TIMELINE, [alert("covariate", 1100), alert("concept", 2300, "a")], 4000),
        score_run(TIMELINE, [alert("covariate", 1300), alert("prediction", 10)], 4000),
        score_run(TIMELINE, [alert("covariate", 1200), alert("concept", 2500, "a")], 4000),
    ]
    tablets, layout, surge = summarise(runs)
    assert (tablets.detected, tablets.reached, tablets.median_delay_events) == (3, 3, 200)
    assert tablets.median_delay_seconds == 100.0
    assert layout.delays_events == (300, None, 500)
    assert (layout.detected, layout.median_delay_events) == (2, 400)
    assert layout.detectors == ("ADWIN on error:a", "ADWIN on error:a")
    assert (surge.detected, surge.median_delay_events) == (0, None)
    alarms, events, rate = false_alarm_rate(runs)
    assert (alarms, events) == (1, 3000)
    assert rate == pytest.approx(10 / 3)


def test_runs_of_different_timelines_are_not_summarised_together() -> None:
    short = truth(("baseline", "stationary", 1000, 0), ("tablets", "covariate_shift", 1000, 0))
    with pytest.raises(ValueError, match="different timelines"):
        summarise([score_run(TIMELINE, [], 4000), score_run(short, [], 2000)])


def test_live_alerts_are_placed_where_the_producer_was_when_they_were_raised() -> None:
    from services.cli.drift_topics import place_alerts

    def raised(seconds: float) -> DriftAlert:
        return DriftAlert(alert_id=f"a-{seconds}", kind="concept", detector="ADWIN",
                          target="error:m", model="m", statistic=0.3, threshold=0.2,
                          stream_position=1, event_time=T0,
                          detected_at=T0 + timedelta(seconds=seconds))

    placed = place_alerts([raised(1000.2), raised(-3.0), raised(10.0), raised(99_999.0)],
                          TIMELINE, events=4000)
    # Events come every INTERVAL (0.5 s): 1000.2 s is event 2000; before the start -> 0; after
    # the run -> its last event. Sorted by place; the time is when the alert was raised.
    assert [p.index for p in placed] == [0, 20, 2000, 3999]
    assert placed[2].time == T0 + timedelta(seconds=1000.2)
    score = score_run(TIMELINE, placed, events=4000)
    assert score.drifts[1].delay_events == 0
