"""The ``drift-alerts`` topic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareDatetime, Contract

DriftKind = Literal["covariate", "label", "concept", "prediction"]


class DriftAlert(Contract):
    """A detector decided that something changed.

    ``target`` names what was watched (a feature, ``label_rate``, or ``error:<model>``);
    ``statistic`` and ``threshold`` are the detector's figures when it fired; ``stream_position``
    counts the observations the detector had seen, and ``event_time`` is the event time of the last
    one, so an alert can be placed on the stream and scored against ground truth.
    """

    schema_version: Literal[1] = 1
    alert_id: str = Field(min_length=1)
    kind: DriftKind
    detector: str
    target: str
    model: str | None = None
    statistic: float
    threshold: float
    stream_position: int = Field(ge=0)
    event_time: AwareDatetime | None = None
    detected_at: AwareDatetime
