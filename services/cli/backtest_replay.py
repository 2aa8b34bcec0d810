"""A backtest's replay and comparison: pure logic, no Kafka.

:func:`replay` puts a run's recorded ``events`` and ``labels`` through the features, model and
drift logic of a candidate spec (:class:`~services.cli.pipeline_in_process.InProcessPipeline`:
the services' own handlers on an in-memory bus), in event time: each event at its
``event_time``, each label at its ``label_time`` (an event before a label of the same moment),
on a virtual clock that moves to each record's time. The candidate's feedback windows and
timeout policy are the spec's, applied as the live model service applies them. Nothing touches
the live pipeline, and the same recording gives the same figures. Once the recording ends, the
clock moves past the last feedback windows, as the live service's does when its inputs stop.

:func:`compare` sets the candidate's champion outcomes against the champion outcomes the run
recorded, on the events both judged: accuracy (or mean absolute error), log loss, and a paired
test of the difference (McNemar's on the events where exactly one was right; for regression, the
mean difference of absolute errors against its standard error).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Message

from schemas.alerts import DriftAlert
from schemas.codec import decode, encode
from schemas.events import Event, Label
from schemas.predictions import Outcome
from schemas.spec import PipelineSpec
from services.cli.pipeline_in_process import InProcessPipeline
from services.model.settings import ModelOptions

LOG_LOSS_FLOOR = 1e-15
EXACT_BELOW = 200
"""McNemar's test is the exact binomial below this many discordant pairs."""


@dataclass
class _Outcomes:
    """Collects the replay's outcomes."""

    outcomes: list[Outcome]

    def handle(self, message: Message) -> None:
        self.outcomes.append(decode(Outcome, message.value()))


@dataclass(frozen=True)
class Replayed:
    """What the candidate did on the recording."""

    outcomes: list[Outcome]
    alerts: list[DriftAlert]
    events: int
    labels: int
    dead_letters: dict[str, int]


def replay(spec: PipelineSpec, events: list[Event], labels: list[Label]) -> Replayed:
    """``events`` and ``labels`` through ``spec``'s logic, in event time."""
    timeline: list[tuple[datetime, int, int, Event | Label]] = (
        [(event.event_time, 0, n, event) for n, event in enumerate(events)]
        + [(label.label_time, 1, n, label) for n, label in enumerate(labels)])
    timeline.sort(key=lambda item: item[:3])
    if not timeline:
        raise ValueError("nothing to replay: the recording has no events")
    start = timeline[0][0]
    collected = _Outcomes([])
    pipeline = InProcessPipeline.wire(spec, spec.entity_keys[0], start,
                                      observers=[("outcomes", collected)])
    for moment, _, _, record in timeline:
        pipeline.clock.seconds = max(pipeline.clock.seconds, (moment - start).total_seconds())
        if isinstance(record, Event):
            pipeline.publisher.publish_event(record)
        else:
            pipeline.bus.produce("labels", encode(record), record.event_id.encode())
            pipeline.bus.pump()
    # As the live model service does once its inputs stop: after label_hold_seconds without
    # features, stream time follows the clock, so the last feedback windows close too.
    pipeline.clock.seconds += (spec.label.feedback_window_seconds
                               + ModelOptions().label_hold_seconds + 1.0)
    pipeline.model.on_idle()
    pipeline.bus.pump()
    return Replayed(collected.outcomes, [placed.alert for placed in pipeline.recorder.alerts],
                    len(events), len(labels), dict(pipeline.bus.dead_letters))


@dataclass(frozen=True)
class Side:
    """One side's champion on the compared events."""

    name: str
    models: tuple[str, ...]
    judged: int
    """Compared events this side answered (a model that learned nothing yet answers nothing)."""
    scored: int
    """Events its accuracy and log loss are over: those both sides answered."""
    accuracy: float | None
    log_loss: float | None
    mae: float | None
    alerts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "models": list(self.models), "judged": self.judged,
                "scored": self.scored,
                "accuracy": _rounded(self.accuracy), "log_loss": _rounded(self.log_loss),
                "mae": _rounded(self.mae), "alerts": self.alerts}


@dataclass(frozen=True)
class Comparison:
    """The two sides on the same events, and the paired test of their difference."""

    recorded: Side
    candidate: Side
    events: int
    test: str
    statistic: dict[str, float]
    p_value: float | None

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "recorded": self.recorded.to_json(),
                "candidate": self.candidate.to_json(), "test": self.test,
                "statistic": self.statistic, "p_value": _rounded(self.p_value, 6)}


def champion_outcomes(outcomes: list[Outcome]) -> dict[str, Outcome]:
    """The first champion outcome of each event (a redelivered one is the same outcome)."""
    first: dict[str, Outcome] = {}
    for outcome in outcomes:
        if outcome.role == "champion":
            first.setdefault(outcome.event_id, outcome)
    return first


def compare(recorded: list[Outcome], recorded_alerts: list[DriftAlert],
            candidate: Replayed) -> Comparison:
    """The recorded champion against the candidate's, on the events both have an outcome of."""
    ours, theirs = champion_outcomes(recorded), champion_outcomes(candidate.outcomes)
    shared = [event_id for event_id in ours if event_id in theirs]
    pairs = [(ours[event_id], theirs[event_id]) for event_id in shared]
    # A model that has learned nothing yet answers nothing: both are judged on the events both
    # answered, and each side's own count of answered events is shown beside it.
    both = [(a, b) for a, b in pairs if a.correct is not None and b.correct is not None]
    scored = both if both else pairs
    left = _side("recorded", [a for a, _ in scored], recorded_alerts,
                 sum(a.correct is not None for a, _ in pairs))
    right = _side("candidate", [b for _, b in scored], candidate.alerts,
                  sum(b.correct is not None for _, b in pairs))
    judged = [(a.correct, b.correct) for a, b in both]
    if judged:
        only_recorded = sum(1 for a, b in judged if a and not b)
        only_candidate = sum(1 for a, b in judged if b and not a)
        exact = only_recorded + only_candidate < EXACT_BELOW
        return Comparison(left, right, len(pairs),
                          "McNemar (exact)" if exact else "McNemar (chi-square)",
                          {"only_recorded_right": only_recorded,
                           "only_candidate_right": only_candidate},
                          mcnemar_p(only_recorded, only_candidate))
    errors = [(_absolute_error(a), _absolute_error(b)) for a, b in pairs]
    differences = [theirs_error - ours_error for ours_error, theirs_error in errors
                   if ours_error is not None and theirs_error is not None]
    mean, p_value = paired_mean_test(differences)
    return Comparison(left, right, len(pairs), "paired mean of absolute-error differences",
                      {"mean_difference": mean, "pairs": len(differences)}, p_value)


def mcnemar_p(b: int, c: int) -> float | None:
    """Two-sided p-value of McNemar's test on ``b`` and ``c`` discordant pairs: exact binomial
    below 200 pairs, the continuity-corrected chi-square above. None without discordant pairs."""
    n = b + c
    if n == 0:
        return None
    if n < EXACT_BELOW:
        tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2.0 ** n
        return min(1.0, 2.0 * tail)
    chi2 = (abs(b - c) - 1) ** 2 / n
    return math.erfc(math.sqrt(chi2 / 2.0))


def paired_mean_test(differences: list[float]) -> tuple[float, float | None]:
    """Mean of paired differences and its two-sided p-value (normal approximation)."""
    if len(differences) < 2:
        return (differences[0] if differences else 0.0), None
    mean = sum(differences) / len(differences)
    variance = sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)
    if variance == 0:
        return mean, None if mean == 0 else 0.0
    z = mean / math.sqrt(variance / len(differences))
    return mean, math.erfc(abs(z) / math.sqrt(2.0))


def _side(name: str, outcomes: list[Outcome], alerts: list[DriftAlert], answered: int) -> Side:
    judged = [o for o in outcomes if o.correct is not None]
    probabilities = [o.label_probability for o in outcomes if o.label_probability is not None]
    errors = [e for e in (_absolute_error(o) for o in outcomes) if e is not None]
    return Side(
        name=name, models=tuple(sorted({o.model for o in outcomes})), judged=answered,
        scored=len(judged),
        accuracy=sum(bool(o.correct) for o in judged) / len(judged) if judged else None,
        log_loss=(sum(-math.log(max(p, LOG_LOSS_FLOOR)) for p in probabilities)
                  / len(probabilities) if probabilities else None),
        mae=sum(errors) / len(errors) if errors and not judged else None,
        alerts=dict(sorted(Counter(alert.kind for alert in alerts).items())),
    )


def _absolute_error(outcome: Outcome) -> float | None:
    prediction, label = outcome.prediction, outcome.label
    if isinstance(prediction, bool) or isinstance(label, bool):
        return None
    if isinstance(prediction, int | float) and isinstance(label, int | float):
        return abs(float(prediction) - float(label))
    return None


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
