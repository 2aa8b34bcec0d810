"""What ``streamml demo`` says at the end: pure logic over the run's truth and alerts.

The demo injects one abrupt concept drift part-way (a timeline written for the run), and its
last lines say whether the champion beats the majority-class baseline on the same outcomes and
when the drift was caught, so a newcomer knows whether the model works.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from schemas.alerts import DriftAlert
from schemas.predictions import Outcome
from schemas.truth import DriftPoint

DRIFT_SHARE = 0.4
"""Where in the run the concept drift starts: 40% of its events."""


def demo_timeline(drift_at_event: int) -> str:
    """A clicks timeline (TOML): the baseline world for ``drift_at_event`` events, then the
    built-in ``layout-change`` concept drift (abrupt) for the rest of the run."""
    return f"""\
description = "streamml demo: the baseline, then an abrupt concept drift."

[[phases]]
name = "baseline"
kind = "stationary"
events = {drift_at_event}
description = "Mostly mobile users; top positions, mobile and cheap items get the clicks."

[[phases]]
name = "layout-change"
kind = "concept_drift"
events = 1000000000
transition = "abrupt"
description = "A new page layout: lower positions now draw the eye, tablets click, mobiles don't."
concept = {{ position = 0.2, device = {{ mobile = -0.8, tablet = 0.8 }} }}
"""


@dataclass(frozen=True)
class Catch:
    """The first concept alert at or after a drift point: ``seconds_after`` from the drift to the
    event the alert fired on (event time), ``detected_after`` from the drift to the moment the
    alert was raised (its ``detected_at``: later, by the time the outcomes took to be known);
    None fields when nothing caught it."""

    drift: DriftPoint
    alert: DriftAlert | None
    seconds_after: float | None
    detected_after: float | None = None


def first_catch(point: DriftPoint, alerts: list[DriftAlert], model: str) -> Catch:
    """The first concept alert on ``model``'s errors whose event time is at or after
    ``point`` (alerts without an event time are left out)."""
    after = sorted(
        ((alert.event_time, index, alert) for index, alert in enumerate(alerts)
         if alert.kind == "concept" and alert.model == model and alert.event_time is not None
         and alert.event_time >= point.event_time),
        key=lambda timed: (timed[0], timed[1]))
    if not after:
        return Catch(point, None, None)
    when, _, first = after[0]
    return Catch(point, first, (when - point.event_time).total_seconds(),
                 (first.detected_at - point.event_time).total_seconds())


@dataclass(frozen=True)
class Judged:
    """A model's judged outcomes of events in a span of event time: how many, the share right,
    and the majority-class baseline (the share of their most frequent label)."""

    outcomes: int
    accuracy: float | None
    baseline: float | None


def judged_between(outcomes: list[Outcome], model: str, start: datetime,
                   end: datetime) -> Judged:
    """``model``'s judged outcomes (``correct`` set) of events with ``start <= event_time <
    end``."""
    picked = [outcome for outcome in outcomes if outcome.model == model
              and outcome.correct is not None and start <= outcome.event_time < end]
    if not picked:
        return Judged(0, None, None)
    labels = Counter(str(outcome.label) for outcome in picked)
    return Judged(len(picked), sum(bool(o.correct) for o in picked) / len(picked),
                  max(labels.values()) / len(picked))


def alerts_by_kind(alerts: list[DriftAlert]) -> dict[str, int]:
    """How many alerts of each kind, every kind listed."""
    counts = Counter(alert.kind for alert in alerts)
    return {kind: counts.get(kind, 0) for kind in ("concept", "covariate", "label",
                                                   "prediction")}


def verdict(accuracy: float | None, baseline: float | None) -> str:
    """One sentence: does the champion beat always answering the most frequent label?"""
    if accuracy is None or baseline is None:
        return "no judged outcomes yet: the run was too short for its feedback window"
    points = 100 * (accuracy - baseline)
    if points > 0.5:
        return f"the champion beats the majority-class baseline by {points:.1f} points"
    if points >= -0.5:
        return ("the champion does no better than always answering the most frequent label "
                f"({points:+.1f} points)")
    return f"the champion is {-points:.1f} points WORSE than the majority-class baseline"
