"""What users publish: events (``events`` topic) and their natural labels (``labels`` topic).

An event, as JSON on the wire::

    {"schema_version": 1, "event_id": "e-42", "event_time": "2026-11-22T15:00:00Z",
     "entity": {"user": "u-7"}, "fields": {"device": "mobile", "price": 12.5}}

and the label that answers it, published whenever reality tells::

    {"schema_version": 1, "event_id": "e-42", "label_time": "2026-11-22T15:00:04Z", "label": 1}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareDatetime, Contract

FieldValue = bool | int | float | str | None
"""A raw event field: a flat scalar. Nested objects are not accepted."""

LabelValue = bool | int | float | str
"""What happened: a class (bool, int or str) or a regression target (float)."""

Identifier = str


class Event(Contract):
    """One thing that happened, to be predicted on.

    ``event_id`` is unique per event and is the join key for its label. ``entity`` maps each entity
    key name (e.g. ``user``) to its value; aggregates are computed per entity.
    """

    schema_version: Literal[1] = 1
    event_id: Identifier = Field(min_length=1, max_length=256)
    event_time: AwareDatetime
    entity: dict[str, str] = Field(min_length=1)
    fields: dict[str, FieldValue]


class Label(Contract):
    """The natural label of one event, published after its feedback delay."""

    schema_version: Literal[1] = 1
    event_id: Identifier = Field(min_length=1, max_length=256)
    label_time: AwareDatetime
    label: LabelValue
