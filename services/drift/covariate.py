"""Covariate shift: one reference-vs-recent monitor per watched feature of the feature vectors.

Which features: ``drift.covariate.features`` of the spec, ``"all"`` meaning every event field;
names of aggregates may be listed too. How each is compared follows its type in the spec:
``float`` and ``int`` fields and every aggregate by PSI over quantile bins of the reference,
``categorical`` and ``bool`` fields by PSI over the reference's categories (bools arrive as
``1.0``/``0.0``). Every feature also gets the schema checks: a rising share of missing values (a
key absent from the vector counts as missing, like ``None``) and, for categories, values never
seen in the reference. Alerts name the feature as ``feature:<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from schemas.features import FeatureValue
from schemas.spec import PipelineSpec, SpecError
from schemas.spec_drift import CovariateSpec
from services.drift.baselines import (
    DEFAULT_ALPHA_PER_OBSERVATION,
    CategoricalBaseline,
    NumericBaseline,
)
from services.drift.windows import Baseline, ShiftWindows, Signal

Comparison = Literal["numeric", "categorical"]


def watched_features(spec: PipelineSpec) -> dict[str, Comparison]:
    """The features the spec asks to watch, each with how it is compared.

    Raises :class:`~schemas.spec.SpecError` naming a listed feature that is neither a field nor
    an aggregate.
    """
    covariate = spec.drift.covariate
    if not covariate.enabled:
        return {}
    aggregates = {aggregate.name for aggregate in spec.aggregates}
    names = list(spec.fields) if covariate.features == "all" else list(covariate.features)
    unknown = [name for name in names if name not in spec.fields and name not in aggregates]
    if unknown:
        raise SpecError(
            f"drift.covariate.features: {unknown} are neither fields nor aggregates of spec "
            f"'{spec.name}' (fields {list(spec.fields)}, aggregates {sorted(aggregates)})"
        )
    categorical = {name for name, field in spec.fields.items()
                   if field.type in ("categorical", "bool")}
    return {name: "categorical" if name in categorical else "numeric" for name in names}


class CovariateMonitor:
    """The feature monitors of one spec; :meth:`update` takes one feature vector."""

    def __init__(self, spec: PipelineSpec, alpha: float = DEFAULT_ALPHA_PER_OBSERVATION) -> None:
        """``alpha``: each statistic's false-alarm probability per observation
        (:mod:`services.drift.budget`); a check's is ``check_every`` times that."""
        self._spec = spec.drift.covariate
        self._alpha = min(0.5, alpha * self._spec.check_every)
        self.features = watched_features(spec)
        self.windows: dict[str, ShiftWindows[FeatureValue]] = {
            name: self._windows(comparison) for name, comparison in self.features.items()
        }
        self.position = 0
        """Feature vectors seen."""

    def update(self, features: Mapping[str, FeatureValue]) -> list[Signal]:
        """Feed every watched feature of one vector; return the checks that were due."""
        self.position += 1
        signals = []
        for name, windows in self.windows.items():
            check = windows.update(features.get(name))
            if check is not None:
                signals.append(Signal("covariate", f"feature:{name}", None, check))
        return signals

    def _windows(self, comparison: Comparison) -> ShiftWindows[FeatureValue]:
        spec = self._spec
        return ShiftWindows.for_spec(_FeatureBaseline(comparison, spec, self._alpha), spec)


@dataclass(frozen=True)
class _FeatureBaseline:
    """Fits one feature's baseline on its reference (a class, not a closure, so the monitors
    pickle into the drift service's checkpoints)."""

    comparison: Comparison
    spec: CovariateSpec
    alpha: float

    def __call__(self, reference: Sequence[FeatureValue]) -> Baseline[FeatureValue]:
        spec = self.spec
        if self.comparison == "numeric":
            return NumericBaseline(
                reference, bins=spec.bins, psi_threshold=spec.psi_threshold,
                missing_rate_threshold=spec.missing_rate_threshold, alpha=self.alpha,
            )
        return CategoricalBaseline(
            reference, bins=spec.bins, psi_threshold=spec.psi_threshold,
            missing_rate_threshold=spec.missing_rate_threshold,
            new_category_share=spec.new_category_share, alpha=self.alpha,
        )
