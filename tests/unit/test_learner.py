"""The learner: label normalisation, champion-first predictions, learning."""

from __future__ import annotations

import random

import pytest

from schemas.events import LabelValue
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec
from services.model.learner import Learner

LOGREG = ModelSpec(name="logreg", estimator="linear_model.LogisticRegression", scale=True)
TREE = ModelSpec(name="tree", estimator="tree.HoeffdingTreeClassifier")
NB = ModelSpec(name="nb", estimator="naive_bayes.GaussianNB")


def learner(label_type: str = "binary", challengers: tuple[ModelSpec, ...] = (),
            champion: ModelSpec = LOGREG, **label: object) -> Learner:
    spec = LabelSpec.model_validate(
        {"type": label_type, "feedback_window_seconds": 30, **label}
    )
    return Learner(ModelsSpec(champion=champion, challengers=challengers), spec)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), (False, False), (1, True), (0, False), (1.0, True), (0.0, False),
     ("1", True), ("0", False), ("true", True), ("False", False), (" YES ", True),
     ("no", False)],
)
def test_binary_labels_become_bools(raw: LabelValue, expected: bool) -> None:
    assert learner().normalise_label(raw) is expected


def test_regression_labels_become_floats() -> None:
    model = learner("regression", champion=ModelSpec(
        name="lin", estimator="linear_model.LinearRegression"))
    assert model.normalise_label(3) == 3.0
    assert isinstance(model.normalise_label(3), float)
    assert model.normalise_label("2.5") == 2.5


def test_multiclass_labels_are_kept_as_they_are() -> None:
    model = learner("multiclass", champion=NB)
    assert model.normalise_label("cat") == "cat"
    assert model.normalise_label(2) == 2


def test_timeout_label_is_the_normalised_negative_value() -> None:
    assert learner(on_timeout="negative", negative_value=0).timeout_label() is False
    assert learner(on_timeout="negative", negative_value="no").timeout_label() is False
    multi = learner("multiclass", champion=NB, on_timeout="negative", negative_value="none")
    assert multi.timeout_label() == "none"


def test_predict_answers_for_every_model_champion_first() -> None:
    model = learner(challengers=(TREE, NB))
    answers = model.predict({"x": 1.0})
    assert [a.model for a in answers] == ["logreg", "tree", "nb"]
    assert [a.role for a in answers] == ["champion", "challenger", "challenger"]
    assert all(a.version == 1 for a in answers)


def test_an_untrained_binary_model_answers_without_crashing() -> None:
    [answer] = learner().predict({"x": 1.0})
    assert answer.prediction in (None, True, False)


def separable(rng: random.Random) -> tuple[dict[str, float], bool]:
    x = rng.uniform(-1, 1)
    return {"x": x, "noise": rng.uniform(-1, 1)}, x > 0


def test_learning_changes_predictions_towards_the_labels() -> None:
    model = learner()
    rng = random.Random(3)
    probe_positive, probe_negative = {"x": 0.9, "noise": 0.0}, {"x": -0.9, "noise": 0.0}
    before = model.predict(probe_positive)[0].score
    for _ in range(300):
        model.learn(*separable(rng))
    after_positive = model.predict(probe_positive)[0]
    after_negative = model.predict(probe_negative)[0]
    assert after_positive.score is not None
    assert after_positive.score != before
    assert after_positive.prediction is True
    assert after_negative.prediction is False
    assert after_positive.probabilities is not None
    assert after_positive.probabilities["True"] == pytest.approx(after_positive.score)
    assert sum(after_positive.probabilities.values()) == pytest.approx(1.0)


def test_learn_teaches_every_model() -> None:
    model = learner(challengers=(TREE, NB))
    rng = random.Random(4)
    for _ in range(400):
        model.learn(*separable(rng))
    answers = model.predict({"x": 0.8, "noise": 0.0})
    assert [a.prediction for a in answers] == [True, True, True]


def test_multiclass_prediction_is_the_most_probable_class() -> None:
    model = learner("multiclass", champion=NB)
    rng = random.Random(5)
    centres = {"a": -5.0, "b": 0.0, "c": 5.0}
    for _ in range(300):
        label = rng.choice(list(centres))
        model.learn({"x": centres[label] + rng.gauss(0, 0.5)}, label)
    [answer] = model.predict({"x": 4.8})
    assert answer.prediction == "c"
    assert answer.probabilities is not None
    assert answer.score == pytest.approx(max(answer.probabilities.values()))


def test_regression_prediction_is_the_value_and_the_score() -> None:
    model = learner("regression", champion=ModelSpec(
        name="lin", estimator="linear_model.LinearRegression", scale=True))
    rng = random.Random(6)
    for _ in range(2000):
        x = rng.uniform(-1, 1)
        model.learn({"x": x}, 3.0 * x + 1.0)
    [answer] = model.predict({"x": 0.5})
    assert isinstance(answer.prediction, float)
    assert answer.score == answer.prediction
    assert answer.prediction == pytest.approx(2.5, abs=0.2)
    assert answer.probabilities is None


def test_label_probability_of_a_binary_label_comes_from_the_positive_score() -> None:
    model = learner("binary")
    assert model.label_probability(True, 0.8, None) == 0.8
    assert model.label_probability(False, 0.8, None) == pytest.approx(0.2)
    assert model.label_probability(False, 1.0 + 1e-12, None) == 0.0  # clipped into [0, 1]
    assert model.label_probability(True, None, None) is None  # nothing predicted


def test_label_probability_of_a_multiclass_label_is_looked_up_by_class() -> None:
    model = learner("multiclass", champion=NB)
    probabilities = {"a": 0.7, "b": 0.3}
    assert model.label_probability("b", 0.7, probabilities) == 0.3
    assert model.label_probability("c", 0.7, probabilities) == 0.0  # never seen: probability 0
    assert model.label_probability(2, 0.7, {"2": 0.6, "3": 0.4}) == 0.6
    assert model.label_probability("a", None, None) is None
    assert model.keeps_class_probabilities()
    assert not learner("binary").keeps_class_probabilities()


def test_label_probability_of_a_regression_target_is_none() -> None:
    model = learner("regression", champion=ModelSpec(
        name="lin", estimator="linear_model.LinearRegression"))
    assert model.label_probability(3.0, 2.5, None) is None
