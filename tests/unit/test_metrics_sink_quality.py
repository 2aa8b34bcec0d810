"""Rolling quality of the metrics sink, checked against brute-force computations."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from schemas.events import LabelValue
from schemas.predictions import Outcome, PredictionValue
from services.metrics_sink.quality import ModelQuality, log_loss, regression_error
from services.metrics_sink.rolling import RollingRocAuc, roc_auc

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)


def brute_force_auc(pairs: list[tuple[float, bool]]) -> float:
    """Every (positive, negative) pair: 1 if the positive scores higher, 1/2 on a tie."""
    positives = [score for score, positive in pairs if positive]
    negatives = [score for score, positive in pairs if not positive]
    ordered = sum(1.0 if p > n else 0.5 if p == n else 0.0
                  for p in positives for n in negatives)
    return ordered / (len(positives) * len(negatives))


def random_pairs(rng: random.Random, n: int, decimals: int) -> list[tuple[float, bool]]:
    """Scores that lean towards the label, rounded so that ties are common."""
    pairs = []
    for _ in range(n):
        positive = rng.random() < 0.3
        score = min(1.0, max(0.0, rng.gauss(0.6 if positive else 0.4, 0.2)))
        pairs.append((round(score, decimals), positive))
    return pairs


@pytest.mark.parametrize("decimals", [1, 2, 6])
def test_roc_auc_is_the_share_of_correctly_ordered_pairs_with_ties_as_half(decimals: int) -> None:
    rng = random.Random(decimals)
    for n in (2, 3, 10, 57, 400):
        pairs = random_pairs(rng, n, decimals)
        if all(p for _, p in pairs) or not any(p for _, p in pairs):
            assert roc_auc(pairs) is None
            continue
        assert roc_auc(pairs) == pytest.approx(brute_force_auc(pairs), abs=1e-12)


def test_roc_auc_of_perfect_reversed_and_constant_scores() -> None:
    assert roc_auc([(0.9, True), (0.8, True), (0.2, False)]) == 1.0
    assert roc_auc([(0.1, True), (0.8, False), (0.9, False)]) == 0.0
    assert roc_auc([(0.5, True), (0.5, False), (0.5, False)]) == 0.5


def test_roc_auc_is_undefined_without_both_classes() -> None:
    assert roc_auc([]) is None
    assert roc_auc([(0.2, True), (0.9, True)]) is None
    assert roc_auc([(0.2, False)]) is None


def test_rolling_roc_auc_covers_the_last_pairs_once_refreshed() -> None:
    rng = random.Random(3)
    window, pairs = RollingRocAuc(50), random_pairs(rng, 500, 2)
    for index, (score, positive) in enumerate(pairs, start=1):
        window.update(score, positive)
        if index % 37 == 0:
            assert window.changes == 37
            last = pairs[max(0, index - 50):index]
            assert window.refresh() == pytest.approx(brute_force_auc(last))
            assert window.changes == 0
    assert len(window) == 50


def test_rolling_roc_auc_keeps_its_value_until_the_next_refresh() -> None:
    window = RollingRocAuc(2)
    assert window.value is None
    window.update(0.9, True)
    window.update(0.1, False)
    assert window.value is None  # not refreshed yet
    assert window.refresh() == 1.0
    window.update(0.8, True)  # the window is now (0.1, False), (0.8, True): still 1.0
    window.update(0.7, True)  # (0.8, True), (0.7, True): one class only
    assert window.value == 1.0
    assert window.refresh() is None
    assert window.value is None


def test_log_loss_clips_probabilities() -> None:
    assert log_loss(1.0) == 0.0
    assert log_loss(0.25) == pytest.approx(math.log(4))
    assert log_loss(0.0) == pytest.approx(-math.log(1e-15))
    assert log_loss(1.0 + 1e-12) == 0.0


def outcome(label: LabelValue, prediction: PredictionValue, *, score: float | None = None,
            correct: bool | None = None, label_probability: float | None = None,
            timed_out: bool = False) -> Outcome:
    return Outcome(event_id="e", model="m", model_version=1, prediction=prediction, score=score,
                   label=label, correct=correct, label_probability=label_probability,
                   timed_out=timed_out, label_delay_seconds=1.0, event_time=T0, learned_at=T0)


def test_binary_quality_matches_brute_force_over_the_window() -> None:
    rng = random.Random(11)
    size, quality = 40, ModelQuality(40)
    seen: list[Outcome] = []
    for index in range(300):
        label = rng.random() < 0.4
        predicted = index % 17 != 0  # now and then the model predicts nothing
        score = rng.choice([0.0, 1.0, round(rng.random(), 2)]) if predicted else None
        if score is None:
            item = outcome(label, None, timed_out=rng.random() < 0.3)
        else:
            item = outcome(label, score >= 0.5, score=score, correct=(score >= 0.5) == label,
                           label_probability=score if label else 1.0 - score,
                           timed_out=rng.random() < 0.3)
        seen.append(item)
        quality.observe(item)

        last = seen[-size:]
        assert quality.label_coverage.mean == pytest.approx(
            sum(not o.timed_out for o in last) / len(last))
        judged = [o for o in seen if o.correct is not None][-size:]
        if judged:
            assert quality.accuracy.mean == pytest.approx(
                sum(bool(o.correct) for o in judged) / len(judged))
            positives = sum(o.label is True for o in judged)
            assert quality.majority.share == pytest.approx(
                max(positives, len(judged) - positives) / len(judged))
        scored = [o for o in seen if o.label_probability is not None][-size:]
        if scored:
            expected = sum(-math.log(max(1e-15, o.label_probability or 0.0))
                           for o in scored) / len(scored)
            assert quality.log_loss.mean == pytest.approx(expected)
        if index % 25 == 0:
            pairs = [(o.score, bool(o.label)) for o in seen if o.score is not None][-size:]
            refreshed = quality.roc_auc.refresh()
            if len({positive for _, positive in pairs}) == 2:
                assert refreshed == pytest.approx(brute_force_auc(pairs))
            else:
                assert refreshed is None
    assert len(quality.absolute_error) == 0  # nothing here is regression


def test_regression_quality_matches_brute_force_over_the_window() -> None:
    rng = random.Random(12)
    size, quality = 30, ModelQuality(30)
    errors: list[float] = []
    for index in range(200):
        target = rng.gauss(10, 3)
        if index % 11 == 0:
            quality.observe(outcome(target, None))  # nothing predicted: not measured
            continue
        prediction = target + rng.gauss(0, 1)
        quality.observe(outcome(target, prediction, score=prediction))
        errors.append(target - prediction)
        last = errors[-size:]
        assert quality.mae == pytest.approx(sum(abs(e) for e in last) / len(last))
        assert quality.rmse == pytest.approx(math.sqrt(sum(e * e for e in last) / len(last)))
    assert len(quality.accuracy) == len(quality.log_loss) == len(quality.roc_auc) == 0


def test_only_regression_outcomes_have_a_regression_error() -> None:
    assert regression_error(outcome(3.0, 2.5, score=2.5)) == 0.5
    assert regression_error(outcome(3, 4.0, score=4.0)) == -1.0
    assert regression_error(outcome(2, 2, score=0.9, correct=True)) is None  # multiclass
    assert regression_error(outcome(True, False, score=0.2, correct=False)) is None
    assert regression_error(outcome(3.0, None)) is None


def test_summary_lists_only_measures_with_data() -> None:
    quality = ModelQuality(10)
    assert quality.summary() == {}
    quality.observe(outcome(True, True, score=0.8, correct=True, label_probability=0.8))
    quality.observe(outcome(False, True, score=0.6, correct=False, label_probability=0.4,
                            timed_out=True))
    assert quality.summary() == {
        "label_coverage": 0.5, "accuracy": 0.5, "majority_baseline": 0.5,
        "log_loss": round((-math.log(0.8) - math.log(0.4)) / 2, 4),
        "precision": 0.5, "recall": 1.0,  # two predicted positives, one right; one positive
    }
    quality.roc_auc.refresh()
    assert quality.summary()["roc_auc"] == 1.0


def test_rolling_mean_of_small_values_after_huge_ones_has_no_leftover_rounding() -> None:
    quality = ModelQuality(4)
    for target in (1e9, -3e8, 7e8, 1e9):
        quality.observe(outcome(target, 0.0, score=0.0))
    for _ in range(4):
        quality.observe(outcome(1e-3, 0.0, score=0.0))
    assert quality.mae == pytest.approx(1e-3, rel=1e-12)
    assert quality.rmse == pytest.approx(1e-3, rel=1e-12)


def test_precision_and_recall_follow_the_predicted_and_the_labelled_positives() -> None:
    quality = ModelQuality(3)
    for label, predicted in ((True, True), (False, True), (True, False), (False, False),
                             (True, True)):
        quality.observe(outcome(label, predicted, correct=label == predicted))
    # predicted positive: labels True, False, True -> 2 of 3; labelled positive: flagged
    # True, False, True -> 2 of 3
    assert quality.precision.mean == pytest.approx(2 / 3)
    assert quality.recall.mean == pytest.approx(2 / 3)
    for _ in range(3):  # three right flags push the oldest out of both windows
        quality.observe(outcome(True, True, correct=True))
    assert quality.precision.mean == quality.recall.mean == 1.0
