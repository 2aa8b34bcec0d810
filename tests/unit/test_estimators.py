"""Estimators from the spec, and feature vectors as River inputs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from river import compose, linear_model, preprocessing, tree

from schemas.spec import ModelSpec
from services.model.estimators import EstimatorError, build_estimator, vectorize
from tests.unit.fakes import RecordingClassifier


def test_dotted_river_name_builds_that_estimator_with_params() -> None:
    model = build_estimator(ModelSpec(
        name="logreg", estimator="linear_model.LogisticRegression", params={"l2": 0.25},
    ))
    assert isinstance(model, linear_model.LogisticRegression)
    assert model.l2 == 0.25


def test_each_build_is_a_fresh_estimator() -> None:
    spec = ModelSpec(name="t", estimator="tree.HoeffdingTreeClassifier",
                     params={"grace_period": 50})
    first, second = build_estimator(spec), build_estimator(spec)
    assert isinstance(first, tree.HoeffdingTreeClassifier)
    assert first.grace_period == 50
    assert first is not second


def test_scale_puts_a_standard_scaler_in_front() -> None:
    model = build_estimator(ModelSpec(
        name="logreg", estimator="linear_model.LogisticRegression", scale=True,
    ))
    assert isinstance(model, compose.Pipeline)
    steps = list(model.steps.values())
    assert isinstance(steps[0], preprocessing.StandardScaler)
    assert isinstance(steps[-1], linear_model.LogisticRegression)


def test_module_function_factory_is_called_with_params() -> None:
    model = build_estimator(ModelSpec(
        name="mine", estimator="tests.unit.fakes:recording_classifier", params={"p_true": 0.2},
    ))
    assert isinstance(model, RecordingClassifier)
    assert model.p_true == 0.2


@pytest.mark.parametrize(
    "estimator",
    ["linear_model.NoSuchModel", "no_such_module.Model", "tests.unit.fakes:no_such_factory",
     "no_such_package.module:factory"],
)
def test_an_unknown_estimator_is_rejected_with_the_spec(estimator: str) -> None:
    with pytest.raises(ValidationError, match="unknown estimator"):
        ModelSpec(name="m", estimator=estimator)


def test_bad_params_are_an_estimator_error() -> None:
    with pytest.raises(EstimatorError, match="bad params"):
        build_estimator(ModelSpec(
            name="m", estimator="linear_model.LogisticRegression", params={"colour": "red"},
        ))


def test_vectorize_keeps_numbers_one_hots_categories_and_drops_unknowns() -> None:
    x = vectorize({"price": 12.5, "hour": 3.0, "device": "mobile", "user_mean_price_5m": None})
    assert x == {"price": 12.5, "hour": 3.0, "device=mobile": 1.0}
    assert all(isinstance(value, float) for value in x.values())


def test_vectorize_gives_each_category_its_own_input() -> None:
    assert set(vectorize({"device": "mobile"})) != set(vectorize({"device": "tablet"}))


def test_declared_categories_each_get_an_input_so_a_scaler_sees_them_vary() -> None:
    from river import linear_model, preprocessing

    categories = {"device": ("mobile", "desktop", "tablet")}
    assert vectorize({"device": "tablet", "price": 2.0}, categories) == {
        "device=mobile": 0.0, "device=desktop": 0.0, "device=tablet": 1.0, "price": 2.0}
    # Mobile users always click, tablet users never: only the device tells them apart.
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for _ in range(300):
        for device, clicked in (("mobile", True), ("tablet", False)):
            model.learn_one(vectorize({"device": device}, categories), clicked)
    assert model.predict_proba_one(vectorize({"device": "mobile"}, categories))[True] > 0.9
    assert model.predict_proba_one(vectorize({"device": "tablet"}, categories))[True] < 0.1
