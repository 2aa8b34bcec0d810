"""Built-in scenarios: deterministic event generators with natural labels and drift timelines."""

from collections.abc import Callable

from services.producer.scenarios.base import KnowsGroundTruth, LabelledEvent, Scenario
from services.producer.scenarios.clicks import ClicksScenario
from services.producer.scenarios.labels import LabelDelay, NaturalLabels
from services.producer.scenarios.sensors import SensorsScenario
from services.producer.scenarios.timeline import Timeline, TimelineError, load_timeline

SCENARIOS: dict[str, Callable[..., Scenario]] = {"clicks": ClicksScenario,
                                                  "sensors": SensorsScenario}
"""Scenario factories by name; each takes ``seed``, ``explicit_negatives``, ``timeline``
(a :class:`Timeline` or ``None``) and ``labels`` (:class:`NaturalLabels`) as keywords."""

__all__ = [
    "SCENARIOS",
    "ClicksScenario",
    "KnowsGroundTruth",
    "LabelDelay",
    "LabelledEvent",
    "NaturalLabels",
    "Scenario",
    "SensorsScenario",
    "Timeline",
    "TimelineError",
    "load_timeline",
]
