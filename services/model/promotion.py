"""Champion/challenger race: a sequential test (CUSUM) on paired outcomes. Pure logic.

For every label, each challenger is compared with the champion on the same event: a *win* when
the challenger's loss is smaller, a *loss* when larger, nothing on a tie. Each decided comparison
adds ``log((0.5 + effect) / 0.5)`` for a win or ``log((0.5 - effect) / 0.5)`` for a loss to the
challenger's statistic, which never goes below zero; the challenger is promoted when the
statistic reaches ``log(1 / alpha)`` after at least ``min_labels`` labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from schemas.spec import PromotionSpec


@dataclass
class _Score:
    statistic: float = 0.0
    wins: int = 0
    losses: int = 0
    labels: int = 0


@dataclass(frozen=True)
class Promotion:
    """A challenger that beat the champion, with the test's figures."""

    challenger: str
    statistic: float
    threshold: float
    wins: int
    losses: int
    labels: int


@dataclass
class ChallengerRace:
    """Scores every challenger against the current champion."""

    spec: PromotionSpec
    _scores: dict[str, _Score] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The statistic a challenger must reach."""
        return math.log(1 / self.spec.alpha)

    def statistic(self, challenger: str) -> float:
        """The current statistic of ``challenger`` (0 when unknown)."""
        score = self._scores.get(challenger)
        return 0.0 if score is None else score.statistic

    def record(self, champion: str, losses: dict[str, float]) -> Promotion | None:
        """Add one label's losses per model; return the challenger to promote, if any.

        When several qualify on the same label, the one with the highest statistic wins.
        """
        if champion not in losses:
            return None
        win = math.log((0.5 + self.spec.effect) / 0.5)
        lose = math.log((0.5 - self.spec.effect) / 0.5)
        best: Promotion | None = None
        for model, loss in losses.items():
            if model == champion:
                continue
            score = self._scores.setdefault(model, _Score())
            score.labels += 1
            if loss < losses[champion]:
                score.wins += 1
                score.statistic += win
            elif loss > losses[champion]:
                score.losses += 1
                score.statistic = max(0.0, score.statistic + lose)
            if score.labels >= self.spec.min_labels and score.statistic >= self.threshold and (
                best is None or score.statistic > best.statistic
            ):
                best = Promotion(model, score.statistic, self.threshold, score.wins,
                                 score.losses, score.labels)
        return best

    def restart(self) -> None:
        """Forget every score (after the champion changed)."""
        self._scores.clear()
