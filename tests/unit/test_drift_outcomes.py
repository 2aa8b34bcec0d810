"""Label shift and prediction drift on the champion's outcomes (services/drift/outcomes.py)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import LabelValue
from schemas.predictions import Outcome
from schemas.spec import PipelineSpec
from services.drift.outcomes import PREDICTION_MONITORS, OutcomeShifts, is_positive
from services.drift.windows import Signal

T0 = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
CHANGE_AT = 3000


def spec(label_type: str = "binary", **drift: Any) -> PipelineSpec:
    return PipelineSpec.model_validate({
        "name": "shop", "entity_keys": ["user"], "fields": {"x": {"type": "float"}},
        "label": {"type": label_type, "feedback_window_seconds": 30},
        "models": {"champion": {"name": "m", "estimator": "linear_model.LogisticRegression"}},
        # Scores are watched from the first outcome unless a test says otherwise.
        "drift": {"prediction": {"warmup_observations": 0}, **drift},
    })


def outcome(n: int, label: LabelValue, score: float | None, model: str = "m",
            role: str = "champion") -> Outcome:
    return Outcome.model_validate({
        "event_id": f"e-{n}", "model": model, "model_version": 1, "role": role,
        "prediction": label, "score": score, "label": label, "correct": True,
        "label_delay_seconds": 1.0, "event_time": T0 + timedelta(seconds=n),
        "learned_at": T0 + timedelta(seconds=n + 1),
    })


Draw = Callable[[random.Random, bool], tuple[LabelValue, float | None]]


def stream(seed: int, count: int, draw: Draw) -> Iterator[Outcome]:
    """Outcomes whose (label, score) come from ``draw(rng, changed)``; changed after CHANGE_AT."""
    rng = random.Random(seed)
    for n in range(1, count + 1):
        label, score = draw(rng, n > CHANGE_AT)
        yield outcome(n, label, score)


def alerts(shifts: OutcomeShifts, outcomes: Iterator[Outcome]) -> list[Signal]:
    return [s for o in outcomes for s in shifts.update(o)[1] if s.check.alert is not None]


def clicks(rate_after: float = 0.3, score_after: tuple[float, float] = (2, 5)) -> Draw:
    def draw(rng: random.Random, changed: bool) -> tuple[LabelValue, float | None]:
        rate, (a, b) = (rate_after, score_after) if changed else (0.3, (2, 5))
        return rng.random() < rate, rng.betavariate(a, b)
    return draw


@pytest.mark.parametrize("seed", range(5))
def test_a_positive_rate_rising_from_0_3_to_0_5_is_a_label_shift(seed: int) -> None:
    shifts = OutcomeShifts(spec(prediction={"enabled": False}))
    [signal] = alerts(shifts, stream(seed, 10_000, clicks(rate_after=0.5)))
    assert (signal.kind, signal.target, signal.model) == ("label", "label_rate", None)
    assert signal.check.alert is not None
    assert signal.check.alert.detector == "rate_difference"
    assert signal.check.alert.threshold == 0.1
    assert CHANGE_AT < signal.check.position <= CHANGE_AT + 1000  # one recent window


@pytest.mark.parametrize("seed", range(5))
def test_a_score_distribution_shift_is_prediction_drift_of_the_champion(seed: int) -> None:
    shifts = OutcomeShifts(spec(label={"enabled": False}))
    [signal] = alerts(shifts, stream(seed, 10_000, clicks(score_after=(3, 4))))
    assert (signal.kind, signal.target, signal.model) == ("prediction", "score:m", "m")
    assert signal.check.alert is not None
    assert signal.check.alert.detector == "PSI"
    assert CHANGE_AT < signal.check.position <= CHANGE_AT + 500


def test_stationary_outcomes_raise_no_label_or_prediction_alert_in_100_000() -> None:
    shifts = OutcomeShifts(spec())
    checks = 0
    for item in stream(11, 100_000, clicks()):
        for signal in shifts.update(item)[1]:
            checks += 1
            assert signal.check.alert is None, signal
    assert checks > 1000
    assert shifts.label is not None
    assert shifts.label.position == shifts.predictions["m"].position == 100_000


def test_only_the_champion_counts() -> None:
    shifts = OutcomeShifts(spec())
    observed, _ = shifts.update(outcome(1, True, 0.7, model="tree", role="challenger"))
    assert observed == []
    assert shifts.predictions == {}
    assert shifts.update(outcome(2, True, 0.7))[0] == ["label", "prediction"]
    assert shifts.update(outcome(3, True, None))[0] == ["label"]  # no score: label only


def test_a_new_champion_gets_a_fresh_prediction_monitor_and_old_ones_are_dropped() -> None:
    shifts = OutcomeShifts(spec())
    for n, model in enumerate(["a", "b", "c", "d", "e", "b"]):
        shifts.update(outcome(n, True, 0.5, model=model))
    assert len(shifts.predictions) == PREDICTION_MONITORS
    assert list(shifts.predictions) == ["b", "c", "d", "e"]


def test_disabled_monitors_observe_nothing() -> None:
    shifts = OutcomeShifts(spec(label={"enabled": False}, prediction={"enabled": False}))
    assert shifts.update(outcome(1, True, 0.5)) == ([], [])


def test_a_multiclass_label_mix_change_is_a_label_shift_by_psi() -> None:
    def draw(rng: random.Random, changed: bool) -> tuple[LabelValue, float | None]:
        weights = [1, 1, 2] if changed else [5, 3, 2]
        return rng.choices(["cat", "dog", "bird"], weights=weights)[0], None

    [signal] = alerts(OutcomeShifts(spec("multiclass")), stream(1, 8000, draw))
    assert signal.target == "label"
    assert signal.check.alert is not None
    assert signal.check.alert.detector == "PSI"
    assert CHANGE_AT < signal.check.position <= CHANGE_AT + 1000


def test_a_new_class_is_part_of_the_multiclass_psi() -> None:
    def draw(rng: random.Random, changed: bool) -> tuple[LabelValue, float | None]:
        if changed and rng.random() < 0.1:
            return "fish", None
        return rng.choice(["cat", "dog"]), None

    [signal] = alerts(OutcomeShifts(spec("multiclass")), stream(2, 8000, draw))
    assert signal.check.alert is not None
    assert signal.check.alert.detector == "PSI"


def test_regression_labels_and_values_are_binned_at_their_quantiles() -> None:
    def draw(rng: random.Random, changed: bool) -> tuple[LabelValue, float | None]:
        value = rng.gauss(100.0 + (15.0 if changed else 0.0), 15.0)
        return value, value + rng.gauss(0, 1)

    found = alerts(OutcomeShifts(spec("regression")), stream(3, 8000, draw))
    assert sorted(s.target for s in found) == ["label", "score:m"]
    assert all(CHANGE_AT < s.check.position <= CHANGE_AT + 1000 for s in found)


@pytest.mark.parametrize(("label", "positive"), [
    (True, True), (False, False), (1, True), (0, False), (1.0, True), ("yes", True),
    ("True", True), ("0", False), ("no", False)])
def test_binary_labels_are_read_like_the_model_service_reads_them(
    label: LabelValue, positive: bool,
) -> None:
    assert is_positive(label) is positive


def test_a_learning_champions_first_scores_are_not_its_prediction_reference() -> None:
    # The scores move while the model learns its first 2,000 labels, then stay.
    def learning(rng: random.Random, n: int) -> tuple[LabelValue, float | None]:
        a = 1 + 3 * min(n, 2000) / 2000
        return rng.random() < 0.3, rng.betavariate(a, 5)

    def outcomes(warmup: int) -> list[Signal]:
        rng = random.Random(8)
        shifts = OutcomeShifts(spec(prediction={"warmup_observations": warmup}))
        return alerts(shifts, iter([outcome(n, *learning(rng, n)) for n in range(1, 20_001)]))

    assert [s.target for s in outcomes(0)] == ["score:m"], "the learning itself looks like drift"
    assert outcomes(2000) == []
