"""Soft histograms of probabilities: a point mass on a bin edge is not a shift, a move is."""

from __future__ import annotations

from collections import Counter

import pytest

from services.drift.baselines import NumericBaseline
from services.drift.psi import uniform_edges
from services.drift.soft_bins import ProbabilityBaseline, soft_histogram, soft_key


def counts(baseline: ProbabilityBaseline | NumericBaseline, values: list[float]) -> Counter[object]:
    return Counter(map(baseline.key, values))


def test_a_value_is_shared_between_the_two_nearest_bin_centres() -> None:
    # Ten bins: centres 0.05, 0.15, ... 0.95.
    assert soft_key(0.05, 10) == (0, 0)
    assert soft_key(0.10, 10) == (0, 10)  # half way between the first two centres
    assert soft_key(0.14, 10) == (0, 18)
    assert soft_key(0.149999, 10) == (1, 0)
    assert soft_key(0.0, 10) == soft_key(-3.0, 10) == (0, 0)  # below the first centre
    assert soft_key(1.0, 10) == soft_key(7.0, 10) == (9, 0)
    assert soft_histogram(Counter({(0, 10): 4, (9, 0): 2, None: 5}), 10) == pytest.approx(
        [2.0, 2.0, 0, 0, 0, 0, 0, 0, 0, 2.0])


def test_a_point_mass_that_jitters_across_a_bin_edge_is_no_shift() -> None:
    reference = [0.0995] * 900 + [0.9] * 100
    recent = [0.1005] * 450 + [0.9] * 50
    hard = NumericBaseline(reference, bins=10, psi_threshold=0.2, edges=uniform_edges(0, 1, 10))
    soft = ProbabilityBaseline(reference, bins=10, psi_threshold=0.2, alpha=1e-6)
    [hard_psi] = hard.compare(counts(hard, recent), len(recent))
    [soft_psi] = soft.compare(counts(soft, recent), len(recent))
    assert hard_psi.fired and hard_psi.statistic > 5
    assert not soft_psi.fired and soft_psi.statistic < 0.01


def test_scores_that_move_by_a_bin_or_more_are_a_shift() -> None:
    reference = [0.1] * 700 + [0.8] * 300
    recent = [0.1] * 200 + [0.8] * 300  # the positive share went from 0.3 to 0.6
    soft = ProbabilityBaseline(reference, bins=10, psi_threshold=0.2, alpha=1e-6)
    [finding] = soft.compare(counts(soft, recent), len(recent))
    assert finding.detector == "PSI"
    assert finding.fired
    assert finding.statistic > 0.3


def test_no_verdict_on_too_few_scores() -> None:
    soft = ProbabilityBaseline([0.5] * 20, bins=10, psi_threshold=0.2, alpha=1e-6)
    assert soft.compare(counts(soft, [0.9] * 20), 20) == []
