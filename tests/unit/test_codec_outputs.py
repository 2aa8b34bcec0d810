"""The model service writes predictions and outcomes with ``encode_plain``: the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.codec import decode, encode, encode_plain
from schemas.predictions import Outcome, Prediction

AT = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)


@pytest.mark.parametrize("stamp", [AT, AT.replace(microsecond=0),
                                   AT.astimezone(timezone(timedelta(hours=2)))])
def test_predictions_and_outcomes_encode_plain_as_encode_does(stamp: datetime) -> None:
    outputs = [
        Prediction(event_id="e-1", model="logreg", model_version=2, prediction=True,
                   probabilities={"False": 0.25, "True": 0.75}, score=0.75, event_time=stamp,
                   features_at=stamp, predicted_at=stamp),
        Prediction(event_id="e-2", model="lin", model_version=1, prediction=3.5e-7,
                   event_time=stamp, features_at=stamp, predicted_at=stamp),
        Prediction(event_id="e-3", model="tree", model_version=1, prediction=None,
                   event_time=stamp, features_at=stamp, predicted_at=stamp),
        Outcome(event_id="e-1", model="logreg", model_version=2, role="challenger",
                prediction="up", score=None, label="down", label_probability=0.1,
                correct=False, label_delay_seconds=1.5, event_time=stamp, learned_at=stamp),
        Outcome(event_id="e-4", model="lin", model_version=1, prediction=2.0, label=2.5,
                timed_out=True, label_delay_seconds=0.0, event_time=stamp, learned_at=stamp),
    ]
    for output in outputs:
        assert encode_plain(output) == encode(output)
        assert decode(type(output), encode_plain(output)) == output
