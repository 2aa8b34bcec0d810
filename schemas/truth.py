"""Ground truth of a generated run: where its drift phases begin, to score drift detection.

A producer run of a scenario with a drift timeline writes one :class:`GroundTruth` as JSON
(``truth.json``). Positions are 0-based event indexes of the run (the ``stream_position`` of the
event); times are event times, ``start + index * interval_seconds``. Read it back with
``GroundTruth.model_validate_json(path.read_bytes())``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.alerts import DriftKind
from schemas.base import AwareDatetime, Contract

PhaseKind = Literal["stationary", "covariate_shift", "label_shift", "concept_drift"]
Transition = Literal["abrupt", "gradual"]
Mixing = Literal["sigmoid", "linear"]

DRIFT_KINDS: dict[PhaseKind, DriftKind | None] = {
    "stationary": None,
    "covariate_shift": "covariate",
    "label_shift": "label",
    "concept_drift": "concept",
}
"""The drift-alert kind a detector should raise for each kind of phase (none when stationary)."""


class PhaseSpan(Contract):
    """One phase of the timeline: events ``start_index`` up to (excluding) ``end_index``."""

    name: str
    kind: PhaseKind
    start_index: int = Field(ge=0)
    end_index: int = Field(gt=0)
    start_time: AwareDatetime


class DriftPoint(Contract):
    """A phase boundary: the world changes from event ``index`` on.

    An abrupt change holds fully from ``index``. A gradual one mixes the old and the new world:
    each event comes from the new one with a probability rising from 0 at ``index`` to 1 at
    ``end_index = index + width`` (a ``sigmoid`` or ``linear`` ramp).
    """

    index: int = Field(ge=0)
    event_time: AwareDatetime
    phase: str
    kind: PhaseKind
    drift_kind: DriftKind | None
    transition: Transition
    width: int = Field(ge=0)
    mixing: Mixing | None = None
    end_index: int = Field(ge=0)
    end_time: AwareDatetime


class GroundTruth(Contract):
    """What a run was generated from, and its drift points in stream order.

    ``total_events`` is the length of the timeline; a run may stop earlier (drift points at or
    after its last event were never reached) or go on (the last phase's world then persists).
    A scenario without a timeline is stationary: no phases after the first, no drift points.
    """

    schema_version: Literal[1] = 1
    scenario: str
    seed: int | None = None
    timeline: str | None = None
    start: AwareDatetime
    interval_seconds: float = Field(gt=0)
    total_events: int | None = Field(default=None, gt=0)
    phases: tuple[PhaseSpan, ...] = ()
    drift_points: tuple[DriftPoint, ...] = ()
