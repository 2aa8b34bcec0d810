"""The false-alarm budget of the shift monitors, shared out among the statistics they watch.

The spec's ``drift.expected_run_length`` (``L`` events) is how long a stationary stream of
independent events should run, on average, before any shift monitor raises a false alarm. The
drift service watches ``T`` statistics (per covariate feature: its missing rate and PSI, and for
categories the share of unseen values; the label's rate or PSI; the champion's scores); a union
(Bonferroni) bound over them gives each statistic a false-alarm probability per observation of
``1 / (L * T)``, and per check, every ``check_every`` observations, ``check_every / (L * T)``.
The baselines turn that probability into thresholds (``services/drift/baselines.py``).

Checks of overlapping windows are positively correlated, so the bound is conservative for
independent events. Autocorrelated values (a running count, a slowly moving season) carry less
information than their number says: their monitors need a larger spec threshold.
"""

from __future__ import annotations

from schemas.spec import PipelineSpec
from services.drift.covariate import watched_features


def statistics_watched(spec: PipelineSpec) -> int:
    """How many statistics the shift monitors of ``spec`` check (at least 1)."""
    drift = spec.drift
    count = sum(3 if comparison == "categorical" else 2
                for comparison in watched_features(spec).values())
    count += int(drift.label.enabled) + int(drift.prediction.enabled)
    return max(1, count)


def alpha_per_observation(spec: PipelineSpec) -> float:
    """Each statistic's share of the budget: its false-alarm probability per observation."""
    return 1.0 / (spec.drift.expected_run_length * statistics_watched(spec))
