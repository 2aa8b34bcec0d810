"""The champion/challenger race: a clearly better challenger is promoted, an equal one never."""

from __future__ import annotations

import math
import random

from schemas.spec import PromotionSpec
from services.model.promotion import ChallengerRace

SPEC = PromotionSpec()


def race_until_promotion(
    champion_error: float, challenger_error: float, labels: int, seed: int
) -> int | None:
    """Label index of the first promotion, or None."""
    rng = random.Random(seed)
    race = ChallengerRace(SPEC)
    for n in range(labels):
        losses = {"champ": float(rng.random() < champion_error),
                  "rival": float(rng.random() < challenger_error)}
        if race.record("champ", losses) is not None:
            return n
    return None


def test_a_clearly_better_challenger_is_promoted_after_min_labels() -> None:
    promoted = [race_until_promotion(0.4, 0.2, 5000, seed) for seed in range(10)]
    assert all(at is not None for at in promoted)
    assert all(at is not None and at >= SPEC.min_labels - 1 for at in promoted)


def test_an_equal_challenger_is_never_promoted() -> None:
    promoted = [race_until_promotion(0.3, 0.3, 20_000, seed) for seed in range(20)]
    assert promoted == [None] * 20


def test_a_worse_challenger_is_never_promoted() -> None:
    assert race_until_promotion(0.2, 0.35, 20_000, seed=1) is None


def test_the_statistic_adds_wins_and_is_floored_at_zero_by_losses() -> None:
    race = ChallengerRace(PromotionSpec(min_labels=1, effect=0.1))
    for _ in range(3):
        race.record("champ", {"champ": 1.0, "rival": 0.0})
    assert math.isclose(race.statistic("rival"), 3 * math.log(0.6 / 0.5))
    for _ in range(50):
        race.record("champ", {"champ": 0.0, "rival": 1.0})
    assert race.statistic("rival") == 0.0  # old evidence against does not pile up


def test_ties_count_as_labels_but_not_as_evidence() -> None:
    race = ChallengerRace(PromotionSpec(min_labels=1))
    for _ in range(50):
        assert race.record("champ", {"champ": 0.0, "rival": 0.0}) is None
    assert race.statistic("rival") == 0.0


def test_restart_forgets_the_scores() -> None:
    race = ChallengerRace(SPEC)
    race.record("champ", {"champ": 1.0, "rival": 0.0})
    race.restart()
    assert race.statistic("rival") == 0.0
