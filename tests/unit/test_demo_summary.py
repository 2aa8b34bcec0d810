"""What the demo says at the end: the drift it injected, when it was caught, the verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.alerts import DriftAlert, DriftKind
from schemas.predictions import Outcome
from schemas.truth import DriftPoint
from services.cli.demo_summary import (
    Judged,
    alerts_by_kind,
    demo_timeline,
    first_catch,
    judged_between,
    verdict,
)
from services.producer.scenarios import load_timeline

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DRIFT = DriftPoint(index=12_000, event_time=T0 + timedelta(seconds=60), phase="layout-change",
                   kind="concept_drift", drift_kind="concept", transition="abrupt", width=0,
                   end_index=12_000, end_time=T0 + timedelta(seconds=60))


def alert(kind: DriftKind, seconds: float, model: str | None = "logreg") -> DriftAlert:
    return DriftAlert(alert_id=f"a-{kind}-{seconds}", kind=kind, detector="ADWIN",
                      target=f"error:{model}", model=model, statistic=0.1, threshold=0.05,
                      stream_position=1, event_time=T0 + timedelta(seconds=seconds),
                      detected_at=T0 + timedelta(seconds=seconds + 15))


def test_the_demo_timeline_drifts_once_at_the_given_event(tmp_path: Path) -> None:
    path = tmp_path / "timeline.toml"
    path.write_text(demo_timeline(12_000))
    timeline = load_timeline(str(path))
    assert [(p.name, p.kind) for p in timeline.phases] == [
        ("baseline", "stationary"), ("layout-change", "concept_drift")]
    assert timeline.phases[0].events == 12_000


def test_the_first_concept_alert_on_the_champion_after_the_drift_catches_it() -> None:
    alerts = [alert("concept", 30), alert("covariate", 61, None), alert("concept", 75, "tree"),
              alert("concept", 90), alert("concept", 70)]
    catch = first_catch(DRIFT, alerts, "logreg")
    assert catch.alert is alerts[4]
    assert catch.seconds_after == 10.0
    assert catch.detected_after == 25.0


def test_a_drift_without_a_later_concept_alert_is_not_caught() -> None:
    catch = first_catch(DRIFT, [alert("concept", 59), alert("label", 80)], "logreg")
    assert catch.alert is None and catch.seconds_after is None


def test_alerts_are_counted_by_kind_with_every_kind_listed() -> None:
    assert alerts_by_kind([alert("concept", 1), alert("concept", 2), alert("label", 3)]) == {
        "concept": 2, "covariate": 0, "label": 1, "prediction": 0}


def test_the_verdict_compares_accuracy_with_the_majority_baseline() -> None:
    assert verdict(0.80, 0.70) == "the champion beats the majority-class baseline by 10.0 points"
    assert "no better than" in verdict(0.702, 0.70)
    assert verdict(0.60, 0.70) == (
        "the champion is 10.0 points WORSE than the majority-class baseline")
    assert "too short" in verdict(None, None)


def test_judged_outcomes_of_a_span_give_accuracy_and_the_majority_baseline() -> None:
    def judged(seconds: float, label: bool, correct: bool | None, model: str = "logreg",
               ) -> Outcome:
        return Outcome(event_id=f"e-{seconds}", model=model, model_version=1,
                       prediction=label == correct if correct is not None else None,
                       label=label, correct=correct, label_delay_seconds=1.0,
                       event_time=T0 + timedelta(seconds=seconds), learned_at=T0)

    outcomes = [judged(10, True, True), judged(11, False, False), judged(12, False, False),
                judged(13, False, True), judged(14, True, None), judged(12, True, True, "tree"),
                judged(30, True, False)]
    span = judged_between(outcomes, "logreg", T0 + timedelta(seconds=10),
                          T0 + timedelta(seconds=30))
    assert span == Judged(4, 0.5, 0.75)  # labels T, F, F, F; right 2 of 4
    assert judged_between(outcomes, "logreg", T0, T0) == Judged(0, None, None)
