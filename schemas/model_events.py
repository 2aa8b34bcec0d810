"""The ``model-events`` topic: what happened to the models (promotions, resets, new challengers)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareDatetime, Contract

ModelEventKind = Literal["promoted", "champion_reset", "challenger_started"]


class ModelEvent(Contract):
    """A change of the served models.

    ``promoted``: ``model`` beat ``previous_model`` and now serves as champion at
    ``model_version``; ``statistic`` and ``threshold`` are the race's log-likelihood ratio and
    the bar it cleared. ``champion_reset``: the champion restarted from scratch (a new version).
    ``challenger_started``: a fresh challenger began learning. ``reason`` says why (for example
    the id of the drift alert that caused it).
    """

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1)
    kind: ModelEventKind
    model: str
    model_version: int = Field(ge=1)
    previous_model: str | None = None
    reason: str
    statistic: float | None = None
    threshold: float | None = None
    labels_seen: int = Field(ge=0)
    at: AwareDatetime
