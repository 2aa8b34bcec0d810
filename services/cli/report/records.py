"""What a report is made of: the decoded messages of one run's topics, and the report's error."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.alerts import DriftAlert
from schemas.events import Event, Label
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction


class ReportError(RuntimeError):
    """The report cannot be made (no such topics, a topic not readable to its end, no matplotlib).

    Its message is meant for the person who ran the command.
    """


@dataclass(frozen=True)
class DeadLetterRecord:
    """One dead letter: its source topic (base name, prefix stripped), reason code and service.

    A dead letter whose headers cannot be read has source ``unknown`` and reason ``unlabelled``,
    as the metrics sink counts it.
    """

    source: str
    reason: str
    service: str


@dataclass
class RunRecords:
    """Every readable message of a run, by topic, in the order read; and how many were not.

    ``unreadable`` maps a topic's base name to the number of its messages that did not decode
    as that topic's contract (they are left out of everything else).
    """

    predictions: list[Prediction] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    alerts: list[DriftAlert] = field(default_factory=list)
    model_events: list[ModelEvent] = field(default_factory=list)
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)
    unreadable: dict[str, int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    """Read only when asked for (a backtest replays them)."""
    labels: list[Label] = field(default_factory=list)
