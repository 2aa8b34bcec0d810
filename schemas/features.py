"""The ``features`` topic: one point-in-time feature vector per valid event."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareDatetime, Contract

FeatureValue = float | str | None
"""Numbers are floats; categorical fields stay strings; ``None`` means unknown so far."""


class FeatureVector(Contract):
    """The features of ``event_id``, computed only from what was known before the event.

    ``features`` holds the event's own raw fields plus the entity aggregates (``<agg>`` names from
    the pipeline spec). ``ingested_at`` is when the features service read the event and
    ``computed_at`` when it emitted this vector; with ``event_time`` they give end-to-end latency.
    ``event_partition`` and ``event_offset`` say where the event was read from the ``events``
    topic: a vector sent again for the same event (a redelivery) has the same position, a second
    event with the same ``event_id`` another one. ``None`` when the features came from elsewhere.
    """

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=256)
    event_time: AwareDatetime
    entity: dict[str, str]
    features: dict[str, FeatureValue]
    ingested_at: AwareDatetime
    computed_at: AwareDatetime
    event_partition: int | None = Field(default=None, ge=0)
    event_offset: int | None = Field(default=None, ge=0)
