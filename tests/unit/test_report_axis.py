"""The report's x axis: event time when the run's event times spread over enough buckets, stream
position otherwise (a file replayed at full speed, data with equal times), and the drift alerts
and model events placed where they fired on either axis."""

from __future__ import annotations

import doctest
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.alerts import DriftAlert, DriftKind
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction
from services.cli.report import axis
from services.cli.report.aggregate import summarise
from services.cli.report.axis import MIN_TIME_BUCKETS, StreamPositions, choose_axis, nice_count
from services.cli.report.command import write_report
from services.cli.report.page import PageContext
from services.cli.report.records import RunRecords
from services.cli.report.render import bucket_words, render_charts, x_axis
from tests import report_run

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def run_of(times: list[datetime], right_until: int, alerts: Sequence[DriftAlert] = (),
           model_events: Sequence[ModelEvent] = ()) -> RunRecords:
    """One champion on events ``e-0``... at ``times``, predicted 1 ms apart in that order and
    learned 1 ms later: right on the events before ``right_until``, wrong after."""
    predictions, outcomes = [], []
    for index, moment in enumerate(times):
        seen = T0 + timedelta(hours=1, milliseconds=index)
        predictions.append(Prediction(
            event_id=f"e-{index}", model="logreg", model_version=1, prediction=1,
            event_time=moment, features_at=seen, predicted_at=seen))
        outcomes.append(Outcome(
            event_id=f"e-{index}", model="logreg", model_version=1, prediction=1, label=1,
            correct=index < right_until, label_delay_seconds=0.0, event_time=moment,
            learned_at=seen + timedelta(milliseconds=1)))
    return RunRecords(predictions, outcomes, list(alerts), list(model_events))


def alert(kind: DriftKind, index: int, times: list[datetime],
          position: int | None = None) -> DriftAlert:
    """An alert that fired on event ``index`` (its ``stream_position`` counts it)."""
    return DriftAlert(alert_id=f"{kind}-{index}", kind=kind, detector="adwin",
                      target="error:logreg", statistic=0.3, threshold=0.01,
                      stream_position=index + 1 if position is None else position,
                      event_time=times[index], detected_at=T0 + timedelta(hours=2))


def fast_replay(events: int = 1000) -> list[datetime]:
    """Publication times of a file replayed at full speed: 2 ms apart, 2 s in all."""
    return [T0 + timedelta(milliseconds=2 * index) for index in range(events)]


def test_a_full_speed_replay_is_drawn_over_stream_position_with_its_curve() -> None:
    times = fast_replay()
    summary = summarise(run_of(times, right_until=500))
    assert summary.axis == "position"
    assert summary.span_seconds == pytest.approx(1.998)
    assert (summary.axis_span, summary.bucket) == (1000.0, 20.0)
    points = summary.accuracy["logreg"]
    assert [point.start for point in points] == [20.0 * index for index in range(50)]
    assert [point.accuracy for point in points] == [1.0] * 25 + [0.0] * 25


def test_on_stream_position_alerts_sit_after_the_event_they_fired_on() -> None:
    times = fast_replay()
    records = run_of(times, right_until=500,
                     alerts=[alert("concept", 519, times), alert("covariate", 249, times)])
    summary = summarise(records)
    assert [(marker.at, marker.category) for marker in summary.markers] == [
        (250.0, "covariate"), (520.0, "concept")]


def test_on_stream_position_a_model_event_sits_after_the_latest_event_learned() -> None:
    times = fast_replay()
    learned_by = T0 + timedelta(hours=1, milliseconds=700.5)  # e-699 learned at 700 ms
    event = ModelEvent(event_id="me-1", kind="champion_reset", model="logreg", model_version=2,
                       reason="concept-519", labels_seen=700, at=learned_by)
    summary = summarise(run_of(times, right_until=500, model_events=[event]))
    assert [(marker.at, marker.category) for marker in summary.markers] == [
        (700.0, "champion_reset")]


def test_data_spanning_days_is_drawn_over_event_time_with_alerts_at_their_time() -> None:
    times = [T0 + timedelta(hours=index) for index in range(100)]
    summary = summarise(run_of(times, right_until=50, alerts=[alert("concept", 60, times)]))
    assert summary.axis == "event_time"
    assert (summary.axis_span, summary.bucket) == (99 * 3600.0, 7200.0)
    assert [marker.at for marker in summary.markers] == [60 * 3600.0]
    assert x_axis(summary) == (86400.0, "event time since the first event (d)")


def test_events_with_one_shared_time_use_the_alert_position_to_place_it() -> None:
    times = [T0] * 200
    summary = summarise(run_of(times, right_until=100, alerts=[alert("concept", 149, times)]))
    assert summary.axis == "position"
    assert [point.accuracy for point in summary.accuracy["logreg"]] == [1.0] * 20 + [0.0] * 20
    assert [marker.at for marker in summary.markers] == [150.0]


def test_the_rule_counts_the_distinct_buckets_event_times_fall_in() -> None:
    just_enough = [T0 + timedelta(seconds=s) for s in range(MIN_TIME_BUCKETS)]
    assert choose_axis(just_enough, T0, 1.0) == "event_time"
    assert choose_axis(just_enough[:-1], T0, 1.0) == "position"
    assert choose_axis(just_enough, T0, 2.0) == "position"
    assert choose_axis([T0] * 10_000, T0, 1.0) == "position"
    assert choose_axis([], None, 1.0) == "event_time"


def test_the_axis_can_be_forced_and_a_bucket_is_events_on_stream_position() -> None:
    times = fast_replay()
    forced = summarise(run_of(times, right_until=500), axis="time")
    assert forced.axis == "event_time" and forced.bucket == 1.0
    assert len(forced.accuracy["logreg"]) == 2
    by_events = summarise(run_of(times, right_until=500), bucket_seconds=100, axis="events")
    assert (by_events.axis, by_events.bucket) == ("position", 100.0)
    assert len(by_events.accuracy["logreg"]) == 10
    report = summarise(RunRecords(report_run.predictions(), report_run.outcomes()))
    assert summarise(RunRecords(report_run.predictions(), report_run.outcomes()),
                     axis="events").axis == "position"
    assert report.axis == "event_time"  # the synthetic 600 s run keeps its time axis


def test_stream_positions_order_by_event_time_then_by_prediction() -> None:
    at = T0 + timedelta(hours=1)
    predictions = [
        Prediction(event_id=event_id, model="m", model_version=1, prediction=1,
                   event_time=T0 + timedelta(seconds=second), features_at=at,
                   predicted_at=at + timedelta(seconds=order))
        for event_id, second, order in (("b", 5, 0), ("a", 5, 1), ("c", 1, 2))]
    positions = StreamPositions(predictions, [])
    assert [positions.of(name) for name in "cba"] == [0, 1, 2]
    assert positions.after(T0 + timedelta(seconds=5)) == 3.0  # the last of the two at 5 s
    assert positions.after(T0 + timedelta(seconds=5), observations=2) == 2.0
    assert positions.after(T0 + timedelta(seconds=3)) == 1.0  # between events: after c
    assert positions.after(None, observations=99) == 3.0


def test_bucket_widths_in_events_are_round() -> None:
    assert [nice_count(n) for n in (0, 60, 61, 150, 18_159, 10**6)] == [1, 1, 2, 5, 500, 20000]


def test_module_examples_hold() -> None:
    result = doctest.testmod(axis)
    assert result.attempted > 0 and result.failed == 0


def test_a_full_speed_replay_report_says_it_is_drawn_over_events(tmp_path: Path) -> None:
    times = fast_replay()
    records = run_of(times, right_until=500, alerts=[alert("concept", 519, times)])
    summary = summarise(records)
    assert x_axis(summary) == (1.0, "stream position (events since the first)")
    assert bucket_words(summary).startswith("buckets of 20 events in stream order")
    charts = render_charts(summary, tmp_path / "charts")
    assert "buckets of 20 events" in charts[0].caption
    html = write_report(records, tmp_path / "page", PageContext("", T0)).read_text()
    assert "charts over stream position (events)" in html
