"""The governor: champion/challenger race and reactions to concept-drift alerts."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from schemas.alerts import DriftAlert
from schemas.model_events import ModelEvent
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec, PromotionSpec
from services.model.governance import Governor
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from tests.unit.fakes import ManualClock

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
CHAMPION = ModelSpec(name="champ", estimator="tests.unit.fakes:recording_classifier")
RIVAL = ModelSpec(name="rival", estimator="tests.unit.fakes:recording_classifier")
EAGER = PromotionSpec(min_labels=10, effect=0.4, alpha=0.01)


def governor(challengers: tuple[ModelSpec, ...] = ()) -> tuple[Governor, list[ModelEvent]]:
    learner = Learner(ModelsSpec(champion=CHAMPION, challengers=challengers),
                      LabelSpec(type="binary", feedback_window_seconds=30))
    events: list[ModelEvent] = []
    return Governor(learner, EAGER, "add_challenger", events.append,
                    ModelMetrics(CollectorRegistry()), ManualClock(T0)), events


def concept_alert(model: str) -> DriftAlert:
    return DriftAlert(alert_id="a-1", kind="concept", detector="ADWIN", target=f"error:{model}",
                      model=model, statistic=0.3, threshold=0.2, stream_position=1,
                      detected_at=T0)


def test_a_winning_challenger_is_promoted() -> None:
    gov, events = governor((RIVAL,))
    for labels in range(1, 30):
        gov.after_label({"champ": (1, False, 0.2), "rival": (1, True, 0.8)}, True, labels)
    assert gov.learner.champion.name == "rival"
    assert [event.kind for event in events] == ["promoted"]


def test_a_model_dropped_since_its_prediction_is_never_promoted() -> None:
    """Pending events keep the predictions of a fresh challenger that a newer one replaced;
    their labels must not promote a model that is no longer served."""
    gov, events = governor()
    for labels in range(1, 30):
        gov.after_label({"champ": (1, False, 0.2), "replaced": (1, True, 0.8)}, True, labels)
    assert gov.learner.champion.name == "champ"
    assert [model.name for model in gov.learner.models] == ["champ"]
    assert events == []


def test_a_concept_alert_on_the_champion_starts_a_fresh_challenger() -> None:
    gov, events = governor()
    gov.on_alert(concept_alert("other"), 5)
    assert events == []
    gov.on_alert(concept_alert("champ"), 5)
    assert [model.name for model in gov.learner.models] == ["champ", "champ-fresh-1"]
    assert [(event.kind, event.model) for event in events] == [
        ("challenger_started", "champ-fresh-1")]
