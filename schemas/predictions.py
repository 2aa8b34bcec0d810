"""The model service's output: ``predictions`` (one per event) and ``outcomes`` (one per label)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareDatetime, Contract
from schemas.events import LabelValue

PredictionValue = bool | int | float | str | None
"""A class, a regression value, or ``None`` while a model has learned nothing yet."""


class Prediction(Contract):
    """What ``model`` at ``model_version`` predicted for ``event_id``.

    ``probabilities`` maps each class (as a string) to its probability for classifiers; ``score`` is
    the positive-class probability for binary classification or the value for regression.
    Latency event -> prediction is ``predicted_at - event_time``; features -> prediction is
    ``predicted_at - features_at``.
    """

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=256)
    model: str
    model_version: int = Field(ge=1)
    role: Literal["champion", "challenger"] = "champion"
    prediction: PredictionValue
    probabilities: dict[str, float] | None = None
    score: float | None = None
    event_time: AwareDatetime
    features_at: AwareDatetime
    predicted_at: AwareDatetime
    segment: str | None = Field(default=None, max_length=256)
    """With ``[models] segment_by``: the segment whose copy of the model answered."""
    model_release: int | None = Field(default=None, ge=0)
    """The scaled layout (``streamml up --predictors N``): the release served from, named by the
    labels the learner had learned when it made it. None when one process predicts and learns."""


class Outcome(Contract):
    """The join of a prediction with its label, or with the end of its feedback window.

    ``timed_out`` is true when no label arrived inside the window and ``label`` then follows the
    spec's timeout policy. ``label_delay_seconds`` is ``label_time - event_time`` (the window length
    on a timeout). ``correct`` is set for classification when the model made a prediction (a model
    that has learned nothing yet may not); it is None otherwise, and such outcomes are not judged.
    ``label_probability`` is the probability the model gave, when it predicted, to the class that
    was then observed (``label``): what log loss is computed from. A class the model had never
    seen has probability 0. It is None for regression and when the model predicted nothing.
    """

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=256)
    model: str
    model_version: int = Field(ge=1)
    role: Literal["champion", "challenger"] = "champion"
    prediction: PredictionValue
    score: float | None = None
    label: LabelValue
    label_probability: float | None = Field(default=None, ge=0, le=1)
    correct: bool | None = None
    timed_out: bool = False
    label_delay_seconds: float = Field(ge=0)
    event_time: AwareDatetime
    learned_at: AwareDatetime
    segment: str | None = Field(default=None, max_length=256)
    """With ``[models] segment_by``: the segment whose copy of the model answered and learned."""
