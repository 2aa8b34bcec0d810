"""Labels whose value does not fit the spec's label type are dead letters when they arrive.

They are rejected in ``_on_label`` with reason ``spec_invalid``, counted as
``label_anomalies_total{kind="invalid"}``, and change nothing: no crash at learning time, and a
good label for the same event afterwards is still learned.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.events import Label, LabelValue
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec, SpecError
from services.common.dead_letters import DeadLetter
from services.model.learner import InvalidLabel, Learner
from tests.unit.test_model_handler import CHAMPION, T0, Model, build

LINEAR = ModelSpec(name="lin", estimator="linear_model.LinearRegression")


def regression() -> Model:
    return build(on_timeout="drop", champion=LINEAR, challengers=(), label_type="regression")


def rejected(model: Model, event_id: str, value: LabelValue, seconds: float = 1.0) -> DeadLetter:
    with pytest.raises(DeadLetter) as raised:
        model.label(event_id, seconds, value)
    return raised.value


def test_a_string_label_for_a_regression_spec_is_a_dead_letter_and_changes_nothing() -> None:
    model = regression()
    model.features("e-1", seconds=0)
    dead = rejected(model, "e-1", "high")
    assert dead.reason_code == "spec_invalid"
    assert dead.reason == "label for e-1: 'high' is not a regression label (expected a finite " \
        "number)"
    assert isinstance(dead.__cause__, InvalidLabel)
    assert model.anomalies("invalid") == 1.0
    model.features("e-2", seconds=5)  # learning time for a label at 1 s: nothing to learn
    assert model.outcomes() == []
    model.label("e-1", 2, 2.5)  # the event still takes its real label
    model.features("e-3", seconds=6)
    [outcome] = model.outcomes()
    assert (outcome.event_id, outcome.label) == ("e-1", 2.5)
    assert model.handler.labels_learned == 1


def test_a_bad_label_that_comes_before_its_features_is_rejected_at_once() -> None:
    model = regression()
    rejected(model, "e-9", "n/a")
    model.features("e-9", seconds=0)
    model.features("e-10", seconds=5)
    assert model.outcomes() == []
    assert model.anomalies("invalid") == 1.0
    assert model.anomalies("unknown_event") == 0.0


@pytest.mark.parametrize("value", ["maybe", "click", 2, 0.5, -1])
def test_a_binary_label_that_is_no_known_class_is_a_dead_letter(value: LabelValue) -> None:
    model = build()
    model.features("e-1", seconds=0)
    dead = rejected(model, "e-1", value)
    assert dead.reason_code == "spec_invalid"
    assert "is not a binary label" in dead.reason
    assert model.anomalies("invalid") == 1.0


@pytest.mark.parametrize(("value", "learned"), [(" No ", False), ("YES", True), ("f", False),
                                                (1, True), (0.0, False), (True, True)])
def test_binary_words_and_numbers_still_become_bools(value: LabelValue, learned: bool) -> None:
    model = build(challengers=())
    model.features("e-1", seconds=0)
    model.label("e-1", 1, value)
    model.features("e-2", seconds=5)
    assert [(o.event_id, o.label) for o in model.outcomes()] == [("e-1", learned)]


def test_a_bad_label_kept_in_state_from_before_the_check_is_dead_lettered_when_due() -> None:
    """State restored from a checkpoint written before labels were checked on arrival can hold
    one: learning time dead-letters it and the timeout policy decides, instead of a crash."""
    model = regression()
    model.features("e-1", seconds=0)
    # What the handler once accepted on arrival:
    model.handler._accept_label(Label(
        event_id="e-1", label_time=T0 + timedelta(seconds=1), label="high"))
    model.features("e-2", seconds=5)
    [dead] = model.producer.on("dead-letters")
    headers = dead.dead_letter_headers()
    assert (headers.reason_code, headers.source_topic, headers.error_class) == (
        "spec_invalid", "labels", "InvalidLabel")
    assert model.outcomes() == []
    assert model.anomalies("invalid") == 1.0
    assert model.anomalies("timeout_dropped") == 1.0  # the spec drops timeouts


@pytest.mark.parametrize("value", ["none", "click", 3])
def test_a_binary_spec_whose_negative_value_is_no_binary_label_fails_at_start(
    value: LabelValue,
) -> None:
    label = LabelSpec(type="binary", feedback_window_seconds=30, on_timeout="negative",
                      negative_value=value)
    with pytest.raises(SpecError, match=r"label\.negative_value"):
        Learner(ModelsSpec(champion=CHAMPION), label)


@pytest.mark.parametrize("value", [True, "nan", "inf", "twelve", ""])
def test_regression_labels_must_be_finite_numbers(value: LabelValue) -> None:
    learner = Learner(ModelsSpec(champion=LINEAR),
                      LabelSpec(type="regression", feedback_window_seconds=30))
    with pytest.raises(InvalidLabel, match="is not a regression label"):
        learner.normalise_label(value)
    assert learner.normalise_label(" 2.5 ") == 2.5
