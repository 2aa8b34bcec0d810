"""What the model service keeps of the messages it reads: pure data, no Kafka.

:class:`EarlyLabel` is a label that came before its event's features, kept with its message so
it can still be dead-lettered as it arrived. An event's position in the ``events`` topic, packed
into one int, tells a redelivered feature vector (same position) from a second event reusing an
``event_id`` (another position).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.codec import ContractError, ContractT, decode
from schemas.events import Label
from schemas.features import FeatureVector
from schemas.predictions import Outcome, Prediction
from services.common.dead_letters import DeadLetter
from services.model.learner import Learner, ModelPrediction
from services.model.pending import PendingEntry


@dataclass(frozen=True)
class EarlyLabel:
    """A label waiting for its features: the label, its time, and the message it came in."""

    label: Label
    label_time: float
    raw: bytes | None
    key: bytes | None
    partition: int
    offset: int

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its message (the label is decoded again): cheap in large checkpoints."""
        return _early_label_from, (self.raw, self.label_time, self.key, self.partition,
                                   self.offset)


def _early_label_from(raw: bytes, label_time: float, key: bytes | None, partition: int,
                      offset: int) -> EarlyLabel:
    return EarlyLabel(decode(Label, raw), label_time, raw, key, partition, offset)


def event_position(vector: FeatureVector) -> tuple[int, int] | None:
    """Where the vector's event was read from the ``events`` topic, if it says."""
    if vector.event_partition is None or vector.event_offset is None:
        return None
    return vector.event_partition, vector.event_offset


_OFFSET_BITS = 44


def pack_position(position: tuple[int, int] | None) -> int:
    """A position as one int (-1: unknown), so the remembered ids stay cheap to checkpoint."""
    if position is None:
        return -1
    partition, offset = position
    return (partition << _OFFSET_BITS) | offset


def unpack_position(packed: object) -> tuple[int, int] | None:
    """Inverse of :func:`pack_position`; ``True`` (states written before positions) is unknown."""
    if not isinstance(packed, int) or isinstance(packed, bool) or packed < 0:
        return None
    return packed >> _OFFSET_BITS, packed & ((1 << _OFFSET_BITS) - 1)


def check_repeat(first: object, vector: FeatureVector) -> None:
    """A vector for an event already predicted, whose packed position was ``first``: returns
    for the same event again (a redelivery, to skip); raises :class:`DeadLetter` (``duplicate``)
    when another event reuses its ``event_id``. Unknown positions count as the same event."""
    known, again = unpack_position(first), event_position(vector)
    if known is None or again is None or known == again:
        return
    raise DeadLetter("duplicate", (
        f"event_id {vector.event_id} was already predicted for the event at events partition "
        f"{known[0]} offset {known[1]}; this event is at partition {again[0]} offset {again[1]}"
    ))


@dataclass(frozen=True)
class ModelTopics:
    """Full topic names the model service reads and writes."""

    features: str
    labels: str
    predictions: str
    outcomes: str
    model_events: str = "model-events"
    drift_alerts: str = "drift-alerts"


def read_message(model: type[ContractT], raw: bytes | None) -> ContractT:
    """Decode a message's value as ``model``; a bad one raises :class:`DeadLetter`."""
    try:
        return decode(model, raw)
    except ContractError as error:
        raise DeadLetter.from_contract_error(error) from error


def prediction_of(vector: FeatureVector, answer: ModelPrediction, received: datetime,
                  predicted_at: datetime, release: int | None = None,
                  segment: str | None = None) -> Prediction:
    """``answer`` for ``vector`` as a ``predictions`` message (features read at ``received``;
    ``release``: the model release used, in the scaled layout; ``segment``: whose copy of the
    model answered)."""
    return Prediction(
        event_id=vector.event_id, model=answer.model, model_version=answer.version,
        role=answer.role, prediction=answer.prediction, probabilities=answer.probabilities,
        score=answer.score, event_time=vector.event_time, features_at=received,
        predicted_at=predicted_at, model_release=release, segment=segment,
    )


def outcomes_of(entry: PendingEntry, y: bool | int | float | str, timed_out: bool, delay: float,
                learned_at: datetime, learner: Learner) -> Iterator[Outcome]:
    """One outcome per model that predicted on ``entry``, judged against ``y``."""
    champion = learner.champion.name
    kept = entry.class_probabilities or {}
    for model, (version, prediction, score) in entry.predictions.items():
        yield Outcome(
            event_id=entry.event_id, model=model, model_version=version,
            role="champion" if model == champion else "challenger",
            prediction=prediction, score=score, label=y,
            label_probability=None if prediction is None
            else learner.label_probability(y, score, kept.get(model)),
            # No prediction (a model that has learned nothing yet) is not judged, as in River.
            correct=None if learner.label.type == "regression" or prediction is None
            else prediction == y, timed_out=timed_out, label_delay_seconds=delay,
            event_time=entry.event_time, learned_at=learned_at, segment=entry.segment,
        )
