"""The report's figures, from a synthetic run whose accuracy, latency and delays are known."""

from __future__ import annotations

import doctest
import statistics
from datetime import timedelta

import pytest

from schemas.truth import GroundTruth, PhaseSpan
from services.cli.report import command, stats
from services.cli.report.aggregate import summarise
from services.cli.report.records import DeadLetterRecord, RunRecords
from services.cli.report.stats import histogram, nice_bucket_seconds, percentile
from tests import report_run as run


def synthetic(**extra: object) -> RunRecords:
    records = RunRecords(run.predictions(), run.outcomes(), run.alerts(), run.model_events())
    for name, value in extra.items():
        setattr(records, name, value)
    return records


def test_percentile_interpolates_like_the_inclusive_method() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    assert percentile(values, 0.50) == pytest.approx(cuts[49])
    assert percentile(values, 0.95) == pytest.approx(cuts[94])
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 9.0


def test_percentile_refuses_no_values_and_quantiles_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="quantile"):
        percentile([1.0], 1.5)


def test_histogram_counts_every_value_once_and_puts_the_maximum_in_the_last_bin() -> None:
    result = histogram([0.0, 0.4, 0.5, 2.0, 2.0], bins=4)
    assert result.edges == (0.0, 0.5, 1.0, 1.5, 2.0)
    assert result.counts == (2, 1, 0, 2)
    assert histogram([], bins=3).counts == (0, 0, 0)


def test_bucket_width_is_a_round_number_giving_at_most_the_target_count() -> None:
    assert nice_bucket_seconds(599) == 10.0
    assert nice_bucket_seconds(601) == 15.0
    assert nice_bucket_seconds(30) == 1.0
    assert nice_bucket_seconds(31 * 86400) == 86400.0
    assert nice_bucket_seconds(2 * 365 * 86400) == 14 * 86400.0
    assert nice_bucket_seconds(10**9) == 91 * 86400.0


def test_module_examples_hold() -> None:
    for module in (stats, command):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_overall_accuracy_per_model_counts_judged_outcomes() -> None:
    summary = summarise(synthetic())
    accuracy = {model.model: model.accuracy for model in summary.models}
    assert accuracy == pytest.approx(run.EXPECTED_ACCURACY)
    assert [(m.outcomes, m.judged, m.versions) for m in summary.models] == [(600, 600, (1,))] * 2
    assert (summary.predictions, summary.outcomes, summary.events) == (1200, 1200, 600)


def test_unjudged_outcomes_count_as_outcomes_but_not_in_accuracy() -> None:
    records = synthetic()
    records.outcomes = [o.model_copy(update={"correct": None}) if o.event_id == "e-0" else o
                        for o in records.outcomes]
    summary = summarise(records)
    logreg = summary.models[0]
    assert (logreg.outcomes, logreg.judged, logreg.correct) == (600, 599, 375)


def test_accuracy_over_time_shows_each_model_before_and_after_the_drift() -> None:
    summary = summarise(synthetic(), bucket_seconds=60)
    logreg, tree = summary.accuracy["logreg"], summary.accuracy["tree"]
    assert [point.start for point in logreg] == [60.0 * index for index in range(10)]
    assert [point.accuracy for point in logreg] == [0.75] * 5 + [0.5] * 5
    assert [point.accuracy for point in tree] == [0.5] * 5 + [0.8] * 5
    assert all(point.judged == 60 for point in logreg + tree)


def test_default_buckets_cut_the_run_into_at_most_sixty() -> None:
    summary = summarise(synthetic())
    assert summary.span_seconds == 599.0
    assert summary.bucket_seconds == 10.0
    assert len(summary.accuracy["logreg"]) == 60


def test_latency_percentiles_count_champion_predictions_only() -> None:
    summary = summarise(synthetic())
    champion = [run.latency_seconds(index) for index in range(run.EVENTS)]
    assert summary.event_to_prediction.count == 600
    assert summary.event_to_prediction.p50 == pytest.approx(percentile(champion, 0.5))
    assert summary.event_to_prediction.p99 == pytest.approx(percentile(champion, 0.99))
    assert summary.features_to_prediction.p95 == pytest.approx(
        percentile(champion, 0.95) - 0.010)
    assert [point.event_to_prediction.count for point in summary.latency] == [10] * 60
    assert summary.latency[0].event_to_prediction.p99 == pytest.approx(0.02891)


def test_label_delays_count_each_event_once_and_timeouts_apart() -> None:
    delays = summarise(synthetic()).label_delays
    assert delays.timed_out == 200
    assert delays.labelled.count == 400
    assert sum(delays.histogram.counts) == 400
    assert delays.histogram.edges[-1] == 3.0
    assert delays.labelled.p50 == pytest.approx(1.5)


def test_markers_are_in_time_order_with_drift_kind_and_model_event_kind() -> None:
    summary = summarise(synthetic())
    # A model event sits at the last event learned by then: e-330 and e-450 time out (learned
    # 30 s later), e-329 and e-449 were learned within half a second.
    assert [(m.at, m.category) for m in summary.markers] == [
        (100.0, "covariate"), (320.0, "concept"), (329.0, "challenger_started"),
        (449.0, "promoted"),
    ]
    assert summary.markers[1].label == "concept drift: adwin on error:logreg"
    assert [alert.alert_id for alert in summary.alerts] == ["alert-covariate-1",
                                                            "alert-concept-1"]


def test_a_model_event_of_a_lagging_pipeline_sits_where_the_stream_was() -> None:
    lagging = [o.model_copy(update={"learned_at": o.event_time + timedelta(seconds=100)})
               for o in run.outcomes()]
    event = run.model_events()[1].model_copy(update={"at": run.at(300.5)})
    summary = summarise(synthetic(outcomes=lagging, model_events=[event], alerts=[]))
    assert [(m.at, m.category) for m in summary.markers] == [(200.0, "promoted")]


def test_a_model_event_before_anything_was_learned_sits_at_its_own_time() -> None:
    event = run.model_events()[0].model_copy(update={"at": run.at(12)})
    summary = summarise(synthetic(model_events=[event], alerts=[], outcomes=[]))
    assert [(m.at, m.category) for m in summary.markers] == [(12.0, "challenger_started")]


def test_an_alert_without_event_time_is_placed_when_detected() -> None:
    alert = run.alerts()[1].model_copy(update={"event_time": None})
    summary = summarise(synthetic(alerts=[alert]))
    assert summary.markers[0].at == 101.0


def test_dead_letters_are_counted_by_source_and_reason_most_frequent_first() -> None:
    letters = [DeadLetterRecord("events", "schema_invalid", "features")] + [
        DeadLetterRecord("labels", "late_label", "model")] * 3
    summary = summarise(synthetic(dead_letters=letters, unreadable={"outcomes": 2}))
    assert summary.dead_letters == (("labels", "late_label", 3), ("events", "schema_invalid", 1))
    assert summary.unreadable == {"outcomes": 2}


def test_truth_phases_other_than_stationary_are_placed_on_the_run_axis() -> None:
    truth = GroundTruth(
        scenario="clicks", start=run.T0 - timedelta(seconds=50), interval_seconds=0.5,
        phases=(
            PhaseSpan(name="baseline", kind="stationary", start_index=0, end_index=400,
                      start_time=run.T0 - timedelta(seconds=50)),
            PhaseSpan(name="layout", kind="concept_drift", start_index=400, end_index=1000,
                      start_time=run.at(150)),
        ),
    )
    bands = summarise(synthetic(), truth=truth).phases
    assert [(b.name, b.kind, b.start, b.end) for b in bands] == [
        ("layout", "concept_drift", 150.0, 450.0)]


def test_an_empty_run_has_no_origin_no_series_and_empty_percentiles() -> None:
    summary = summarise(RunRecords())
    assert summary.origin is None
    assert summary.accuracy == {} and summary.latency == () and summary.markers == ()
    assert summary.event_to_prediction.count == 0 and summary.event_to_prediction.p50 is None
    assert summary.label_delays.labelled.count == 0


def test_bucket_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        summarise(synthetic(), bucket_seconds=0)
