"""Build River estimators from the spec, and turn feature vectors into River inputs."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.features import FeatureValue
from schemas.spec import ModelSpec, PipelineSpec


class EstimatorError(ValueError):
    """The spec names an estimator that cannot be built."""


def build_estimator(spec: ModelSpec) -> Any:
    """A fresh estimator for ``spec``.

    ``estimator`` is either a dotted name under ``river`` (``linear_model.LogisticRegression``),
    built with ``params``, or ``package.module:function``, a user factory called with ``params``.
    ``scale = true`` puts a ``preprocessing.StandardScaler`` in front.
    """
    module_name, attribute = spec.locate()
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise EstimatorError(
            f"model '{spec.name}': cannot find {spec.estimator!r}: {error}"
        ) from error
    try:
        estimator = factory(**spec.params)
    except TypeError as error:
        raise EstimatorError(f"model '{spec.name}': bad params {spec.params}: {error}") from error
    if spec.scale:
        from river import preprocessing

        estimator = preprocessing.StandardScaler() | estimator
    return estimator


def categories_of(spec: PipelineSpec) -> dict[str, tuple[str, ...]]:
    """The declared values of each categorical field of ``spec`` (fields without a list of
    values are left out)."""
    return {name: field.values for name, field in spec.fields.items()
            if field.type == "categorical" and field.values}


def vectorize(
    features: dict[str, FeatureValue], categories: Mapping[str, Sequence[str]] | None = None
) -> dict[str, float]:
    """River input: numbers as they are, categories one-hot (``device=mobile``), None left out.

    For a field in ``categories`` every declared value gets its input, 0.0 unless it is the
    field's value, so a scaler sees each one-hot input vary: River's ``StandardScaler`` keeps
    statistics only of the inputs it is given, and an input that is always 1.0 scales to 0.0,
    which would hide the category from the model. Undeclared values are still one-hot.
    """
    x: dict[str, float] = {}
    for name, declared in (categories or {}).items():
        for category in declared:
            x[f"{name}={category}"] = 0.0
    for name, value in features.items():
        if value is None:
            continue
        if isinstance(value, str):
            x[f"{name}={value}"] = 1.0
        else:
            x[name] = float(value)
    return x
