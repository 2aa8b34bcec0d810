"""The accuracy the metrics sink estimated for each champion prediction when it was made.

The run's champion predictions and outcomes are replayed in the order they happened (a
prediction at ``predicted_at``, an outcome at ``learned_at``) through the sink's estimator
(:class:`~services.metrics_sink.estimate.AccuracyEstimate`), so each prediction gets the
estimate the sink could make with only the labels that had come by then. Drawn per bucket next
to the accuracy those predictions turned out to have.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from schemas.predictions import Outcome, Prediction
from services.cli.report.records import RunRecords
from services.metrics_sink.estimate import AccuracyEstimate, confidence_of, outcome_confidence


def estimates_at_prediction(records: RunRecords) -> list[tuple[Prediction, float]]:
    """Each champion prediction with a confidence, and the accuracy estimated for it then."""
    timeline: list[tuple[float, int, Prediction | Outcome]] = (
        [(p.predicted_at.timestamp(), 0, p) for p in records.predictions
         if p.role == "champion"]
        + [(o.learned_at.timestamp(), 1, o) for o in records.outcomes if o.correct is not None])
    timeline.sort(key=lambda item: (item[0], item[1]))
    estimates: dict[str, AccuracyEstimate] = {}
    made: list[tuple[Prediction, float]] = []
    for _, _, record in timeline:
        if isinstance(record, Prediction):
            confidence = confidence_of(record)
            if confidence is not None:
                estimate = estimates.setdefault(record.model, AccuracyEstimate())
                made.append((record, estimate.predicted(record.event_id, confidence)))
        elif record.model in estimates and record.correct is not None:
            estimates[record.model].resolved(record.event_id, record.correct,
                                             outcome_confidence(record))
    return made


def estimated_accuracy(records: RunRecords, place: Callable[[Prediction], float],
                       width: float) -> tuple[tuple[float, float], ...]:
    """(bucket start, mean estimate) per bucket of ``width`` of the champion's predictions."""
    buckets: defaultdict[int, list[float]] = defaultdict(list)
    for prediction, estimate in estimates_at_prediction(records):
        buckets[int(place(prediction) // width)].append(estimate)
    return tuple((index * width, sum(values) / len(values))
                 for index, values in sorted(buckets.items()))
