"""Build River estimators from the spec, and turn feature vectors into River inputs."""

from __future__ import annotations

import importlib
from typing import Any

from schemas.features import FeatureValue
from schemas.spec import ModelSpec


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


def vectorize(features: dict[str, FeatureValue]) -> dict[str, float]:
    """River input: numbers as they are, categories one-hot (``device=mobile``), None left out."""
    x: dict[str, float] = {}
    for name, value in features.items():
        if value is None:
            continue
        if isinstance(value, str):
            x[f"{name}={value}"] = 1.0
        else:
            x[name] = float(value)
    return x
