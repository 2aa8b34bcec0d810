"""The false-alarm budget: shared out among the statistics watched, it raises thresholds where
sampling noise would cross the spec's, and leaves real shifts alerted."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.features import FeatureValue
from schemas.spec import PipelineSpec
from services.drift.baselines import CategoricalBaseline, RateBaseline
from services.drift.budget import alpha_per_observation, statistics_watched
from services.drift.covariate import CovariateMonitor
from services.drift.outcomes import OutcomeShifts
from tests.unit.test_drift_outcomes import alerts as outcome_alerts
from tests.unit.test_drift_outcomes import clicks, stream


def spec(**drift: Any) -> PipelineSpec:
    return PipelineSpec.model_validate({
        "name": "shop", "entity_keys": ["user"],
        "fields": {"x": {"type": "float"}, "item": {"type": "categorical"}},
        "label": {"type": "binary", "feedback_window_seconds": 30},
        "models": {"champion": {"name": "m", "estimator": "linear_model.LogisticRegression"}},
        "drift": drift,
    })


def test_the_run_length_is_shared_out_among_every_statistic_watched() -> None:
    # x: missing rate and PSI; item: missing rate, new categories and PSI; label; scores.
    assert statistics_watched(spec()) == 7
    assert alpha_per_observation(spec()) == pytest.approx(1 / (10_000_000 * 7))
    quiet = spec(expected_run_length=1e9, label={"enabled": False},
                 covariate={"features": ["x"]})
    assert statistics_watched(quiet) == 3
    assert alpha_per_observation(quiet) == pytest.approx(1 / (1e9 * 3))


def items(seed: int, count: int, new_from: int | None = None) -> Iterator[dict[str, FeatureValue]]:
    """Item ids drawn from a long tail (Zipf over 20,000 ids); from ``new_from`` on, a third of
    them are ids never drawn before."""
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, 20_001)))
    ids = [f"item-{rank}" for rank in range(1, 20_001)]
    for n in range(1, count + 1):
        if new_from is not None and n > new_from and rng.random() < 1 / 3:
            yield {"x": rng.gauss(0, 1), "item": f"new-{n}"}
        else:
            yield {"x": rng.gauss(0, 1), "item": rng.choices(ids, cum_weights=cumulative)[0]}


def covariate_alerts(monitor: CovariateMonitor,
                     vectors: Iterator[dict[str, FeatureValue]]) -> list[tuple[str, str, int]]:
    return [(signal.target, signal.check.alert.detector, signal.check.position)
            for vector in vectors for signal in monitor.update(vector)
            if signal.check.alert is not None]


def test_a_long_tailed_category_does_not_alert_on_its_own_tail_but_a_flood_of_new_ids_does(
) -> None:
    watched = spec(covariate={"features": ["item"], "bins": 10})
    alpha = alpha_per_observation(watched)
    assert covariate_alerts(CovariateMonitor(watched, alpha), items(1, 30_000)) == []
    baseline = CategoricalBaseline([vector["item"] for vector in items(2, 1000)], bins=10,
                                   psi_threshold=0.2, new_category_share=0.05)
    assert baseline.unseen_share > 0.05, "the tail alone is beyond the spec's share"

    flooded = covariate_alerts(CovariateMonitor(watched, alpha), items(3, 12_000, new_from=6000))
    assert [(target, detector) for target, detector, _ in flooded][:1] == [
        ("feature:item", "new_category")]
    assert 6000 < flooded[0][2] <= 6500


def test_a_label_rate_on_small_windows_alerts_on_a_real_shift_only() -> None:
    small = {"reference_size": 200, "window_size": 100, "check_every": 10,
             "rate_threshold": 0.05, "psi_threshold": 1.0, "cooldown_observations": 200}
    watched = spec(label=small, prediction={"enabled": False})
    alpha = alpha_per_observation(watched)
    assert outcome_alerts(OutcomeShifts(watched, alpha), stream(4, 100_000, clicks())) == []
    # Without the budget (the spec's 0.05 alone) the same stream alerts again and again.
    loose = outcome_alerts(OutcomeShifts(watched, 0.05), stream(4, 20_000, clicks()))
    assert len(loose) > 10
    [shift] = outcome_alerts(OutcomeShifts(watched, alpha), stream(5, 6000, clicks(0.7)))
    assert 3000 < shift.check.position <= 3300


def test_a_rate_threshold_is_raised_to_the_noise_of_the_windows() -> None:
    reference = [True] * 30 + [False] * 70
    [finding] = RateBaseline(reference, rate_threshold=0.05, alpha=1e-6).compare(
        {True: 30, False: 70}, 100)
    assert finding.statistic == 0.0
    assert finding.threshold > 0.3, "five standard errors of two samples of 100"
    [wide] = RateBaseline(reference * 100, rate_threshold=0.05, alpha=1e-6).compare(
        {True: 3000, False: 7000}, 10_000)
    assert wide.threshold == 0.05, "large windows: the spec's threshold stands"
