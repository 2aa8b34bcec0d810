"""What a scenario is: a seeded source of events, each with its label and feedback delay."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from schemas.events import Event, LabelValue
from schemas.truth import GroundTruth


@dataclass(frozen=True)
class LabelledEvent:
    """An event, the label reality will send, and after how long (``None``: never sent)."""

    event: Event
    label: LabelValue
    label_delay_seconds: float | None


class Scenario(Protocol):
    """A deterministic generator: the same seed and clock give the same stream."""

    spec_name: str
    entity_key: str

    def events(self, start: datetime, interval_seconds: float) -> Iterator[LabelledEvent]:
        """Events at ``start``, ``start + interval``, ... forever."""
        ...


@runtime_checkable
class KnowsGroundTruth(Protocol):
    """A scenario that can tell where its stream drifts (built-in generators can)."""

    def ground_truth(self, start: datetime, interval_seconds: float) -> GroundTruth:
        """The drift points of ``events(start, interval_seconds)``."""
        ...
