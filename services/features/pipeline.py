"""The per-event steps of the features service, free of faust so they can be unit-tested.

An event goes: bytes -> :func:`admit` (validate) -> one :func:`advance` per entity stage ->
:func:`finish` (the public :class:`~schemas.features.FeatureVector`).

Validate at the edge, trust the inside: an event from ``events`` gets the full contract and spec
check in :func:`admit`; a staged event read back from an internal topic was written by this
service from an event that passed it, so :func:`decode_staged` rebuilds it without validating
again (orjson into plain dataclasses).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas.events import FieldValue
from schemas.features import FeatureValue, FeatureVector
from schemas.spec import AggregateSpec, PipelineSpec
from services.features.aggregates import EntityState, absorb, features_before, new_state
from services.features.validation import Limits, validate_event


@dataclass(frozen=True, slots=True)
class AdmittedEvent:
    """The fields of an :class:`~schemas.events.Event` that passed :func:`admit`, as a plain
    dataclass: it is carried and rebuilt from internal topics without pydantic."""

    event_id: str
    event_time: datetime
    entity: dict[str, str]
    fields: dict[str, FieldValue]


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """An event on its way through the entity stages (internal topics only)."""

    event: AdmittedEvent
    features: dict[str, FeatureValue]
    ingested_at: datetime
    event_partition: int | None = None
    event_offset: int | None = None
    """Where the event was read from the ``events`` topic (see :class:`FeatureVector`)."""


@dataclass(frozen=True)
class Stage:
    """The aggregates of one entity key, and how many recent events per entity it remembers."""

    entity: str
    aggregates: list[AggregateSpec]
    remember: int = 32


def plan_stages(spec: PipelineSpec, remember: int = 32) -> list[Stage]:
    """One stage per entity key that has aggregates, in the spec's entity-key order."""
    stages = []
    for entity in spec.entity_keys:
        aggregates = [a for a in spec.aggregates if a.entity == entity]
        if aggregates:
            stages.append(Stage(entity, aggregates, remember))
    return stages


def admit(
    raw: bytes | None, spec: PipelineSpec, now: datetime, limits: Limits,
    position: tuple[int, int] | None = None,
) -> StagedEvent:
    """Validate an event (raises ``DeadLetter``) and start its features with its raw fields.

    ``position`` is the event's (partition, offset) in the ``events`` topic, if read from it.
    """
    event = validate_event(raw, spec, now, limits)
    features = {name: _raw_feature(value) for name, value in event.fields.items()}
    partition, offset = position if position is not None else (None, None)
    admitted = AdmittedEvent(event.event_id, event.event_time, event.entity, event.fields)
    return StagedEvent(admitted, features, now, partition, offset)


def advance(
    staged: StagedEvent, stage: Stage, state: EntityState | None
) -> tuple[StagedEvent, EntityState, bool]:
    """Add ``stage``'s point-in-time aggregates to ``staged``.

    Returns the staged event, the updated state and whether the event was a redelivery. The state
    remembers the aggregates it gave its entity's last ``stage.remember`` events (``recent``:
    ``[event_id, [value per aggregate, in the stage's order]]``): an event seen again (a
    redelivery after a crash, or a duplicate from upstream) gets the same aggregates again and
    is not absorbed twice, so at-least-once delivery never double-counts.
    """
    current = state if state is not None else new_state()
    recent: list[list[Any]] = current.setdefault("recent", [])
    event_id = staged.event.event_id
    if event_id in [entry[0] for entry in recent]:
        again = _remembered(stage, next(entry[1] for entry in recent if entry[0] == event_id))
        if again is not None:
            return _with(staged, again), current, True
    event_time = staged.event.event_time.timestamp()
    aggregates = features_before(current, stage.aggregates, event_time)
    absorb(current, stage.aggregates, event_time, dict(staged.event.fields))
    recent.append([event_id, [aggregates[a.name] for a in stage.aggregates]])
    del recent[: max(0, len(recent) - stage.remember)]
    return _with(staged, aggregates), current, False


def _remembered(stage: Stage, remembered: Any) -> dict[str, float | None] | None:
    """Remembered aggregates by name; None if they do not fit the stage's aggregates."""
    if isinstance(remembered, dict):  # states written before values were kept as a list
        return remembered
    if len(remembered) != len(stage.aggregates):
        return None
    return {a.name: value for a, value in zip(stage.aggregates, remembered, strict=True)}


def _with(staged: StagedEvent, aggregates: dict[str, float | None]) -> StagedEvent:
    return StagedEvent(staged.event, {**staged.features, **aggregates}, staged.ingested_at,
                       staged.event_partition, staged.event_offset)


def finish(staged: StagedEvent, now: datetime) -> FeatureVector:
    """The public feature vector of a fully staged event."""
    return FeatureVector(
        event_id=staged.event.event_id,
        event_time=staged.event.event_time,
        entity=staged.event.entity,
        features=staged.features,
        ingested_at=staged.ingested_at,
        computed_at=now,
        event_partition=staged.event_partition,
        event_offset=staged.event_offset,
    )


def encode_staged(staged: StagedEvent) -> bytes:
    """Internal wire format of a staged event: its fields as a JSON object (the event as an
    object, times in RFC 3339), the layout the pydantic model it replaced wrote."""
    return orjson.dumps(staged, option=orjson.OPT_UTC_Z)


def decode_staged(raw: bytes) -> StagedEvent:
    """Inverse of :func:`encode_staged`, without validation: only this service writes the
    internal topics, from events :func:`admit` validated. Raises ``ValueError`` (orjson's
    ``JSONDecodeError``), ``KeyError`` or ``TypeError`` on bytes it did not write."""
    document = orjson.loads(raw)
    event = document["event"]
    admitted = AdmittedEvent(event["event_id"], datetime.fromisoformat(event["event_time"]),
                             event["entity"], event["fields"])
    return StagedEvent(admitted, document["features"],
                       datetime.fromisoformat(document["ingested_at"]),
                       document.get("event_partition"), document.get("event_offset"))


def _raw_feature(value: FieldValue) -> FeatureValue:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return value
