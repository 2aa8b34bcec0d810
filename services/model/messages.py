"""What the model service keeps of the messages it reads: pure data, no Kafka.

:class:`EarlyLabel` is a label that came before its event's features, kept with its message so
it can still be dead-lettered as it arrived. An event's position in the ``events`` topic, packed
into one int, tells a redelivered feature vector (same position) from a second event reusing an
``event_id`` (another position).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.codec import ContractError, ContractT, decode
from schemas.events import Label
from schemas.features import FeatureVector
from services.common.dead_letters import DeadLetter


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
