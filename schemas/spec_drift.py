"""Which drift detectors watch what: concept drift on errors, covariate, label and prediction
shift on the features and outcomes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.spec_base import ClosedSpec, Identifier


class DetectorSpec(ClosedSpec):
    """A River drift detector by name under ``river.drift`` with its parameters.

    It watches a model's error stream (``1.0`` wrong, ``0.0`` right); see
    ``services/drift/detectors.py`` for what each detector reports as statistic and threshold.
    ``direction = "up"`` (the default) alerts only when the error rate rises: a model that gets
    better (it learned, or the world became easier) is no reason to start a challenger.
    ``"both"`` alerts on any change of the error rate.
    """

    detector: Literal["ADWIN", "PageHinkley", "KSWIN", "DDM"] = "ADWIN"
    params: dict[str, float | int] = Field(default_factory=dict)
    cooldown_observations: int = Field(default=500, ge=0)
    direction: Literal["up", "both"] = "up"


class ShiftSpec(ClosedSpec):
    """A distribution shift monitor: a reference window against a sliding recent window.

    The reference is the first ``reference_size`` observations; the recent window the last
    ``window_size`` observations after it, compared every ``check_every`` observations by the
    Population Stability Index over ``bins`` bins (categories for categorical values). After an
    alert the monitor is quiet for ``cooldown_observations`` and until ``reference_size``
    observations have arrived since the alert; the last ``reference_size`` of them become the new
    reference (re-base), so a persistent new regime raises one alert, not one per check.

    ``reference = "trailing"`` makes the reference follow the stream: every ``window_size``
    observations it is re-fitted on the ``reference_size`` observations just before the recent
    window. Use it where the stream is periodic or moves slowly (seasons, prices over months): a
    change within ``window_size`` observations is found as with a fixed reference, a change
    slower than that is taken as the season and not alerted on.

    The windows must be large enough that, with no shift at all, PSI stays below
    ``psi_threshold`` (its sampling noise is about ``(bins - 1) * (1/reference_size +
    1/window_size)``): a configuration where one check in a million would raise a false alarm
    is refused.
    """

    enabled: bool = True
    reference_size: int = Field(default=1000, ge=10)
    window_size: int = Field(default=500, ge=10)
    check_every: int = Field(default=50, ge=1)
    warmup_observations: int = Field(default=0, ge=0)
    """Observations skipped before the reference starts (see :class:`PredictionShiftSpec`)."""
    reference: Literal["fixed", "trailing"] = "fixed"
    bins: int = Field(default=10, ge=2, le=100)
    psi_threshold: float = Field(default=0.2, gt=0)
    cooldown_observations: int = Field(default=1000, ge=0)

    @model_validator(mode="after")
    def _windows_hold_enough(self) -> ShiftSpec:
        # The same bound as services/drift/psi.py:psi_is_reliable, for full windows: PSI times
        # n·m/(n+m) is about chi-square with bins-1 degrees of freedom, and Laurent-Massart's
        # tail bound P(X > k + 2·sqrt(k·x) + 2·x) <= exp(-x) with x = ln(1e6).
        import math

        k, x = self.bins - 1, math.log(1e6)
        needed = k + 2 * math.sqrt(k * x) + 2 * x
        scale = 1 / self.reference_size + 1 / self.window_size
        if self.psi_threshold / scale < needed:
            raise ValueError(
                f"reference_size {self.reference_size} and window_size {self.window_size} are "
                f"too small for {self.bins} bins and psi_threshold {self.psi_threshold}: with no "
                f"shift at all PSI would exceed the threshold too often (needs 1/reference_size"
                f" + 1/window_size <= {self.psi_threshold / needed:.5f})"
            )
        return self


class PredictionShiftSpec(ShiftSpec):
    """Prediction drift on the champion's scores. An online model's scores move while it learns:
    fast over its first few thousand labels, slowly for as long as it keeps learning. A reference
    taken in the first phase, or kept fixed through the second, would make the learning itself
    look like drift. So the reference starts after ``warmup_observations`` outcomes of each
    champion (after a promotion, of the new one), and trails the stream by default."""

    warmup_observations: int = Field(default=5000, ge=0)
    reference: Literal["fixed", "trailing"] = "trailing"


class LabelShiftSpec(ShiftSpec):
    """Label shift on the champion's outcomes. A binary label is compared by its positive rate:
    an alert when the recent rate differs from the reference rate by more than
    ``rate_threshold``; a multiclass label by PSI over the classes, a regression label by PSI
    over quantile bins."""

    reference_size: int = Field(default=2000, ge=10)
    window_size: int = Field(default=1000, ge=10)
    check_every: int = Field(default=100, ge=1)
    cooldown_observations: int = Field(default=2000, ge=0)
    rate_threshold: float = Field(default=0.1, gt=0, lt=1)


class CovariateSpec(ShiftSpec):
    """Covariate shift per feature: ``features`` is ``"all"`` (every field of the spec) or a list
    of field and aggregate names. Numbers are compared by PSI over bins fixed at the reference's
    quantiles, categories (and bools) by PSI over the reference's categories. Two schema checks
    come first: the share of missing values rising by more than ``missing_rate_threshold``, and
    values never seen in the reference taking more than ``new_category_share`` of the recent
    window."""

    features: Literal["all"] | tuple[Identifier, ...] = "all"
    missing_rate_threshold: float = Field(default=0.1, gt=0, le=1)
    new_category_share: float = Field(default=0.05, gt=0, le=1)

    @model_validator(mode="after")
    def _features_are_distinct(self) -> CovariateSpec:
        if self.features != "all":
            if not self.features:
                raise ValueError("features: give at least one name, or \"all\"")
            if len(set(self.features)) != len(self.features):
                raise ValueError(f"features: names repeat in {list(self.features)}")
        return self


class DriftSpec(ClosedSpec):
    """Which detectors watch what: concept drift on each model's errors, covariate shift on the
    features, label shift and prediction drift (the champion's scores) on the outcomes.

    ``expected_run_length`` is the false-alarm budget of the shift monitors (covariate, label,
    prediction): the events expected between two false alarms of all of them together on a
    stationary stream of independent events. It is shared out equally among the statistics
    watched (Bonferroni), and each statistic's threshold is raised above the spec's where
    sampling noise alone would cross it more often (``services/drift/budget.py``). Concept
    detectors keep their own parameters (ADWIN's ``delta``).
    """

    expected_run_length: float = Field(default=10_000_000, ge=1000)

    concept: DetectorSpec = Field(default_factory=DetectorSpec)
    covariate: CovariateSpec = Field(default_factory=CovariateSpec)
    label: LabelShiftSpec = Field(default_factory=LabelShiftSpec)
    prediction: PredictionShiftSpec = Field(default_factory=PredictionShiftSpec)
