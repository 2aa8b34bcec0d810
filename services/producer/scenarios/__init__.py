"""Built-in scenarios: deterministic event generators with natural labels."""

from collections.abc import Callable

from services.producer.scenarios.base import LabelledEvent, Scenario
from services.producer.scenarios.clicks import ClicksScenario

SCENARIOS: dict[str, Callable[..., Scenario]] = {"clicks": ClicksScenario}
"""Scenario factories by name; each takes ``seed`` and ``explicit_negatives``."""

__all__ = ["SCENARIOS", "ClicksScenario", "LabelledEvent", "Scenario"]
