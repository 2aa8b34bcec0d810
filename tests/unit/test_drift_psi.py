"""PSI and binning (services/drift/psi.py), and the drift spec's validation of window sizes."""

from __future__ import annotations

import math
import random

import pytest
from pydantic import ValidationError

from schemas.spec import CovariateSpec, DriftSpec, LabelShiftSpec, ShiftSpec, load_spec
from services.drift.psi import (
    EPSILON,
    bin_index,
    psi,
    psi_noise_threshold,
    psi_of_counts,
    quantile_edges,
    uniform_edges,
)


def test_psi_matches_a_hand_computed_example() -> None:
    # (0.5-0.25)ln(0.5/0.25) + 0 + (0.25-0.5)ln(0.25/0.5) = 0.5 ln 2
    assert psi([0.25, 0.25, 0.5], [0.5, 0.25, 0.25]) == pytest.approx(0.5 * math.log(2))
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_an_empty_bin_counts_as_epsilon() -> None:
    expected = (-0.25 * math.log(0.25 / 0.5)) + (0.25 - EPSILON) * math.log(0.25 / EPSILON)
    assert psi([0.5, 0.5, 0.0], [0.5, 0.25, 0.25]) == pytest.approx(expected)
    assert psi([0.5, 0.5, 0.0], [0.5, 0.25, 0.25]) == pytest.approx(2.1285, abs=1e-4)


def test_psi_of_counts_normalises_over_the_given_keys() -> None:
    reference = {"a": 25, "b": 25, "c": 50, "ignored": 1000}
    recent = {"a": 10, "b": 5, "c": 5}
    assert psi_of_counts(reference, recent, ["a", "b", "c"]) == pytest.approx(0.5 * math.log(2))
    with pytest.raises(ValueError, match="empty"):
        psi_of_counts(reference, {}, ["a"])


def test_psi_needs_bins_of_the_same_number() -> None:
    with pytest.raises(ValueError, match="bins"):
        psi([0.5, 0.5], [1.0])


def test_quantile_edges_split_a_sample_into_equal_bins() -> None:
    values = [float(v) for v in range(1000)]
    edges = quantile_edges(values, 10)
    assert edges == (99.0, 199.0, 299.0, 399.0, 499.0, 599.0, 699.0, 799.0, 899.0)
    counts = [0] * 10
    for value in values:
        counts[bin_index(edges, value)] += 1
    assert counts == [100] * 10


def test_quantile_edges_of_few_distinct_values_give_one_bin_per_value() -> None:
    assert quantile_edges([float(v) for v in range(1, 11)] * 50, 10) == tuple(
        float(v) for v in range(1, 10))
    assert quantile_edges([3.0] * 100, 10) == (3.0,)  # a constant: anything else is a shift
    with pytest.raises(ValueError, match="empty"):
        quantile_edges([], 10)


def test_bins_are_closed_on_the_right_and_open_beyond_the_range() -> None:
    edges = uniform_edges(0.0, 1.0, 4)
    assert edges == (0.25, 0.5, 0.75)
    assert [bin_index(edges, v) for v in (-5.0, 0.0, 0.25, 0.2500001, 0.75, 1.0, 7.0)] == [
        0, 0, 0, 1, 2, 3, 3]


def test_psi_of_two_samples_of_one_distribution_is_small_and_of_a_shift_large() -> None:
    rng = random.Random(3)
    reference = [rng.gauss(0, 1) for _ in range(5000)]
    edges = quantile_edges(reference, 10)

    def proportions(sample: list[float]) -> list[float]:
        counts = [0] * 10
        for value in sample:
            counts[bin_index(edges, value)] += 1
        return [count / len(sample) for count in counts]

    same = psi(proportions(reference), proportions([rng.gauss(0, 1) for _ in range(5000)]))
    shifted = psi(proportions(reference), proportions([rng.gauss(1, 1) for _ in range(5000)]))
    assert same < 0.02
    assert 0.8 < shifted < 1.1  # a one-sd mean shift is far beyond the 0.2 rule of thumb


def test_the_noise_threshold_is_higher_for_more_bins_smaller_samples_and_rarer_alarms() -> None:
    base = psi_noise_threshold(10, 1000, 500, 1e-6)
    assert 0.17 < base < 0.18  # (9 + 2 sqrt(9 * 13.8) + 2 * 13.8) * (1/1000 + 1/500)
    assert psi_noise_threshold(10, 1000, 100, 1e-6) > 0.2 > base
    assert psi_noise_threshold(2, 1000, 500, 1e-6) < base  # two bins (a bool) need fewer
    assert psi_noise_threshold(10, 1000, 500, 1e-9) > base
    assert psi_noise_threshold(1, 1000, 1000, 1e-6) == math.inf
    assert psi_noise_threshold(10, 1000, 0, 1e-6) == math.inf


def test_psi_of_stationary_samples_stays_under_the_noise_threshold() -> None:
    rng = random.Random(9)
    alpha, crossed, checks = 1e-3, 0, 300
    for _ in range(checks):
        reference = [rng.gauss(0, 1) for _ in range(1000)]
        edges = quantile_edges(reference, 10)
        counts = [0] * 10
        for value in reference:
            counts[bin_index(edges, value)] += 1
        recent = [0] * 10
        for _ in range(500):
            recent[bin_index(edges, rng.gauss(0, 1))] += 1
        value = psi([c / 1000 for c in counts], [c / 500 for c in recent])
        crossed += value > psi_noise_threshold(10, 1000, 500, alpha)
    assert crossed <= 1  # at most alpha * checks = 0.3 expected; the bound is conservative


@pytest.mark.parametrize(("reference_size", "window_size", "bins"),
                         [(1000, 500, 10), (2000, 1000, 10), (400, 400, 5), (300, 200, 3)])
def test_the_spec_accepts_exactly_the_windows_psi_can_be_trusted_on(
    reference_size: int, window_size: int, bins: int,
) -> None:
    reliable = psi_noise_threshold(bins, reference_size, window_size, 1e-6) <= 0.2
    fields = {"reference_size": reference_size, "window_size": window_size, "bins": bins}
    if reliable:
        assert ShiftSpec.model_validate(fields).bins == bins
    else:
        with pytest.raises(ValidationError, match="too small"):
            ShiftSpec.model_validate(fields)


def test_default_drift_spec_keeps_the_concept_detector_and_watches_everything() -> None:
    drift = DriftSpec()
    assert drift.concept.detector == "ADWIN"
    assert drift.concept.cooldown_observations == 500
    assert drift.covariate == CovariateSpec()
    assert drift.covariate.features == "all"
    assert (drift.covariate.reference_size, drift.covariate.window_size) == (1000, 500)
    assert (drift.covariate.bins, drift.covariate.psi_threshold) == (10, 0.2)
    assert (drift.label.reference_size, drift.label.window_size) == (2000, 1000)
    assert drift.label.rate_threshold == 0.1
    assert drift.prediction.enabled


@pytest.mark.parametrize(("section", "fields", "problem"), [
    (CovariateSpec, {"bins": 1}, "greater than or equal to 2"),
    (CovariateSpec, {"window_size": 0}, "greater than or equal to 10"),
    (CovariateSpec, {"check_every": 0}, "greater than or equal to 1"),
    (CovariateSpec, {"features": []}, "at least one"),
    (CovariateSpec, {"features": ["price", "price"]}, "repeat"),
    (CovariateSpec, {"features": ["not a name"]}, "pattern"),
    (CovariateSpec, {"new_category_share": 0}, "greater than 0"),
    (LabelShiftSpec, {"rate_threshold": 1.5}, "less than 1"),
    (ShiftSpec, {"psi_threshold": 0.2, "window_size": 50}, "too small"),
    (ShiftSpec, {"threshold": 0.2}, "Extra inputs"),
])
def test_bad_drift_settings_are_refused(
    section: type[ShiftSpec], fields: dict[str, object], problem: str,
) -> None:
    with pytest.raises(ValidationError, match=problem):
        section.model_validate(fields)


def test_builtin_specs_load_with_their_drift_sections() -> None:
    clicks, elec2 = load_spec("clicks"), load_spec("elec2")
    assert clicks.drift.covariate.features == ("device", "price", "position")
    assert clicks.drift.concept.detector == "ADWIN"
    assert elec2.drift.covariate.features == "all"
